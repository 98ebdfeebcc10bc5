//! The application services: what Docket does, without HTTP.
//!
//! Each module is one concern — accounts, tickets, SLA, routing, workforce, search, audit, the
//! live hub — with one function per use case. They build commands from domain values, send them
//! through the [`bus`], read the projections, and answer with domain values or views, or an
//! [`AppError`](error::AppError). The transport (`crate::http`) only translates; nothing here
//! knows poem, status codes or problem types.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod automation_engine;
pub mod automations;
pub mod bus;
pub mod caller;
pub mod consistency;
pub mod error;
pub mod flow;
pub mod health;
pub mod leadership;
pub mod live;
pub mod metrics;
pub mod notifications;
pub mod outbound;
pub mod requests;
pub mod router;
pub mod search;
pub mod sla;
pub mod tickets;
pub mod time;
pub mod workforce;

use std::sync::Arc;
use std::time::Duration;

use docket_domain::alert::Alert;
use docket_domain::api_key::ApiKey;
use docket_domain::automation::AutomationRule;
use docket_domain::mail::EmailTemplate;
use docket_domain::saved_search::SavedSearch;
use docket_domain::sla::config::{EscalationRule, SlaCalendar, SlaPolicy};
use docket_domain::ticket::Ticket;
use docket_domain::user::User;
use docket_domain::webhook::Webhook;
use docket_domain::workforce::agent::Agent;
use docket_domain::workforce::routing::RoutingWeights;
use docket_domain::workforce::shift::Shift;
use docket_domain::workforce::skill::Skill;
use docket_domain::workforce::team::Team;
use docket_projections::notify::LogNotifications;
use sqlx::PgPool;

pub use caller::{Caller, Origin, ReadWants};
pub use error::AppError;

use accounts::tokens::TokenService;
use bus::CommandBus;
use consistency::Consistency;
use live::LiveHub;
use metrics::Metrics;
use time::TimeSource;

/// Everything the services share: the database, one command bus per aggregate type, the caches
/// kept in front of the read models, and the process's time source and wake-ups.
pub struct App {
    pub pool: PgPool,
    pub tickets: CommandBus<Ticket>,
    pub users: CommandBus<User>,
    pub api_keys: CommandBus<ApiKey>,
    pub saved_searches: CommandBus<SavedSearch>,
    pub sla_policies: CommandBus<SlaPolicy>,
    pub sla_calendars: CommandBus<SlaCalendar>,
    pub escalation_rules: CommandBus<EscalationRule>,
    pub skills: CommandBus<Skill>,
    pub teams: CommandBus<Team>,
    pub agents: CommandBus<Agent>,
    pub shifts: CommandBus<Shift>,
    pub webhooks: CommandBus<Webhook>,
    pub email_templates: CommandBus<EmailTemplate>,
    pub alerts: CommandBus<Alert>,
    pub automations: CommandBus<AutomationRule>,
    /// The weights of the routing score (configuration).
    pub routing_weights: RoutingWeights,
    /// The routable agents as of a workforce checkpoint, reused until the model moves.
    pub routable_agents: router::AgentCache,
    /// The SLA policies in force, read from the log and cached until configuration changes.
    pub sla_catalog: sla::CatalogCache,
    pub live: LiveHub,
    /// Webhooks' settings and the deliverer's bell.
    pub outbound: outbound::Outbound,
    pub time: Arc<dyn TimeSource>,
    pub tokens: TokenService,
    /// The API keys' rows this process read lately.
    pub api_key_cache: api_keys::KeyCache,
    pub notifications: LogNotifications,
    pub metrics: Metrics,
    /// Reads wait here until the projections include what their caller must see.
    pub consistency: Consistency,
    /// How old a remembered account may be when a token or a named person is checked.
    pub account_freshness: Duration,
    /// Which broad one-word searches get their matches ranked ahead of time.
    pub ranked_searches: search::RankedSearches,
}

/// The services as every request and background task holds them.
pub type SharedApp = Arc<App>;
