-- E-mail. The notifier queues a mail per person and event here (the outbox), with what its
-- template needs (`context`), in the same transaction as its checkpoint; the sender renders it
-- with the template in force and sends it over SMTP, retrying on a schedule. The id is derived
-- from the event and the person, so nothing is queued twice.
CREATE TABLE mail_outbox (
    id              uuid        PRIMARY KEY,
    kind            text        NOT NULL,
    ticket_id       uuid,
    recipient_id    uuid,
    to_address      text        NOT NULL,
    context         jsonb       NOT NULL,
    position        bigint,
    -- As sent (or as last tried), so the outbox shows what went out even after the template
    -- changes.
    subject         text,
    body_text       text,
    body_html       text,
    state           text        NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX mail_outbox_created_idx ON mail_outbox (created_at DESC, id);

-- Every message that came in at POST /api/inbound/email, and what became of it.
CREATE TABLE inbound_mail (
    id           uuid        PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    from_address text,
    subject      text,
    message_id   text,
    ticket_id    uuid,
    comment_id   uuid,
    -- commented, or refused (with the reason).
    outcome      text        NOT NULL,
    reason       text
);
-- A gateway that delivers a message twice gets the first answer again.
CREATE INDEX inbound_mail_message_idx ON inbound_mail (message_id) WHERE outcome = 'commented';

-- What a mail says of its ticket: the notifier keeps each ticket's status and priority too.
-- Rows it made before this migration start from the ticket list's view of them.
ALTER TABLE notifier_tickets
    ADD COLUMN status   text NOT NULL DEFAULT 'new',
    ADD COLUMN priority text NOT NULL DEFAULT 'medium';
UPDATE notifier_tickets n
   SET status = t.status, priority = t.priority
  FROM tickets_view t
 WHERE t.id = n.ticket_id;
ALTER TABLE notifier_tickets ALTER COLUMN status DROP DEFAULT, ALTER COLUMN priority DROP DEFAULT;
