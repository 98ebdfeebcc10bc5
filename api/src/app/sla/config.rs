//! SLA configuration — policies, business calendars, escalation rules — as one shape: each is
//! created with a definition, replaced by a new version, read one at a time from the log or all
//! together from the `sla_config` read model, and (but for calendars, which policies name)
//! deleted.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use docket_domain::Actor;
use docket_domain::access::Permission;
use docket_domain::sla::config::{
    ConfigError, EscalationRule, EscalationRuleCommand, RuleDefinition, SlaCalendar,
    SlaCalendarCommand, SlaPolicy, SlaPolicyCommand,
};
use docket_domain::sla::{BusinessCalendar, PolicyDefinition};
use docket_projections::registry;
use docket_projections::sla_config;
use uuid::Uuid;

use crate::app::bus::{CommandBus, Committed};
use crate::app::{App, AppError, Caller, Origin};

/// A policy's definition and where it stands in the order policies are tried.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    pub definition: PolicyDefinition,
    pub position: i32,
}

/// A calendar's name and hours.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarSpec {
    pub name: String,
    pub calendar: BusinessCalendar,
}

/// One configuration item as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved<D> {
    pub id: Uuid,
    /// The item's own version: every change makes a new one (tickets record it).
    pub version: u32,
    pub definition: D,
}

/// What the three kinds of configuration have in common.
pub trait ConfigItem:
    Aggregate<Error = ConfigError, Services = ()> + Clone + Default + Send + Sync
