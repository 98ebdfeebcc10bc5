//! Reads that see the reader's own writes (DESIGN.md decision 12).
//!
//! Every command a person's request commits records where its last event landed, per aggregate
//! type, under that person ([`OwnWrites`]). A read names the projectors it reads; before it reads
//! them it waits, bounded, until each has applied that person's newest write of a type it reads
//! (and the consistency token the request carried, if any). Nobody waits for anyone else's
//! writes, and a reader with no write the projectors have not yet passed waits for nothing: the
//! projectors' progress is known in memory (`LogNotifications::projector_known`), so such a read
//! costs a map lookup, not a query.

use std::sync::Mutex;
use std::time::Duration;

use docket_projections::notify::LogNotifications;
use docket_projections::registry::Projector;
use docket_projections::{Checkpoint, runtime};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::caller::Caller;
use crate::app::error::AppError;

/// Each writer's newest position per aggregate type, for the most recent writers.
pub struct OwnWrites {
    writers: Mutex<hashlink::LruCache<Uuid, Vec<(&'static str, Checkpoint)>>>,
}

impl OwnWrites {
    /// Remembers the newest writes of up to `capacity` writers (the least recent are forgotten:
    /// by then the projectors have long passed their writes).
    pub fn new(capacity: usize) -> Self {
        Self {
            writers: Mutex::new(hashlink::LruCache::new(capacity.max(1))),
        }
    }

    /// `writer` committed events of `aggregate_type`, the last of them at `at`.
    pub fn record(&self, writer: Uuid, aggregate_type: &'static str, at: Checkpoint) {
        // The server acting on its own (the nil id) reads nothing back.
        if writer.is_nil() {
            return;
        }
        let Ok(mut writers) = self.writers.lock() else {
            return;
        };
        let newest = match writers.get_mut(&writer) {
            Some(newest) => newest,
            None => {
                writers.insert(writer, Vec::with_capacity(2));
                match writers.get_mut(&writer) {
                    Some(newest) => newest,
                    None => return,
                }
            }
        };
        match newest.iter_mut().find(|(t, _)| *t == aggregate_type) {
            Some((_, known)) => *known = (*known).max(at),
            None => newest.push((aggregate_type, at)),
        }
    }

    /// The newest position `writer` wrote of any type `projector` reads.
    pub fn newest_for(&self, writer: Uuid, projector: &Projector) -> Option<Checkpoint> {
        let mut writers = self.writers.lock().ok()?;
        writers
            .get(&writer)?
            .iter()
            .filter(|(aggregate_type, _)| projector.reads(aggregate_type))
            .map(|(_, at)| *at)
            .max()
    }
}

/// Waits for the projectors a read reads.
pub struct Consistency {
    own_writes: std::sync::Arc<OwnWrites>,
    notifications: LogNotifications,
    pool: PgPool,
    /// How long a read may wait before it is answered "behind" (503).
    wait: Duration,
}

impl Consistency {
    pub fn new(
        pool: PgPool,
        notifications: LogNotifications,
        wait: Duration,
        own_writes: std::sync::Arc<OwnWrites>,
    ) -> Self {
        Self {
            own_writes,
            notifications,
            pool,
            wait,
        }
    }

    /// How long a read may wait.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Returns once every one of `projectors` includes what `caller` must see: their own
    /// writes (unless they asked for eventual consistency) and the token they sent.
    pub async fn include(
        &self,
        caller: &Caller,
        projectors: &[&'static Projector],
    ) -> Result<(), AppError> {
        for projector in projectors {
            let own = if caller.reads.eventual {
                None
            } else {
                self.own_writes.newest_for(caller.id.0, projector)
            };
            if let Some(needed) = own.max(caller.reads.token) {
                self.reach(projector, needed).await?;
            }
        }
        Ok(())
    }

    /// Waits until `projector` has passed `needed`, or answers [`AppError::ProjectionBehind`].
    pub async fn reach(
        &self,
        projector: &'static Projector,
        needed: Checkpoint,
    ) -> Result<(), AppError> {
        let name = projector.name;
        if self
            .notifications
            .projector_known(name)
            .is_some_and(|known| known >= needed)
        {
            return Ok(());
        }
        let reached = runtime::wait_until(&self.notifications, self.wait, || async {
            if self
                .notifications
                .projector_known(name)
                .is_some_and(|known| known >= needed)
            {
                return Ok(true);
            }
            let stored = runtime::stored_checkpoint(&self.pool, name).await?;
            if let Some(stored) = stored {
                self.notifications.projector_seen(name, stored);
            }
            Ok(stored.is_some_and(|stored| stored >= needed))
        })
        .await
        .map_err(AppError::database)?;
        if reached {
            Ok(())
        } else {
            Err(AppError::ProjectionBehind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_projections::registry::{AUDIT, SAVED_SEARCHES, TICKETS, WORKFORCE};

    fn at(position: i64) -> Checkpoint {
        Checkpoint {
            txid: position,
            position,
        }
    }

    #[test]
    fn a_writer_waits_only_for_projectors_that_read_what_they_wrote() {
        let writes = OwnWrites::new(10);
        let writer = Uuid::now_v7();
        writes.record(writer, "ticket", at(5));
        writes.record(writer, "shift", at(9));
        assert_eq!(writes.newest_for(writer, &TICKETS), Some(at(5)));
        assert_eq!(writes.newest_for(writer, &WORKFORCE), Some(at(9)));
        assert_eq!(writes.newest_for(writer, &AUDIT), Some(at(9)));
        assert_eq!(writes.newest_for(writer, &SAVED_SEARCHES), None);
    }

    #[test]
    fn another_readers_writes_are_not_theirs_and_the_newest_write_counts() {
        let writes = OwnWrites::new(10);
        let (writer, other) = (Uuid::now_v7(), Uuid::now_v7());
        writes.record(writer, "ticket", at(7));
        writes.record(writer, "ticket", at(3));
        assert_eq!(writes.newest_for(writer, &TICKETS), Some(at(7)));
        assert_eq!(writes.newest_for(other, &TICKETS), None);
    }

    #[test]
    fn the_server_itself_is_not_a_writer_and_old_writers_are_forgotten() {
        let writes = OwnWrites::new(1);
        writes.record(Uuid::nil(), "ticket", at(1));
        assert_eq!(writes.newest_for(Uuid::nil(), &TICKETS), None);
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        writes.record(first, "ticket", at(1));
        writes.record(second, "ticket", at(2));
        assert_eq!(writes.newest_for(first, &TICKETS), None);
        assert_eq!(writes.newest_for(second, &TICKETS), Some(at(2)));
    }
}
