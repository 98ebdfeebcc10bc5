-- In-app notifications, written by the notifier (a subscriber of the log with a checkpoint of
-- its own, DESIGN.md decision 14) and read by their recipients. A row's id is derived from the
-- event and the recipient: reading the log again writes nothing twice, and a recipient's read
-- marks survive it.
CREATE TABLE notifications (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    kind          text        NOT NULL,
    ticket_id     uuid,
    ticket_number bigint,
    title         text        NOT NULL,
    body          text,
    actor_id      uuid,
    -- The log position of the event it tells of.
    position      bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    read_at       timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;

-- What the notifier knows, as of its checkpoint (written with it): each ticket's customer,
-- assignee, team and followers; each team's members; each person's address, role and
-- preferences. Who is told of an event is decided on these as they were at the event.
CREATE TABLE notifier_tickets (
    ticket_id   uuid   PRIMARY KEY,
    number      bigint NOT NULL,
    subject     text   NOT NULL,
    customer_id uuid   NOT NULL,
    assignee_id uuid,
    team_id     uuid,
    followers   uuid[] NOT NULL DEFAULT '{}'
);
CREATE TABLE notifier_teams (
    team_id uuid  PRIMARY KEY,
    -- {"<user id>": "member" | "lead" | "manager"}
    members jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE notifier_people (
    user_id     uuid    PRIMARY KEY,
    email       text    NOT NULL,
    full_name   text    NOT NULL,
    role        text    NOT NULL,
    active      boolean NOT NULL,
    preferences jsonb   NOT NULL DEFAULT '{}'
);
CREATE INDEX notifier_people_email_idx ON notifier_people (email);
CREATE INDEX notifier_people_role_idx ON notifier_people (role) WHERE active;

-- Where each subscriber with side effects begins to act: a log that already has a history when
-- the subscriber first appears is read from its start (to learn who is who), but only events
-- after this position are told of. Fixed once, here, so reading the log again tells the same.
CREATE TABLE subscriber_starts (
    subscriber    text   PRIMARY KEY,
    from_position bigint NOT NULL
);
INSERT INTO subscriber_starts (subscriber, from_position)
SELECT 'notifier', COALESCE(max(global_position), 0) FROM events;
