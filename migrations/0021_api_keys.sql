-- API keys and service accounts.

-- A key's secret lives here, as its SHA-256, never in the log (DESIGN.md decision 10): the
-- ApiKey aggregate's events say that a key was made, first used and revoked, by whom and when.
-- A key is written here only after its ApiKeyCreated event is appended, so no key that the log
-- does not know can ever authenticate. `prefix` is the key's public part (`dk_<prefix>_…`),
-- shown in lists and audits; requests find their key by it.
CREATE TABLE api_keys (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    prefix         text        NOT NULL,
    secret_hash    bytea       NOT NULL,
    name           text        NOT NULL,
    role           text        NOT NULL,
    -- Addresses and CIDR ranges the key may be used from, in canonical text; empty: anywhere.
    allowed_ips    text[]      NOT NULL DEFAULT '{}',
    created_by     uuid        NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz,
    first_used_at  timestamptz,
    -- Kept up to date to within a minute per process, not on every request.
    last_used_at   timestamptz,
    last_used_ip   text,
    revoked_at     timestamptz,
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix)
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

-- A service account has no password: it acts only through its keys.
ALTER TABLE credentials ALTER COLUMN password_hash DROP NOT NULL;

-- Accounts say whether they are a person or a service.
ALTER TABLE users_view ADD COLUMN service boolean NOT NULL DEFAULT false;

-- The trail says which key an event was written with, and whether its actor is a service.
ALTER TABLE audit_log ADD COLUMN api_key_id uuid;
ALTER TABLE audit_log ADD COLUMN actor_kind text;
