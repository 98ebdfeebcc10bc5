//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use docket_domain::saved_search::SavedSearch;
use docket_domain::sla::config::{EscalationRule, SlaCalendar, SlaPolicy};
use docket_domain::ticket::Ticket;
use docket_domain::user::User;
use docket_domain::workforce::agent::Agent;
use docket_domain::workforce::routing::RoutingWeights;
use docket_domain::workforce::shift::Shift;
use docket_domain::workforce::skill::Skill;
use docket_domain::workforce::team::Team;
use docket_projections::notify::LogNotifications;
use sqlx::PgPool;

use crate::auth::tokens::TokenService;
use crate::clock::Clock;
use crate::commands::CommandBus;
use crate::live::LiveHub;
use crate::metrics::Metrics;
use crate::sla::CatalogCache;

pub struct AppState {
    pub pool: PgPool,
    pub tickets: CommandBus<Ticket>,
    pub users: CommandBus<User>,
    pub saved_searches: CommandBus<SavedSearch>,
    pub sla_policies: CommandBus<SlaPolicy>,
    pub sla_calendars: CommandBus<SlaCalendar>,
    pub escalation_rules: CommandBus<EscalationRule>,
    pub skills: CommandBus<Skill>,
    pub teams: CommandBus<Team>,
    pub agents: CommandBus<Agent>,
    pub shifts: CommandBus<Shift>,
    /// The weights of the routing score (configuration).
    pub routing_weights: RoutingWeights,
    /// The routable agents as of a workforce checkpoint, reused until the model moves.
    pub routable_agents: crate::routing::AgentCache,
    /// The SLA policies in force, read from the log and cached until configuration changes.
    pub sla_catalog: CatalogCache,
    pub live: LiveHub,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenService,
    pub notifications: LogNotifications,
    pub metrics: Metrics,
    /// How long a read asking for read-your-writes may wait for the projections.
    pub consistency_wait: Duration,
    /// How old a remembered account may be when a token or a named person is checked.
    pub account_freshness: Duration,
    /// Which broad one-word searches get their matches ranked ahead of time.
    pub ranked_searches: crate::routes::search::RankedSearches,
}

pub type SharedState = Arc<AppState>;
