-- SLA: the state of each ticket's clocks (written by the tickets projection), and the
-- configuration read models (policies, calendars, escalation rules).

-- The ticket's SLA as the domain keeps it (policy with calendar, and clocks), plus what lists
-- filter and sort on: the worst state of its clocks, the nearest deadline, ever breached.
ALTER TABLE tickets_view
    ADD COLUMN sla          jsonb,
    ADD COLUMN sla_state    text,
    ADD COLUMN sla_due_at   timestamptz,
    ADD COLUMN sla_breached boolean NOT NULL DEFAULT false;
CREATE INDEX tickets_view_sla_due_idx ON tickets_view (sla_due_at, id) WHERE sla_due_at IS NOT NULL;
CREATE INDEX tickets_view_sla_state_idx ON tickets_view (sla_state, created_at DESC);

-- One row per ticket and metric. `next_check_at` is the next instant the deadline scheduler
-- must look at the clock (its warning, else its deadline), for running clocks only.
CREATE TABLE sla_clocks_view (
    ticket_id       uuid        NOT NULL,
    metric          text        NOT NULL,
    cycle           integer     NOT NULL,
    state           text        NOT NULL,
    target_seconds  bigint      NOT NULL,
    started_at      timestamptz NOT NULL,
    elapsed_ms      bigint      NOT NULL,
    running_since   timestamptz,
    due_at          timestamptz,
    warn_at         timestamptz,
    warned          boolean     NOT NULL,
    breached        boolean     NOT NULL,
    stopped_at      timestamptz,
    met             boolean,
    next_check_at   timestamptz,
    policy_id       uuid        NOT NULL,
    policy_version  integer     NOT NULL,
    PRIMARY KEY (ticket_id, metric)
);
CREATE INDEX sla_clocks_view_next_check_idx ON sla_clocks_view (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX sla_clocks_view_state_idx ON sla_clocks_view (state, due_at);
CREATE INDEX sla_clocks_view_stopped_idx ON sla_clocks_view (metric, stopped_at);

CREATE TABLE sla_policies_view (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    position    integer     NOT NULL,
    version     integer     NOT NULL,
    definition  jsonb       NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    aggregate_version bigint NOT NULL
);

CREATE TABLE business_calendars_view (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    version     integer     NOT NULL,
    calendar    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    aggregate_version bigint NOT NULL
);

CREATE TABLE escalation_rules_view (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    version     integer     NOT NULL,
    rule        jsonb       NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    aggregate_version bigint NOT NULL
);
