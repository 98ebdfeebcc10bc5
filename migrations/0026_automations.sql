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
