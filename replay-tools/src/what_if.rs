//! `what-if-sla`: every ticket in a range re-lived from the log under candidate SLA policies,
//! beside what the log recorded. Read-only: one `REPEATABLE READ READ ONLY` transaction, so
//! the run sees one consistent log and cannot append to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use docket_domain::Priority;
use docket_domain::sla::config::SlaCalendar;
use docket_domain::sla::document::{CalendarDocument, PolicyDocument};
use docket_domain::sla::{BusinessCalendar, SlaCatalog, SlaMetric};
use docket_domain::ticket::{CandidateSla, RecordedSla, SlaOutcome, TicketEvent, TicketOutcomes};
use docket_projections::sla_config;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The candidate policies: a JSON array of policies shaped as `POST /api/sla/policies`
    /// takes them (what `GET /api/sla/policies` returns works too), or an object
    /// `{"calendars": [...], "policies": [...]}` whose calendars have an `id` the policies name
    /// in `calendar_id`. A `calendar_id` may also name a calendar already in the log.
    #[arg(long)]
    pub policies: PathBuf,
    /// Tickets created at or after this instant (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Tickets created before this instant.
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// The instant at which outcomes are judged; events after it are ignored. Default: now.
    #[arg(long)]
    pub at: Option<DateTime<Utc>>,
    /// How many flipped tickets to list (all are counted).
    #[arg(long, default_value_t = 50)]
    pub flips: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

// ---- the candidate file ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CandidateFile {
    Policies(Vec<CandidatePolicy>),
    Full {
        #[serde(default)]
        calendars: Vec<CandidateCalendar>,
        policies: Vec<CandidatePolicy>,
    },
}

/// A policy in the file: the API's request shape, with its id when copied from the API.
#[derive(Debug, Clone, Deserialize)]
struct CandidatePolicy {
    /// Kept when copied from the API; a fresh id otherwise.
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    position: i32,
    #[serde(flatten)]
    document: PolicyDocument,
}

/// A calendar in the file: the API's request shape, with the id policies name it by.
#[derive(Debug, Clone, Deserialize)]
struct CandidateCalendar {
    id: Uuid,
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    document: CalendarDocument,
}

impl CandidateCalendar {
    fn calendar(&self) -> anyhow::Result<BusinessCalendar> {
        self.document
            .calendar()
            .map_err(|e| anyhow!("calendar {}: {}: {}", self.id, e.field, e.reason))
    }
}

/// The candidate catalog: the file's policies, validated as the API would, with calendars from
/// the file or the log.
pub fn candidate_catalog(
    text: &str,
    log_calendars: &HashMap<Uuid, SlaCalendar>,
) -> anyhow::Result<SlaCatalog> {
    let file: CandidateFile = serde_json::from_str(text).context(
        "the candidate file is neither a list of policies nor {\"calendars\", \"policies\"}",
    )?;
    let (calendars, policies) = match file {
        CandidateFile::Policies(policies) => (vec![], policies),
        CandidateFile::Full {
            calendars,
            policies,
        } => (calendars, policies),
    };
    let mut known = log_calendars.clone();
    for calendar in &calendars {
        known.insert(
            calendar.id,
            SlaCalendar {
                id: Some(calendar.id),
                name: calendar.name.clone(),
                calendar: Some(calendar.calendar()?),
                version: 1,
            },
        );
    }
    let mut entries = Vec::with_capacity(policies.len());
    for (index, policy) in policies.iter().enumerate() {
        let definition = policy
            .document
            .definition()
            .and_then(|definition| definition.validate().map(|()| definition))
            .map_err(|e| {
                anyhow!(
                    "policies[{index}] ({}): {}: {}",
                    policy.document.name,
                    e.field,
                    e.reason
                )
            })?;
        if let Some(calendar) = definition.calendar_id
            && !known.contains_key(&calendar)
        {
            bail!(
                "policies[{index}] ({}): calendar {calendar} is neither in the file nor in the log",
                policy.document.name
            );
        }
        let id = policy.id.unwrap_or_else(Uuid::now_v7);
        entries.push((policy.position, id, 0, definition));
    }
    Ok(sla_config::catalog(entries, &known))
}

