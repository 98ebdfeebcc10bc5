//! Docket's HTTP API and server.
//!
//! [`startup::Application`] builds everything: database, migrations, projectors, routes.
//! Handlers live in [`routes`], one file per resource; they turn requests into domain commands
//! (executed by [`commands::CommandBus`]) and read models into responses. Errors are mapped to
//! HTTP once, in [`error`].

pub mod accounts;
pub mod appenders;
pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod demo;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod live;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod routing;
pub mod sla;
pub mod startup;
pub mod state;
pub mod telemetry;
