//! Docket's server: the application services, the HTTP transport, configuration and start-up.
//!
//! * [`app`] — what Docket does: one function per use case, over the command bus and the read
//!   models, with its own error type and no HTTP.
//! * [`http`] — the transport: the OpenAPI routes, the live stream, the middleware, and the one
//!   mapping of errors to problem+json. It calls `app`; `app` never calls it.
//! * [`startup`] builds everything (database, migrations, projectors, background services,
//!   routes) and [`config`] is the one typed configuration.

pub mod app;
pub mod config;
pub mod demo;
pub mod http;
pub mod startup;
pub mod telemetry;
