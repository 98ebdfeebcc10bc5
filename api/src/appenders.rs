//! Connections that append commands' events, and do nothing else.
//!
//! sqlx's pool pings every connection as it comes back (a round trip of its own, unconditional
//! in sqlx 0.8 and 0.9), so a command's one INSERT cost two round trips, and the ping's
//! syscalls and wake-ups at both ends were a measurable part of the command load. Appends are
//! one statement each, on connections this module keeps: a connection goes back to the idle
//! list after a statement that PostgreSQL answered (a refused insert included), and is dropped
//! after one that failed on the way (I/O, protocol) or that the server answered by ending the
//! session, so a broken connection is never reused.
//! Waiting for a connection is bounded like the pool's, and answers the same way when the
//! database is gone.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::Semaphore;

/// Up to `max` connections for appends.
pub struct Appenders {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Semaphore,
    acquire_timeout: Duration,
}

impl Appenders {
    pub fn new(options: PgConnectOptions, max: usize, acquire_timeout: Duration) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max.max(1)),
            acquire_timeout,
        }
    }

    /// Connections waiting for a statement.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or_default()
    }

    /// A connection for one statement. Give the statement's outcome to
    /// [`Lease::answered`]; a lease dropped without it (the request was abandoned mid-way)
    /// drops its connection instead of returning it.
    pub async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => tokio::time::timeout(
                self.acquire_timeout,
                PgConnection::connect_with(&self.options),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(Lease {
            owner: self,
            conn: Some(conn),
            reusable: false,
            _permit: permit,
        })
    }
}

/// One append connection, lent for one statement.
pub struct Lease<'a> {
    owner: &'a Appenders,
    conn: Option<PgConnection>,
    reusable: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Lease<'_> {
    pub fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The statement's outcome: the connection is kept if PostgreSQL answered (a refusal is an
    /// answer), dropped if the statement failed on the way or the server is ending the session
    /// (a terminated backend answers with a FATAL error of class 57 before it closes).
    pub fn answered<T>(&mut self, outcome: &Result<T, sqlx::Error>) {
        self.reusable = match outcome {
            Ok(_) => true,
            Err(sqlx::Error::Database(error)) => !error
                .code()
                .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
            Err(_) => false,
        };
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
            && let Ok(mut idle) = self.owner.idle.lock()
        {
            idle.push(conn);
        }
    }
}
