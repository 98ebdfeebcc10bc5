//! `docket-bench`: starts from an empty database, runs each load, and writes `bench-report.md`
//! and `bench-report.json`. Every figure sits next to a baseline measured in the same run on
//! the same machine, because only ratios survive a noisy machine.
//!
//! `cargo run --release -p docket-bench` for the full run (1,000,000 events);
//! `cargo run --release -p docket-bench -- --quick` for a small one (what CI runs).

#![allow(clippy::expect_used)]

mod automation;
mod charts;
mod commands;
mod outbound;
mod routing;
mod sla;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use charts::{Chart, Series};
use chrono::{DateTime, Utc};
use clap::Parser;
use docket_api::config::{Secret, Settings};
use docket_api::startup::Application;
use docket_projections::audit::AuditProjection;
use docket_projections::rebuild::{self, RebuildSettings};
use docket_projections::tickets::TicketsProjection;
use docket_projections::workforce::WorkforceProjection;
use docket_tests::live::SseClient;
use docket_tests::synthetic;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "docket-bench",
    about = "Measure Docket against baselines from the same run"
)]
struct Args {
    /// Small sizes, for CI: finishes in well under two minutes.
    #[arg(long)]
    quick: bool,
    /// The PostgreSQL server (its maintenance database); a fresh database is created on it.
    #[arg(
        long,
        env = "DOCKET_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Report path without extension: writes `<out>.md` and `<out>.json`.
    #[arg(long, default_value = "bench-report")]
    out: String,
    /// Keep the benchmark database afterwards (for inspection).
    #[arg(long)]
    keep_database: bool,
    /// Override the number of tickets (each has ten events).
    #[arg(long)]
    tickets: Option<i64>,
    /// Override the number of tickets whose SLA deadlines fall in the same minute.
    #[arg(long)]
    storm_tickets: Option<i64>,
    /// Run only some of the loads (the log-based ones share one synthetic log).
    #[arg(long, value_enum, default_value_t = Section::All)]
    only: Section,
    /// Serve the API on a free port of this database and print `listening <port>` (how the
    /// benchmark runs a server in its own process).
    #[arg(long, hide = true, value_name = "DATABASE_URL")]
    serve: Option<String>,
}

/// Groups of loads that can run alone: each but `log` has a database of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    All,
    /// The synthetic log: rebuilds, reads, live stream, SLA backfill and what-if replay.
    Log,
    /// The SLA deadline storm.
    Storm,
    /// HTTP commands beside pgbench.
    Commands,
    /// Routing decisions.
    Routing,
    /// Webhook deliveries and mail.
    Outbound,
    /// Webhook deliveries alone.
    Webhooks,
    /// Mail alone.
    Mail,
    /// Automation rules decided in memory.
    Automation,
}

impl Section {
    fn includes(self, section: Section) -> bool {
        self == Section::All
            || self == section
            || (self == Section::Outbound && matches!(section, Section::Webhooks | Section::Mail))
    }
}

struct Sizes {
    tickets: i64,
    storm: sla::StormSizes,
    routing: routing::RoutingSizes,
    commands: commands::CommandSizes,
    outbound: outbound::OutboundSizes,
    comments_per_ticket: i64,
    requests_per_query: usize,
    concurrency: usize,
    live_messages: usize,
    /// Reads measured right after the reader's own write.
    own_writes: usize,
}

impl Sizes {
    fn events(&self) -> i64 {
        self.tickets * (self.comments_per_ticket + 2)
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    load: String,
    metric: String,
    value: f64,
    unit: String,
    baseline: Option<String>,
    baseline_value: Option<f64>,
    target: Option<String>,
    pass: Option<bool>,
}

impl Figure {
    pub(crate) fn new(load: &str, metric: &str, value: f64, unit: &str) -> Self {
        Self {
            load: load.to_string(),
            metric: metric.to_string(),
            value,
            unit: unit.to_string(),
            baseline: None,
            baseline_value: None,
            target: None,
            pass: None,
        }
    }

    pub(crate) fn baseline(mut self, name: &str, value: f64) -> Self {
        self.baseline = Some(name.to_string());
        self.baseline_value = Some(value);
        self
    }

    pub(crate) fn target(mut self, text: &str, pass: bool) -> Self {
        self.target = Some(text.to_string());
        self.pass = Some(pass);
        self
    }
}

#[derive(Debug, Serialize)]
struct Report {
    generated_at: DateTime<Utc>,
    mode: String,
    cores: usize,
    postgres: String,
    events: i64,
    tickets: i64,
    figures: Vec<Figure>,
    #[serde(skip)]
    series: Vec<Series>,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn database_url(admin: &str, name: &str) -> String {
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin}/{name}"),
    }
}

