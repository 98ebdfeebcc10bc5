//! One leader per background service across processes, elected with a PostgreSQL advisory lock
//! (DESIGN.md decision 9).

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

/// Waits until this process holds the advisory lock `key` and returns the connection that holds
/// it; `None` if `shutdown` fires first. The lock lasts as long as the connection.
pub async fn lead(
    pool: &PgPool,
    key: i64,
    name: &'static str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<PgConnection> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let attempt = async {
            let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(locked.then_some(conn))
        }
        .await;
        match attempt {
            Ok(Some(conn)) => {
                tracing::info!(service = name, "leading");
                return Some(conn);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(service = name, %error, "could not try for leadership"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
