//! Connecting, creating the database and applying migrations.

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{PgPool, Postgres};

/// The migrations in `migrations/`, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Creates the database named in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<(), sqlx::Error> {
    if !Postgres::database_exists(url).await? {
        match Postgres::create_database(url).await {
            Ok(()) => tracing::info!("created the database"),
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A pool for the server or a tool. Acquiring waits at most `acquire_timeout`, so an outage
/// turns into a prompt error instead of a hung request.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    connect_with(connect_options(url)?, max_connections, acquire_timeout).await
}

/// The options `url` names, with one default of our own: a server on this host (a loopback
/// address or a socket) is reached without TLS unless the URL's `sslmode` or `PGSSLMODE` asks
/// for it. libpq's default (`prefer`) encrypts loopback traffic, which nobody but the host's
/// own root can see anyway, and it was a tenth of PostgreSQL's time under the command load
/// (every statement and every pool check encrypted and decrypted at both ends).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let asked = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    if asked || !is_local(&options) {
        return Ok(options);
    }
    Ok(options.ssl_mode(PgSslMode::Disable))
}

fn is_local(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// [`connect`] with options already parsed (and perhaps extended).
///
/// Connections are not pinged before they are handed out: sqlx already pings every connection
/// as it comes back to the pool (and drops it if that fails), so a second ping on the way out
/// doubled the round trips of every statement for nothing but the case of a connection that
/// died while idle, whose first statement then fails like any other database error (503) and
/// takes the connection out of the pool.
pub async fn connect_with(
    options: PgConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .connect_with(options.application_name("docket"))
        .await
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
