-- The newest event of some aggregate types (the SLA catalog's, the workforce's) in safe order,
-- found without walking the log backwards past every other aggregate's events: those walks
-- cost a scan of the whole log whenever the types were rare (every ticket created with no SLA
-- policy ever saved read all events).
CREATE INDEX events_type_safe_order_idx ON events (aggregate_type, transaction_id, global_position);
