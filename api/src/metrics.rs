//! Prometheus metrics (DESIGN.md decision 11): command rate, conflicts, projector lag.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AggregateLabels {
    aggregate: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectorLabels {
    projector: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    status: u16,
}

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    commands: Family<AggregateLabels, Counter>,
    conflicts: Family<AggregateLabels, Counter>,
    gave_up: Family<AggregateLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    projector_lag: Family<ProjectorLabels, Gauge>,
    projector_failed: Family<ProjectorLabels, Gauge>,
    projector_applied: Family<ProjectorLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("docket");
        let commands = Family::<AggregateLabels, Counter>::default();
        let conflicts = Family::<AggregateLabels, Counter>::default();
        let gave_up = Family::<AggregateLabels, Counter>::default();
        let responses = Family::<ResponseLabels, Counter>::default();
        let projector_lag = Family::<ProjectorLabels, Gauge>::default();
        let projector_failed = Family::<ProjectorLabels, Gauge>::default();
        let projector_applied = Family::<ProjectorLabels, Gauge>::default();
        registry.register("commands", "Commands committed", commands.clone());
        registry.register(
            "command_conflicts",
            "Version conflicts met while committing (each was retried)",
            conflicts.clone(),
        );
        registry.register(
            "command_conflicts_exhausted",
            "Commands refused with 409 after exhausting their retries",
            gave_up.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by status",
            responses.clone(),
        );
        registry.register(
            "projector_lag_events",
            "Events in the log beyond the projector's checkpoint",
            projector_lag.clone(),
        );
        registry.register(
            "projector_failed",
            "1 when the projector is stopped at an event it cannot apply",
            projector_failed.clone(),
        );
        registry.register(
            "projector_events_applied",
            "Events applied by the projector since its last rebuild",
            projector_applied.clone(),
        );
        Self {
            registry: Arc::new(registry),
            commands,
            conflicts,
            gave_up,
            responses,
            projector_lag,
            projector_failed,
            projector_applied,
        }
    }

    fn labels(aggregate: &str) -> AggregateLabels {
        AggregateLabels {
            aggregate: aggregate.to_string(),
        }
    }

    pub fn command_committed(&self, aggregate: &str) {
        self.commands.get_or_create(&Self::labels(aggregate)).inc();
    }

    pub fn command_conflicted(&self, aggregate: &str) {
        self.conflicts.get_or_create(&Self::labels(aggregate)).inc();
    }

    pub fn command_gave_up(&self, aggregate: &str) {
        self.gave_up.get_or_create(&Self::labels(aggregate)).inc();
    }

    pub fn response(&self, status: u16) {
        self.responses
            .get_or_create(&ResponseLabels { status })
            .inc();
    }

    pub fn projector(&self, name: &str, lag: i64, failed: bool, applied: i64) {
        let labels = ProjectorLabels {
            projector: name.to_string(),
        };
        self.projector_lag.get_or_create(&labels).set(lag);
        self.projector_failed
            .get_or_create(&labels)
            .set(i64::from(failed));
        self.projector_applied.get_or_create(&labels).set(applied);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