/// mimalloc instead of the system allocator: decoding and folding events allocates and frees
/// many small values, where glibc's malloc spent a fifth of a rebuild's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(url) = &args.serve {
        return serve(url).await;
    }
    let sizes = if args.quick {
        Sizes {
            tickets: 2_000,
            storm: sla::StormSizes {
                tickets: 2_000,
                lead: Duration::from_secs(25),
                idle_window: Duration::from_secs(3),
            },
            routing: routing::RoutingSizes {
                agents: 200,
                tickets: 5_000,
                decisions: 200,
            },
            commands: commands::CommandSizes {
                tickets: 300,
                connections: 32,
                mix: Duration::from_secs(5),
                hot: Duration::from_secs(3),
                baseline: Duration::from_secs(3),
            },
            outbound: outbound::OutboundSizes {
                rates: vec![200, 50],
                seconds: 3,
                endpoints: 10,
                mails: 300,
            },
            comments_per_ticket: 8,
            requests_per_query: 200,
            concurrency: 8,
            live_messages: 40,
            own_writes: 100,
        }
    } else {
        Sizes {
            tickets: 100_000,
            storm: sla::StormSizes {
                tickets: 100_000,
                lead: Duration::from_secs(300),
                idle_window: Duration::from_secs(10),
            },
            routing: routing::RoutingSizes {
                agents: 1_000,
                tickets: 100_000,
                decisions: 2_000,
            },
            commands: commands::CommandSizes {
                tickets: 10_000,
                connections: 32,
                mix: Duration::from_secs(60),
                hot: Duration::from_secs(30),
                baseline: Duration::from_secs(20),
            },
            outbound: outbound::OutboundSizes {
                rates: vec![200, 50],
                seconds: 20,
                endpoints: 10,
                mails: 2_000,
            },
            comments_per_ticket: 8,
            requests_per_query: 2_000,
            concurrency: 8,
            live_messages: 300,
            own_writes: 500,
        }
    };
    let sizes = Sizes {
        tickets: args.tickets.unwrap_or(sizes.tickets),
        storm: sla::StormSizes {
            tickets: args.storm_tickets.unwrap_or(sizes.storm.tickets),
            ..sizes.storm
        },
        ..sizes
    };
    let name = format!("docket_bench_{}", Utc::now().format("%Y%m%d%H%M%S"));
    let url = database_url(&args.database_url, &name);
    docket_projections::db::ensure_database(&url).await?;
    let pool = docket_projections::db::connect(&url, 8, Duration::from_secs(30)).await?;
    docket_projections::db::migrate(&pool).await?;
    let storm_url = database_url(&args.database_url, &format!("{name}_sla"));
    docket_projections::db::ensure_database(&storm_url).await?;
    let storm_pool =
        docket_projections::db::connect(&storm_url, 8, Duration::from_secs(30)).await?;
    docket_projections::db::migrate(&storm_pool).await?;
    let routing_url = database_url(&args.database_url, &format!("{name}_routing"));
    docket_projections::db::ensure_database(&routing_url).await?;
    let routing_pool =
        docket_projections::db::connect(&routing_url, 8, Duration::from_secs(30)).await?;
    docket_projections::db::migrate(&routing_pool).await?;
    let outbound_url = database_url(&args.database_url, &format!("{name}_outbound"));
    docket_projections::db::ensure_database(&outbound_url).await?;
    let commands_url = database_url(&args.database_url, &format!("{name}_commands"));
    docket_projections::db::ensure_database(&commands_url).await?;
    let commands_pool =
        docket_projections::db::connect(&commands_url, 4, Duration::from_secs(30)).await?;
    docket_projections::db::migrate(&commands_pool).await?;
    let databases = Databases {
        url: &url,
        pool: &pool,
        storm_url: &storm_url,
        storm_pool: &storm_pool,
        routing_url: &routing_url,
        routing_pool: &routing_pool,
        commands_url: &commands_url,
        commands_pool: &commands_pool,
        outbound_url: &outbound_url,
    };
    let result = run(&args, &sizes, &databases).await;
    pool.close().await;
    storm_pool.close().await;
    routing_pool.close().await;
    commands_pool.close().await;
    if !args.keep_database {
        let admin = PgPool::connect(&args.database_url).await?;
        for database in [
            name.clone(),
            format!("{name}_sla"),
            format!("{name}_routing"),
            format!("{name}_commands"),
            format!("{name}_outbound"),
        ] {
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .execute(&admin)
            .await?;
        }
    }
    let report = result?;
    write_report(&args.out, &report)?;
    println!("wrote {0}.md and {0}.json", args.out);
    Ok(())
}

/// The benchmark's databases: the main log, the deadline storm's, the routing load's.
struct Databases<'a> {
    url: &'a str,
    pool: &'a PgPool,
    storm_url: &'a str,
    storm_pool: &'a PgPool,
    routing_url: &'a str,
    routing_pool: &'a PgPool,
    commands_url: &'a str,
    commands_pool: &'a PgPool,
    outbound_url: &'a str,
}

