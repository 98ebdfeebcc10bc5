-- Sessions of the web app: the browser holds a random token in an HttpOnly cookie, the server
-- its SHA-256 (like refresh tokens, outside the log: DESIGN.md decision 10). Signing out, a
-- password change or the session's expiry revoke it; the account's standing is checked on every
-- request, so a deactivated user's session stops within the account-freshness window.
CREATE TABLE web_sessions (
    token_hash  bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL,
    -- Every form of the session carries it; a request without it changes nothing.
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
