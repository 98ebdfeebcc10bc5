-- Full-text search, the cross-aggregate audit trail and saved searches.

-- Subject (weight A) and description (B) of each ticket; comments have their own vectors
-- below, so internal notes can be searched by staff without ever matching for customers.
ALTER TABLE tickets_view ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', subject), 'A') ||
    setweight(to_tsvector('english', description), 'B')
) STORED;
CREATE INDEX tickets_view_search_idx ON tickets_view USING gin (search);
-- Subject suggestions as you type: case-insensitive prefix.
CREATE INDEX tickets_view_subject_prefix_idx ON tickets_view (lower(subject) text_pattern_ops);
CREATE INDEX tickets_view_priority_idx ON tickets_view (priority_rank DESC, created_at, id);
CREATE INDEX tickets_view_updated_idx ON tickets_view (updated_at DESC, id);

ALTER TABLE ticket_comments_view ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('english', body)
) STORED;
CREATE INDEX ticket_comments_view_search_idx ON ticket_comments_view USING gin (search);

-- Every event of every aggregate with its request context, for auditors. Keyed by the log's
-- global position; the payload's fields are in `data`.
CREATE TABLE audit_log (
    position        bigint      PRIMARY KEY,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    actor_id        uuid,
    actor_role      text,
    ip              text,
    user_agent      text,
    correlation_id  text,
    occurred_at     timestamptz,
    recorded_at     timestamptz NOT NULL,
    data            jsonb       NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, position);
CREATE INDEX audit_log_aggregate_idx ON audit_log (aggregate_id, position);
CREATE INDEX audit_log_type_idx ON audit_log (event_type, position);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at, position);

CREATE TABLE saved_searches_view (
    id          uuid        PRIMARY KEY,
    owner_id    uuid        NOT NULL,
    name        text        NOT NULL,
    query       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);
CREATE INDEX saved_searches_view_owner_idx ON saved_searches_view (owner_id, created_at);