async fn run(args: &Args, sizes: &Sizes, databases: &Databases<'_>) -> anyhow::Result<Report> {
    let Databases {
        url,
        pool,
        storm_url,
        storm_pool,
        routing_url,
        routing_pool,
        commands_url,
        commands_pool,
        outbound_url,
    } = *databases;
    let postgres: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(pool)
        .await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut figures = Vec::new();
    let mut series: Vec<Series> = Vec::new();

    let written = if args.only.includes(Section::Log) {
        log_loads(url, pool, sizes, &mut figures, &mut series).await?
    } else {
        0
    };

    // 8. Deadlines falling in the same minute, on a database of their own.
    if args.only.includes(Section::Storm) {
        sla::deadline_storm(storm_url, storm_pool, &sizes.storm, &mut figures).await?;
    }

    // 9. Writes over HTTP against a server process of its own, beside pgbench's commits.
    if args.only.includes(Section::Commands) {
        commands::run(
            commands_url,
            commands_pool,
            &sizes.commands,
            &mut figures,
            &mut series,
        )
        .await?;
    }

    // 10. Routing decisions among many agents while many tickets are open.
    // (A failure here is reported, not allowed to lose the figures above.)
    if args.only.includes(Section::Routing)
        && let Err(error) =
            routing::decisions(routing_url, routing_pool, &sizes.routing, &mut figures).await
    {
        eprintln!("routing load failed: {error:#}");
    }

    // 11. Automation rules decided in memory, per event.
    if args.only.includes(Section::Automation) {
        automation::evaluation(&mut figures)?;
    }

    // 12. Webhook deliveries to several endpoints while tickets are opened at a steady rate.
    if args.only.includes(Section::Webhooks) {
        outbound::webhooks(outbound_url, &sizes.outbound, &mut figures).await?;
    }
    if args.only.includes(Section::Mail) {
        outbound::mail(outbound_url, &sizes.outbound, &mut figures).await?;
    }

    for figure in &figures {
        show(figure);
    }
    Ok(Report {
        generated_at: Utc::now(),
        mode: if args.quick { "quick" } else { "full" }.to_string(),
        cores,
        postgres,
        events: written,
        tickets: sizes.tickets,
        figures,
        series,
    })
}

