-- Time-based automation rules (issue 23): the rule engine keeps, for each ticket, the version and
-- automation depth of its last event, and for each time-based rule that will hold on a ticket if
-- nothing happens to it, the instant it first does. The deadline scheduler turns due rows into
-- requests for the engine's executor.
ALTER TABLE automation_engine_tickets
    ADD COLUMN version BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
CREATE TABLE automation_due (
    ticket_id UUID NOT NULL,
    rule_id UUID NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    depth INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, rule_id)
);
CREATE INDEX automation_due_at ON automation_due (due_at);

-- The engine reads the log again from its start, so every ticket gets its version and every
-- stored time-based rule its due instants. Events before the engine's start still set off no
-- event rule (subscriber_starts), and a rule acts once per causing event whatever is replayed.
TRUNCATE automation_engine_rules, automation_engine_tickets;
DELETE FROM projector_checkpoints WHERE projector = 'automation';
