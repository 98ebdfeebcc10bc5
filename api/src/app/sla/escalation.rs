//! The escalation-rule engine: every few seconds, finds open tickets that meet an enabled rule's
//! conditions and have not yet had it applied, and applies it (a ticket's log names every rule
//! that acted on it).

use std::sync::Arc;
use std::time::Duration;

use docket_domain::access::Permission;
use docket_domain::sla::config::RuleAction;
use docket_domain::sla::config::RuleDefinition;
use docket_domain::ticket::{ApplyEscalationRule, RuleStep, TicketCommand, UserStanding};
use docket_domain::values::UserId;
use docket_projections::tickets::{self, TicketRow};
use docket_projections::{registry, sla as sla_view, sla_config, workforce};
use futures::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::caller::system_metadata;
use crate::app::{App, AppError, accounts, leadership};

/// The rule engine's leadership lock ("docket_3").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f33;
/// At most this many tickets per rule per pass.
const CANDIDATES: i64 = 500;

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) =
        leadership::lead(&app.pool, LEADER_KEY, "escalation-rules", &mut shutdown).await
    else {
        return;
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = evaluate_rules(&app).await {
            tracing::warn!(?error, "could not evaluate escalation rules");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn evaluate_rules(app: &Arc<App>) -> Result<(), AppError> {
    for rule in sla_config::rules(&app.pool).await? {
        let definition = rule.rule;
        if !definition.enabled {
            continue;
        }
        let now = app.time.now();
        // A rule acts on what happens after it was saved, unless told otherwise.
        let since = (!definition.apply_to_existing).then_some(rule.saved_at);
        let candidates =
            sla_view::rule_candidates(&app.pool, rule.id, &definition, now, since, CANDIDATES)
                .await?;
        if candidates.is_empty() {
            continue;
        }
        let steps = resolve_steps(app, &definition.actions).await?;
        let to_team_lead = definition.actions.iter().any(|a| {
            matches!(
                a,
                RuleAction::Escalate {
                    escalate_to: None,
                    to_team_lead: true
                }
            )
        });
        let (rule_id, name, version) = (rule.id, rule.name, rule.version);
        futures::stream::iter(candidates.into_iter().map(|ticket| {
            let (app, mut steps, name) = (app.clone(), steps.clone(), name.clone());
            async move {
                if to_team_lead {
                    match team_lead_of(&app, ticket).await {
                        Ok(lead) => {
                            for step in &mut steps {
                                if let RuleStep::Escalate { escalate_to } = step
                                    && escalate_to.is_none()
                                {
                                    *escalate_to = lead;
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%ticket, ?error, "could not find the team lead")
                        }
                    }
                }
                let command = TicketCommand::ApplyEscalationRule(ApplyEscalationRule {
                    rule_id,
                    rule_name: name,
                    rule_version: version,
                    steps,
                    at: now,
                });
                if let Err(error) = app
                    .tickets
                    .execute(
                        &ticket.to_string(),
                        None,
                        command,
                        system_metadata("escalation-rule"),
                    )
                    .await
                {
                    tracing::warn!(%ticket, ?error, "could not apply escalation rule");
                }
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    }
    Ok(())
}

/// What a rule would do now: the tickets it would act on (at most [`CANDIDATES`]), in the order
/// it would take them. Writes nothing.
pub async fn preview(
    app: &App,
    caller: &crate::app::Caller,
    rule: &RuleDefinition,
) -> Result<Vec<TicketRow>, AppError> {
    caller.require(
        Permission::ReadStaffViews,
        "see SLA configuration or clocks",
    )?;
    app.consistency
        .include(caller, &[&registry::TICKETS, &registry::SLA_CONFIG])
        .await?;
    let now = app.time.now();
    // Saved now, it would act only on what happens from now on: nothing yet.
    let since = (!rule.apply_to_existing).then_some(now);
    let ids =
        sla_view::rule_candidates(&app.pool, Uuid::nil(), rule, now, since, CANDIDATES).await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = tickets::get(&app.pool, id).await? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// How many tickets a rule saved now would act on at once (only a rule that applies to what
/// holds already acts on any).
pub async fn acting_on_now(app: &App, rule: &RuleDefinition) -> Result<i64, AppError> {
    if !rule.apply_to_existing || !rule.enabled {
        return Ok(0);
    }
    let now = app.time.now();
    let ids =
        sla_view::rule_candidates(&app.pool, Uuid::nil(), rule, now, None, CANDIDATES).await?;
    Ok(ids.len() as i64)
}

/// The lead of the ticket's team (its manager when it has no lead), as they are now.
async fn team_lead_of(app: &App, ticket: Uuid) -> Result<Option<UserStanding>, AppError> {
    match workforce::team_lead_of(&app.pool, ticket).await? {
        Some(id) => accounts::standing(app, UserId(id)).await,
        None => Ok(None),
    }
}

async fn resolve_steps(app: &App, actions: &[RuleAction]) -> Result<Vec<RuleStep>, AppError> {
    let mut steps = Vec::with_capacity(actions.len());
    for action in actions {
        steps.push(match action {
            RuleAction::Escalate { escalate_to, .. } => RuleStep::Escalate {
                escalate_to: match escalate_to {
                    Some(id) => accounts::standing(app, *id).await?,
                    None => None,
                },
            },
            RuleAction::Reassign { agent_id } => match accounts::standing(app, *agent_id).await? {
                Some(assignee) => RuleStep::Reassign { assignee },
                None => continue,
            },
            RuleAction::RaisePriority => RuleStep::RaisePriority,
            RuleAction::Notify {
                recipients,
                message,
            } => RuleStep::Notify {
                recipients: recipients.clone(),
                message: message.clone(),
            },
        });
    }
    Ok(steps)
}