/// Steps 1–7: the synthetic log and everything measured on it. Returns the events written.
async fn log_loads(
    url: &str,
    pool: &PgPool,
    sizes: &Sizes,
    figures: &mut Vec<Figure>,
    series: &mut Vec<Series>,
) -> anyhow::Result<i64> {
    // 1. The log: written straight into `events`, as the domain would write it.
    eprintln!("writing {} events…", sizes.events());
    let started = Instant::now();
    let customer = Uuid::now_v7();
    let written =
        synthetic::write_log(pool, customer, sizes.tickets, sizes.comments_per_ticket).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    // What autovacuum would do soon after such a load; without it the planner guesses blind.
    sqlx::query("ANALYZE events").execute(pool).await?;
    figures.push(Figure::new(
        "event log",
        "events written (set-based SQL, with triggers)",
        written as f64 / load_seconds,
        "events/s",
    ));

    // 2. Baseline: INSERT … SELECT of the same rows in the same order.
    eprintln!("baseline: INSERT … SELECT of {written} rows…");
    sqlx::query(
        "CREATE TABLE bench_copy (aggregate_type text, aggregate_id text, sequence bigint,
           event_type text, event_version text, payload jsonb, metadata jsonb)",
    )
    .execute(pool)
    .await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO bench_copy SELECT aggregate_type, aggregate_id, sequence, event_type,
           event_version, payload, metadata FROM events ORDER BY transaction_id, global_position",
    )
    .execute(pool)
    .await?;
    let copy_rate = written as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_copy").execute(pool).await?;

    // 3. Rebuilds from position zero.
    eprintln!("rebuilding the tickets projection…");
    let tickets =
        rebuild::rebuild(&TicketsProjection, pool, RebuildSettings::default(), |_| {}).await?;
    let rebuild_pass = tickets.events_per_second >= 100_000.0;
    figures.push(
        Figure::new(
            "projection rebuild (tickets + comments + search vectors)",
            "events applied",
            tickets.events_per_second,
            "events/s",
        )
        .baseline("INSERT … SELECT of the same rows", copy_rate)
        .target(">= 100,000 events/s", rebuild_pass),
    );
    eprintln!("rebuilding the audit projection…");
    let audit =
        rebuild::rebuild(&AuditProjection, pool, RebuildSettings::default(), |_| {}).await?;
    figures.push(
        Figure::new(
            "projection rebuild (audit trail)",
            "events applied",
            audit.events_per_second,
            "events/s",
        )
        .baseline("INSERT … SELECT of the same rows", copy_rate),
    );

    eprintln!("rebuilding the workforce projection…");
    let workforce = rebuild::rebuild(
        &WorkforceProjection,
        pool,
        RebuildSettings::default(),
        |_| {},
    )
    .await?;
    figures.push(
        Figure::new(
            "projection rebuild (workforce: routing tickets and agent loads)",
            "events read and applied",
            workforce.events_per_second,
            "events/s",
        )
        .baseline("INSERT … SELECT of the same rows", copy_rate),
    );

    // A freshly loaded database, as autovacuum would leave it soon after: measuring reads
    // while it vacuums a million new rows would measure autovacuum.
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;

    // 4. The server, on the same database, over HTTP.
    let (stop, server, address) = start_server_at(url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(sizes.concurrency * 2)
        .build()?;
    let login: serde_json::Value = client
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": "bench@docket.test", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("no token")?
        .to_string();
    wait_ready(&client, &address).await?;

    // 4b. The log predates SLA tracking: the server gives every open ticket its clocks from
    // creation, and records every deadline that has passed since. Reads are measured after.
    eprintln!("SLA backfill of the open tickets…");
    let started = Instant::now();
    let backfilled = sla::backfill_settles(pool, Duration::from_secs(1_800)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let label = "SLA backfill at start-up (policy, clocks, passed deadlines)";
    figures.push(Figure::new(
        label,
        "tickets backfilled",
        backfilled as f64,
        "tickets",
    ));
    figures.push(Figure::new(
        label,
        "tickets settled",
        backfilled as f64 / seconds,
        "tickets/s",
    ));
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;

    // 5. Reads.
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM tickets_view ORDER BY random() LIMIT 500")
            .fetch_all(pool)
            .await?;
    let words = ["vpn", "printer", "invoice", "login", "email"];
    let phrases = [
        "vpn drops",
        "printer jams",
        "invoice wrong",
        "login fails",
        "email bounces",
    ];
    let tickets = sizes.tickets;
    let statuses = ["open", "in_progress", "pending", "resolved"];
    let priorities = ["critical", "high", "medium", "low"];
    let queries: Vec<(&str, PathFor)> = vec![
        (
            "GET /api/tickets?status=…&priority=… (two filters, page of 20)",
            Box::new(move |i| {
                format!(
                    "/api/tickets?status={}&priority={}&page={}&page_size=20",
                    statuses[i % 4],
                    priorities[(i / 4) % 4],
                    1 + i % 5
                )
            }),
        ),
        (
            "GET /api/search?q=… selective (a few matches), ranked, with snippets",
            Box::new(move |i| {
                format!(
                    "/api/search?q={}&page_size=20",
                    1 + (i as i64 * 7919) % tickets
                )
            }),
        ),
        (
            "GET /api/search?q=… broad (a fifth of all tickets match), ranked, with snippets",
            Box::new(move |i| format!("/api/search?q={}&page_size=20", words[i % words.len()])),
        ),
        (
            "GET /api/search?q=… broad, two words (a fifth of all tickets match both), ranked, with snippets",
            Box::new(move |i| {
                format!(
                    "/api/search?q={}&page_size=20",
                    phrases[i % phrases.len()].replace(' ', "%20")
                )
            }),
        ),
        (
            "GET /api/tickets/{id} (one ticket with its comments)",
            Box::new({
                let ids = ids.clone();
                move |i| format!("/api/tickets/{}", ids[i % ids.len().max(1)])
            }),
        ),
    ];
    eprintln!(
        "baseline: pgbench primary-key SELECT at {} clients…",
        sizes.concurrency
    );
    let select = commands::pgbench(
        url,
        "select",
        &format!(
            "\\set number random(1, {})\nSELECT * FROM tickets_view WHERE number = :number;\n",
            sizes.tickets.max(1)
        ),
        sizes.concurrency,
        sizes.commands.baseline,
    )
    .await?;
    let select_p50 = percentile(&select.latencies, 50.0);
    let select_p99 = percentile(&select.latencies, 99.0);
    series.push(Series::new(
        Chart::Reads,
        "pgbench primary-key SELECT",
        &select.latencies,
    ));
    // The first search for a broad query ranks every match (and registers the query, so
    // that its later searches read a page of ranks kept ahead): once, timed alone.
    let first = Instant::now();
    let response = client
        .get(format!("{address}/api/search?q=network&page_size=20"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "first broad search failed");
    response.bytes().await?;
    figures.push(Figure::new(
        "GET /api/search?q=… broad, its first time (ranks every match, then ranks it ahead)",
        "latency",
        first.elapsed().as_secs_f64() * 1000.0,
        "ms",
    ));
    // The single-ticket read, as the baseline of the read right after an own write below.
    let mut single = (0.0, 0.0);
    for (label, path) in &queries {
        eprintln!("reads: {label}…");
        // A broad query's first search ranks every match and has it ranked ahead in the
        // background; that cost is the "first time" figure above. These figures are the
        // steady state, so each broad query is searched once and its registration awaited.
        let broad: &[&str] = if label.contains("broad, two words") {
            &phrases
        } else if label.contains("broad") {
            &words
        } else {
            &[]
        };
        rank_ahead(&client, &address, &token, pool, broad).await?;
        let bearer = Credential::Bearer(token.clone());
        let latencies = measure_reads(&client, &address, &bearer, path.as_ref(), sizes).await?;
        let p50 = percentile(&latencies, 50.0);
        let p99 = percentile(&latencies, 99.0);
        if label.starts_with("GET /api/tickets/{id}") {
            single = (p50, p99);
        }
        figures.push(
            Figure::new(label, "p50 latency", p50, "ms")
                .baseline("pgbench primary-key SELECT p50", select_p50),
        );
        figures.push(
            Figure::new(label, "p99 latency", p99, "ms")
                .baseline("pgbench primary-key SELECT p99", select_p99)
                .target("<= 25 ms", p99 <= 25.0),
        );
        series.push(Series::new(
            Chart::Reads,
            label
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .as_str(),
            &latencies,
        ));
    }

    // 5a. The same single-ticket read by an integration with an API key, beside the token's:
    // what checking a key (its row remembered for the account-freshness window) costs.
    eprintln!("reads with an API key…");
    let made = client
        .post(format!("{address}/api/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "bench", "role": "admin"}))
        .send()
        .await?;
    anyhow::ensure!(made.status().is_success(), "making an API key failed");
    let key: serde_json::Value = made.json().await?;
    let key = Credential::ApiKey(key["key"].as_str().unwrap_or_default().to_string());
    let by_key = measure_reads(
        &client,
        &address,
        &key,
        &|i| format!("/api/tickets/{}", ids[i % ids.len().max(1)]),
        sizes,
    )
    .await?;
    let label = "GET /api/tickets/{id} with an API key (X-API-Key)";
    figures.push(
        Figure::new(label, "p50 latency", percentile(&by_key, 50.0), "ms")
            .baseline("the same read with an access token, p50", single.0),
    );
    figures.push(
        Figure::new(label, "p99 latency", percentile(&by_key, 99.0), "ms")
            .baseline("the same read with an access token, p99", single.1),
    );

    // 5b. A read right after the reader's own write: a comment, then at once the ticket, which
    // waits until the tickets projector has applied the comment (ADR 0013).
    eprintln!("reads right after own writes…");
    // Closed tickets take no comments.
    let open: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM tickets_view WHERE status <> 'closed' ORDER BY random() LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    let latencies =
        measure_read_after_write(&client, &address, &token, &open, sizes.own_writes).await?;
    let label = "GET /api/tickets/{id} right after the reader's own comment on it (waits for it)";
    figures.push(
        Figure::new(label, "p50 latency", percentile(&latencies, 50.0), "ms")
            .baseline("the same read with no own write before it, p50", single.0),
    );
    figures.push(
        Figure::new(label, "p99 latency", percentile(&latencies, 99.0), "ms")
            .baseline("the same read with no own write before it, p99", single.1),
    );
    series.push(Series::new(
        Chart::Reads,
        "read after own write",
        &latencies,
    ));

    // 5c. The web app's pages, rendered on the server, beside the API reads of the same data.
    eprintln!("web pages…");
    web_pages(&client, &address, &token, &open, sizes, figures).await?;

    // 6. Live stream: commit → connected client.
    eprintln!("live stream latency…");
    let latencies = measure_live(&client, &address, &token, &ids, sizes.live_messages).await?;
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    series.push(Series::new(
        Chart::Reads,
        "live stream: recorded → client",
        &latencies,
    ));
    let label = "live stream (SSE): event recorded → client received";
    figures.push(Figure::new(label, "p50 latency", p50, "ms"));
    figures.push(Figure::new(label, "p99 latency", p99, "ms").target("<= 50 ms", p99 <= 50.0));
    figures.push(Figure::new(
        label,
        "messages measured",
        latencies.len() as f64,
        "messages",
    ));

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), server).await;

    // 7. What-if replay over everything the log now holds.
    eprintln!("what-if SLA replay…");
    sla::what_if(url, pool, figures).await?;

    Ok(written)
}

type Running = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    String,
);

/// The server on `url`, as the benchmark runs it: in this process, on a free port.
async fn start_server_at(url: &str) -> anyhow::Result<Running> {
    let app = Application::build(bench_settings(url)).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, server) = serve_in_background(app);
    Ok((stop, server, address))
}

