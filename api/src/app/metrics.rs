//! Prometheus metrics (DESIGN.md decision 11), recorded through the `metrics` crate and rendered
//! by `metrics-exporter-prometheus`.
//!
//! Each [`Metrics`] has a recorder of its own instead of the process-wide one the `metrics`
//! macros use: the black-box tests run many servers in one process, and each must report only
//! what happened to it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const HTTP_REQUESTS: &str = "docket_http_requests_total";
const HTTP_DURATION: &str = "docket_http_request_duration_seconds";
const COMMANDS: &str = "docket_commands_total";
const CONFLICTS: &str = "docket_command_conflicts_total";
const GAVE_UP: &str = "docket_command_conflicts_exhausted_total";
const PROJECTOR_LAG: &str = "docket_projector_lag_events";
const PROJECTOR_FAILED: &str = "docket_projector_failed";
const PROJECTOR_APPLIED: &str = "docket_projector_events_applied";
const SLA_RUNNING: &str = "docket_sla_clocks_running";
const SLA_PENDING: &str = "docket_sla_deadlines_pending";
const ROUTING_QUEUE: &str = "docket_routing_queue_length";
const RATE_LIMITED: &str = "docket_rate_limit_refusals_total";
const WEBHOOK_ATTEMPTS: &str = "docket_webhook_attempts_total";
const MAIL: &str = "docket_mail_total";

/// Request latencies from half a millisecond to ten seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> = Metadata::new("docket", Level::INFO, Some(module_path!()));

