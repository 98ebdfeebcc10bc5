-- Webhooks: endpoints (an aggregate, projected into `webhooks_view`), their signing secrets
-- (outside the log, DESIGN.md decision 10), and the outbound queue the dispatcher fills from the
-- log and the deliverer drains (decision 14).

-- Endpoints as the API lists them (the `webhooks` projector).
CREATE TABLE webhooks_view (
    id               uuid        PRIMARY KEY,
    url              text        NOT NULL,
    events           text[]      NOT NULL,
    description      text,
    enabled          boolean     NOT NULL,
    include_internal boolean     NOT NULL,
    -- Why Docket stopped posting on its own ({"reason": "gone"}), until it is enabled again.
    disabled         jsonb,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);

-- The dispatcher's own copy of the endpoints, written with its checkpoint: an event goes to the
-- endpoints subscribed when it happened in the log. Same columns as webhooks_view.
CREATE TABLE webhook_subscriptions (LIKE webhooks_view INCLUDING ALL);

-- Signing secrets (`whsec_` + base64 of 32 random bytes). After a rotation the previous one
-- stays valid until `previous_until`, and both signatures are sent.
CREATE TABLE webhook_secrets (
    webhook_id      uuid        PRIMARY KEY,
    secret          text        NOT NULL,
    previous_secret text,
    previous_until  timestamptz,
    rotated_at      timestamptz NOT NULL
);

-- One message to one endpoint. `id` is derived from the endpoint and the message, so the
-- dispatcher writing it again (a batch re-read after a crash) changes nothing; `body` is the exact
-- JSON every attempt sends. `message_id` is the `webhook-id` header, the same on every attempt.
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    webhook_id      uuid        NOT NULL,
    message_id      text        NOT NULL,
    event_type      text        NOT NULL,
    -- The log position of the event it tells of (none for a test ping).
    position        bigint,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL,
    -- pending → delivered, or failed when its retries ran out or the endpoint is gone.
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- Failed attempts since it was last (re)queued: where it stands in the retry schedule.
    retries_used    integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    delivered_at    timestamptz,
    last_status     smallint,
    last_error      text
);
-- What is due, per endpoint: the deliverer asks each endpoint, and drains one at a time.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, id);

-- Every attempt, with what the receiver answered (its first KiB).
CREATE TABLE webhook_attempts (
    delivery_id      uuid        NOT NULL,
    attempt          integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer     NOT NULL,
    status_code      smallint,
    error            text,
    response_excerpt text,
    PRIMARY KEY (delivery_id, attempt)
);

-- How each endpoint is doing: failing since when, and its last success.
CREATE TABLE webhook_health (
    webhook_id      uuid        PRIMARY KEY,
    failing_since   timestamptz,
    last_success_at timestamptz,
    last_failure_at timestamptz
);
