//! The one typed configuration: every setting, its environment variable and its default.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The JWT secret used when none is configured outside production. Never use it for real.
pub const DEVELOPMENT_JWT_SECRET: &str = "docket-development-secret-do-not-use-in-production";

#[derive(Debug, Parser)]
#[command(
    name = "docket",
    version,
    about = "Docket: an event-sourced helpdesk and SLA engine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if needed, apply migrations, and serve the HTTP API.
    Serve(Settings),
}

/// A secret string: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/docket"
    )]
    pub database_url: String,

    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "DOCKET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Key that signs access tokens (HS256). Required, at least 32 bytes, in production.
    #[arg(long, env = "DOCKET_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// `production` refuses to start without a real JWT secret.
    #[arg(long, env = "DOCKET_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// With `DOCKET_ADMIN_PASSWORD`: creates this administrator when no admin exists.
    #[arg(long, env = "DOCKET_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    #[arg(long, env = "DOCKET_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Load demo users and about fifty tickets, and print the credentials.
    #[arg(long)]
    pub demo: bool,

    /// Size of the database connection pool.
    #[arg(long, env = "DOCKET_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,

    /// Connections that append commands' events. Commands waiting for one at the same time
    /// are written together in one commit, so a few connections carry any load; more only
    /// add commits.
    #[arg(long, env = "DOCKET_APPEND_CONNECTIONS", default_value_t = 4)]
    pub append_connections: usize,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "DOCKET_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_acquire_timeout_ms: u64,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "DOCKET_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token, in seconds.
    #[arg(long, env = "DOCKET_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "DOCKET_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a read that asks for read-your-writes consistency may wait, in milliseconds.
    #[arg(long, env = "DOCKET_CONSISTENCY_WAIT_MS", default_value_t = 5_000)]
    pub consistency_wait_ms: u64,

    /// Where people reach Docket, such as `https://help.example.com`. An `https` address makes
    /// every response carry `Strict-Transport-Security`.
    #[arg(long, env = "DOCKET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Origins whose scripts may call the API from a browser (CORS), comma-separated, such as
    /// `https://app.example.com`; none by default.
    #[arg(long, env = "DOCKET_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    #[arg(long, env = "DOCKET_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Requests per second one client address may make (bursting to twice that); 0: no limit.
    #[arg(long, env = "DOCKET_RATE_LIMIT_PER_ADDRESS", default_value_t = 100)]
    pub rate_limit_per_address: u32,

    /// Requests per second one signed-in user may make (bursting to twice that); 0: no limit.
    #[arg(long, env = "DOCKET_RATE_LIMIT_PER_USER", default_value_t = 50)]
    pub rate_limit_per_user: u32,

    /// Sign-in attempts per minute from one client address; 0: no limit.
    #[arg(long, env = "DOCKET_SIGN_IN_LIMIT_PER_MINUTE", default_value_t = 10)]
    pub sign_in_limit_per_minute: u32,

    /// Routing score weight per open ticket an agent holds (lower scores win).
    #[arg(long, env = "DOCKET_ROUTING_WEIGHT_ACTIVE", default_value_t = 1.0)]
    pub routing_weight_active: f64,

    /// Routing score weight per critical ticket an agent holds.
    #[arg(long, env = "DOCKET_ROUTING_WEIGHT_CRITICAL", default_value_t = 2.0)]
    pub routing_weight_critical: f64,

    /// Routing score weight per point of proficiency in the required skill (subtracted).
    #[arg(long, env = "DOCKET_ROUTING_WEIGHT_PROFICIENCY", default_value_t = 5.0)]
    pub routing_weight_proficiency: f64,

    /// How many aggregates of each type a process keeps in memory to decide commands on
    /// without reading their history again (the log still confirms every write); 0: none.
    /// A remembered ticket costs about 1.4 KB, so the default holds up to some 70 MB; a
    /// command on a ticket that has fallen out reads its whole history first (docs/performance.md).
    #[arg(long, env = "DOCKET_REMEMBERED_AGGREGATES", default_value_t = 50_000)]
    pub remembered_aggregates: usize,

    /// How long, in milliseconds, a process may rely on what it last read of an account (its
    /// role, whether it is active) when checking a token or a person a command names, before
    /// reading it again. Changes made through the same process apply at once; through another
    /// process, within this time.
    #[arg(long, env = "DOCKET_ACCOUNT_FRESHNESS_MS", default_value_t = 1_000)]
    pub account_freshness_ms: u64,

    /// A staff search by its text alone that matches at least this many tickets has its matches
    /// ranked ahead of time, so its later searches read a page instead of ranking every match;
    /// 0: never.
    #[arg(long, env = "DOCKET_SEARCH_RANK_AHEAD_FROM", default_value_t = 1_000)]
    pub search_rank_ahead_from: i64,

    /// At most this many searches are ranked ahead of time (each costs an entry per matching
    /// ticket, and a test of every ticket whose text changes).
    #[arg(long, env = "DOCKET_SEARCH_RANKED_MAX", default_value_t = 200)]
    pub search_ranked_max: i64,

    /// Post webhooks to loopback, private and link-local addresses too (for tests and closed
    /// networks); by default such endpoints are refused, and so is a name resolving to one.
    #[arg(long, env = "DOCKET_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,

    /// How long one webhook attempt may take, in seconds, before it counts as failed.
    #[arg(long, env = "DOCKET_WEBHOOK_TIMEOUT_SECS", default_value_t = 15)]
    pub webhook_timeout_secs: u64,

    /// The waits before each retry of a failed webhook delivery, each after the attempt before
    /// it (`5s`, `5m`, `2h`, `1d`, comma-separated); when they run out the delivery has failed.
    #[arg(
        long,
        env = "DOCKET_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h",
        value_parser = parse_schedule
    )]
    pub webhook_retry_schedule: Schedule,

    /// A webhook endpoint with no successful delivery for this long (`5d`, `12h`) is disabled,
    /// and its administrators are told.
    #[arg(
        long,
        env = "DOCKET_WEBHOOK_DISABLE_AFTER",
        default_value = "5d",
        value_parser = parse_duration
    )]
    pub webhook_disable_after: Duration,

    /// An alert is raised when more tickets than this wait in the queue (unassigned, open) for
    /// `DOCKET_ALERT_QUEUE_FOR`; `0` turns it off.
    #[arg(long, env = "DOCKET_ALERT_QUEUE_LENGTH", default_value_t = 20)]
    pub alert_queue_length: i64,

    /// How long the queue must stay longer than `DOCKET_ALERT_QUEUE_LENGTH` before an alert.
    #[arg(
        long,
        env = "DOCKET_ALERT_QUEUE_FOR",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub alert_queue_for: Duration,

    /// Where mail is sent: `smtp://host:port` (plain; add `?tls=required` for STARTTLS) or
    /// `smtps://user:password@host` (TLS). Unset: mail waits in the outbox (`GET /api/outbox`).
    #[arg(long, env = "DOCKET_SMTP_URL")]
    pub smtp_url: Option<Secret>,

    /// The sender of every mail, such as `Docket <support@example.com>`.
    #[arg(
        long,
        env = "DOCKET_MAIL_FROM",
        default_value = "Docket <docket@localhost>"
    )]
    pub mail_from: String,

    /// The waits before each retry of a mail the SMTP server did not take (comma-separated);
    /// when they run out the mail has failed.
    #[arg(
        long,
        env = "DOCKET_MAIL_RETRY_SCHEDULE",
        default_value = "30s,1m,5m,15m,1h,4h,12h",
        value_parser = parse_schedule
    )]
    pub mail_retry_schedule: Schedule,

    /// The token a mail gateway sends to `POST /api/inbound/email` (`Authorization: Bearer` or
    /// `X-Inbound-Token`). Unset: inbound mail is refused.
    #[arg(long, env = "DOCKET_INBOUND_TOKEN")]
    pub inbound_token: Option<Secret>,

    /// Log format on stderr.
    #[arg(long, env = "DOCKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// Waits, in order (a retry schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

