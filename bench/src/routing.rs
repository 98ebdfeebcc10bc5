//! Routing: one decision among 1,000 agents while 100,000 tickets are open, as the server makes
//! it — take the routing turn (advisory lock, wait for the workforce model to reach the log's
//! head), read the routable agents, score them, end the turn — with a primary-key read of one
//! agent through the same pool as the baseline.
//!
//! The agents and tickets are seeded straight into the read models (set-based SQL): the figure
//! is about deciding, not about building the models, which the rebuild figures cover.

use std::time::{Duration, Instant};

use docket_api::app::router::Turn;
use docket_api::startup::Application;
use docket_domain::values::SkillId;
use docket_domain::workforce::routing::RoutingRequirements;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Figure, percentile};

pub struct RoutingSizes {
    pub agents: i64,
    pub tickets: i64,
    pub decisions: usize,
}

/// Ten skills; every agent holds three of them, is on shift and available, with capacity to
/// spare; the tickets are spread over the agents, one in ten critical.
async fn seed(pool: &PgPool, sizes: &RoutingSizes) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO skills_view (id, name, created_at)
         SELECT ('00000000-0000-0000-0000-' || lpad(s::text, 12, '0'))::uuid, 'Skill ' || s, now()
           FROM generate_series(1, 10) s",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO users_view (id, email, full_name, role, active, created_at, updated_at, version)
         SELECT ('10000000-0000-0000-0000-' || lpad(a::text, 12, '0'))::uuid,
                'agent' || a || '@bench.test', 'Agent ' || a, 'agent', true, now(), now(), 1
           FROM generate_series(1, $1) a",
    )
    .bind(sizes.agents)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO agent_profiles_view (agent_id, status, capacity, skills, shift_id,
                shift_started_at, open_tickets, critical_tickets, last_assigned_at)
         SELECT ('10000000-0000-0000-0000-' || lpad(a::text, 12, '0'))::uuid, 'available', 1000,
                jsonb_build_object(
                    ('00000000-0000-0000-0000-' || lpad((a % 10 + 1)::text, 12, '0')), a % 5 + 1,
                    ('00000000-0000-0000-0000-' || lpad(((a + 3) % 10 + 1)::text, 12, '0')), 3,
                    ('00000000-0000-0000-0000-' || lpad(((a + 6) % 10 + 1)::text, 12, '0')), 2),
                gen_random_uuid(), now() - interval '1 hour', 0, 0,
                now() - (a || ' seconds')::interval
           FROM generate_series(1, $1) a",
    )
    .bind(sizes.agents)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO routing_tickets_view (ticket_id, priority, urgency, status, assignee_id,
                created_at, version)
         SELECT gen_random_uuid(),
                CASE WHEN t % 10 = 0 THEN 'critical' ELSE 'medium' END,
                CASE WHEN t % 10 = 0 THEN 4 ELSE 2 END, 'open',
                ('10000000-0000-0000-0000-' || lpad((t % $2 + 1)::text, 12, '0'))::uuid,
                now() - (t || ' seconds')::interval, 2
           FROM generate_series(1, $1) t",
    )
    .bind(sizes.tickets)
    .bind(sizes.agents)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE agent_profiles_view p SET open_tickets = c.open, critical_tickets = c.critical
           FROM (SELECT assignee_id, count(*) AS open,
                        count(*) FILTER (WHERE priority = 'critical') AS critical
                   FROM routing_tickets_view GROUP BY assignee_id) c
          WHERE c.assignee_id = p.agent_id",
    )
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

pub async fn decisions(
    url: &str,
    pool: &PgPool,
    sizes: &RoutingSizes,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    eprintln!(
        "routing: {} agents, {} open tickets…",
        sizes.agents, sizes.tickets
    );
    seed(pool, sizes).await?;
    let app = Application::build(crate::bench_settings(url)).await?;
    let state = app.app();
    let (stop, server) = crate::serve_in_background(app);

    // Baseline: one agent's row by primary key, through the same pool.
    let mut baseline = Vec::with_capacity(sizes.decisions);
    for n in 0..sizes.decisions {
        let agent = format!(
            "10000000-0000-0000-0000-{:012}",
            n as i64 % sizes.agents + 1
        );
        let started = Instant::now();
        let _: Option<i32> = sqlx::query_scalar(
            "SELECT open_tickets FROM agent_profiles_view WHERE agent_id = $1::uuid",
        )
        .bind(agent)
        .fetch_optional(&state.pool)
        .await?;
        baseline.push(started.elapsed().as_secs_f64() * 1e3);
    }
    baseline.sort_by(f64::total_cmp);

    for after_assignment in [false, true] {
        let mut latencies = Vec::with_capacity(sizes.decisions);
        let mut scoring = Vec::with_capacity(sizes.decisions);
        let mut chosen = 0usize;
        for n in 0..sizes.decisions {
            // The seeded ids spell their number in decimal digits.
            let skill = format!("00000000-0000-0000-0000-{:012}", n % 10 + 1);
            let requirements = RoutingRequirements {
                skill_id: Some(SkillId(Uuid::parse_str(&skill)?)),
                team_id: None,
            };
            let started = Instant::now();
            let turn = Turn::begin(&state)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let scored = Instant::now();
            let decision = turn.decide(requirements, state.routing_weights, state.time.now(), None);
            scoring.push(scored.elapsed().as_secs_f64() * 1e3);
            turn.finish().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            if let Some(agent) = decision.chosen {
                chosen += 1;
                if after_assignment {
                    // What the workforce projector writes when the assignment reaches it: the
                    // agent's load and a new revision. Not timed; the next turn sees it.
                    sqlx::query(
                        "UPDATE agent_profiles_view
                            SET open_tickets = open_tickets + 1, last_assigned_at = now(),
                                revision = nextval('agent_profiles_revision')
                          WHERE agent_id = $1",
                    )
                    .bind(agent.0)
                    .execute(&state.pool)
                    .await?;
                }
            }
        }
        let when = if after_assignment {
            "each right after an assignment changed the model"
        } else {
            "the model unchanged between decisions"
        };
        figures.push(Figure::new(
            &format!("routing decision, {when}"),
            "decisions that found no eligible agent (expect 0)",
            (sizes.decisions - chosen) as f64,
            "decisions",
        ));
        latencies.sort_by(f64::total_cmp);
        scoring.sort_by(f64::total_cmp);
        let label = format!(
            "routing decision ({} agents, {} open tickets), {when}",
            sizes.agents, sizes.tickets
        );
        let baseline_name = "primary-key SELECT of one agent, same pool";
        figures.push(
            Figure::new(&label, "p50 latency", percentile(&latencies, 50.0), "ms")
                .baseline(baseline_name, percentile(&baseline, 50.0)),
        );
        let p99 = percentile(&latencies, 99.0);
        figures.push(
            Figure::new(&label, "p99 latency", p99, "ms")
                .baseline(baseline_name, percentile(&baseline, 99.0))
                .target("<= 5 ms", p99 <= 5.0),
        );
        figures.push(Figure::new(
            &label,
            "p99 of the scoring alone (in memory)",
            percentile(&scoring, 99.0),
            "ms",
        ));
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
    Ok(())
}
