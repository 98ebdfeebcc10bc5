-- The server's own sessions never notify from the trigger (migration 0012), but the trigger still
-- queued an after-trigger event and entered PL/pgSQL for every event row they wrote, only for
-- the function to find the session setting and do nothing. The same test as a WHEN condition is
-- checked as the row is inserted, and the server's rows queue nothing.
DROP TRIGGER events_notify_on_insert ON events;
CREATE TRIGGER events_notify_on_insert
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (current_setting('docket.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION events_notify();
