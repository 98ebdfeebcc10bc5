//! `/api/search`: full-text search, advanced search, suggestions and saved searches.

use chrono::{DateTime, Utc};
use docket_domain::saved_search::{
    SavedSearchCommand, SavedSearchError, SavedSearchId, SearchName,
};
use docket_domain::{Priority, TicketStatus};
use docket_projections::tickets::{self, TicketFilter, TicketSort};
use docket_projections::{saved_searches, search_terms};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::tickets::{TicketDto, ticket_from_row};
use super::types::{PriorityDto, StatusDto};
use super::users::{default_page, default_page_size};
use super::{ApiTags, consistency_token, parse_consistency_token, wait_for_projector};
use crate::auth::{AuthUser, BearerAuth};
use crate::commands::CommandError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::{AppState, SharedState};

#[derive(Debug, Clone, Object)]
pub struct SearchHitDto {
    pub ticket: TicketDto,
    /// Higher is better (PostgreSQL `ts_rank`); 0 when no text was searched.
    pub rank: f32,
    /// `ticket` (subject or description), `comment`, or `filter` when no text was searched.
    pub matched_in: String,
    /// The subject with matching words in `<mark>`; HTML-escaped otherwise.
    pub subject_highlight: String,
    /// Up to two fragments around the matches, `<mark>`ed and HTML-escaped.
    pub snippet: String,
}

#[derive(Debug, Clone, Object)]
pub struct SearchResults {
    pub items: Vec<SearchHitDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

/// Text and filters. Every field is optional; all given must match.
#[derive(Debug, Clone, Default, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AdvancedSearchRequest {
    /// Full text in web-search syntax: `vpn "drops hourly" -wifi`.
    #[oai(validator(max_length = 500))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// The subject contains this (case-insensitive, literal).
    #[oai(validator(max_length = 200))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Vec<PriorityDto>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<StatusDto>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    /// Tickets carrying any of these tags.
    #[oai(validator(max_items = 20))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
}

