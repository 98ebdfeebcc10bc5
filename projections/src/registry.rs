//! Every projector this build has, in one list: start-up runs them, `/ready` and `/metrics`
//! report them, `docket-replay` rebuilds and verifies them, and reads wait for them by name.
//!
//! A [`Projector`] is a [`Projection`] with its generic functions instantiated, so the list can
//! be walked without naming each projection type at every place that needs all of them.

use futures::future::{BoxFuture, LocalBoxFuture};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::alerts::AlertsProjection;
use crate::audit::AuditProjection;
use crate::automations::AutomationsProjection;
use crate::flow::FlowProjection;
use crate::log::Checkpoint;
use crate::notify::LogNotifications;
use crate::rebuild::{
    self, Difference, RebuildError, RebuildProgress, RebuildReport, RebuildSettings,
};
use crate::runtime::{self, Projection, ProjectionError, RunnerSettings};
use crate::saved_searches::SavedSearchesProjection;
use crate::sla_config::SlaConfigProjection;
use crate::tickets::TicketsProjection;
use crate::users::UsersProjection;
use crate::webhooks::WebhooksProjection;
use crate::workforce::WorkforceProjection;

/// What reports a rebuild's progress (a progress bar, a log line).
pub type ProgressReport<'a> = &'a mut dyn FnMut(RebuildProgress);

type RunFn =
    fn(PgPool, LogNotifications, RunnerSettings, watch::Receiver<bool>) -> BoxFuture<'static, ()>;
type CatchUpFn =
    fn(PgPool, RunnerSettings) -> BoxFuture<'static, Result<Checkpoint, ProjectionError>>;
type RebuildFn = for<'a> fn(
    &'a PgPool,
    RebuildSettings,
    ProgressReport<'a>,
) -> LocalBoxFuture<'a, Result<RebuildReport, RebuildError>>;
type VerifyFn = for<'a> fn(
    &'a PgPool,
    RebuildSettings,
    i64,
    ProgressReport<'a>,
) -> LocalBoxFuture<'a, Result<Vec<Difference>, RebuildError>>;

/// One projector: its name, what it reads, and how to run, catch up, rebuild and verify it.
pub struct Projector {
    pub name: &'static str,
    /// The aggregate types whose events it reads; empty means every type.
    pub aggregate_types: &'static [&'static str],
    run: RunFn,
    catch_up: CatchUpFn,
    rebuild: RebuildFn,
    verify: VerifyFn,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("name", &self.name)
            .field("aggregate_types", &self.aggregate_types)
            .finish()
    }
}

impl PartialEq for Projector {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Projector {}

impl Projector {
    /// The projector of `P`. Subscribers that are not read models (the outbound dispatcher)
    /// are made this way too, to be run and reported like one, but are not listed in
    /// [`PROJECTORS`]: a rebuild must never replay their side effects.
    pub const fn of<P: Projection + Default>() -> Self {
        Self {
            name: P::NAME,
            aggregate_types: P::AGGREGATE_TYPES,
            run: run::<P>,
            catch_up: catch_up::<P>,
            rebuild: rebuild_boxed::<P>,
            verify: verify_boxed::<P>,
        }
    }

    /// Whether it reads events of `aggregate_type`.
    pub fn reads(&self, aggregate_type: &str) -> bool {
        self.aggregate_types.is_empty() || self.aggregate_types.contains(&aggregate_type)
    }

    /// Runs it until `shutdown` becomes `true` (see [`runtime::run`]).
    pub fn run(
        &self,
        pool: PgPool,
        notifications: LogNotifications,
        settings: RunnerSettings,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()> {
        (self.run)(pool, notifications, settings, shutdown)
    }

    /// Applies everything readable now (see [`runtime::catch_up`]).
    pub fn catch_up(
        &self,
        pool: PgPool,
        settings: RunnerSettings,
    ) -> BoxFuture<'static, Result<Checkpoint, ProjectionError>> {
        (self.catch_up)(pool, settings)
    }

