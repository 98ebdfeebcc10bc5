//! A synthetic event log, written straight into `events` with set-based SQL: tickets opened by
//! one customer, each followed by comments (every third internal) and a status change. The
//! events are exactly what the domain writes (same shapes, version 1), so projections apply
//! them like real ones. Used by tests of the projection engine and by the benchmark.

use sqlx::PgPool;
use uuid::Uuid;

/// Writes `tickets` tickets with `comments` comments each (and one status change), in batches
/// of at most 50,000 tickets per statement. Returns the number of events written.
pub async fn write_log(
    pool: &PgPool,
    customer: Uuid,
    tickets: i64,
    comments: i64,
) -> Result<i64, sqlx::Error> {
    let mut written = 0;
    let mut first = 1;
    while first <= tickets {
        let last = (first + 49_999).min(tickets);
        written += write_range(pool, customer, first, last, comments).await?;
        first = last + 1;
    }
    Ok(written)
}

async fn write_range(
    pool: &PgPool,
    customer: Uuid,
    first: i64,
    last: i64,
    comments: i64,
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Ids as the application makes them: UUIDv7, time-ordered (PostgreSQL 15 has no generator).
    sqlx::query(
        "CREATE OR REPLACE FUNCTION pg_temp.docket_synthetic_uuid_v7(at timestamptz) RETURNS uuid
         LANGUAGE sql VOLATILE AS $$
           SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
                   || '7' || substr(md5(random()::text), 1, 3)
                   || (ARRAY['8','9','a','b'])[1 + floor(random() * 4)::int]
                   || substr(md5(random()::text), 1, 15))::uuid
         $$",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "CREATE TEMP TABLE synthetic_tickets ON COMMIT DROP AS
           SELECT n, pg_temp.docket_synthetic_uuid_v7(opened) AS id, opened
             FROM (SELECT n, timestamptz '2026-11-01 00:00:00+00'
                               + make_interval(secs => n::double precision * 7) AS opened
                     FROM generate_series($1::bigint, $2::bigint) AS n) t",
    )
    .bind(first)
    .bind(last)
    .execute(&mut *tx)
    .await?;
    let stamp = "to_char(({at}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
    let actor = "jsonb_build_object('user_id', $1::uuid, 'role', 'customer')";
    let created = sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'ticket', t.id::text, 1, 'TicketCreated', '1',
                jsonb_build_object('TicketCreated', jsonb_build_object(
                    'ticket_id', t.id,
                    'number', 1000000000 + t.n,
                    'customer_id', $1::uuid,
                    'subject', 'Synthetic ' || (ARRAY['vpn drops','printer jams','invoice wrong','login fails','email bounces'])[1 + t.n % 5] || ' #' || t.n,
                    'description', 'Generated report number ' || t.n || ' about the ' || (ARRAY['network','office','billing','account','mail'])[1 + t.n % 5] || ' system.',
                    'priority', (ARRAY['critical','high','medium','low'])[1 + t.n % 4],
                    'category', (ARRAY['network','hardware','billing','account','email'])[1 + t.n % 5],
                    'tags', jsonb_build_array('synthetic', 'batch-' || (t.n % 10)),
                    'created_by', {actor},
                    'occurred_at', {opened})),
                jsonb_build_object('actor_id', $1::text, 'actor_role', 'customer', 'correlation_id', 'synthetic')
           FROM synthetic_tickets t",
        opened = stamp.replace("{at}", "t.opened"),
    ))
    .bind(customer)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let commented = sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'ticket', t.id::text, k.seq, 'CommentAdded', '1',
                jsonb_build_object('CommentAdded', jsonb_build_object(
                    'comment_id', pg_temp.docket_synthetic_uuid_v7(t.opened + make_interval(mins => k.seq::int)),
                    'body', 'Comment ' || k.seq || ' on ticket ' || t.n || ': still looking into it',
                    'internal', k.seq % 3 = 0,
                    'author', {actor},
                    'occurred_at', {at})),
                jsonb_build_object('actor_id', $1::text, 'actor_role', 'customer', 'correlation_id', 'synthetic')
           FROM synthetic_tickets t CROSS JOIN generate_series(2, $2::bigint + 1) AS k(seq)",
        at = stamp.replace("{at}", "t.opened + make_interval(mins => k.seq::int)"),
    ))
    .bind(customer)
    .bind(comments)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let moved = sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'ticket', t.id::text, $2::bigint + 2, 'TicketStatusChanged', '1',
                jsonb_build_object('TicketStatusChanged', jsonb_build_object(
                    'from', 'new', 'to', (ARRAY['open','in_progress','pending','resolved'])[1 + t.n % 4],
                    'comment', NULL,
                    'changed_by', jsonb_build_object('user_id', $1::uuid, 'role', 'agent'),
                    'occurred_at', {at})),
                jsonb_build_object('actor_id', $1::text, 'actor_role', 'agent', 'correlation_id', 'synthetic')
           FROM synthetic_tickets t",
        at = stamp.replace("{at}", "t.opened + interval '1 hour'"),
    ))
    .bind(customer)
    .bind(comments)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((created + commented + moved) as i64)
}