/// Runs `app` on this process's runtime until the sender is used (or dropped).
pub(crate) fn serve_in_background(
    app: Application,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, server)
}

/// `docket-bench --serve URL`: the server alone, as [`commands::ServerProcess`] starts it.
async fn serve(url: &str) -> anyhow::Result<()> {
    let app = Application::build(bench_settings(url)).await?;
    println!("listening {}", app.port());
    app.run_until_stopped(std::future::pending()).await?;
    Ok(())
}

/// The server's settings in every load: the bench admin, long tokens, no rate limits.
pub(crate) fn bench_settings(url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.database_url = url.to_string();
    settings.listen = "127.0.0.1:0".to_string();
    settings.jwt_secret = Some(Secret::new("docket-bench-secret-0123456789-0123456789"));
    settings.admin_email = Some("bench@docket.test".to_string());
    settings.admin_password = Some(Secret::new("bench-password"));
    settings.access_token_ttl_secs = 6 * 3600;
    // The load generator is one address acting as many clients.
    settings.rate_limit_per_address = 0;
    settings.rate_limit_per_user = 0;
    settings.sign_in_limit_per_minute = 0;
    settings
}

pub(crate) async fn start_server(
    url: &str,
) -> anyhow::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let (stop, server, _) = start_server_at(url).await?;
    Ok((stop, server))
}

/// The request path for the i-th request of a load.
type PathFor = Box<dyn Fn(usize) -> String + Send + Sync>;

