-- The SLA catalog's signature (how many policy and calendar events the log holds, and the
-- newest one's position), kept beside the log instead of counted from it. The server asks for
-- it before every new ticket; counted from `events`, the statement was prepared once per
-- connection, and a connection that prepared it while the log was small kept a sequential scan
-- of the whole log for good (no statistics change without ANALYZE): 6.2 ms a ticket once the
-- command benchmark's log held 130,000 events. A row per type, written by the transaction that
-- writes the event, so it becomes visible exactly when the event does.
CREATE TABLE catalog_signature (
    aggregate_type  text   PRIMARY KEY,
    events          bigint NOT NULL,
    newest_position bigint NOT NULL
);

INSERT INTO catalog_signature (aggregate_type, events, newest_position)
SELECT aggregate_type, count(*), max(global_position)
  FROM events WHERE aggregate_type IN ('sla_policy', 'sla_calendar')
 GROUP BY aggregate_type;

CREATE FUNCTION events_count_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_signature AS s (aggregate_type, events, newest_position)
    VALUES (NEW.aggregate_type, 1, NEW.global_position)
    ON CONFLICT (aggregate_type) DO UPDATE
       SET events = s.events + 1,
           newest_position = greatest(s.newest_position, EXCLUDED.newest_position);
    RETURN NULL;
END;
$$;

-- The condition is checked without entering PL/pgSQL, so ticket events pay nothing for it.
CREATE TRIGGER events_count_catalog
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type IN ('sla_policy', 'sla_calendar'))
    EXECUTE FUNCTION events_count_catalog();
