//! Black-box tests: each starts the real server on a random port against a fresh database and
//! acts as a user would, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod alerts;
mod api_keys;
mod auth;
mod automations;
mod client;
mod concurrency;
mod consistency;
mod contract;
mod errors;
mod event_store;
mod faults;
mod headers;
mod integrator;
mod limits;
mod live;
mod mail;
mod notifications;
mod openapi;
mod projections;
mod replay;
mod routing;
mod schemathesis;
mod search;
mod sla;
mod startup;
mod tickets;
mod users;
mod web;
mod webhooks;