where
    Self::Command: Clone + Send + Sync,
{
    type Definition: Clone + Send + Sync;
    /// What it is called in messages: "SLA policy".
    const WHAT: &'static str;

    fn bus(app: &App) -> &CommandBus<Self>;
    fn create(
        id: Uuid,
        definition: Self::Definition,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Self::Command;
    fn update(definition: Self::Definition, actor: Actor, at: DateTime<Utc>) -> Self::Command;
    /// `None` for what cannot be deleted.
    fn delete(actor: Actor, at: DateTime<Utc>) -> Option<Self::Command>;
    /// The item as it is now, unless it does not exist (or was deleted).
    fn saved(&self) -> Option<Saved<Self::Definition>>;
    /// A calendar the definition names, which must exist.
    fn calendar_named(_definition: &Self::Definition) -> Option<Uuid> {
        None
    }
    /// Every live item, from the read model, in the order lists show them.
    fn list(
        pool: &sqlx::PgPool,
    ) -> impl std::future::Future<Output = Result<Vec<Saved<Self::Definition>>, AppError>> + Send;
}

impl ConfigItem for SlaPolicy {
    type Definition = PolicySpec;
    const WHAT: &'static str = "SLA policy";

    fn bus(app: &App) -> &CommandBus<Self> {
        &app.sla_policies
    }

    fn create(id: Uuid, spec: PolicySpec, actor: Actor, at: DateTime<Utc>) -> SlaPolicyCommand {
        SlaPolicyCommand::Create {
            policy_id: id,
            definition: spec.definition,
            position: spec.position,
            actor,
            at,
        }
    }

    fn update(spec: PolicySpec, actor: Actor, at: DateTime<Utc>) -> SlaPolicyCommand {
        SlaPolicyCommand::Update {
            definition: spec.definition,
            position: spec.position,
            actor,
            at,
        }
    }

    fn delete(actor: Actor, at: DateTime<Utc>) -> Option<SlaPolicyCommand> {
        Some(SlaPolicyCommand::Delete { actor, at })
    }

    fn saved(&self) -> Option<Saved<PolicySpec>> {
        match (self.id, &self.definition, self.deleted) {
            (Some(id), Some(definition), false) => Some(Saved {
                id,
                version: self.version,
                definition: PolicySpec {
                    definition: definition.clone(),
                    position: self.position,
                },
            }),
            _ => None,
        }
    }

    fn calendar_named(spec: &PolicySpec) -> Option<Uuid> {
        spec.definition.calendar_id
    }

    async fn list(pool: &sqlx::PgPool) -> Result<Vec<Saved<PolicySpec>>, AppError> {
        Ok(sla_config::policies(pool)
            .await?
            .into_iter()
            .map(|row| Saved {
                id: row.id,
                version: row.version,
                definition: PolicySpec {
                    definition: row.definition,
                    position: row.position,
                },
            })
            .collect())
    }
}

impl ConfigItem for SlaCalendar {
    type Definition = CalendarSpec;
    const WHAT: &'static str = "calendar";

    fn bus(app: &App) -> &CommandBus<Self> {
        &app.sla_calendars
    }

    fn create(id: Uuid, spec: CalendarSpec, actor: Actor, at: DateTime<Utc>) -> SlaCalendarCommand {
        SlaCalendarCommand::Create {
            calendar_id: id,
            name: spec.name,
            calendar: spec.calendar,
            actor,
            at,
        }
    }

    fn update(spec: CalendarSpec, actor: Actor, at: DateTime<Utc>) -> SlaCalendarCommand {
        SlaCalendarCommand::Update {
            name: spec.name,
            calendar: spec.calendar,
            actor,
            at,
        }
    }

    fn delete(_: Actor, _: DateTime<Utc>) -> Option<SlaCalendarCommand> {
        None
    }

    fn saved(&self) -> Option<Saved<CalendarSpec>> {
        match (self.id, &self.calendar) {
            (Some(id), Some(calendar)) => Some(Saved {
                id,
                version: self.version,
                definition: CalendarSpec {
                    name: self.name.clone(),
                    calendar: calendar.clone(),
                },
            }),
            _ => None,
        }
    }

    async fn list(pool: &sqlx::PgPool) -> Result<Vec<Saved<CalendarSpec>>, AppError> {
        Ok(sla_config::calendars(pool)
            .await?
            .into_iter()
            .map(|row| Saved {
                id: row.id,
                version: row.version,
                definition: CalendarSpec {
                    name: row.name,
                    calendar: row.calendar,
                },
            })
            .collect())
    }
}

impl ConfigItem for EscalationRule {
    type Definition = RuleDefinition;
    const WHAT: &'static str = "escalation rule";

    fn bus(app: &App) -> &CommandBus<Self> {
        &app.escalation_rules
    }

    fn create(
        id: Uuid,
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> EscalationRuleCommand {
        EscalationRuleCommand::Create {
            rule_id: id,
            definition,
            actor,
            at,
        }
    }

    fn update(
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> EscalationRuleCommand {
        EscalationRuleCommand::Update {
            definition,
            actor,
            at,
        }
    }

    fn delete(actor: Actor, at: DateTime<Utc>) -> Option<EscalationRuleCommand> {
        Some(EscalationRuleCommand::Delete { actor, at })
    }

    fn saved(&self) -> Option<Saved<RuleDefinition>> {
        match (self.id, &self.definition, self.deleted) {
            (Some(id), Some(definition), false) => Some(Saved {
                id,
                version: self.version,
                definition: definition.clone(),
            }),
            _ => None,
        }
    }

    async fn list(pool: &sqlx::PgPool) -> Result<Vec<Saved<RuleDefinition>>, AppError> {
        Ok(sla_config::rules(pool)
            .await?
            .into_iter()
            .map(|row| Saved {
                id: row.id,
                version: row.version,
                definition: row.rule,
            })
            .collect())
    }
}

/// A configuration item as a write left it, with the aggregate's version in the log (its ETag)
/// and where the write landed.
pub struct Written<D> {
    pub item: Saved<D>,
    pub version: i64,
    pub committed: Option<docket_projections::Checkpoint>,
}

fn written<C: ConfigItem>(committed: Committed<C>) -> Result<Written<C::Definition>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    let item = committed
        .aggregate
        .saved()
        .ok_or_else(|| AppError::internal(format!("a {} command left no {0}", C::WHAT)))?;
    Ok(Written {
        item,
        version: committed.version,
        committed: committed.position,
    })
}

async fn calendar_exists<C: ConfigItem>(
    app: &App,
    definition: &C::Definition,
) -> Result<(), AppError>
where
    C::Command: Clone + Send + Sync,
{
    if let Some(id) = C::calendar_named(definition) {
        let (calendar, _) = app.sla_calendars.load(&id.to_string()).await?;
        if calendar.id.is_none() {
            return Err(AppError::invalid("calendar_id", "no such calendar"));
        }
    }
    Ok(())
}

/// Creates an item (managers, admins).
pub async fn create<C: ConfigItem>(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    definition: C::Definition,
) -> Result<Written<C::Definition>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    calendar_exists::<C>(app, &definition).await?;
    let id = Uuid::now_v7();
    let command = C::create(id, definition, caller.actor(), app.time.now());
    let committed = C::bus(app)
        .execute(
            &id.to_string(),
            Some(0),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    written(committed)
}

/// Replaces an item with a new version (managers, admins).
pub async fn update<C: ConfigItem>(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    definition: C::Definition,
) -> Result<Written<C::Definition>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    calendar_exists::<C>(app, &definition).await?;
    let command = C::update(definition, caller.actor(), app.time.now());
    let committed = C::bus(app)
        .execute(
            &id.to_string(),
            expected,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    written(committed)
}

/// Deletes an item (managers, admins); `None` when this kind cannot be deleted.
pub async fn delete<C: ConfigItem>(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
) -> Result<Option<docket_projections::Checkpoint>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    let Some(command) = C::delete(caller.actor(), app.time.now()) else {
        return Err(AppError::NotPermitted(format!(
            "a {} cannot be deleted",
            C::WHAT
        )));
    };
    let committed = C::bus(app)
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(committed.position)
}

/// One item as the log has it now (staff).
pub async fn get<C: ConfigItem>(
    app: &App,
    caller: &Caller,
    id: Uuid,
) -> Result<Written<C::Definition>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    caller.require(
        Permission::ReadStaffViews,
        "see SLA configuration or clocks",
    )?;
    let (aggregate, version) = C::bus(app).load(&id.to_string()).await?;
    let item = aggregate.saved().ok_or(AppError::NotFound(C::WHAT))?;
    Ok(Written {
        item,
        version,
        committed: None,
    })
}

pub use crate::app::audit::Change;

/// Every change of an item, oldest first, from its log (staff).
pub async fn history<C: ConfigItem>(
    app: &App,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<Change>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    caller.require(
        Permission::ReadStaffViews,
        "see SLA configuration or clocks",
    )?;
    crate::app::audit::changes(app, C::TYPE, id).await
}

/// Every live item, from the read model (staff).
pub async fn list<C: ConfigItem>(
    app: &App,
    caller: &Caller,
) -> Result<Vec<Saved<C::Definition>>, AppError>
where
    C::Command: Clone + Send + Sync,
{
    caller.require(
        Permission::ReadStaffViews,
        "see SLA configuration or clocks",
    )?;
    app.consistency
        .include(caller, &[&registry::SLA_CONFIG])
        .await?;
    C::list(&app.pool).await
}
