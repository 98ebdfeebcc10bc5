-- Account secrets live outside the log (DESIGN.md decision 10): the log can never forget, and
-- history, audit and export show it. These tables are ordinary mutable state; the User
-- aggregate's events only record that something changed, by whom and when.

-- One row per account: the login e-mail (unique, lower-cased) and the argon2 password hash.
-- It also reserves the e-mail: it is written before the UserRegistered event is appended.
CREATE TABLE credentials (
    user_id       uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credentials_email_key UNIQUE (email)
);

-- Refresh tokens are stored hashed (SHA-256), rotated on every use; a reused, already rotated
-- token revokes its whole family (it has probably been stolen).
CREATE TABLE refresh_tokens (
    token_hash  bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL,
    family_id   uuid        NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Idempotency-Key: the first response to a (user, key) pair, replayed for repeats.
-- `request_hash` catches a key reused for a different request.
CREATE TABLE idempotency_keys (
    user_id       uuid        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status_code   smallint,
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
