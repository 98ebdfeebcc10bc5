-- The agent side: skills, teams, agent profiles (status, capacity, skills, current shift, load),
-- shifts, and each ticket as routing sees it (the queue, and who holds what).

CREATE TABLE skills_view (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL
);

CREATE TABLE teams_view (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL,
    aggregate_version bigint NOT NULL
);

CREATE TABLE team_members_view (
    team_id     uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    team_role   text        NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_view_user_idx ON team_members_view (user_id);

-- One row per agent who has a profile, a shift or a ticket. `skills` maps skill id to
-- proficiency; `breaks` are the current shift's, as [{starts_at, ends_at}]. The load columns
-- count the agent's unfinished tickets and are kept by the same transaction that moves tickets.
CREATE TABLE agent_profiles_view (
    agent_id            uuid        PRIMARY KEY,
    status              text        NOT NULL DEFAULT 'offline',
    status_changed_at   timestamptz,
    capacity            integer     NOT NULL DEFAULT 10,
    skills              jsonb       NOT NULL DEFAULT '{}',
    shift_id            uuid,
    shift_started_at    timestamptz,
    shift_scheduled_end timestamptz,
    breaks              jsonb       NOT NULL DEFAULT '[]',
    open_tickets        integer     NOT NULL DEFAULT 0,
    critical_tickets    integer     NOT NULL DEFAULT 0,
    last_assigned_at    timestamptz
);
-- Routing reads the agents who could take work now: a few rows among many.
CREATE INDEX agent_profiles_view_routable_idx ON agent_profiles_view (agent_id)
    WHERE status = 'available' AND shift_id IS NOT NULL;

CREATE TABLE shifts_view (
    id              uuid        PRIMARY KEY,
    agent_id        uuid        NOT NULL,
    started_at      timestamptz NOT NULL,
    scheduled_end   timestamptz,
    ended_at        timestamptz,
    breaks          jsonb       NOT NULL DEFAULT '[]',
    aggregate_version bigint    NOT NULL
);
CREATE INDEX shifts_view_agent_idx ON shifts_view (agent_id, started_at DESC);

CREATE TABLE routing_tickets_view (
    ticket_id   uuid        PRIMARY KEY,
    priority    text        NOT NULL,
    urgency     smallint    NOT NULL,
    status      text        NOT NULL,
    assignee_id uuid,
    team_id     uuid,
    skill_id    uuid,
    created_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);
-- The queue, in the order it is served: most urgent first, then oldest.
CREATE INDEX routing_tickets_view_queue_idx ON routing_tickets_view (urgency DESC, created_at, ticket_id)
    WHERE assignee_id IS NULL AND status NOT IN ('resolved', 'closed');
CREATE INDEX routing_tickets_view_assignee_idx ON routing_tickets_view (assignee_id, created_at)
    WHERE assignee_id IS NOT NULL AND status NOT IN ('resolved', 'closed');
