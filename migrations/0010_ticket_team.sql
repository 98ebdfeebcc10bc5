-- The team a ticket is assigned to, on the ticket list (until now only routing's model had it).
ALTER TABLE tickets_view ADD COLUMN team_id uuid;
UPDATE tickets_view t SET team_id = r.team_id
  FROM routing_tickets_view r
 WHERE r.ticket_id = t.id AND r.team_id IS NOT NULL;
CREATE INDEX tickets_view_team_idx ON tickets_view (team_id, created_at DESC) WHERE team_id IS NOT NULL;
