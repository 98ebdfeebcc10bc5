-- A message's body once, not once per endpoint (issue 23): every endpoint subscribed to an event
-- is sent the same bytes, and a delivery row carrying a kilobyte of body made each of its updates
-- (an attempt recorded) copy that kilobyte. Deliveries the dispatcher writes from now on keep
-- their body here, under the message id (the `webhook-id` header); those written before, test
-- pings and rules' calls keep theirs inline.
CREATE TABLE webhook_messages (
    id   text PRIMARY KEY,
    body text NOT NULL
);
ALTER TABLE webhook_deliveries ALTER COLUMN body DROP NOT NULL;
