-- How many tickets each status and priority pair holds, kept by the tickets projection in the
-- same transaction as the rows it counts.
--
-- A list filtered by nothing but status and priority (the queue views, and the unfiltered list)
-- showed its total by counting every matching row: 25,000 index entries for one status at
-- 100,000 tickets, ten times that at a million, on every page. A sum over at most a few dozen
-- rows here is the same number. A pair no ticket holds has no row, so that a rebuild (which
-- counts the finished rows) and the live projection (which adds each batch's changes) agree
-- row for row.
CREATE TABLE ticket_counts (
    status   text   NOT NULL,
    priority text   NOT NULL,
    tickets  bigint NOT NULL CHECK (tickets > 0),
    PRIMARY KEY (status, priority)
);

INSERT INTO ticket_counts (status, priority, tickets)
SELECT status, priority, count(*) FROM tickets_view GROUP BY status, priority;
