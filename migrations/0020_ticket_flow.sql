-- The flow of tickets by UTC day, kept by the `ticket_flow` projector: opened, finished
-- (resolved or closed from an unfinished status) and reopened. The backlog at the end of a day
-- is the running sum of opened - finished + reopened, so the dashboard's 30-day charts read a
-- row per day rather than every ticket's history. The projector starts from the beginning of
-- the log, so the table fills itself on the first start after this migration.
CREATE TABLE ticket_flow_days (
    day      date   PRIMARY KEY,
    opened   bigint NOT NULL DEFAULT 0 CHECK (opened >= 0),
    finished bigint NOT NULL DEFAULT 0 CHECK (finished >= 0),
    reopened bigint NOT NULL DEFAULT 0 CHECK (reopened >= 0)
);
