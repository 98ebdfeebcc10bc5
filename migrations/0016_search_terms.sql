-- Searches that match many tickets, ranked ahead of time (ADR 0004).
--
-- Ranking a search exactly means computing `ts_rank` for every match: for a word in a fifth of
-- 100,000 tickets that is 20,000 vectors read and ranked per query, a quarter of a second.
-- A ticket's rank for a query depends on nothing but its vector and the query, so it can be
-- kept: once a staff search (by its text alone) finds many tickets, its query is registered
-- here and its matches' ranks stored, in the order searches read them; the tickets projection
-- keeps them current in the same transaction as the vectors they come from. A search for a
-- registered query reads its page and its total from here.
CREATE TABLE search_terms (
    term    text    PRIMARY KEY,   -- the parsed query as text: `'printer' & 'jam'`
    query   tsquery NOT NULL,
    tickets bigint  NOT NULL       -- how many tickets match
);

CREATE TABLE ticket_terms (
    term       text        NOT NULL,
    ticket_id  uuid        NOT NULL,
    rank       real        NOT NULL,  -- ts_rank with the staff weights
    created_at timestamptz NOT NULL,
    PRIMARY KEY (term, ticket_id)
);
-- A search's order: best first, then newest, then by id (as the search over all matches).
CREATE INDEX ticket_terms_rank_idx ON ticket_terms (term, rank DESC, created_at DESC, ticket_id);
-- A ticket whose text changed: its entries.
CREATE INDEX ticket_terms_ticket_idx ON ticket_terms (ticket_id);