pub(crate) async fn wait_ready(client: &reqwest::Client, address: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{address}/ready")).send().await
            && response.status() == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the server never became ready")
}

/// Searches each of `queries` once and waits until the server has ranked ahead (registered in
/// `search_terms`) those that match enough tickets to be, for at most a minute. In the quick
/// run's small log none does.
async fn rank_ahead(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    pool: &PgPool,
    queries: &[&str],
) -> anyhow::Result<()> {
    if queries.is_empty() {
        return Ok(());
    }
    let threshold = bench_settings("").search_rank_ahead_from;
    let mut texts = Vec::new();
    for query in queries {
        let response = client
            .get(format!("{address}/api/search"))
            .query(&[("q", query), ("page_size", &"20")])
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "search for {query} failed");
        let found: serde_json::Value = response.json().await?;
        let matched = found["total"].as_i64().unwrap_or_default();
        if threshold > 0 && matched >= threshold {
            texts.push(query.to_string());
        }
    }
    for _ in 0..600 {
        let registered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM search_terms
              WHERE term IN (SELECT websearch_to_tsquery('english', q)::text FROM unnest($1::text[]) q)",
        )
        .bind(&texts)
        .fetch_one(pool)
        .await?;
        if registered as usize >= texts.len() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the broad searches {queries:?} were never ranked ahead")
}

/// Latencies in milliseconds of `sizes.requests_per_query` GETs from `concurrency` clients,
/// after a warm-up.
/// How a measured read proves who it is: an API bearer token, or the web app's session cookie.
#[derive(Clone)]
enum Credential {
    Bearer(String),
    Cookie(String),
    /// An integration's key, in `X-API-Key`.
    ApiKey(String),
}

impl Credential {
    fn on(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Cookie(cookie) => request.header("cookie", cookie),
            Credential::ApiKey(key) => request.header("x-api-key", key),
        }
    }
}

