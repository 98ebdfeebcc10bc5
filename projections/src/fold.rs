//! The shape every read model's batch takes: decode the events, load the rows they touch, fold
//! the events into those rows in memory (a pure function per read model), and hand back the rows
//! that changed for one multi-row write. One round trip to read and one to write per batch,
//! whatever its size: this is what makes rebuilds fast.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::log::RecordedEvent;
use crate::runtime::ProjectionError;

/// Decodes a stored event, refusing versions this build does not understand.
pub fn decode<E: DeserializeOwned>(event: &RecordedEvent) -> Result<E, ProjectionError> {
    if event.event_version != "1" {
        return Err(ProjectionError::unapplicable(
            event,
            format!("unknown event_version {}", event.event_version),
        ));
    }
    event
        .decode()
        .map_err(|e| ProjectionError::unapplicable(event, e))
}

/// The events of a batch with their aggregate ids, decoded.
pub struct Decoded<'a, E> {
    pub events: Vec<(&'a RecordedEvent, Uuid, E)>,
}

impl<'a, E: DeserializeOwned> Decoded<'a, E> {
    pub fn new(events: &'a [RecordedEvent]) -> Result<Self, ProjectionError> {
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| ProjectionError::unapplicable(event, e))?;
            decoded.push((event, id, decode(event)?));
        }
        Ok(Self { events: decoded })
    }

    /// Each aggregate id once.
    pub fn ids(&self) -> Vec<Uuid> {
        self.events
            .iter()
            .map(|(_, id, _)| *id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect()
    }
}

/// A row of a read model keyed by aggregate id, remembering the version it reflects.
pub trait VersionedRow {
    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
}

/// Folds `decoded` into `existing` rows with `fold`, returning the rows that changed (in the
/// order first changed) and whatever else `fold` produced (comments, say).
pub fn fold_batch<R, E, X>(
    existing: Vec<R>,
    decoded: Decoded<'_, E>,
    fold: impl FnMut(&mut Option<R>, Uuid, i64, E) -> Result<Option<X>, String>,
) -> Result<(Vec<R>, Vec<X>), ProjectionError>
where
    R: VersionedRow,
{
    let mut rows: HashMap<Uuid, Option<R>> =
        existing.into_iter().map(|r| (r.id(), Some(r))).collect();
    let (changed, extras) = fold_into(&mut rows, decoded, fold)?;
    let rows = changed
        .into_iter()
        .filter_map(|id| rows.remove(&id).flatten())
        .collect();
    Ok((rows, extras))
}

/// Folds `decoded` into rows held by the caller (absent rows start as `None`), returning the
/// ids of the rows that changed, in the order first changed, and whatever else `fold` produced.
pub fn fold_into<R, E, X>(
    rows: &mut HashMap<Uuid, Option<R>>,
    decoded: Decoded<'_, E>,
    mut fold: impl FnMut(&mut Option<R>, Uuid, i64, E) -> Result<Option<X>, String>,
) -> Result<(Vec<Uuid>, Vec<X>), ProjectionError>
where
    R: VersionedRow,
{
    // In first-changed order, for a deterministic write order; the set makes "seen?" O(1).
    let mut changed: Vec<Uuid> = Vec::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut extras = Vec::new();
    for (event, id, payload) in decoded.events {
        let row = rows.entry(id).or_insert(None);
        let before = row.as_ref().map(VersionedRow::version);
        if let Some(extra) = fold(row, id, event.sequence, payload)
            .map_err(|reason| ProjectionError::unapplicable(event, reason))?
        {
            extras.push(extra);
        }
        if row.as_ref().map(VersionedRow::version) != before && seen.insert(id) {
            changed.push(id);
        }
    }
    Ok((changed, extras))
}
