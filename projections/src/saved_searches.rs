//! Saved searches: `saved_searches_view`.

use chrono::{DateTime, Utc};
use docket_domain::saved_search::SavedSearchEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold::{Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, FromRow, Serialize)]
pub struct SavedSearchRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub query: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl VersionedRow for SavedSearchRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// What became of a saved search after one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Kept,
    Deleted(Uuid),
}

pub fn fold(
    row: &mut Option<SavedSearchRow>,
    id: Uuid,
    sequence: i64,
    event: SavedSearchEvent,
) -> Result<Option<Outcome>, String> {
    if row.as_ref().is_some_and(|r| sequence <= r.version) {
        return Ok(None);
    }
    match event {
        SavedSearchEvent::SearchSaved {
            owner_id,
            name,
            query,
            occurred_at,
            ..
        } => {
            *row = Some(SavedSearchRow {
                id,
                owner_id: owner_id.0,
                name: name.as_str().to_string(),
                query,
                created_at: occurred_at,
                version: sequence,
            });
            Ok(Some(Outcome::Kept))
        }
        SavedSearchEvent::SavedSearchDeleted { .. } => {
            if let Some(existing) = row.as_mut() {
                existing.version = sequence;
            }
            Ok(Some(Outcome::Deleted(id)))
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SavedSearchesProjection;

impl Projection for SavedSearchesProjection {
    const NAME: &'static str = "saved_searches";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["saved_search"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["saved_searches_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<SavedSearchEvent>::new(events)?;
        let existing: Vec<SavedSearchRow> = sqlx::query_as(
            "SELECT id, owner_id, name, query, created_at, version FROM saved_searches_view
              WHERE id = ANY($1)",
        )
        .bind(decoded.ids())
        .fetch_all(&mut *conn)
        .await?;
        let (rows, outcomes) = fold_batch(existing, decoded, fold)?;
        let deleted: Vec<Uuid> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Deleted(id) => Some(*id),
                Outcome::Kept => None,
            })
            .collect();
        for row in rows.iter().filter(|r| !deleted.contains(&r.id)) {
            sqlx::query(
                "INSERT INTO saved_searches_view (id, owner_id, name, query, created_at, version)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, query = EXCLUDED.query,
                        version = EXCLUDED.version
                  WHERE saved_searches_view.version < EXCLUDED.version",
            )
            .bind(row.id)
            .bind(row.owner_id)
            .bind(&row.name)
            .bind(&row.query)
            .bind(row.created_at)
            .bind(row.version)
            .execute(&mut *conn)
            .await?;
        }
        if !deleted.is_empty() {
            sqlx::query("DELETE FROM saved_searches_view WHERE id = ANY($1)")
                .bind(&deleted)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

pub async fn list_for<'e, E: PgExecutor<'e>>(
    executor: E,
    owner: Uuid,
) -> Result<Vec<SavedSearchRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, owner_id, name, query, created_at, version FROM saved_searches_view
          WHERE owner_id = $1 ORDER BY created_at, id",
    )
    .bind(owner)
    .fetch_all(executor)
    .await
}
