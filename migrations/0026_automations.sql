-- Automation rules (issue 23): the read model of the rule aggregates, in the order they run.
CREATE TABLE automation_rules_view (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL,
    trigger_type TEXT NOT NULL,
    definition JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX automation_rules_view_order ON automation_rules_view (position, created_at, id);
ALTER TABLE automation_rules_view
    ADD COLUMN loops_stopped INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_loop_stopped_at TIMESTAMPTZ;

-- The rule engine, a log subscriber: the rules and tickets as of its checkpoint, and what it
-- decided to do (one request per rule and causing event, carried out outside its transaction).
CREATE TABLE automation_engine_rules (
    id UUID PRIMARY KEY,
    position INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    definition JSONB NOT NULL
);
CREATE TABLE automation_engine_tickets (
    id UUID PRIMARY KEY,
    snapshot JSONB NOT NULL
);
CREATE TABLE automation_requests (
    id UUID PRIMARY KEY,
    ticket_id UUID NOT NULL,
    rule_id UUID NOT NULL,
    rule_name TEXT NOT NULL,
    rule_version BIGINT NOT NULL,
    cause_sequence BIGINT NOT NULL,
    cause TEXT NOT NULL,
    depth INTEGER NOT NULL,
    actions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO subscriber_starts (subscriber, from_position)
SELECT 'automation', COALESCE(max(global_position), 0) FROM events;
