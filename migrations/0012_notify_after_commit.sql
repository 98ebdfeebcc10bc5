-- A transaction that calls NOTIFY commits under a cluster-wide lock held across its disk flush,
-- so notifying writers cannot share flushes (pgbench, 32 clients: 9,800 one-row INSERT commits/s
-- alone, 1,440/s with a pg_notify in the same transaction). The server's own writers therefore
-- commit without notifying and announce their commits afterwards (projections/src/notify.rs);
-- their sessions set `docket.notify_after_commit`. Every other writer (tools, psql, tests that
-- write the log directly) is still announced by this trigger, at its commit.
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('docket.notify_after_commit', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('docket_events', NEW.global_position::text);
    END IF;
    RETURN NULL;
END;
$$;