// ---- the report ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub met: u64,
    pub breached: u64,
    pub open: u64,
}

impl Tally {
    fn count(&mut self, outcome: SlaOutcome) {
        match outcome {
            SlaOutcome::Met => self.met += 1,
            SlaOutcome::Breached => self.breached += 1,
            SlaOutcome::Open => self.open += 1,
        }
    }

    /// met / (met + breached); `None` when nothing finished.
    pub fn compliance(&self) -> Option<f64> {
        let decided = self.met + self.breached;
        (decided > 0).then(|| self.met as f64 / decided as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ComplianceLine {
    pub priority: String,
    pub metric: String,
    pub actual: Tally,
    pub candidate: Tally,
    pub actual_compliance: Option<f64>,
    pub candidate_compliance: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flip {
    pub ticket_id: Uuid,
    pub number: String,
    pub priority: String,
    pub metric: String,
    pub actual: SlaOutcome,
    pub candidate: SlaOutcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhatIfReport {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub judged_at: DateTime<Utc>,
    pub candidate_policies: Vec<String>,
    pub events_read: u64,
    pub tickets: u64,
    /// Tickets in range whose log holds no SLA (they predate SLA tracking): only the candidate
    /// side counts them.
    pub untracked_tickets: u64,
    pub lines: Vec<ComplianceLine>,
    pub flipped_tickets: u64,
    pub flips_to_breached: u64,
    pub flips_to_met: u64,
    pub flips: Vec<Flip>,
    pub seconds: f64,
}

/// One ticket followed through the log both ways.
struct Followed {
    number: i64,
    recorded: RecordedSla,
    candidate: CandidateSla,
}

pub async fn what_if(
    pool: &PgPool,
    args: WhatIfArgs,
    out: &mut dyn Write,
) -> anyhow::Result<std::process::ExitCode> {
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.policies)
        .with_context(|| format!("cannot read {}", args.policies.display()))?;
    let judged_at = args.at.unwrap_or_else(Utc::now);

    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (_, log_calendars) = sla_config::config_from_log(&mut *tx).await?;
    let catalog = candidate_catalog(&text, &log_calendars)?;

    let mut tickets: HashMap<Uuid, Option<Followed>> = HashMap::new();
    let mut events_read = 0u64;
    {
        let mut rows = sqlx::query_as::<_, (String, String, String)>(
            "SELECT aggregate_id, event_version, payload::text FROM events
              WHERE aggregate_type = 'ticket' ORDER BY global_position",
        )
        .fetch(&mut *tx);
        while let Some((aggregate_id, version, payload)) = rows.try_next().await? {
            events_read += 1;
            if version != "1" {
                bail!("ticket {aggregate_id}: unknown event_version {version}");
            }
            let id = Uuid::parse_str(&aggregate_id)
                .with_context(|| format!("`{aggregate_id}` is not a ticket id"))?;
            let event: TicketEvent = serde_json::from_str(&payload)
                .with_context(|| format!("ticket {id}: an event cannot be read"))?;
            if event.occurred_at() > judged_at {
                continue;
            }
            let entry = tickets.entry(id).or_insert_with(|| match &event {
                TicketEvent::TicketCreated {
                    number,
                    occurred_at,
                    ..
                } if args.from.is_none_or(|from| *occurred_at >= from)
                    && args.to.is_none_or(|to| *occurred_at < to) =>
                {
                    Some(Followed {
                        number: number.0,
                        recorded: RecordedSla::default(),
                        candidate: CandidateSla::default(),
                    })
                }
                _ => None,
            });
            if let Some(followed) = entry {
                followed.candidate.observe(&event, &catalog);
                followed.recorded.observe(event);
            }
        }
    }
    tx.rollback().await?;

    // Most urgent priority first.
    type LineKey = (std::cmp::Reverse<i16>, SlaMetric);
    let mut lines: BTreeMap<LineKey, (Priority, Tally, Tally)> = BTreeMap::new();
    let mut flips = Vec::new();
    let (mut flipped_tickets, mut to_breached, mut to_met, mut untracked, mut counted) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut followed: Vec<(Uuid, Followed)> = tickets
        .into_iter()
        .filter_map(|(id, f)| f.map(|f| (id, f)))
        .collect();
    followed.sort_by_key(|(_, f)| f.number);
    for (id, mut ticket) in followed {
        let Some(priority) = ticket.recorded.state().map(|s| s.priority) else {
            continue;
        };
        counted += 1;
        let recorded = ticket.recorded.outcomes(judged_at);
        let candidate = ticket.candidate.outcomes(judged_at).unwrap_or_default();
        if recorded.is_none() {
            untracked += 1;
        }
        let recorded = recorded.unwrap_or_else(TicketOutcomes::default);
        let mut flipped = false;
        let metrics: BTreeSet<SlaMetric> = recorded
            .metrics
            .keys()
            .chain(candidate.metrics.keys())
            .copied()
            .collect();
        for metric in metrics {
            let (_, actual_tally, candidate_tally) = lines
                .entry((std::cmp::Reverse(priority.urgency()), metric))
                .or_insert((priority, Tally::default(), Tally::default()));
            let actual = recorded.metrics.get(&metric).copied();
            let relived = candidate.metrics.get(&metric).copied();
            if let Some(actual) = actual {
                actual_tally.count(actual);
            }
            if let Some(relived) = relived {
                candidate_tally.count(relived);
            }
            let flip = match (actual, relived) {
                (Some(SlaOutcome::Met), Some(SlaOutcome::Breached)) => {
                    to_breached += 1;
                    true
                }
                (Some(SlaOutcome::Breached), Some(SlaOutcome::Met)) => {
                    to_met += 1;
                    true
                }
                _ => false,
            };
            if flip {
                flipped = true;
                if flips.len() < args.flips {
                    flips.push(Flip {
                        ticket_id: id,
                        number: format!("TKT-{:06}", ticket.number),
                        priority: priority.as_str().to_string(),
                        metric: metric.as_str().to_string(),
                        actual: actual.unwrap_or(SlaOutcome::Open),
                        candidate: relived.unwrap_or(SlaOutcome::Open),
                    });
                }
            }
        }
        flipped_tickets += u64::from(flipped);
    }
    let report = WhatIfReport {
        from: args.from,
        to: args.to,
        judged_at,
        candidate_policies: catalog.policies.iter().map(|p| p.name.clone()).collect(),
        events_read,
        tickets: counted,
        untracked_tickets: untracked,
        lines: lines
            .into_iter()
            .map(
                |((_, metric), (priority, actual, candidate))| ComplianceLine {
                    priority: priority.as_str().to_string(),
                    metric: metric.as_str().to_string(),
                    actual_compliance: actual.compliance(),
                    candidate_compliance: candidate.compliance(),
                    actual,
                    candidate,
                },
            )
            .collect(),
        flipped_tickets,
        flips_to_breached: to_breached,
        flips_to_met: to_met,
        flips,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        render(&report, out)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

fn render(report: &WhatIfReport, out: &mut dyn Write) -> anyhow::Result<()> {
    let range = match (report.from, report.to) {
        (None, None) => "all tickets".to_string(),
        (from, to) => format!(
            "tickets created {} … {}",
            from.map_or("the beginning".into(), |t| t.to_rfc3339()),
            to.map_or("now".into(), |t| t.to_rfc3339())
        ),
    };
    writeln!(
        out,
        "What-if SLA over {range}, judged at {}: {} tickets from {} events in {:.1} s",
        report.judged_at.to_rfc3339(),
        report.tickets,
        report.events_read,
        report.seconds
    )?;
    writeln!(
        out,
        "candidate policies, in order: {} (then the default)",
        if report.candidate_policies.is_empty() {
            "none".to_string()
        } else {
            report.candidate_policies.join(", ")
        }
    )?;
    if report.untracked_tickets > 0 {
        writeln!(
            out,
            "{} tickets predate SLA tracking: they count on the candidate side only",
            report.untracked_tickets
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<9} {:<15} {:>21}   {:>21}   {:>8}",
        "", "", "actual", "candidate", ""
    )?;
    writeln!(
        out,
        "{:<9} {:<15} {:>6} {:>6} {:>7}   {:>6} {:>6} {:>7}   {:>8}",
        "priority", "metric", "met", "late", "rate", "met", "late", "rate", "change"
    )?;
    for line in &report.lines {
        let change = match (line.actual_compliance, line.candidate_compliance) {
            (Some(a), Some(c)) => format!("{:+.1} pt", (c - a) * 100.0),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:<9} {:<15} {:>6} {:>6} {:>7}   {:>6} {:>6} {:>7}   {:>8}",
            line.priority,
            line.metric,
            line.actual.met,
            line.actual.breached,
            percent(line.actual_compliance),
            line.candidate.met,
            line.candidate.breached,
            percent(line.candidate_compliance),
            change
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} tickets flip: {} outcomes from met to breached, {} from breached to met",
        report.flipped_tickets, report.flips_to_breached, report.flips_to_met
    )?;
    for flip in &report.flips {
        writeln!(
            out,
            "  {}  {:<9} {:<15} {} → {}",
            flip.number,
            flip.priority,
            flip.metric,
            flip.actual.as_str(),
            flip.candidate.as_str()
        )?;
    }
    let listed = report.flips.len() as u64;
    let total = report.flips_to_breached + report.flips_to_met;
    if total > listed {
        writeln!(
            out,
            "  … and {} more (--flips N lists more)",
            total - listed
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_domain::TicketStatus;

    fn calendars() -> HashMap<Uuid, SlaCalendar> {
        HashMap::new()
    }

    const TARGETS: &str = r#"{"critical": {"first_response": 60, "resolution": 600, "escalation": 300},
        "high": {"first_response": 120, "resolution": 1200, "escalation": 600},
        "medium": {"first_response": 240, "resolution": 2400, "escalation": 1200},
        "low": {"first_response": 480, "resolution": 4800, "escalation": 2400}}"#;

    #[test]
    fn a_plain_list_of_policies_becomes_an_ordered_catalog() {
        let text = format!(
            r#"[{{"name": "Second", "position": 2, "targets": {TARGETS}}},
                {{"name": "First", "position": 1, "conditions": {{"priorities": ["high"]}},
                  "pause_statuses": ["on_hold"], "targets": {TARGETS}}}]"#
        );
        let catalog = candidate_catalog(&text, &calendars()).unwrap();
        let names: Vec<&str> = catalog.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["First", "Second"]);
        assert_eq!(catalog.policies[0].pause_statuses, [TicketStatus::OnHold]);
        assert_eq!(catalog.policies[0].targets.high.next_response, 120);
        assert_eq!(catalog.policies[1].at_risk_percent, 75);
    }

    #[test]
    fn calendars_in_the_file_are_validated_and_resolved() {
        let calendar = Uuid::now_v7();
        let text = format!(
            r#"{{"calendars": [{{"id": "{calendar}", "timezone": "Europe/Berlin",
                   "hours": {{"monday": [{{"start": "09:00", "end": "17:00"}}]}}}}],
                 "policies": [{{"name": "Office", "calendar_id": "{calendar}", "targets": {TARGETS}}}]}}"#
        );
        let catalog = candidate_catalog(&text, &calendars()).unwrap();
        assert_eq!(
            catalog.policies[0].calendar.timezone,
            chrono_tz::Europe::Berlin
        );
        let bad_zone = text.replace("Europe/Berlin", "Europe/Atlantis");
        let error = candidate_catalog(&bad_zone, &calendars()).unwrap_err();
        assert!(error.to_string().contains("Europe/Atlantis"), "{error}");
        let missing = format!(
            r#"[{{"name": "Lost", "calendar_id": "{}", "targets": {TARGETS}}}]"#,
            Uuid::now_v7()
        );
        let error = candidate_catalog(&missing, &calendars()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("neither in the file nor in the log")
        );
    }

    #[test]
    fn invalid_targets_are_refused_with_the_policy_named() {
        let zero = TARGETS.replacen("\"first_response\": 60", "\"first_response\": 0", 1);
        let text = format!(r#"[{{"name": "Zero", "targets": {zero}}}]"#);
        let error = candidate_catalog(&text, &calendars()).unwrap_err();
        assert!(error.to_string().contains("policies[0] (Zero)"), "{error}");
        assert!(candidate_catalog("{\"nonsense\": 1}", &calendars()).is_err());
    }
}
