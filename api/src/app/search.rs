//! Full-text and filtered search over tickets, suggestions, and saved searches.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use docket_domain::saved_search::{SavedSearchCommand, SavedSearchId, SearchName};
use docket_domain::values::TicketNumber;
use docket_projections::saved_searches::{self, SavedSearchRow};
use docket_projections::tickets::{self, TicketFilter, TicketRow};
use docket_projections::{registry, search_terms};
use uuid::Uuid;

use crate::app::{App, AppError, Caller, Origin};

/// Ranks the matches of broad searches ahead of time (see `docket_projections::search_terms`):
/// a staff search by its text alone that matched at least `from` tickets registers its query
/// in the background, so the next search for it reads one page instead of ranking every match.
pub struct RankedSearches {
    from: i64,
    max: i64,
    /// Queries being registered by this process, so a burst of searches registers each once.
    registering: Arc<Mutex<HashSet<String>>>,
}

impl RankedSearches {
    pub fn new(from: i64, max: i64) -> Self {
        Self {
            from,
            max,
            registering: Default::default(),
        }
    }

    fn consider(&self, pool: &sqlx::PgPool, text: &str, matched: i64) {
        if self.from <= 0 || matched < self.from {
            return;
        }
        let Ok(mut registering) = self.registering.lock() else {
            return;
        };
        if !registering.insert(text.to_string()) {
            return;
        }
        drop(registering);
        let (pool, text, max, registering) = (
            pool.clone(),
            text.to_string(),
            self.max,
            self.registering.clone(),
        );
        tokio::spawn(async move {
            match search_terms::register(&pool, &text, max).await {
                Ok(true) => tracing::info!(query = %text, matched, "search ranked ahead"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, query = %text, "could not rank a search ahead")
                }
            }
            if let Ok(mut registering) = registering.lock() {
                registering.remove(&text);
            }
        });
    }
}

/// One ticket found, and how it matched.
pub struct Hit {
    pub ticket: TicketRow,
    /// Higher is better (PostgreSQL `ts_rank`); 0 when no text was searched.
    pub rank: f32,
    /// `ticket` (subject or description), `comment`, or `filter` when no text was searched.
    pub matched_in: String,
    /// The subject with matching words in `<mark>`; HTML-escaped otherwise.
    pub subject_highlight: String,
    /// Up to two fragments around the matches, `<mark>`ed and HTML-escaped.
    pub snippet: String,
}

pub struct Hits {
    pub items: Vec<Hit>,
    pub total: i64,
}

/// Text made safe to place in HTML as it is (the highlights are HTML).
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Customers search their own tickets only: asking for someone else's finds nothing.
fn restrict_to_caller(caller: &Caller, filter: &mut TicketFilter) {
    filter.include_internal = caller.is_staff();
    if caller.is_customer() {
        if filter.customer_id.is_some_and(|c| c != caller.id.0) {
            filter.customer_id = Some(Uuid::nil());
        } else {
            filter.customer_id = Some(caller.id.0);
        }
    }
}

/// Tickets matching `filter`, best matches first when it has text, newest first otherwise.
pub async fn search(
    app: &App,
    caller: &Caller,
    mut filter: TicketFilter,
) -> Result<Hits, AppError> {
    restrict_to_caller(caller, &mut filter);
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    if let Some(text) = &filter.text {
        let found = tickets::search(&app.pool, &filter).await?;
        if found.worth_registering {
            app.ranked_searches.consider(&app.pool, text, found.total);
        }
        let mut items: Vec<Hit> = found
            .hits
            .into_iter()
            .map(|hit| Hit {
                ticket: hit.ticket,
                rank: hit.rank,
                matched_in: hit.matched_in,
                subject_highlight: hit.subject_highlight,
                snippet: hit.snippet,
            })
            .collect();
        let mut total = found.total;
        // `TKT-000051`, `#51` or `51` also finds the ticket with that number, first.
        if let Some(numbered) = numbered(app, &filter, text).await?
            && !items.iter().any(|hit| hit.ticket.id == numbered.id)
        {
            total += 1;
            if filter.page <= 1 {
                items.insert(
                    0,
                    Hit {
                        subject_highlight: html_escape(&numbered.subject),
                        ticket: numbered,
                        rank: 1.0,
                        matched_in: "number".to_string(),
                        snippet: String::new(),
                    },
                );
                items.truncate(usize::try_from(filter.page_size).unwrap_or(20));
            }
        }
        Ok(Hits { items, total })
    } else {
        let found = tickets::list(&app.pool, &filter).await?;
        let items = found
            .items
            .into_iter()
            .map(|row| Hit {
                subject_highlight: html_escape(&row.subject),
                ticket: row,
                rank: 0.0,
                matched_in: "filter".to_string(),
                snippet: String::new(),
            })
            .collect();
        Ok(Hits {
            items,
            total: found.total,
        })
    }
}

/// The ticket `text` names by number, if it is one the filter lets the caller see.
async fn numbered(
    app: &App,
    filter: &TicketFilter,
    text: &str,
) -> Result<Option<TicketRow>, AppError> {
    let Some(number) = TicketNumber::recognise(text) else {
        return Ok(None);
    };
    let row = tickets::get_by_number(&app.pool, number.0).await?;
    Ok(row.filter(|row| {
        filter
            .customer_id
            .is_none_or(|customer| row.customer_id == customer)
    }))
}

/// Subjects starting with what has been typed so far (at most 10).
pub async fn suggest(app: &App, caller: &Caller, typed: &str) -> Result<Vec<String>, AppError> {
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    let customer = caller.is_customer().then_some(caller.id.0);
    Ok(tickets::suggest(&app.pool, typed, customer, 10).await?)
}

/// The caller's saved searches.
pub async fn saved(app: &App, caller: &Caller) -> Result<Vec<SavedSearchRow>, AppError> {
    app.consistency
        .include(caller, &[&registry::SAVED_SEARCHES])
        .await?;
    Ok(saved_searches::list_for(&app.pool, caller.id.0).await?)
}

/// A search saved under a name, and where the write landed.
pub struct Saved {
    pub id: Uuid,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub position: Option<docket_projections::Checkpoint>,
}

/// Saves `query` (the search's request, as JSON) under `name`.
pub async fn save(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    name: SearchName,
    query: serde_json::Value,
) -> Result<Saved, AppError> {
    let id = SavedSearchId(Uuid::now_v7());
    let now = app.time.now();
    let command = SavedSearchCommand::Save {
        search_id: id,
        name,
        query,
        actor: caller.actor(),
        at: now,
    };
    let committed = app
        .saved_searches
        .execute(
            &id.0.to_string(),
            Some(0),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(Saved {
        id: id.0,
        version: committed.version,
        created_at: now,
        position: committed.position,
    })
}

/// Deletes one of the caller's saved searches.
pub async fn delete(app: &App, caller: &Caller, origin: &Origin, id: Uuid) -> Result<(), AppError> {
    let command = SavedSearchCommand::Delete {
        actor: caller.actor(),
        at: app.time.now(),
    };
    app.saved_searches
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(())
}
