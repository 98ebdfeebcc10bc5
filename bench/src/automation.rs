//! Automation rules in memory: how long deciding 200 rules takes for one event (each rule with
//! three conditions of the common kinds, one in three acting), beside deciding one such rule:
//! what the engine spends per event before it does anything.

use std::hint::black_box;
use std::time::Instant;

use chrono::Utc;
use docket_domain::automation::RuleDefinition;
use docket_domain::automation::eval::{CommentFacts, Happened, Snapshot, holds};
use serde_json::json;
use uuid::Uuid;

use crate::Figure;

fn rules(count: usize) -> anyhow::Result<Vec<RuleDefinition>> {
    (0..count)
        .map(|n| {
            let body = json!({
                "name": format!("Rule {n}"),
                "position": n,
                "trigger": {"type": "event", "events": ["comment.added", "ticket.updated"]},
                "conditions": {
                    "all": [
                        {"field": "priority", "operator": "in", "value": ["high", "critical"]},
                        {"field": "comment_body", "operator": "contains", "value": format!("word{}", n % 3)},
                    ],
                    "any": [
                        {"field": "tags", "operator": "not_contains", "value": format!("tag{n}")},
                        {"field": "hours_since_created", "operator": "greater_than", "value": 4},
                    ]
                },
                "actions": [{"type": "add_tags", "tags": [format!("seen{n}")]}]
            });
            RuleDefinition::parse(&body).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

/// Nanoseconds per event to decide `rules` on it.
fn per_event(rules: &[RuleDefinition], events: usize) -> f64 {
    let now = Utc::now();
    let ticket = Snapshot {
        status: "open".into(),
        priority: "high".into(),
        category: Some("network".into()),
        tags: (0..8).map(|t| format!("tag{t}")).collect(),
        assignee_id: Some(Uuid::now_v7()),
        team_id: None,
        customer_id: Uuid::now_v7(),
        subject: "The VPN drops every day at noon".into(),
        description: "Since Monday.".into(),
        created_at: now - chrono::Duration::hours(30),
        updated_at: now,
        status_changed_at: now,
        clocks: [("resolution".to_string(), "running".to_string())].into(),
    };
    let happened = Happened {
        comment: Some(CommentFacts {
            body: "It happened again, word1 and all, after the reboot we did yesterday.".into(),
            internal: false,
            author_role: "customer".into(),
        }),
        changes: vec![],
    };
    let started = Instant::now();
    let mut acting = 0_usize;
    for _ in 0..events {
        for rule in rules {
            if holds(
                &rule.conditions,
                black_box(&ticket),
                black_box(&happened),
                now,
            ) {
                acting += 1;
            }
        }
    }
    black_box(acting);
    started.elapsed().as_nanos() as f64 / events as f64
}

pub fn evaluation(figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let many = rules(200)?;
    let one = rules(1)?;
    // Warm up, then measure.
    per_event(&many, 200);
    let events = 5_000;
    let two_hundred = per_event(&many, events) / 1e3;
    let single = per_event(&one, events * 20) / 1e3;
    figures.push(
        Figure::new(
            "automation: deciding 200 rules for one event, in memory",
            "per event",
            two_hundred,
            "µs",
        )
        .baseline("one rule for one event", single)
        .target("<= 200 µs (0.2 ms)", two_hundred <= 200.0),
    );
    Ok(())
}