/// The counter and latency histogram of one kind of request.
type RequestHandles = (Counter, Histogram);

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// The counter and histogram of each API operation and status, looked up once: a request
    /// then costs a map read, not the labels' strings and the registry's hashing.
    operations: Arc<RwLock<HashMap<(&'static str, u16), RequestHandles>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let builder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), LATENCY_BUCKETS)
        {
            Ok(with_buckets) => with_buckets,
            // Only an empty bucket list is refused, and the list is a constant.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            operations: Arc::default(),
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let counters = [
            (
                HTTP_REQUESTS,
                "HTTP requests by route template, method and status",
            ),
            (COMMANDS, "Commands committed, by aggregate type"),
            (
                CONFLICTS,
                "Version conflicts met while committing (each was retried), by aggregate type",
            ),
            (
                GAVE_UP,
                "Commands refused with 409 after exhausting their retries, by aggregate type",
            ),
            (RATE_LIMITED, "Requests refused with 429, by limit"),
            (
                WEBHOOK_ATTEMPTS,
                "Webhook delivery attempts, by outcome (delivered, failed, gone)",
            ),
            (
                MAIL,
                "Mail handed to the SMTP server, by outcome (sent, deferred, failed)",
            ),
        ];
        for (name, help) in counters {
            self.recorder
                .describe_counter(KeyName::from(name), None, help.into());
        }
        let gauges = [
            (
                PROJECTOR_LAG,
                "Events of its aggregate types in the log beyond the projector's checkpoint",
            ),
            (
                PROJECTOR_FAILED,
                "1 when the projector is stopped at an event it cannot apply",
            ),
            (
                PROJECTOR_APPLIED,
                "Events applied by the projector since its last rebuild",
            ),
            (SLA_RUNNING, "SLA clocks running now"),
            (
                SLA_PENDING,
                "Warnings and deadlines of running SLA clocks not yet recorded",
            ),
            (
                ROUTING_QUEUE,
                "Unassigned unfinished tickets waiting for an agent",
            ),
        ];
        for (name, help) in gauges {
            self.recorder
                .describe_gauge(KeyName::from(name), None, help.into());
        }
        self.recorder.describe_histogram(
            KeyName::from(HTTP_DURATION),
            Some(Unit::Seconds),
            "HTTP request latency by route template and method".into(),
        );
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn command_committed(&self, aggregate: &'static str) {
        self.counter(
            COMMANDS,
            vec![Label::from_static_parts("aggregate", aggregate)],
        )
        .increment(1);
    }

    pub fn command_conflicted(&self, aggregate: &'static str) {
        self.counter(
            CONFLICTS,
            vec![Label::from_static_parts("aggregate", aggregate)],
        )
        .increment(1);
    }

    pub fn command_gave_up(&self, aggregate: &'static str) {
        self.counter(
            GAVE_UP,
            vec![Label::from_static_parts("aggregate", aggregate)],
        )
        .increment(1);
    }

    /// One HTTP request served: `route` is its template (`/api/tickets/{id}`), never the path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let (counter, histogram) = self.request_handles(route, method, status);
        counter.increment(1);
        histogram.record(seconds);
    }

    /// One request of the API operation `operation` (whose route template is `route`) served.
    pub fn operation_request(
        &self,
        operation: &'static str,
        route: &str,
        method: &str,
        status: u16,
        seconds: f64,
    ) {
        let known = self
            .operations
            .read()
            .ok()
            .and_then(|known| known.get(&(operation, status)).cloned());
        let (counter, histogram) = match known {
            Some(handles) => handles,
            None => {
                let handles = self.request_handles(route, method, status);
                if let Ok(mut known) = self.operations.write() {
                    known.insert((operation, status), handles.clone());
                }
                handles
            }
        };
        counter.increment(1);
        histogram.record(seconds);
    }

    fn request_handles(&self, route: &str, method: &str, status: u16) -> RequestHandles {
        let counter = self.counter(
            HTTP_REQUESTS,
            vec![
                Label::new("route", route.to_string()),
                Label::new("method", method.to_string()),
                Label::new("status", status.to_string()),
            ],
        );
        let histogram = self.histogram(
            HTTP_DURATION,
            vec![
                Label::new("route", route.to_string()),
                Label::new("method", method.to_string()),
            ],
        );
        (counter, histogram)
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.counter(RATE_LIMITED, vec![Label::from_static_parts("limit", limit)])
            .increment(1);
    }

    pub fn mail_sent(&self, outcome: &'static str) {
        self.counter(MAIL, vec![Label::from_static_parts("outcome", outcome)])
            .increment(1);
    }

    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.counter(
            WEBHOOK_ATTEMPTS,
            vec![Label::from_static_parts("outcome", outcome)],
        )
        .increment(1);
    }

    pub fn projector(&self, name: &'static str, lag: i64, failed: bool, applied: i64) {
        let labels = || vec![Label::from_static_parts("projector", name)];
        self.gauge(PROJECTOR_LAG, labels()).set(lag as f64);
        self.gauge(PROJECTOR_FAILED, labels())
            .set(if failed { 1.0 } else { 0.0 });
        self.gauge(PROJECTOR_APPLIED, labels()).set(applied as f64);
    }

    pub fn sla_clocks(&self, running: i64, deadlines_pending: i64) {
        self.gauge(SLA_RUNNING, vec![]).set(running as f64);
        self.gauge(SLA_PENDING, vec![])
            .set(deadlines_pending as f64);
    }

    pub fn routing_queue(&self, length: i64) {
        self.gauge(ROUTING_QUEUE, vec![]).set(length as f64);
    }

    /// Folds the histograms' recorded samples into their buckets. The exporter keeps every
    /// sample until this runs, so a server nobody scrapes must still run it now and then
    /// ([`Metrics::keep_up`]).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Runs the upkeep every five seconds until `shutdown` becomes `true`.
    pub async fn keep_up(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => self.run_upkeep(),
                _ = shutdown.changed() => if *shutdown.borrow() { return; },
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_recorded_is_rendered_with_its_labels() {
        let metrics = Metrics::new();
        metrics.command_committed("ticket");
        metrics.command_committed("ticket");
        metrics.http_request("/api/tickets/{id}", "GET", 200, 0.003);
        metrics.projector("workforce", 3, true, 10);
        let text = metrics.render();
        assert!(
            text.contains("docket_commands_total{aggregate=\"ticket\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "docket_http_requests_total{route=\"/api/tickets/{id}\",method=\"GET\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("docket_http_request_duration_seconds_bucket{route=\"/api/tickets/{id}\",method=\"GET\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("docket_projector_failed{projector=\"workforce\"} 1"),
            "{text}"
        );
        assert!(text.contains("# HELP docket_commands_total"), "{text}");
    }

    #[test]
    fn samples_folded_by_the_upkeep_are_still_counted() {
        let metrics = Metrics::new();
        metrics.http_request("/health", "GET", 200, 0.001);
        metrics.run_upkeep();
        metrics.http_request("/health", "GET", 200, 0.002);
        let text = metrics.render();
        assert!(
            text.contains(
                "docket_http_request_duration_seconds_count{route=\"/health\",method=\"GET\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_operation_counts_into_the_same_series_as_its_route() {
        let metrics = Metrics::new();
        metrics.operation_request("get_ticket", "/api/tickets/{id}", "GET", 200, 0.001);
        metrics.operation_request("get_ticket", "/api/tickets/{id}", "GET", 200, 0.001);
        metrics.operation_request("get_ticket", "/api/tickets/{id}", "GET", 404, 0.001);
        let text = metrics.render();
        assert!(
            text.contains(
                "docket_http_requests_total{route=\"/api/tickets/{id}\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "docket_http_request_duration_seconds_count{route=\"/api/tickets/{id}\",method=\"GET\"} 3"
            ),
            "{text}"
        );
    }

    #[test]
    fn two_registries_do_not_share_figures() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.command_committed("user");
        assert!(!other.render().contains("aggregate=\"user\""));
    }
}
