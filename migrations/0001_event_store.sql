-- The event log: postgres-es's `events` and `snapshots` tables, extended (DESIGN.md decision 1).
--
-- postgres-es names the columns it inserts, so the extra columns below take their defaults:
--   global_position  one total order over every aggregate, handed out at insert time;
--   transaction_id   the inserting transaction, so readers can wait for older ones to finish
--                    before reading past them (decision 2: identity values are assigned before
--                    commit, so position order alone is not commit order);
--   recorded_at      the database's wall clock; the business instant lives in the payload.
CREATE TABLE events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 1),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position_idx ON events (global_position);
-- The projectors' read order: (transaction_id, global_position).
CREATE INDEX events_safe_order_idx ON events (transaction_id, global_position);

CREATE TABLE snapshots (
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- The log is append-only. The server may connect as a superuser, from whom no privilege can be
-- revoked, so the rule is enforced by triggers that refuse every UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- Wakes projectors and live-stream listeners. The notification is delivered at commit, so a
-- listener never hears of an event it cannot yet read; the payload is a hint, not a contract.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('docket_events', NEW.global_position::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_on_insert
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

-- Ticket numbers (TKT-000001, ...). A sequence, so numbers are never reused; gaps are possible
-- when a command is refused after drawing one, as in any ticketing system.
CREATE SEQUENCE ticket_number_seq AS bigint START WITH 1;
