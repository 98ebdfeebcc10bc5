-- Read models: projections of the event log, rebuilt from it at will (DESIGN.md decision 3).
-- Every row remembers the aggregate version it reflects; no cross-ticket foreign keys, so the
-- tables stay distributable by aggregate id (decision 9).

-- Where each projector has got to in the log, in the safe read order of decision 2.
-- A projector that fails to apply an event stops there and says why.
CREATE TABLE projector_checkpoints (
    projector        text        PRIMARY KEY,
    last_txid        xid8        NOT NULL DEFAULT '0',
    last_position    bigint      NOT NULL DEFAULT 0,
    events_applied   bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    failed_position  bigint,
    failure          text
);

CREATE TABLE users_view (
    id          uuid        PRIMARY KEY,
    email       text        NOT NULL,
    full_name   text        NOT NULL,
    role        text        NOT NULL,
    active      boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);
CREATE INDEX users_view_role_idx ON users_view (role, created_at);

CREATE TABLE tickets_view (
    id               uuid        PRIMARY KEY,
    number           bigint      NOT NULL,
    subject          text        NOT NULL,
    description      text        NOT NULL,
    priority         text        NOT NULL,
    -- 4 = critical ... 1 = low, so "most urgent first" is an index scan.
    priority_rank    smallint    NOT NULL,
    status           text        NOT NULL,
    category         text,
    tags             text[]      NOT NULL DEFAULT '{}',
    customer_id      uuid        NOT NULL,
    assignee_id      uuid,
    escalation_level integer     NOT NULL DEFAULT 0,
    comment_count    integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);
CREATE UNIQUE INDEX tickets_view_number_idx ON tickets_view (number);
CREATE INDEX tickets_view_created_idx ON tickets_view (created_at DESC, id);
CREATE INDEX tickets_view_status_idx ON tickets_view (status, created_at DESC);
CREATE INDEX tickets_view_customer_idx ON tickets_view (customer_id, created_at DESC);
CREATE INDEX tickets_view_assignee_idx ON tickets_view (assignee_id, created_at DESC);
CREATE INDEX tickets_view_tags_idx ON tickets_view USING gin (tags);

CREATE TABLE ticket_comments_view (
    id          uuid        PRIMARY KEY,
    ticket_id   uuid        NOT NULL,
    author_id   uuid        NOT NULL,
    author_role text        NOT NULL,
    body        text        NOT NULL,
    internal    boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    -- The ticket version this comment was added at: orders comments exactly as the log does.
    sequence    bigint      NOT NULL
);
CREATE INDEX ticket_comments_view_ticket_idx ON ticket_comments_view (ticket_id, sequence);
