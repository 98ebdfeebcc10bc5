-- One search vector per ticket, written by the tickets projection through one function, instead
-- of two generated columns (which recomputed the same parts twice on every update):
--   subject (A), description (B), public comments (C), internal comments (D).
-- Staff match on the whole vector. Customers must never match an internal note, so their
-- searches also require `ts_filter(search_vector, '{a,b,c}') @@ query` (checked on the
-- candidates the index finds among their own tickets) and rank with D weighted 0.
-- A rebuild computes each ticket's vector once, when it writes the finished row.
CREATE FUNCTION docket_ticket_vector(
    subject text, description text, public_comments text, internal_comments text
) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', subject), 'A') ||
           setweight(to_tsvector('english', description), 'B') ||
           setweight(to_tsvector('english', left(public_comments, 200000)), 'C') ||
           setweight(to_tsvector('english', left(internal_comments, 200000)), 'D')
$$;

DROP INDEX tickets_view_search_public_idx;
DROP INDEX tickets_view_search_all_idx;
ALTER TABLE tickets_view DROP COLUMN search_public, DROP COLUMN search_all;
ALTER TABLE tickets_view ADD COLUMN search_vector tsvector;
UPDATE tickets_view
   SET search_vector = docket_ticket_vector(subject, description, public_comments, internal_comments);
CREATE INDEX tickets_view_search_idx ON tickets_view USING gin (search_vector);

-- The list's commonest shape, status and priority with newest first: one index answers the
-- filter (and the count) without walking every ticket by date.
CREATE INDEX tickets_view_status_priority_idx ON tickets_view (status, priority, created_at DESC, id DESC);
-- Status and priority are far from independent (urgent tickets move on fast); tell the planner.
CREATE STATISTICS tickets_view_status_priority_stats (dependencies, mcv) ON status, priority FROM tickets_view;