impl AdvancedSearchRequest {
    /// Checks what the schema cannot say, naming the field at fault.
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(page) = self.page.filter(|p| *p < 1) {
            return Err(ApiError::validation(
                "page",
                format!("must be at least 1 (got {page})"),
            ));
        }
        if let Some(size) = self.page_size.filter(|s| !(1..=100).contains(s)) {
            return Err(ApiError::validation(
                "page_size",
                format!("must be 1 to 100 (got {size})"),
            ));
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 500) {
            return Err(ApiError::validation("q", "must be at most 500 characters"));
        }
        if self.tags.as_ref().is_some_and(|t| t.len() > 20) {
            return Err(ApiError::validation("tags", "at most 20 tags"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Object)]
pub struct Suggestions {
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SaveSearchRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    pub query: AdvancedSearchRequest,
}

#[derive(Debug, Clone, Object)]
pub struct SavedSearchDto {
    pub id: Uuid,
    pub name: String,
    pub query: AdvancedSearchRequest,
    pub created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum SearchSaved {
    #[oai(status = 201)]
    Created(
        Json<SavedSearchDto>,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum SearchDeleted {
    #[oai(status = 204)]
    NoContent,
}

fn filter_for(user: &AuthUser, request: &AdvancedSearchRequest) -> TicketFilter {
    let mut filter = TicketFilter {
        statuses: request
            .status
            .iter()
            .flatten()
            .map(|s| TicketStatus::from(*s).as_str().to_string())
            .collect(),
        priorities: request
            .priority
            .iter()
            .flatten()
            .map(|p| Priority::from(*p).as_str().to_string())
            .collect(),
        assignee_id: request.assignee_id,
        customer_id: request.customer_id,
        tags_any: request.tags.clone().unwrap_or_default(),
        text: request.q.clone().filter(|q| !q.trim().is_empty()),
        include_internal: user.role.is_staff(),
        subject_contains: request.subject.clone().filter(|s| !s.is_empty()),
        created_from: request.created_from,
        created_to: request.created_to,
        sort: TicketSort::CreatedDesc,
        page: request.page.unwrap_or(1),
        page_size: request.page_size.unwrap_or(20),
        ..TicketFilter::default()
    };
    restrict_to_viewer(user, &mut filter);
    filter
}

/// Customers search their own tickets only: asking for someone else's finds nothing.
fn restrict_to_viewer(user: &AuthUser, filter: &mut TicketFilter) {
    if user.is_customer() {
        if filter.customer_id.is_some_and(|c| c != user.id.0) {
            filter.customer_id = Some(Uuid::nil());
        } else {
            filter.customer_id = Some(user.id.0);
        }
    }
}

/// Ranks the matches of broad searches ahead of time (see `docket_projections::search_terms`):
/// a staff search by its text alone that matched at least `from` tickets registers its query
/// in the background, so the next search for it reads one page instead of ranking every match.
pub struct RankedSearches {
    from: i64,
    max: i64,
    /// Queries being registered by this process, so a burst of searches registers each once.
    registering: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
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

async fn run(state: &AppState, filter: &TicketFilter) -> Result<SearchResults, ApiError> {
    let (items, total) = if let Some(text) = &filter.text {
        let found = tickets::search(&state.pool, filter)
            .await
            .map_err(ApiError::database)?;
        if found.worth_registering {
            state
                .ranked_searches
                .consider(&state.pool, text, found.total);
        }
        let items = found
            .hits
            .into_iter()
            .map(|hit| {
                Ok(SearchHitDto {
                    ticket: ticket_from_row(hit.ticket)?,
                    rank: hit.rank,
                    matched_in: hit.matched_in,
                    subject_highlight: hit.subject_highlight,
                    snippet: hit.snippet,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (items, found.total)
    } else {
        let found = tickets::list(&state.pool, filter)
            .await
            .map_err(ApiError::database)?;
        let items = found
            .items
            .into_iter()
            .map(|row| {
                let subject = html_escape(&row.subject);
                Ok(SearchHitDto {
                    ticket: ticket_from_row(row)?,
                    rank: 0.0,
                    matched_in: "filter".to_string(),
                    subject_highlight: subject,
                    snippet: String::new(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (items, found.total)
    };
    Ok(SearchResults {
        items,
        total,
        page: filter.page,
        page_size: filter.page_size,
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn saved_search_error(error: CommandError<SavedSearchError>) -> ApiError {
    match error {
        CommandError::Rejected(SavedSearchError::NotFound) => ApiError::not_found("saved search"),
        CommandError::Rejected(SavedSearchError::NotOwner) => ApiError::not_found("saved search"),
        CommandError::Rejected(SavedSearchError::AlreadyExists) => ApiError::Conflict {
            kind: "saved-search-exists",
            title: "The saved search already exists",
            detail: "the saved search already exists".into(),
        },
        CommandError::VersionMismatch { current } => ApiError::PreconditionFailed {
            current_version: current,
        },
        CommandError::Conflict => ApiError::ConcurrentModification,
        CommandError::Store(error) => error,
    }
}

#[derive(Default)]
pub struct SearchApi;

#[OpenApi(tag = "ApiTags::Search")]
impl SearchApi {
    /// Full-text search over subjects, descriptions and comments, best matches first, with
    /// highlighted snippets. Customers find only their own tickets and never internal comments.
    #[oai(path = "/api/search", method = "get", operation_id = "search")]
    async fn search(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        /// Web-search syntax: words, `"exact phrases"`, `or`, `-excluded`.
        #[oai(validator(min_length = 1, max_length = 500))]
        q: Query<String>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<SearchResults>, ApiError> {
        let user = auth.0;
        if q.0.trim().is_empty() {
            return Err(ApiError::InvalidParameter {
                field: "q".into(),
                detail: "must not be blank".into(),
            });
        }
        if let Some(checkpoint) = parse_consistency_token(consistency.0.as_deref())? {
            wait_for_projector(&state, "tickets", checkpoint).await?;
        }
        let request = AdvancedSearchRequest {
            q: Some(q.0),
            page: Some(page.0),
            page_size: Some(page_size.0),
            ..AdvancedSearchRequest::default()
        };
        Ok(Json(run(&state, &filter_for(&user, &request)).await?))
    }

    /// Search with filters (seed 003's shape): text, subject, priorities, statuses, a creation
    /// window, assignee, customer and tags. Without `q`, matches are listed newest first.
    #[oai(
        path = "/api/search/advanced",
        method = "post",
        operation_id = "advanced_search"
    )]
    async fn advanced(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
        body: JsonBody<AdvancedSearchRequest>,
    ) -> Result<Json<SearchResults>, ApiError> {
        let user = auth.0;
        body.0.validate()?;
        if let Some(checkpoint) = parse_consistency_token(consistency.0.as_deref())? {
            wait_for_projector(&state, "tickets", checkpoint).await?;
        }
        Ok(Json(run(&state, &filter_for(&user, &body.0)).await?))
    }

    /// Subjects starting with what has been typed so far (at most 10).
    #[oai(path = "/api/search/suggest", method = "get", operation_id = "suggest")]
    async fn suggest(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(validator(min_length = 1, max_length = 200))] q: Query<String>,
    ) -> Result<Json<Suggestions>, ApiError> {
        let user = auth.0;
        let customer = user.is_customer().then_some(user.id.0);
        let suggestions = tickets::suggest(&state.pool, &q.0, customer, 10)
            .await
            .map_err(ApiError::database)?;
        Ok(Json(Suggestions { suggestions }))
    }

    /// Your saved searches.
    #[oai(
        path = "/api/search/saved",
        method = "get",
        operation_id = "list_saved_searches"
    )]
    async fn saved(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<SavedSearchDto>>, ApiError> {
        let user = auth.0;
        if let Some(checkpoint) = parse_consistency_token(consistency.0.as_deref())? {
            wait_for_projector(&state, "saved_searches", checkpoint).await?;
        }
        let rows = saved_searches::list_for(&state.pool, user.id.0)
            .await
            .map_err(ApiError::database)?;
        rows.into_iter()
            .map(|row| {
                Ok(SavedSearchDto {
                    id: row.id,
                    name: row.name,
                    query: serde_json::from_value(row.query).map_err(ApiError::internal)?,
                    created_at: row.created_at,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Json)
    }

    /// Save a search under a name.
    #[oai(
        path = "/api/search/saved",
        method = "post",
        operation_id = "save_search"
    )]
    async fn save(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<SaveSearchRequest>,
    ) -> Result<SearchSaved, ApiError> {
        let user = auth.0;
        let request = body.0;
        request.query.validate()?;
        let name = SearchName::parse(&request.name)
            .map_err(|e| ApiError::validation(e.field, e.reason))?;
        let query = serde_json::to_value(&request.query).map_err(ApiError::internal)?;
        let id = SavedSearchId(Uuid::now_v7());
        let now = state.clock.now();
        let committed = state
            .saved_searches
            .execute(
                &id.0.to_string(),
                Some(0),
                SavedSearchCommand::Save {
                    search_id: id,
                    name: name.clone(),
                    query,
                    actor: user.actor(),
                    at: now,
                },
                context.metadata(Some(user.actor())),
            )
            .await
            .map_err(saved_search_error)?;
        Ok(SearchSaved::Created(
            Json(SavedSearchDto {
                id: id.0,
                name: name.as_str().to_string(),
                query: request.query,
                created_at: now,
            }),
            consistency_token(committed.position),
        ))
    }

    /// Delete one of your saved searches.
    #[oai(
        path = "/api/search/saved/:id",
        method = "delete",
        operation_id = "delete_saved_search"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
    ) -> Result<SearchDeleted, ApiError> {
        let user = auth.0;
        state
            .saved_searches
            .execute(
                &id.0.to_string(),
                None,
                SavedSearchCommand::Delete {
                    actor: user.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(user.actor())),
            )
            .await
            .map_err(saved_search_error)?;
        Ok(SearchDeleted::NoContent)
    }
}
