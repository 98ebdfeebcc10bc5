//! `docket-replay`: read the event log the way auditors and analysts need to.
//!
//! * `history TICKET` — every event of a ticket, in order, straight from the log.
//! * `state TICKET --at INSTANT` — the ticket exactly as it was then, from the log alone.
//! * `rebuild [PROJECTION…|--all]` — rebuild projections from position zero beside the live
//!   ones and swap them in without downtime; `--verify` compares instead of swapping.
//! * `status` — where every projector stands.
//! * `what-if-sla --policies FILE` — every ticket re-lived under candidate SLA policies, beside
//!   what the log recorded; read-only.
//!
//! Exit codes: 0 success, 1 a verification found differences, 2 an error.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use docket_projections::log::{self, RecordedEvent};
use docket_projections::rebuild::{Difference, RebuildProgress, RebuildReport, RebuildSettings};
use docket_projections::registry;
use docket_projections::runtime;
use docket_projections::tickets::{self, CommentRow, TicketRow};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub mod what_if;

#[derive(Debug, Parser)]
#[command(
    name = "docket-replay",
    version,
    about = "Replay Docket's event log: history, state at an instant, rebuild and verify projections"
)]
pub struct Cli {
    /// The same database the server uses.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/docket",
        global = true
    )]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every event of a ticket, in order, from the log.
    History(HistoryArgs),
    /// A ticket exactly as it was at an instant, from the log alone.
    State(StateArgs),
    /// Rebuild projections from position zero and swap them in without downtime.
    Rebuild(RebuildArgs),
    /// Where each projector stands: checkpoint, lag, failure.
    Status(StatusArgs),
    /// Re-live tickets under candidate SLA policies and compare with what the log recorded.
    /// Read-only.
    WhatIfSla(what_if::WhatIfArgs),
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The ticket: its id (UUID) or number (`TKT-000042` or `42`).
    pub ticket: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The ticket: its id (UUID) or number (`TKT-000042` or `42`).
    pub ticket: String,
    /// The instant, RFC 3339 (`2026-11-20T10:00:00Z`).
    #[arg(long)]
    pub at: DateTime<Utc>,
    /// Use the time the log recorded each event instead of its business time: "what did the
    /// system know then" rather than "what had happened by then".
    #[arg(long)]
    pub recorded: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Projections to rebuild: tickets, users, audit, saved_searches, sla_config, workforce.
    pub projections: Vec<String>,
    /// Every projection.
    #[arg(long)]
    pub all: bool,
    /// Build afresh and compare with the live tables instead of swapping; print every
    /// difference and exit 1 if there is any.
    #[arg(long)]
    pub verify: bool,
    /// Events per batch.
    #[arg(long, default_value_t = 5_000)]
    pub batch_size: i64,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    // As the server connects: no TLS to a server on this host unless the URL asks for it.
    let pool = docket_projections::db::connect(&cli.database_url, 10, Duration::from_secs(30))
        .await
        .with_context(|| "cannot connect to the database (DATABASE_URL)")?;
    if let Command::WhatIfSla(args) = cli.command {
        // Read-only: no migrations either.
        return what_if::what_if(&pool, args, out).await;
    }
    docket_projections::db::migrate(&pool).await?;
    match cli.command {
        Command::History(args) => history(&pool, args, out).await,
        Command::State(args) => state(&pool, args, out).await,
        Command::Rebuild(args) => rebuild_command(&pool, args, out).await,
        Command::Status(args) => status(&pool, args, out).await,
        Command::WhatIfSla(_) => unreachable!("handled above"),
    }
}

/// A ticket id from a UUID, `TKT-000042` or `42`, looked up in the log itself.
pub async fn resolve_ticket(pool: &PgPool, reference: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(reference) {
        return Ok(id);
    }
    let number = docket_domain::values::TicketNumber::recognise(reference)
        .map(|n| n.0)
        .ok_or_else(|| anyhow!("`{reference}` is neither a ticket id nor a ticket number"))?;
    let id: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE aggregate_type = 'ticket' AND event_type = 'TicketCreated'
            AND (payload -> 'TicketCreated' ->> 'number')::bigint = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await?;
    let id = id.ok_or_else(|| anyhow!("no ticket has number {number}"))?;
    Ok(Uuid::parse_str(&id)?)
}

