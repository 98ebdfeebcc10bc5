-- Alerts (issue 23): the read model of the alert aggregates, and what the alerter (a log
-- subscriber) keeps to decide: each ticket's priority and number as of its checkpoint, and the
-- causes it has an unresolved alert for.

CREATE TABLE alerts_view (
    id UUID PRIMARY KEY,
    cause TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT,
    ticket_id UUID,
    state TEXT NOT NULL,
    raised_by UUID NOT NULL,
    raised_at TIMESTAMPTZ NOT NULL,
    acknowledged_by UUID,
    acknowledged_at TIMESTAMPTZ,
    acknowledge_note TEXT,
    resolved_by UUID,
    resolved_at TIMESTAMPTZ,
    resolve_note TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX alerts_view_state ON alerts_view (state, raised_at DESC);
CREATE INDEX alerts_view_cause ON alerts_view (cause) WHERE state <> 'resolved';

CREATE TABLE alerter_tickets (
    id UUID PRIMARY KEY,
    number BIGINT NOT NULL,
    subject TEXT NOT NULL,
    priority TEXT NOT NULL
);

CREATE TABLE alerter_causes (
    cause TEXT PRIMARY KEY,
    alert_id UUID NOT NULL
);

-- Alerts the alerter decided on, waiting to be raised as commands (outside its transaction);
-- the id is the alert's, derived from the causing event, so raising twice raises once.
CREATE TABLE alert_requests (
    id UUID PRIMARY KEY,
    subject JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- On a database with a history, the alerter learns tickets from all of it but raises alerts
-- only for what happens from now on.
INSERT INTO subscriber_starts (subscriber, from_position)
SELECT 'alerter', COALESCE(max(global_position), 0) FROM events;
