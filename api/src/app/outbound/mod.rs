//! Everything that leaves Docket is a subscriber of the log (DESIGN.md decisions 5 and 14):
//! nothing is sent from inside a request. Webhooks: the dispatcher (`dispatch`) turns events
//! into deliveries with its own checkpoint, the deliverer (`delivery`) posts them with Standard
//! Webhooks signatures (`signing`), recording every attempt and retrying on a schedule; the
//! endpoints themselves are configured through `webhooks`.

pub mod address;
pub mod delivery;
pub mod dispatch;
pub mod inbound;
pub mod mail;
pub mod notifier;
pub mod signing;
pub mod templates;
pub mod webhooks;

use std::time::Duration;

use tokio::sync::Notify;

use crate::config::{Secret, Settings};

/// How webhooks are posted (from the configuration).
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub allow_private: bool,
    pub timeout: Duration,
    /// The waits before each retry, each after the attempt before it.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint failing for this long without a success is disabled.
    pub disable_after: Duration,
    /// Where mail goes; `None`: it waits in the outbox.
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub mail_retry_schedule: Vec<Duration>,
    pub inbound_token: Option<Secret>,
    /// Where people reach Docket, for links in mail.
    pub public_url: Option<String>,
    /// More tickets than this waiting in the queue for `alert_queue_for` raise an alert.
    pub alert_queue_length: i64,
    pub alert_queue_for: Duration,
}

impl OutboundSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            allow_private: settings.webhook_allow_private,
            timeout: Duration::from_secs(settings.webhook_timeout_secs.max(1)),
            retry_schedule: settings.webhook_retry_schedule.0.clone(),
            disable_after: settings.webhook_disable_after,
            alert_queue_length: settings.alert_queue_length,
            alert_queue_for: settings.alert_queue_for,
            smtp_url: settings.smtp_url.clone(),
            mail_from: settings.mail_from.clone(),
            mail_retry_schedule: settings.mail_retry_schedule.0.clone(),
            inbound_token: settings.inbound_token.clone(),
            public_url: settings.public_url.clone(),
        }
    }
}

/// What the outbound services share in a process: their settings, and the deliverer's bell
/// (rung when a request queued a delivery itself: a test ping, a redelivery).
pub struct Outbound {
    pub settings: OutboundSettings,
    pub wake: Notify,
    /// The mail sender's bell (a mail re-queued by hand).
    pub mail_wake: Notify,
    /// The rule executor's bell (the deadline scheduler queued time-based rules' requests).
    pub automation_wake: Notify,
}

impl Outbound {
    pub fn new(settings: OutboundSettings) -> Self {
        Self {
            settings,
            wake: Notify::new(),
            mail_wake: Notify::new(),
            automation_wake: Notify::new(),
        }
    }
}
