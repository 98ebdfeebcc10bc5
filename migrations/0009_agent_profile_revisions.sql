-- Every change to an agent's profile row takes the next revision, so a reader holding a copy of
-- the routable agents can fetch only the rows changed since its copy instead of all of them.
-- The projector writes one batch at a time (it holds its checkpoint row), so revisions become
-- visible in the order they were taken. Not owned by the table: a rebuild's copy shares it.
CREATE SEQUENCE agent_profiles_revision;
ALTER TABLE agent_profiles_view
    ADD COLUMN revision bigint NOT NULL DEFAULT nextval('agent_profiles_revision');
CREATE INDEX agent_profiles_view_revision_idx ON agent_profiles_view (revision);