    /// Rebuilds it beside the live tables and swaps the result in (see [`rebuild::rebuild`]).
    pub fn rebuild<'a>(
        &self,
        pool: &'a PgPool,
        settings: RebuildSettings,
        report: ProgressReport<'a>,
    ) -> LocalBoxFuture<'a, Result<RebuildReport, RebuildError>> {
        (self.rebuild)(pool, settings, report)
    }

    /// Rebuilds it beside the live tables and lists where the two differ (see
    /// [`rebuild::verify`]).
    pub fn verify<'a>(
        &self,
        pool: &'a PgPool,
        settings: RebuildSettings,
        limit: i64,
        report: ProgressReport<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Difference>, RebuildError>> {
        (self.verify)(pool, settings, limit, report)
    }
}

fn run<P: Projection + Default>(
    pool: PgPool,
    notifications: LogNotifications,
    settings: RunnerSettings,
    shutdown: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    Box::pin(runtime::run(
        P::default(),
        pool,
        notifications,
        settings,
        shutdown,
    ))
}

fn catch_up<P: Projection + Default>(
    pool: PgPool,
    settings: RunnerSettings,
) -> BoxFuture<'static, Result<Checkpoint, ProjectionError>> {
    Box::pin(async move { runtime::catch_up(&P::default(), &pool, settings).await })
}

fn rebuild_boxed<'a, P: Projection + Default>(
    pool: &'a PgPool,
    settings: RebuildSettings,
    report: ProgressReport<'a>,
) -> LocalBoxFuture<'a, Result<RebuildReport, RebuildError>> {
    Box::pin(async move { rebuild::rebuild(&P::default(), pool, settings, report).await })
}

fn verify_boxed<'a, P: Projection + Default>(
    pool: &'a PgPool,
    settings: RebuildSettings,
    limit: i64,
    report: ProgressReport<'a>,
) -> LocalBoxFuture<'a, Result<Vec<Difference>, RebuildError>> {
    Box::pin(async move { rebuild::verify(&P::default(), pool, settings, limit, report).await })
}

pub static TICKETS: Projector = Projector::of::<TicketsProjection>();
pub static USERS: Projector = Projector::of::<UsersProjection>();
pub static AUDIT: Projector = Projector::of::<AuditProjection>();
pub static SAVED_SEARCHES: Projector = Projector::of::<SavedSearchesProjection>();
pub static SLA_CONFIG: Projector = Projector::of::<SlaConfigProjection>();
pub static WORKFORCE: Projector = Projector::of::<WorkforceProjection>();
pub static TICKET_FLOW: Projector = Projector::of::<FlowProjection>();
pub static WEBHOOKS: Projector = Projector::of::<WebhooksProjection>();
pub static ALERTS: Projector = Projector::of::<AlertsProjection>();
pub static AUTOMATIONS: Projector = Projector::of::<AutomationsProjection>();

/// Every projector this build runs.
pub static PROJECTORS: [&Projector; 10] = [
    &TICKETS,
    &USERS,
    &AUDIT,
    &SAVED_SEARCHES,
    &SLA_CONFIG,
    &WORKFORCE,
    &TICKET_FLOW,
    &WEBHOOKS,
    &ALERTS,
    &AUTOMATIONS,
];

/// The projector named `name`.
pub fn named(name: &str) -> Option<&'static Projector> {
    PROJECTORS.iter().copied().find(|p| p.name == name)
}

/// The names of every projector, for messages.
pub fn names() -> Vec<&'static str> {
    PROJECTORS.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_projector_is_listed_once_under_its_own_name() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROJECTORS.len());
        for projector in PROJECTORS {
            assert_eq!(named(projector.name), Some(projector));
        }
        assert_eq!(named("nope"), None);
    }

    #[test]
    fn a_projector_without_types_reads_every_type() {
        assert!(AUDIT.reads("ticket") && AUDIT.reads("user"));
        assert!(TICKETS.reads("ticket"));
        assert!(!TICKETS.reads("user"));
        assert!(WORKFORCE.reads("ticket") && WORKFORCE.reads("shift"));
    }
}
