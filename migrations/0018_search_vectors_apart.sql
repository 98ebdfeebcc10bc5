-- Each ticket's search vector in a table of its own, written only when the ticket's texts change.
--
-- In `tickets_view` the vector made every write of the row expensive: the row is updated by
-- almost every event (status, assignee, `updated_at` and `version` are indexed, so no update is
-- HOT), and a non-HOT update adds an entry for every lexeme of the vector to its GIN index, as
-- if the ticket had been written anew. On 10,000 tickets of ~110 lexemes each, an update of the
-- status of 2,000 of them took 410-1,430 ms with the GIN index and 110-120 ms without it, and
-- wrote 12-24 KB of WAL a row against 2-6 KB. Here, a status change or an assignment writes no
-- vector at all; a comment (which changes the texts) writes the vector row and its entries, as
-- before. The comment texts stay on the ticket row: they are read there for snippets and to
-- fold the next comment in, and an unchanged TOASTed text costs an update nothing.
CREATE TABLE ticket_search_vectors (
    ticket_id     uuid     PRIMARY KEY,
    search_vector tsvector NOT NULL
);

INSERT INTO ticket_search_vectors (ticket_id, search_vector)
SELECT id, search_vector FROM tickets_view WHERE search_vector IS NOT NULL;

CREATE INDEX ticket_search_vectors_search_idx ON ticket_search_vectors USING gin (search_vector);

DROP INDEX tickets_view_search_idx;
ALTER TABLE tickets_view DROP COLUMN search_vector;
