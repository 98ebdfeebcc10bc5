//! Writes under load: a mix of HTTP commands from a pool of connections against a server in a
//! process of its own (so its peak memory is its own), next to pgbench's one-row INSERT commits
//! at the same number of clients on the same PostgreSQL; then the same on one hot ticket, where
//! every write that was answered 2xx must be in the log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::charts::{Chart, Series};
use crate::{Figure, percentile};

pub struct CommandSizes {
    /// Tickets created before the mix starts; the mix works over them.
    pub tickets: usize,
    pub connections: usize,
    pub mix: Duration,
    pub hot: Duration,
    /// How long each pgbench baseline runs.
    pub baseline: Duration,
}

/// A server in its own process: `docket-bench --serve <url>`.
pub struct ServerProcess {
    child: Child,
    pub address: String,
}

impl ServerProcess {
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(url)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .context("the server did not start in 120 s")??
            .context("the server exited before listening")?;
        let port = line
            .strip_prefix("listening ")
            .context("unexpected first line from the server")?
            .trim()
            .to_string();
        Ok(Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The most resident memory the process has had (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .context("no VmHWM")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What a pgbench run measured.
pub struct Pgbench {
    pub tps: f64,
    /// Per-transaction latencies, sorted, in milliseconds.
    pub latencies: Vec<f64>,
}

fn pgbench_path() -> anyhow::Result<PathBuf> {
    if let Ok(path) = which("pgbench") {
        return Ok(path);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("pgbench is not on PATH and /usr/lib/postgresql does not exist")?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("bin/pgbench"))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found.pop().context("no pgbench found")
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").context("no PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .context("not found")
}

/// Runs `script` with pgbench for `duration` from `clients` connections and reads back the
/// per-transaction log.
pub async fn pgbench(
    url: &str,
    name: &str,
    script: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Pgbench> {
    let dir = std::env::temp_dir().join(format!("docket-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let script_path = dir.join("script.sql");
    std::fs::write(&script_path, script)?;
    let output = Command::new(pgbench_path()?)
        .current_dir(&dir)
        .args(["-n", "-l", "--log-prefix=latency"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", duration.as_secs().max(1)))
        .arg(format!("--file={}", script_path.display()))
        .arg(url)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps: f64 = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .context("pgbench printed no tps")?
        .parse()?;
    let latencies = read_pgbench_logs(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Pgbench { tps, latencies })
}

/// pgbench's per-transaction log: `client transaction latency_us script epoch epoch_us`.
fn read_pgbench_logs(dir: &Path) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with("latency") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path())?.lines() {
            if let Some(micros) = line
                .split_whitespace()
                .nth(2)
                .and_then(|field| field.parse::<f64>().ok())
            {
                latencies.push(micros / 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The kinds of command in the mix, with their share of the requests (in percent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Comment,
    Status,
    Assign,
    /// A comment with no text: the server refuses it (422) before any database work, so it
    /// measures the HTTP path alone — client, connection, routing, token, body, error.
    BlankComment,
}

const MIX: [(Kind, u64); 4] = [
    (Kind::Create, 10),
    (Kind::Comment, 45),
    (Kind::Status, 25),
    (Kind::Assign, 20),
];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];
const STATUSES: [&str; 4] = ["open", "in_progress", "pending", "on_hold"];

/// A small deterministic generator per worker, so runs are comparable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// How the requests of a load ended.
#[derive(Debug, Default, Clone)]
struct Outcomes {
    ok: u64,
    /// 409 or 412: a conflict the server would not retry further.
    conflicts: u64,
    /// Other 4xx: refused by a rule (a status change to the status it has, say).
    refused: u64,
    /// 5xx or no answer.
    errors: u64,
    latencies: Vec<f64>,
    by_kind: Vec<(Kind, f64)>,
}

impl Outcomes {
    fn merge(&mut self, other: Outcomes) {
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        self.refused += other.refused;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        self.by_kind.extend(other.by_kind);
    }

    fn record(&mut self, kind: Kind, answer: Option<Answer>, millis: f64) {
        match answer {
            Some(Answer::Done) => self.ok += 1,
            Some(Answer::Conflict) => self.conflicts += 1,
            Some(Answer::Refused) => self.refused += 1,
            Some(Answer::Failed) | None => self.errors += 1,
        }
        if answer.is_some() {
            self.latencies.push(millis);
            self.by_kind.push((kind, millis));
        }
    }
}

struct Actors {
    token: String,
    customer: Uuid,
    agents: Vec<Uuid>,
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "answered {status}: {body}");
    Ok(body)
}

async fn set_up(client: &reqwest::Client, address: &str) -> anyhow::Result<Actors> {
    let login = post(
        client,
        format!("{address}/api/auth/login"),
        "",
        json!({"email": "bench@docket.test", "password": "bench-password"}),
    )
    .await?;
    let token = login["access_token"]
        .as_str()
        .context("no token")?
        .to_string();
    let user = async |email: String, role: &str| -> anyhow::Result<Uuid> {
        let created = post(
            client,
            format!("{address}/api/users"),
            &token,
            json!({"email": email, "password": "bench-password", "full_name": email, "role": role}),
        )
        .await?;
        Ok(created["id"].as_str().context("no id")?.parse()?)
    };
    let customer = user("customer@bench.test".into(), "customer").await?;
    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(user(format!("agent{i}@bench.test"), "agent").await?);
    }
    Ok(Actors {
        token,
        customer,
        agents,
    })
}

/// How the server answered a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Done,
    /// `concurrent-modification` or `version-mismatch`.
    Conflict,
    /// Refused by a rule of the domain (moving a ticket to the status it has, say).
    Refused,
    /// 5xx.
    Failed,
}

/// Sends one command; `None` when no answer came.
async fn send(
    client: &reqwest::Client,
    address: &str,
    actors: &Actors,
    tickets: &RwLock<Vec<Uuid>>,
    kind: Kind,
    random: &mut XorShift,
) -> Option<Answer> {
    let ticket = {
        let tickets = tickets.read().ok()?;
        tickets.get(random.below(tickets.len())).copied()
    };
    let request = match (kind, ticket) {
        (Kind::Create, _) | (_, None) => {
            let priority = PRIORITIES[random.below(PRIORITIES.len())];
            client.post(format!("{address}/api/tickets")).json(&json!({
                "subject": format!("Printer {} is offline", random.next() % 100_000),
                "description": "It shows a blinking light and prints nothing.",
                "priority": priority,
                "customer_id": actors.customer,
            }))
        }
        (Kind::Comment, Some(id)) => client
            .post(format!("{address}/api/tickets/{id}/comments"))
            .json(
                &json!({"body": "Restarted it; still offline.", "internal": random.below(3) == 0}),
            ),
        (Kind::Status, Some(id)) => client
            .patch(format!("{address}/api/tickets/{id}/status"))
            .json(&json!({"status": STATUSES[random.below(STATUSES.len())]})),
        (Kind::BlankComment, Some(id)) => client
            .post(format!("{address}/api/tickets/{id}/comments"))
            .json(&json!({"body": "   ", "internal": false})),
        (Kind::Assign, Some(id)) => client
            .post(format!("{address}/api/tickets/{id}/assign"))
            .json(&json!({"agent_id": actors.agents[random.below(actors.agents.len())]})),
    };
    let response = request.bearer_auth(&actors.token).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.bytes().await.ok()?;
    if kind == Kind::Create
        && status == 201
        && let Ok(created) = serde_json::from_slice::<Value>(&body)
        && let Some(id) = created["id"].as_str().and_then(|id| id.parse().ok())
        && let Ok(mut tickets) = tickets.write()
    {
        tickets.push(id);
    }
    Some(match status {
        200..=299 => Answer::Done,
        400..=499 => {
            let problem: Value = serde_json::from_slice(&body).unwrap_or_default();
            let kind = problem["type"].as_str().unwrap_or_default();
            if kind.ends_with("concurrent-modification") || kind.ends_with("version-mismatch") {
                Answer::Conflict
            } else {
                Answer::Refused
            }
        }
        _ => Answer::Failed,
    })
}

/// When a load ends: after a time, or after so many requests.
#[derive(Debug, Clone, Copy)]
struct Stop {
    after: Duration,
    limit: Option<usize>,
}

/// The server under load, the people acting on it, and how many connections they use.
struct Target {
    client: reqwest::Client,
    address: String,
    actors: Arc<Actors>,
    connections: usize,
}

/// What one timed load did.
struct Run {
    outcomes: Outcomes,
    seconds: f64,
    /// Version conflicts the server met and retried during the load.
    retried: f64,
}

impl Target {
    /// Runs a load on `tickets` until `stop`, each worker picking its commands with `pick`.
    async fn run(
        &self,
        tickets: &Arc<RwLock<Vec<Uuid>>>,
        stop: Stop,
        pick: fn(&mut XorShift) -> Kind,
    ) -> anyhow::Result<Run> {
        let before = conflicts_retried(&self.client, &self.address).await?;
        let started = Instant::now();
        let outcomes = drive(self, tickets, started + stop.after, stop.limit, pick).await?;
        let seconds = started.elapsed().as_secs_f64();
        let retried = conflicts_retried(&self.client, &self.address).await? - before;
        Ok(Run {
            outcomes,
            seconds,
            retried,
        })
    }
}

/// Runs `target.connections` workers until `until` (or `limit` requests), each picking its
/// next command with `pick`.
async fn drive(
    target: &Target,
    tickets: &Arc<RwLock<Vec<Uuid>>>,
    until: Instant,
    limit: Option<usize>,
    pick: fn(&mut XorShift) -> Kind,
) -> anyhow::Result<Outcomes> {
    let sent = Arc::new(Mutex::new(0usize));
    let mut workers = Vec::new();
    for worker in 0..target.connections {
        let (client, address) = (target.client.clone(), target.address.clone());
        let (actors, tickets, sent) = (target.actors.clone(), tickets.clone(), sent.clone());
        workers.push(tokio::spawn(async move {
            let mut random = XorShift(0x9E37_79B9_7F4A_7C15 ^ (worker as u64 + 1));
            let mut outcomes = Outcomes::default();
            while Instant::now() < until {
                if let Some(limit) = limit {
                    let mut sent = sent.lock().await;
                    if *sent >= limit {
                        break;
                    }
                    *sent += 1;
                }
                let kind = pick(&mut random);
                let started = Instant::now();
                let answer = send(&client, &address, &actors, &tickets, kind, &mut random).await;
                outcomes.record(kind, answer, started.elapsed().as_secs_f64() * 1000.0);
            }
            outcomes
        }));
    }
    let mut all = Outcomes::default();
    for worker in workers {
        all.merge(worker.await?);
    }
    all.latencies.sort_by(f64::total_cmp);
    Ok(all)
}

fn pick_mix(random: &mut XorShift) -> Kind {
    let mut roll = random.next() % 100;
    for (kind, share) in MIX {
        if roll < share {
            return kind;
        }
        roll -= share;
    }
    Kind::Comment
}

fn pick_comment(_: &mut XorShift) -> Kind {
    Kind::Comment
}

/// The server's counter of version conflicts it met and retried.
async fn conflicts_retried(client: &reqwest::Client, address: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{address}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            name.ends_with("command_conflicts_total")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The mix, the hot ticket and the server's memory, with pgbench's INSERT commits beside them.
pub async fn run(
    url: &str,
    pool: &PgPool,
    sizes: &CommandSizes,
    figures: &mut Vec<Figure>,
    charts: &mut Vec<Series>,
) -> anyhow::Result<()> {
    eprintln!(
        "baseline: pgbench one-row INSERT commits at {} clients…",
        sizes.connections
    );
    sqlx::query(
        "CREATE TABLE bench_inserts (id bigserial PRIMARY KEY, body text NOT NULL,
                                     created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await?;
    let inserts = pgbench(
        url,
        "insert",
        "INSERT INTO bench_inserts (body) VALUES ('one row, committed durably');\n",
        sizes.connections,
        sizes.baseline,
    )
    .await?;
    sqlx::query("DROP TABLE bench_inserts")
        .execute(pool)
        .await?;
    charts.push(Series::new(
        Chart::Commands,
        "pgbench one-row INSERT commit",
        &inserts.latencies,
    ));

    let server = ServerProcess::start(url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(sizes.connections * 2)
        .build()?;
    crate::wait_ready(&client, &server.address).await?;
    let actors = Arc::new(set_up(&client, &server.address).await?);
    let target = Target {
        client,
        address: server.address.clone(),
        actors,
        connections: sizes.connections,
    };
    let tickets = Arc::new(RwLock::new(Vec::with_capacity(sizes.tickets * 2)));

    eprintln!("commands: creating {} tickets over HTTP…", sizes.tickets);
    let Run {
        outcomes: creates,
        seconds,
        ..
    } = target
        .run(
            &tickets,
            Stop {
                after: Duration::from_secs(3_600),
                limit: Some(sizes.tickets),
            },
            |_| Kind::Create,
        )
        .await?;
    let label = format!(
        "HTTP create ticket, {} connections (durable commits)",
        sizes.connections
    );
    figures.push(
        Figure::new(
            &label,
            "commands/s",
            creates.ok as f64 / seconds,
            "commands/s",
        )
        .baseline("pgbench one-row INSERT commits, same clients", inserts.tps),
    );
    figures.push(Figure::new(
        &label,
        "p99 latency",
        percentile(&creates.latencies, 99.0),
        "ms",
    ));
    charts.push(Series::new(
        Chart::Commands,
        "HTTP create ticket",
        &creates.latencies,
    ));

    // The mix, run twice: on its own and with rules listening.
    let run_mix = || {
        let stop = Stop {
            after: sizes.mix,
            limit: None,
        };
        target.run(&tickets, stop, pick_mix)
    };
    eprintln!("commands: the mix for {} s…", sizes.mix.as_secs());
    let Run {
        outcomes: mix,
        seconds,
        retried,
    } = run_mix().await?;
    let rate = mix.ok as f64 / seconds;
    let label = format!(
        "HTTP commands: create 10 % / comment 45 % / status 25 % / assign 20 % over {} tickets, {} connections",
        sizes.tickets, sizes.connections
    );
    let pass = rate >= 0.5 * inserts.tps && rate >= 3_000.0;
    figures.push(
        Figure::new(&label, "commands/s (2xx)", rate, "commands/s")
            .baseline("pgbench one-row INSERT commits, same clients", inserts.tps)
            .target(">= 50 % of pgbench and >= 3,000/s", pass),
    );
    figures.push(Figure::new(
        &label,
        "p50 latency",
        percentile(&mix.latencies, 50.0),
        "ms",
    ));
    figures.push(Figure::new(
        &label,
        "p99 latency",
        percentile(&mix.latencies, 99.0),
        "ms",
    ));
    figures.push(Figure::new(
        &label,
        "conflicts retried by the server",
        retried,
        "conflicts",
    ));
    figures.push(Figure::new(
        &label,
        "answered 409 concurrent-modification / 412 version-mismatch",
        mix.conflicts as f64,
        "requests",
    ));
    figures.push(Figure::new(
        &label,
        "refused by a rule (4xx: e.g. a ticket moved to the status it has)",
        mix.refused as f64,
        "requests",
    ));
    figures.push(
        Figure::new(
            &label,
            "errors (5xx or no answer)",
            mix.errors as f64,
            "requests",
        )
        .target("0", mix.errors == 0),
    );
    for (kind, name) in [
        (Kind::Create, "create"),
        (Kind::Comment, "comment"),
        (Kind::Status, "status change"),
        (Kind::Assign, "assign"),
    ] {
        let mut latencies: Vec<f64> = mix
            .by_kind
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, ms)| *ms)
            .collect();
        latencies.sort_by(f64::total_cmp);
        charts.push(Series::new(
            Chart::Commands,
            &format!("mix: {name}"),
            &latencies,
        ));
    }

    // The same mix again with 50 automation rules listening to its events (the rule engine runs
    // in the server's process, on the same cores and database), beside the mix above; five of
    // the rules act on the tickets the mix creates. Removed again before the hot ticket.
    eprintln!(
        "commands: the mix with 50 automation rules for {} s…",
        sizes.mix.as_secs()
    );
    let mut rules = Vec::with_capacity(50);
    for n in 0..50 {
        let triggers = [
            "comment.added",
            "ticket.status_changed",
            "ticket.assigned",
            "ticket.created",
        ];
        let body = if n % 10 == 0 {
            json!({
                "name": format!("Tag new tickets {n}"),
                "position": n,
                "trigger": {"type": "event", "events": ["ticket.created"]},
                "conditions": {"all": [{"field": "tags", "operator": "not_contains", "value": format!("rule{n}")}]},
                "actions": [{"type": "add_tags", "tags": [format!("rule{n}")]}]
            })
        } else {
            json!({
                "name": format!("Watch {n}"),
                "position": n,
                "trigger": {"type": "event", "events": [triggers[n % triggers.len()]]},
                "conditions": {
                    "all": [{"field": "priority", "operator": "in", "value": ["critical", "high"]}],
                    "any": [
                        {"field": "subject", "operator": "contains", "value": format!("never-{n}")},
                        {"field": "hours_since_created", "operator": "greater_than", "value": 1000}
                    ]
                },
                "actions": [{"type": "add_internal_note", "body": format!("Rule {n} looked.")}]
            })
        };
        let made = post(
            &target.client,
            format!("{}/api/automations", target.address),
            &target.actors.token,
            body,
        )
        .await?;
        rules.push(made["id"].as_str().context("no id")?.to_string());
    }
    let Run {
        outcomes: ruled,
        seconds: ruled_seconds,
        ..
    } = run_mix().await?;
    let ruled_rate = ruled.ok as f64 / ruled_seconds;
    let fall = 1.0 - ruled_rate / rate.max(f64::MIN_POSITIVE);
    figures.push(
        Figure::new(
            &format!("{label}, with 50 automation rules"),
            "commands/s (2xx)",
            ruled_rate,
            "commands/s",
        )
        .baseline("the same mix without rules, same run", rate)
        .target("falls by <= 10 %", fall <= 0.10),
    );
    for rule in rules {
        target
            .client
            .delete(format!("{}/api/automations/{rule}", target.address))
            .bearer_auth(&target.actors.token)
            .send()
            .await?;
    }

    eprintln!("commands: one hot ticket for {} s…", sizes.hot.as_secs());
    let hot = post(
        &target.client,
        format!("{}/api/tickets", target.address),
        &target.actors.token,
        json!({"subject": "Everyone is writing here", "description": "The hot ticket.",
               "priority": "high", "customer_id": target.actors.customer}),
    )
    .await?;
    let hot_id: Uuid = hot["id"].as_str().context("no id")?.parse()?;
    let hot_tickets = Arc::new(RwLock::new(vec![hot_id]));
    let Run {
        outcomes: hot_run,
        seconds,
        retried,
    } = target
        .run(
            &hot_tickets,
            Stop {
                after: sizes.hot,
                limit: None,
            },
            pick_comment,
        )
        .await?;
    let (in_log, events, version): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE event_type = 'CommentAdded'), count(*),
                COALESCE(max(sequence), 0)
           FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1",
    )
    .bind(hot_id.to_string())
    .fetch_one(pool)
    .await?;
    let lost = hot_run.ok as i64 - in_log;
    let label = format!(
        "HTTP comments on one hot ticket, {} connections",
        sizes.connections
    );
    figures.push(Figure::new(
        &label,
        "commands/s (2xx)",
        hot_run.ok as f64 / seconds,
        "commands/s",
    ));
    figures.push(Figure::new(
        &label,
        "p99 latency",
        percentile(&hot_run.latencies, 99.0),
        "ms",
    ));
    figures.push(Figure::new(
        &label,
        "conflicts retried by the server",
        retried,
        "conflicts",
    ));
    figures.push(Figure::new(
        &label,
        "answered 409 after the retries",
        hot_run.conflicts as f64,
        "requests",
    ));
    figures.push(
        Figure::new(
            &label,
            "lost updates (2xx answers minus comments in the log)",
            lost as f64,
            "updates",
        )
        .target("0", lost == 0),
    );
    figures.push(
        Figure::new(
            &label,
            "ticket version minus its events in the log",
            (version - events) as f64,
            "events",
        )
        .target("0", version == events),
    );
    charts.push(Series::new(
        Chart::Commands,
        "hot ticket: comment",
        &hot_run.latencies,
    ));

    eprintln!(
        "ceiling: the HTTP path alone for {} s…",
        sizes.baseline.as_secs()
    );
    let Run {
        outcomes: floor,
        seconds,
        ..
    } = target
        .run(
            &tickets,
            Stop {
                after: sizes.baseline,
                limit: None,
            },
            |_| Kind::BlankComment,
        )
        .await?;
    let http_alone = floor.refused as f64 / seconds;
    figures.push(
        Figure::new(
            &format!(
                "ceiling: a comment refused before any database work (422), {} connections",
                sizes.connections
            ),
            "requests/s",
            http_alone,
            "requests/s",
        )
        .baseline("pgbench one-row INSERT commits, same clients", inserts.tps),
    );

    let peak = server.peak_rss_mib()?;
    figures.push(Figure::new(
        "server process during the command loads",
        "peak RSS (VmHWM)",
        peak,
        "MiB",
    ));
    server.stop().await;

    eprintln!(
        "ceiling: pgbench appending one event to a copy of the log's table at {} clients…",
        sizes.connections
    );
    // The log's columns, defaults, checks and indexes, without its triggers (the server's own
    // commits skip the notifying one too).
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let appends = pgbench(
        url,
        "append",
        &format!("{APPEND_COMMENT_EVENT};\n"),
        sizes.connections,
        sizes.baseline,
    )
    .await?;
    // A pgbench ceiling beside the one-row INSERT baseline, with its latencies charted.
    let mut ceiling = |what: &str, series: &str, measured: &Pgbench| {
        figures.push(
            Figure::new(
                &format!("ceiling: pgbench {what}, {} clients", sizes.connections),
                "commits/s",
                measured.tps,
                "commits/s",
            )
            .baseline("pgbench one-row INSERT commits, same clients", inserts.tps),
        );
        charts.push(Series::new(Chart::Commands, series, &measured.latencies));
    };
    ceiling(
        "appending one event row (the log's indexes and checks)",
        "pgbench: append one event",
        &appends,
    );
    let rows = comment_rows_ceiling(url, pool, sizes).await?;
    sqlx::query("DROP TABLE bench_events").execute(pool).await?;
    if let Some(rows) = rows {
        ceiling(
            "writing the rows of one comment (event, ticket row, comment, audit entry) in one statement",
            "pgbench: one comment's rows",
            &rows,
        );
    }
    Ok(())
}

/// One comment's event row, with its payload and metadata as the server writes them, appended
/// to `bench_events` (a copy of the log's table) by the pgbench ceilings. pgbench reads `:word`
/// as a variable, hence the space after every colon.
const APPEND_COMMENT_EVENT: &str = r#"INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('ticket', gen_random_uuid()::text, 1, 'CommentAdded', '1.0', '{"CommentAdded": {"comment_id": "0193b9a0-0000-7000-8000-000000000000", "body": "Restarted it; still offline.", "internal": false, "automated": false, "author": {"id": "0193b9a0-0000-7000-8000-000000000001", "role": "agent"}, "occurred_at": "2026-12-02T10.00.00Z"}}', '{"actor_id": "0193b9a0-0000-7000-8000-000000000001", "actor_role": "agent", "ip": "127.0.0.1", "user_agent": "docket-bench", "correlation_id": "0193b9a0-0000-7000-8000-000000000002"}')"#;

/// What PostgreSQL alone does for the rows one comment leaves behind, with no server and no
/// HTTP: the event row, the ticket's row updated (with every index the list and search need),
/// the comment's row and its audit entry, in one statement and one durable commit, on copies
/// of the tables holding the tickets the mix wrote. Docket writes the same rows for a comment,
/// but in batches (appends group-committed, projectors applying many events a transaction);
/// this is the ceiling of writing them one command at a time. `None` when the mix left no
/// tickets to comment on. Appends to `bench_events`, which the caller creates and drops.
async fn comment_rows_ceiling(
    url: &str,
    pool: &PgPool,
    sizes: &CommandSizes,
) -> anyhow::Result<Option<Pgbench>> {
    let (first, last): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT min(number), max(number) FROM tickets_view")
            .fetch_one(pool)
            .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    eprintln!(
        "ceiling: pgbench writing one comment's rows at {} clients…",
        sizes.connections
    );
    for statement in [
        "CREATE TABLE bench_tickets (LIKE tickets_view INCLUDING ALL)",
        "INSERT INTO bench_tickets SELECT * FROM tickets_view",
        "CREATE TABLE bench_comments (LIKE ticket_comments_view INCLUDING ALL)",
        "CREATE TABLE bench_audit (LIKE audit_log INCLUDING ALL)",
        "CREATE SEQUENCE bench_audit_position",
        "ANALYZE bench_tickets",
    ] {
        sqlx::query(statement).execute(pool).await?;
    }
    let script = format!(
        r#"\set n random({first}, {last})
WITH e AS ({APPEND_COMMENT_EVENT}),
t AS (UPDATE bench_tickets SET updated_at = now(), version = version + 1 WHERE number = :n RETURNING id, version),
c AS (INSERT INTO bench_comments SELECT gen_random_uuid(), t.id, '0193b9a0-0000-7000-8000-000000000001', 'agent', 'Restarted it; still offline.', false, now(), t.version FROM t),
a AS (INSERT INTO bench_audit VALUES (nextval('bench_audit_position'), 'ticket', gen_random_uuid()::text, 1, 'CommentAdded', '1.0', '0193b9a0-0000-7000-8000-000000000001', 'agent', '127.0.0.1', 'docket-bench', '0193b9a0-0000-7000-8000-000000000002', now(), now(), '{{"body": "Restarted it; still offline.", "internal": false}}'))
SELECT 1;
"#
    );
    let measured = pgbench(
        url,
        "comment-rows",
        &script,
        sizes.connections,
        sizes.baseline,
    )
    .await;
    sqlx::query("DROP TABLE bench_tickets, bench_comments, bench_audit")
        .execute(pool)
        .await?;
    sqlx::query("DROP SEQUENCE bench_audit_position")
        .execute(pool)
        .await?;
    measured.map(Some)
}
