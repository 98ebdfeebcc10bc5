-- The tickets projection sends a ticket's comment texts only when they changed, as NULL
-- otherwise, and its upsert keeps the stored ones (`COALESCE(EXCLUDED.x, tickets_view.x)`).
-- PostgreSQL checks NOT NULL on the row an INSERT … ON CONFLICT proposes before it finds the
-- conflict, so the columns must accept NULL there; no stored row holds one (a new ticket is
-- always written with its texts).
ALTER TABLE tickets_view
    ALTER COLUMN public_comments DROP NOT NULL,
    ALTER COLUMN internal_comments DROP NOT NULL;