async fn measure_reads(
    client: &reqwest::Client,
    address: &str,
    credential: &Credential,
    path: &(dyn Fn(usize) -> String + Send + Sync),
    sizes: &Sizes,
) -> anyhow::Result<Vec<f64>> {
    for i in 0..20 {
        credential
            .on(client.get(format!("{address}{}", path(i))))
            .send()
            .await?;
    }
    let paths: Vec<String> = (0..sizes.requests_per_query).map(path).collect();
    let next = Arc::new(Mutex::new(0usize));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(paths.len())));
    let paths = Arc::new(paths);
    let mut workers = Vec::new();
    for _ in 0..sizes.concurrency {
        let (client, address, credential) =
            (client.clone(), address.to_string(), credential.clone());
        let (next, latencies, paths) = (next.clone(), latencies.clone(), paths.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let index = {
                    let mut next = next.lock().await;
                    let index = *next;
                    *next += 1;
                    index
                };
                let Some(path) = paths.get(index) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let started = Instant::now();
                let response = credential
                    .on(client.get(format!("{address}{path}")))
                    .send()
                    .await?;
                let status = response.status();
                let _ = response.bytes().await?;
                anyhow::ensure!(status.is_success(), "{path} answered {status}");
                latencies
                    .lock()
                    .await
                    .push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let mut latencies = latencies.lock().await.clone();
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The web app's ticket list and ticket page (one with 200 comments), signed in with a session
/// cookie, each beside the API read of the same data; and what a page costs to transfer.
async fn web_pages(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    open: &[Uuid],
    sizes: &Sizes,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = no_redirects
        .post(format!("{address}/login"))
        .form(&[
            ("email", "bench@docket.test"),
            ("password", "bench-password"),
        ])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("the web sign-in set no cookie"))?
        .to_string();
    let cookie = Credential::Cookie(cookie);
    let bearer = Credential::Bearer(token.to_string());
    let statuses = ["open", "in_progress", "pending", "resolved"];
    let priorities = ["critical", "high", "medium", "low"];
    let filtered = move |prefix: &'static str, size: &'static str| {
        move |i: usize| {
            format!(
                "{prefix}?status={}&priority={}&page={}{size}",
                statuses[i % 4],
                priorities[(i / 4) % 4],
                1 + i % 5
            )
        }
    };
    let api = measure_reads(
        client,
        address,
        &bearer,
        &filtered("/api/tickets", "&page_size=50"),
        sizes,
    )
    .await?;
    let page = measure_reads(client, address, &cookie, &filtered("/tickets", ""), sizes).await?;
    let label = "GET /tickets (the web app's ticket list: two filters, 50 rows, rendered)";
    figures.push(
        Figure::new(label, "p50 latency", percentile(&page, 50.0), "ms").baseline(
            "GET /api/tickets, same filters and rows, p50",
            percentile(&api, 50.0),
        ),
    );
    let p99 = percentile(&page, 99.0);
    figures.push(
        Figure::new(label, "p99 latency", p99, "ms")
            .baseline(
                "GET /api/tickets, same filters and rows, p99",
                percentile(&api, 99.0),
            )
            .target("<= 30 ms", p99 <= 30.0),
    );

    // A ticket with 200 comments.
    let busy = *open
        .first()
        .ok_or_else(|| anyhow::anyhow!("no open ticket"))?;
    for n in 0..200 {
        let response = client
            .post(format!("{address}/api/tickets/{busy}/comments"))
            .bearer_auth(token)
            .json(&json!({"body": format!("bench: comment {n} of 200"), "internal": n % 3 == 0}))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "comment {n} failed");
    }
    let api = measure_reads(
        client,
        address,
        &bearer,
        &move |_| format!("/api/tickets/{busy}"),
        sizes,
    )
    .await?;
    let page = measure_reads(
        client,
        address,
        &cookie,
        &move |_| format!("/tickets/{busy}"),
        sizes,
    )
    .await?;
    let label = "GET /tickets/{id} (the web app's ticket page: 200 comments, SLA clocks, names for its controls)";
    figures.push(
        Figure::new(label, "p50 latency", percentile(&page, 50.0), "ms").baseline(
            "GET /api/tickets/{id} of the same ticket, p50",
            percentile(&api, 50.0),
        ),
    );
    let p99 = percentile(&page, 99.0);
    figures.push(
        Figure::new(label, "p99 latency", p99, "ms")
            .baseline(
                "GET /api/tickets/{id} of the same ticket, p99",
                percentile(&api, 99.0),
            )
            .target("<= 30 ms", p99 <= 30.0),
    );

    // The ticket's record, loaded when the page's reader opens it: every event named.
    let api = measure_reads(
        client,
        address,
        &bearer,
        &move |_| format!("/api/tickets/{busy}/history"),
        sizes,
    )
    .await?;
    let record = measure_reads(
        client,
        address,
        &cookie,
        &move |_| format!("/tickets/{busy}/record"),
        sizes,
    )
    .await?;
    let label = "GET /tickets/{id}/record (timeline, routing, history of 400 events, rendered)";
    figures.push(
        Figure::new(label, "p99 latency", percentile(&record, 99.0), "ms").baseline(
            "GET /api/tickets/{id}/history of the same ticket, p99",
            percentile(&api, 99.0),
        ),
    );

    // Bytes on the wire for a page and everything it loads, compressed as a browser asks
    // (this client does not decompress, so what it counts is what travelled).
    let mut bytes = 0usize;
    for path in [
        format!("/tickets/{busy}"),
        "/assets/app.css".to_string(),
        "/assets/app.js".to_string(),
        "/assets/htmx-2.0.4.min.js".to_string(),
    ] {
        let response = cookie
            .on(client.get(format!("{address}{path}")))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{path} failed");
        bytes += response.bytes().await?.len();
    }
    let kib = bytes as f64 / 1024.0;
    figures.push(
        Figure::new(
            "the ticket page with 200 comments and its CSS and JS",
            "transfer, compressed",
            kib,
            "KiB",
        )
        .target("<= 150 KB", kib * 1.024 <= 150.0),
    );

    // Commit → visible in an open ticket page: the page hears the event on its stream, waits
    // its coalescing window, and fetches its conversation part; the baseline is the same
    // stream's event alone.
    let (visible, heard) = measure_page_freshness(
        client,
        address,
        token,
        &cookie,
        open.get(1..).unwrap_or(open),
        sizes.live_messages,
    )
    .await?;
    let label =
        "commit → visible in an open ticket page (stream event, 100 ms coalescing, part refetched)";
    figures.push(
        Figure::new(label, "p50 latency", percentile(&visible, 50.0), "ms").baseline(
            "commit → the stream's event alone, p50",
            percentile(&heard, 50.0),
        ),
    );
    let p99 = percentile(&visible, 99.0);
    figures.push(
        Figure::new(label, "p99 latency", p99, "ms")
            .baseline(
                "commit → the stream's event alone, p99",
                percentile(&heard, 99.0),
            )
            .target("<= 1000 ms", p99 <= 1000.0),
    );
    Ok(())
}

/// The page's coalescing window before it refetches a part (`refresh` in `app.js`).
const PAGE_COALESCING: Duration = Duration::from_millis(100);

/// Per round: milliseconds from sending a comment to an open page showing it, and to the page's
/// stream hearing of it. Every refetched part must show the comment.
async fn measure_page_freshness(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    cookie: &Credential,
    tickets: &[Uuid],
    rounds: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut stream = SseClient::connect(address, token, None, "").await;
    let (mut visible, mut heard) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        let id = *tickets
            .get(round % tickets.len().max(1))
            .context("no tickets")?;
        let body = format!("bench: seen in the page {round}");
        let started = Instant::now();
        let written = client
            .post(format!("{address}/api/tickets/{id}/comments"))
            .bearer_auth(token)
            .json(&json!({"body": body}))
            .send()
            .await?;
        anyhow::ensure!(written.status().is_success(), "comment {round} failed");
        loop {
            let event = stream
                .until("new_comment", Duration::from_secs(10))
                .await
                .context("the page's stream heard nothing")?;
            if event.data["data"]["body"] == json!(body) {
                break;
            }
        }
        heard.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(PAGE_COALESCING).await;
        let part = cookie
            .on(client.get(format!("{address}/tickets/{id}/conversation")))
            .send()
            .await?
            .text()
            .await?;
        visible.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            part.contains(&body),
            "the refetched part did not show the comment"
        );
    }
    visible.sort_by(f64::total_cmp);
    heard.sort_by(f64::total_cmp);
    Ok((visible, heard))
}