/// `250ms`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: ms, s, m, h or d"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let seconds = |factor: u64| Duration::from_secs(number.saturating_mul(factor));
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "d" => Ok(seconds(86_400)),
        other => Err(format!("`{other}` is not a unit: use ms, s, m, h or d")),
    }
}

/// `5s,5m,30m` (at least one wait).
pub fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let waits = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if waits.is_empty() {
        return Err("give at least one wait, such as 5s".to_string());
    }
    Ok(Schedule(waits))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DOCKET_JWT_SECRET must be set in production")]
    MissingJwtSecret,
    #[error("DOCKET_JWT_SECRET must be at least 32 bytes in production")]
    WeakJwtSecret,
    #[error("DOCKET_ADMIN_EMAIL and DOCKET_ADMIN_PASSWORD must be set together")]
    HalfAnAdmin,
}

impl Settings {
    /// The defaults, as if started with no flags and no environment: what tests build on.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        // Parsing no arguments cannot fail: every field has a default or is optional.
        match Only::try_parse_from(["docket"]) {
            Ok(only) => only.settings,
            Err(error) => error.exit(),
        }
    }

    /// The JWT secret to use, refusing the development default in production.
    pub fn jwt_secret(&self) -> Result<Secret, ConfigError> {
        match (&self.jwt_secret, self.environment) {
            (Some(secret), Environment::Production)
                if secret.expose().len() < 32 || secret.expose() == DEVELOPMENT_JWT_SECRET =>
            {
                Err(ConfigError::WeakJwtSecret)
            }
            (Some(secret), _) => Ok(secret.clone()),
            (None, Environment::Production) => Err(ConfigError::MissingJwtSecret),
            (None, Environment::Development) => {
                tracing::warn!(
                    "!!! DOCKET_JWT_SECRET is not set: using the built-in DEVELOPMENT secret. \
                     Anyone can forge tokens for this server. Set DOCKET_JWT_SECRET (and \
                     DOCKET_ENV=production) before exposing it. !!!"
                );
                Ok(Secret::new(DEVELOPMENT_JWT_SECRET))
            }
        }
    }

    pub fn bootstrap_admin(&self) -> Result<Option<(String, Secret)>, ConfigError> {
        match (&self.admin_email, &self.admin_password) {
            (Some(email), Some(password)) => Ok(Some((email.clone(), password.clone()))),
            (None, None) => Ok(None),
            _ => Err(ConfigError::HalfAnAdmin),
        }
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn routing_weights(&self) -> docket_domain::workforce::routing::RoutingWeights {
        docket_domain::workforce::routing::RoutingWeights {
            active_tickets: self.routing_weight_active,
            critical_tickets: self.routing_weight_critical,
            proficiency: self.routing_weight_proficiency,
        }
    }

    pub fn consistency_wait(&self) -> Duration {
        Duration::from_millis(self.consistency_wait_ms)
    }

    pub fn account_freshness(&self) -> Duration {
        Duration::from_millis(self.account_freshness_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_a_missing_or_weak_secret() {
        let mut settings = Settings::defaults();
        settings.environment = Environment::Production;
        assert!(matches!(
            settings.jwt_secret(),
            Err(ConfigError::MissingJwtSecret)
        ));
        settings.jwt_secret = Some(Secret::new("short"));
        assert!(matches!(
            settings.jwt_secret(),
            Err(ConfigError::WeakJwtSecret)
        ));
        settings.jwt_secret = Some(Secret::new(DEVELOPMENT_JWT_SECRET));
        assert!(matches!(
            settings.jwt_secret(),
            Err(ConfigError::WeakJwtSecret)
        ));
        settings.jwt_secret = Some(Secret::new("x".repeat(40)));
        assert!(settings.jwt_secret().is_ok());
    }

    #[test]
    fn development_falls_back_to_the_development_secret() {
        let mut settings = Settings::defaults();
        settings.jwt_secret = None;
        settings.environment = Environment::Development;
        assert_eq!(
            settings.jwt_secret().ok().map(|s| s.expose().to_string()),
            Some(DEVELOPMENT_JWT_SECRET.to_string())
        );
    }

    #[test]
    fn durations_and_schedules_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5d"), Ok(Duration::from_secs(432_000)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("five minutes").is_err());
        assert!(parse_duration("5w").is_err());
        let schedule = Settings::defaults().webhook_retry_schedule;
        assert_eq!(schedule.0.len(), 7);
        assert_eq!(schedule.0[0], Duration::from_secs(5));
        assert_eq!(schedule.0[6], Duration::from_secs(36_000));
        assert!(parse_schedule(" , ").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }
}
