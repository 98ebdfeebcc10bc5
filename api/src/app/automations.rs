//! Automation rules: defined, changed and removed by managers and admins (every change an
//! event), checked on save (each mistake named by its JSON path, each person, team and webhook
//! it names looked up), and tried on a ticket without acting (`test`).

use docket_domain::access::Permission;
use docket_domain::automation::eval::{self, Happened, Snapshot};
use docket_domain::automation::{
    AutomationCommand, AutomationRule, Reference, RuleDefinition, RuleId, Trigger,
};
use docket_domain::values::UserId;
use docket_projections::automations::{self, RuleRow};
use docket_projections::{registry, webhooks, workforce};
use serde_json::Value;
use uuid::Uuid;

use crate::app::bus::Committed;
use crate::app::{App, AppError, Caller, Origin, accounts};

/// A rule as people read it.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub id: Uuid,
    pub definition: RuleDefinition,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub version: i64,
    /// How many chains of rule-caused events the engine stopped at this rule, and when last.
    pub loops_stopped: i64,
    pub last_loop_stopped_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<RuleRow> for RuleView {
    fn from(row: RuleRow) -> Self {
        Self {
            id: row.id,
            definition: row.definition.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            loops_stopped: i64::from(row.loops_stopped),
            last_loop_stopped_at: row.last_loop_stopped_at,
        }
    }
}

/// One condition of a test, and whether it held for the ticket.
#[derive(Debug, Clone)]
pub struct CheckedView {
    pub group: &'static str,
    pub field: String,
    pub operator: String,
    pub value: Value,
    pub held: bool,
}

/// What a rule would do to a ticket now.
#[derive(Debug, Clone)]
pub struct TestView {
    pub rule_id: Uuid,
    pub ticket_id: Uuid,
    pub conditions: Vec<CheckedView>,
    pub would_act: bool,
    /// The actions it would take, in order (none when it would not act).
    pub actions: Vec<Value>,
    /// A time-based rule: when it would act if nothing happens to the ticket (now, when it would
    /// act now; none when it never would).
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn manage(caller: &Caller, action: &'static str) -> Result<(), AppError> {
    caller.require(Permission::Manage, action)
}

/// Reads and checks a rule: its shape (by path), then whether what it names exists.
async fn checked(app: &App, body: &Value) -> Result<RuleDefinition, AppError> {
    let definition = RuleDefinition::parse(body)?;
    for (path, reference) in definition.references() {
        let missing = match reference {
            Reference::Agent(id) => accounts::find_user(app, UserId(id))
                .await?
                .is_none_or(|u| !u.active || !u.role.can_be_assigned()),
            Reference::User(id) => accounts::find_user(app, UserId(id))
                .await?
                .is_none_or(|u| !u.active),
            Reference::Team(id) => workforce::team(&app.pool, id).await?.is_none(),
            Reference::Webhook(id) => webhooks::get(&app.pool, id).await?.is_none(),
        };
        if missing {
            let what = match reference {
                Reference::Agent(_) => "no active agent or manager has this id",
                Reference::User(_) => "no active person has this id",
                Reference::Team(_) => "no team has this id",
                Reference::Webhook(_) => "no webhook endpoint has this id",
            };
            return Err(AppError::invalid(path, what));
        }
    }
    Ok(definition)
}

fn view_of(committed: &Committed<AutomationRule>) -> Result<RuleView, AppError> {
    let state = committed
        .aggregate
        .state()
        .ok_or_else(|| AppError::internal("automation command left no rule"))?;
    Ok(RuleView {
        id: state.id.0,
        definition: state.definition.clone(),
        created_at: state.created_at,
        updated_at: state.updated_at,
        version: committed.version,
        loops_stopped: i64::from(state.loops_stopped),
        last_loop_stopped_at: state.last_loop_stopped_at,
    })
}

pub async fn create(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    body: &Value,
) -> Result<RuleView, AppError> {
    manage(caller, "configure automations")?;
    let definition = checked(app, body).await?;
    let id = Uuid::now_v7();
    let command = AutomationCommand::Create {
        rule_id: RuleId(id),
        definition,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = app
        .automations
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    view_of(&committed)
}

/// Replaces a rule's definition (`expected`: the version the caller saw, for `If-Match`).
pub async fn update(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    body: &Value,
) -> Result<RuleView, AppError> {
    manage(caller, "configure automations")?;
    let definition = checked(app, body).await?;
    let command = AutomationCommand::Update {
        definition,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = app
        .automations
        .execute(
            &id.to_string(),
            expected,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    view_of(&committed)
}

pub async fn delete(app: &App, caller: &Caller, origin: &Origin, id: Uuid) -> Result<(), AppError> {
    manage(caller, "delete automations")?;
    let command = AutomationCommand::Delete {
        actor: caller.actor(),
        at: app.time.now(),
    };
    app.automations
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(())
}

/// Every rule, in the order they run.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<RuleView>, AppError> {
    manage(caller, "see automations")?;
    app.consistency
        .include(caller, &[&registry::AUTOMATIONS])
        .await?;
    Ok(automations::list(&app.pool)
        .await?
        .into_iter()
        .map(RuleView::from)
        .collect())
}

pub async fn get(app: &App, caller: &Caller, id: Uuid) -> Result<RuleView, AppError> {
    manage(caller, "see automations")?;
    app.consistency
        .include(caller, &[&registry::AUTOMATIONS])
        .await?;
    automations::get(&app.pool, id)
        .await?
        .map(RuleView::from)
        .ok_or(AppError::NotFound("automation rule"))
}

/// What `rule` would decide about `ticket` now: each condition true or false, and the actions
/// it would take. Nothing is written.
pub async fn test(
    app: &App,
    caller: &Caller,
    id: Uuid,
    ticket: Uuid,
) -> Result<TestView, AppError> {
    let rule = get(app, caller, id).await?;
    // The ticket from its log: one opened a moment ago is there already.
    let (loaded, _) = app.tickets.load(&ticket.to_string()).await?;
    let state = loaded
        .state()
        .ok_or_else(|| AppError::invalid("ticket_id", "no such ticket"))?;
    let status_changed_at: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT max(recorded_at) FROM events
          WHERE aggregate_type = 'ticket' AND aggregate_id = $1
            AND event_type = 'TicketStatusChanged'",
    )
    .bind(ticket.to_string())
    .fetch_one(&app.pool)
    .await?;
    let snapshot = Snapshot::of(state, status_changed_at.unwrap_or(state.created_at));
    let now = app.time.now();
    let evaluation = eval::evaluate(&rule.definition, &snapshot, &Happened::default(), now);
    let due_at = (rule.definition.trigger == Trigger::Time)
        .then(|| eval::due_at(&rule.definition.conditions, &snapshot, now))
        .flatten();
    Ok(TestView {
        rule_id: id,
        ticket_id: ticket,
        conditions: evaluation
            .checked
            .into_iter()
            .map(|c| CheckedView {
                group: c.group,
                field: c.condition.field.as_str().to_string(),
                operator: c.condition.operator.as_str().to_string(),
                value: c.condition.value,
                held: c.held,
            })
            .collect(),
        would_act: evaluation.acts,
        actions: if evaluation.acts {
            rule.definition
                .actions
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                .collect()
        } else {
            vec![]
        },
        due_at,
    })
}