/// Milliseconds of `rounds` reads of a ticket, each right after the reader commented on it; every
/// read must show the comment.
async fn measure_read_after_write(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    ids: &[Uuid],
    rounds: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let id = ids[round % ids.len().max(1)];
        let body = format!("bench: read after own write {round}");
        let written = client
            .post(format!("{address}/api/tickets/{id}/comments"))
            .bearer_auth(token)
            .json(&json!({"body": body, "internal": true}))
            .send()
            .await?;
        anyhow::ensure!(
            written.status().is_success(),
            "comment answered {}",
            written.status()
        );
        written.bytes().await?;
        let started = Instant::now();
        let read = client
            .get(format!("{address}/api/tickets/{id}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = read.status();
        let ticket: serde_json::Value = read.json().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            status.is_success(),
            "the read after the comment answered {status}"
        );
        let seen = ticket["comments"]
            .as_array()
            .is_some_and(|comments| comments.iter().any(|c| c["body"] == json!(body)));
        anyhow::ensure!(seen, "the read right after the comment did not show it");
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Milliseconds from each event's `recorded_at` to its arrival at an SSE client.
async fn measure_live(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    ids: &[Uuid],
    messages: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut stream = SseClient::connect(address, token, None, "").await;
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let id = ids.get(i % ids.len().max(1)).context("no tickets")?;
        client
            .post(format!("{address}/api/tickets/{id}/comments"))
            .bearer_auth(token)
            .json(&json!({"body": format!("live {i}")}))
            .send()
            .await?;
        let event = stream
            .until("new_comment", Duration::from_secs(10))
            .await
            .context("no live message")?;
        let received = Utc::now();
        let recorded: DateTime<Utc> = event.data["recorded_at"]
            .as_str()
            .context("no recorded_at")?
            .parse()?;
        latencies
            .push((received - recorded).num_microseconds().unwrap_or_default() as f64 / 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{value:.2} ms"),
        "µs" => format!("{value:.2} µs"),
        "events/s" | "rows/s" | "tickets/s" => format!("{:.0} {unit}", value),
        "% of a core" => format!("{value:.2} {unit}"),
        "s" => format!("{value:.1} s"),
        "MiB" => format!("{value:.1} MiB"),
        "commands/s" => format!("{value:.0} commands/s"),
        _ => format!("{value:.0} {unit}"),
    }
}

fn show(figure: &Figure) {
    eprintln!(
        "  {} — {}: {}{}",
        figure.load,
        figure.metric,
        format_value(figure.value, &figure.unit),
        figure
            .baseline_value
            .map(|b| format!(" (baseline {})", format_value(b, &figure.unit)))
            .unwrap_or_default()
    );
}

fn write_report(out: &str, report: &Report) -> anyhow::Result<()> {
    std::fs::write(
        format!("{out}.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    let mut md = String::new();
    md.push_str("# Docket benchmark report\n\n");
    md.push_str(&format!(
        "- generated: {}\n- mode: {}\n- machine: {} cores\n- PostgreSQL: {}\n- log: {} events over {} tickets\n\n",
        report.generated_at.to_rfc3339(),
        report.mode,
        report.cores,
        report.postgres,
        report.events,
        report.tickets
    ));
    md.push_str("| load | metric | value | baseline (same run) | ratio | target | |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for figure in &report.figures {
        let baseline = match (&figure.baseline, figure.baseline_value) {
            (Some(name), Some(value)) => format!("{name}: {}", format_value(value, &figure.unit)),
            _ => String::new(),
        };
        let ratio = figure
            .baseline_value
            .filter(|b| *b > 0.0)
            .map(|b| format!("{:.2}×", figure.value / b))
            .unwrap_or_default();
        let verdict = match figure.pass {
            Some(true) => "✅",
            Some(false) => "❌",
            None => "",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            figure.load,
            figure.metric,
            format_value(figure.value, &figure.unit),
            baseline,
            ratio,
            figure.target.clone().unwrap_or_default(),
            verdict
        ));
    }
    let chart_path = format!("{out}-latency.svg");
    let on = |chart: Chart| -> Vec<&Series> {
        report.series.iter().filter(|s| s.chart == chart).collect()
    };
    let (reads, writes) = (on(Chart::Reads), on(Chart::Commands));
    let write_chart = format!("{out}-commands-latency.svg");
    charts::latency_chart(
        &chart_path,
        "Reads and the live stream: latency by percentile",
        &reads,
    )?;
    charts::latency_chart(&write_chart, "Commands: latency by percentile", &writes)?;
    let file = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    md.push_str(&format!(
        "\n![Read latency by percentile]({})\n\n![Command latency by percentile]({})\n",
        file(&chart_path),
        file(&write_chart)
    ));
    std::fs::write(format!("{out}.md"), md)?;
    Ok(())
}