async fn ticket_events(
    pool: &PgPool,
    reference: &str,
) -> anyhow::Result<(Uuid, Vec<RecordedEvent>)> {
    let id = resolve_ticket(pool, reference).await?;
    let events = log::events_of_aggregate(pool, "ticket", &id.to_string()).await?;
    if events.is_empty() {
        bail!("no ticket with id {id}");
    }
    Ok((id, events))
}

/// Who did it: the request's user, except for what the server records on its own.
fn actor_of(event: &RecordedEvent) -> (Option<String>, Option<String>) {
    if docket_domain::ticket::TicketEvent::SYSTEM_EVENT_TYPES.contains(&event.event_type.as_str()) {
        return (Some(Uuid::nil().to_string()), Some("system".to_string()));
    }
    let metadata = event.metadata();
    (metadata.actor_id, metadata.actor_role)
}

fn business_time(event: &RecordedEvent) -> Option<DateTime<Utc>> {
    event
        .data()
        .get("occurred_at")
        .and_then(|v| v.as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

async fn history(
    pool: &PgPool,
    args: HistoryArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (id, events) = ticket_events(pool, &args.ticket).await?;
    if args.json {
        let entries: Vec<_> = events
            .iter()
            .map(|e| {
                let metadata = e.metadata();
                let (actor_id, actor_role) = actor_of(e);
                json!({
                    "sequence": e.sequence,
                    "position": e.global_position,
                    "type": e.event_type,
                    "version": e.event_version,
                    "occurred_at": business_time(e),
                    "recorded_at": e.recorded_at,
                    "actor": {"id": actor_id, "role": actor_role},
                    "ip": metadata.ip,
                    "correlation_id": metadata.correlation_id,
                    "data": e.data(),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({"ticket_id": id, "events": entries}))?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "ticket {id}: {} events", events.len())?;
    writeln!(
        out,
        "{:>4}  {:<25}  {:<22}  {:<10}  details",
        "seq", "occurred at", "event", "by"
    )?;
    for event in &events {
        let (_, actor_role) = actor_of(event);
        let mut details = event.data();
        if let Some(object) = details.as_object_mut() {
            for noise in [
                "occurred_at",
                "ticket_id",
                "created_by",
                "updated_by",
                "changed_by",
                "assigned_by",
                "escalated_by",
                "author",
            ] {
                object.remove(noise);
            }
        }
        let mut details = details.to_string();
        if details.chars().count() > 90 {
            details = format!("{}…", details.chars().take(89).collect::<String>());
        }
        writeln!(
            out,
            "{:>4}  {:<25}  {:<22}  {:<10}  {}",
            event.sequence,
            business_time(event)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            event.event_type,
            actor_role.unwrap_or_default(),
            details
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The ticket as the read model would show it, from the events up to the instant.
pub fn state_at(
    id: Uuid,
    events: &[RecordedEvent],
    at: DateTime<Utc>,
    recorded: bool,
) -> anyhow::Result<(Option<TicketRow>, Vec<CommentRow>, usize)> {
    let mut row = None;
    let mut comments = Vec::new();
    let mut applied = 0;
    for event in events {
        let instant = if recorded {
            Some(event.recorded_at)
        } else {
            business_time(event)
        };
        if instant.is_none_or(|t| t > at) {
            break;
        }
        let decoded = tickets::decode(event).map_err(|e| anyhow!("{e}"))?;
        if let Some(comment) =
            tickets::fold(&mut row, id, event.sequence, decoded).map_err(|e| anyhow!(e))?
        {
            comments.push(comment);
        }
        applied += 1;
    }
    Ok((row.map(|stored| stored.row), comments, applied))
}

async fn state(pool: &PgPool, args: StateArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let (id, events) = ticket_events(pool, &args.ticket).await?;
    let (row, comments, applied) = state_at(id, &events, args.at, args.recorded)?;
    if args.json {
        let document = json!({
            "ticket_id": id,
            "as_of": args.at,
            "clock": if args.recorded { "recorded" } else { "business" },
            "events_applied": applied,
            "events_total": events.len(),
            "ticket": row,
            "comments": comments,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(ticket) = row else {
        writeln!(
            out,
            "ticket {id} did not exist yet at {}",
            args.at.to_rfc3339()
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(
        out,
        "ticket {id} as of {} ({applied} of {} events)",
        args.at.to_rfc3339(),
        events.len()
    )?;
    let fields = [
        ("number", format!("TKT-{:06}", ticket.number)),
        ("subject", ticket.subject.clone()),
        ("status", ticket.status.to_string()),
        ("priority", ticket.priority.to_string()),
        ("category", ticket.category.clone().unwrap_or_default()),
        ("tags", ticket.tags.join(", ")),
        ("customer", ticket.customer_id.to_string()),
        (
            "assignee",
            ticket
                .assignee_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ),
        ("escalation", ticket.escalation_level.to_string()),
        ("comments", ticket.comment_count.to_string()),
        ("version", ticket.version.to_string()),
        ("updated", ticket.updated_at.to_rfc3339()),
    ];
    for (name, value) in fields {
        writeln!(out, "  {name:<11} {value}")?;
    }
    for comment in comments {
        writeln!(
            out,
            "  comment {} by {}{}: {}",
            comment.created_at.to_rfc3339(),
            comment.author_role,
            if comment.internal { " (internal)" } else { "" },
            comment.body
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(name: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} events {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}

fn show(bar: &ProgressBar) -> impl FnMut(RebuildProgress) + '_ {
    move |progress: RebuildProgress| {
        bar.set_length(progress.total.max(progress.applied));
        bar.set_position(progress.applied);
        bar.set_message(format!("{:.0} events/s", progress.events_per_second()));
    }
}

async fn rebuild_one(
    pool: &PgPool,
    name: &str,
    verify: bool,
    settings: RebuildSettings,
) -> anyhow::Result<Result<RebuildReport, Vec<Difference>>> {
    let Some(projector) = registry::named(name) else {
        bail!(
            "no projection named `{name}`; known: {}",
            registry::names().join(", ")
        );
    };
    let bar = progress_bar(name);
    let mut report = show(&bar);
    let outcome = if verify {
        Err(projector.verify(pool, settings, 1_000, &mut report).await?)
    } else {
        Ok(projector.rebuild(pool, settings, &mut report).await?)
    };
    bar.finish_and_clear();
    Ok(outcome)
}

async fn rebuild_command(
    pool: &PgPool,
    args: RebuildArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if args.all || args.projections.is_empty() {
        if !args.all {
            bail!(
                "name the projections to rebuild, or pass --all (known: {})",
                registry::names().join(", ")
            );
        }
        registry::names().iter().map(|p| p.to_string()).collect()
    } else {
        args.projections.clone()
    };
    let settings = RebuildSettings {
        batch_size: args.batch_size.max(1),
        ..RebuildSettings::default()
    };
    let mut reports = Vec::new();
    let mut differences = Vec::new();
    // Which projections a fresh build equals, and which it does not: the text and the JSON
    // say the same.
    let (mut verified, mut differing) = (Vec::new(), Vec::new());
    for name in &names {
        match rebuild_one(pool, name, args.verify, settings).await? {
            Ok(report) => {
                if !args.json {
                    writeln!(
                        out,
                        "{}: rebuilt {} events in {:.2} s ({:.0} events/s) and swapped in",
                        report.projector, report.events, report.seconds, report.events_per_second
                    )?;
                }
                reports.push(report);
            }
            Err(found) => {
                if !args.json {
                    if found.is_empty() {
                        writeln!(
                            out,
                            "{name}: a fresh rebuild equals the live tables (0 differences)"
                        )?;
                    } else {
                        writeln!(out, "{name}: {} differences", found.len())?;
                        for difference in &found {
                            writeln!(
                                out,
                                "  {} {}: {}",
                                difference.table, difference.side, difference.row
                            )?;
                        }
                    }
                }
                if found.is_empty() {
                    verified.push(name.clone());
                } else {
                    differing.push(name.clone());
                }
                differences.extend(found.into_iter().map(|difference| {
                    json!({"projection": name, "table": difference.table,
                           "side": difference.side, "row": difference.row})
                }));
            }
        }
    }
    if args.json {
        let document = if args.verify {
            json!({"verified": verified, "differing": differing, "differences": differences})
        } else {
            json!({"rebuilt": reports})
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    }
    Ok(if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn status(pool: &PgPool, args: StatusArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let statuses = runtime::statuses(pool, &registry::PROJECTORS).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&statuses)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for status in &statuses {
        writeln!(
            out,
            "{:<15} applied {:>9}  lag {:>7}  {}",
            status.projector,
            status.events_applied,
            status.lag,
            status
                .failure
                .as_deref()
                .map(|f| format!(
                    "STOPPED at {}: {f}",
                    status.failed_position.unwrap_or_default()
                ))
                .unwrap_or_else(|| "running".to_string())
        )?;
    }
    Ok(if statuses.iter().any(|s| s.failure.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
