-- Search vectors per ticket that already include its comments, so a search is one GIN index
-- scan and one rank per matching ticket instead of a correlated look into the comments:
--   search_public  subject (A), description (B), public comments (C)  -- what customers search
--   search_all     the same plus internal comments (C)                  -- what staff search
-- The comment texts are kept on the ticket row by the projection, in order, joined by blank
-- lines; only the first 200,000 characters of them are indexed (a tsvector is at most 1 MB).
ALTER TABLE tickets_view DROP COLUMN search;
ALTER TABLE tickets_view
    ADD COLUMN public_comments   text NOT NULL DEFAULT '',
    ADD COLUMN internal_comments text NOT NULL DEFAULT '';

-- Bring existing rows' comment texts in (the projection maintains them from now on).
UPDATE tickets_view t SET
    public_comments = coalesce((SELECT string_agg(c.body, E'\n\n' ORDER BY c.sequence)
                                  FROM ticket_comments_view c
                                 WHERE c.ticket_id = t.id AND NOT c.internal), ''),
    internal_comments = coalesce((SELECT string_agg(c.body, E'\n\n' ORDER BY c.sequence)
                                    FROM ticket_comments_view c
                                   WHERE c.ticket_id = t.id AND c.internal), '');

ALTER TABLE tickets_view
    ADD COLUMN search_public tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', subject), 'A') ||
        setweight(to_tsvector('english', description), 'B') ||
        setweight(to_tsvector('english', left(public_comments, 200000)), 'C')
    ) STORED,
    ADD COLUMN search_all tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', subject), 'A') ||
        setweight(to_tsvector('english', description), 'B') ||
        setweight(to_tsvector('english', left(public_comments, 200000)), 'C') ||
        setweight(to_tsvector('english', left(internal_comments, 200000)), 'C')
    ) STORED;
CREATE INDEX tickets_view_search_public_idx ON tickets_view USING gin (search_public);
CREATE INDEX tickets_view_search_all_idx ON tickets_view USING gin (search_all);

-- Comments no longer need a vector of their own.
ALTER TABLE ticket_comments_view DROP COLUMN search;
