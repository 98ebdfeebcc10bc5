//! `/api/search`: full-text search, advanced search, suggestions and saved searches.

use chrono::{DateTime, Utc};
use docket_domain::saved_search::SearchName;
use docket_projections::saved_searches::SavedSearchRow;
use docket_projections::tickets::{TicketFilter, TicketSort};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::search::{self as service, Hit};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::{SignedIn, consistency_token};
use crate::http::problem::ApiError;
use crate::http::tickets::TicketDto;
use crate::http::wire::Timestamp;
use crate::http::wire::{PriorityDto, StatusDto, default_page, default_page_size};
use crate::http::{ApiTags, etag, invalid};

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
    /// `true`: held by nobody (and `assignee_id` is then ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unassigned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    #[oai(validator(max_length = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Tickets carrying any of these tags.
    #[oai(validator(max_items = 20))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Without `q`, the order: `created_at`, `updated_at`, `priority`, `number` or
    /// `sla_due_at`, `-` first for descending (default `-created_at`). With `q`, best matches
    /// come first.
    #[oai(validator(max_length = 20))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
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
        if let Some(sort) = &self.sort
            && TicketSort::parse(sort).is_none()
        {
            return Err(ApiError::validation(
                "sort",
                "must be created_at, updated_at, priority, number or sla_due_at, with - first for descending",
            ));
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
    pub created_at: Timestamp,
}

#[derive(ApiResponse)]
pub enum SearchSaved {
    #[oai(status = 201)]
    Created(
        Json<SavedSearchDto>,
        #[oai(header = "Location")] String,
        /// The saved search's version.
        #[oai(header = "ETag")]
        String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum SearchDeleted {
    #[oai(status = 204)]
    NoContent,
}

impl AdvancedSearchRequest {
    /// The filter this request asks for (the service narrows it to what the caller may see).
    pub(crate) fn filter(&self) -> TicketFilter {
        TicketFilter {
            statuses: self.status.iter().flatten().map(|s| (*s).into()).collect(),
            priorities: self
                .priority
                .iter()
                .flatten()
                .map(|p| (*p).into())
                .collect(),
            assignee_id: self.assignee_id.filter(|_| self.unassigned != Some(true)),
            unassigned: self.unassigned == Some(true),
            team_id: self.team_id,
            customer_id: self.customer_id,
            category: self.category.clone().filter(|c| !c.is_empty()),
            tags_any: self.tags.clone().unwrap_or_default(),
            text: self.q.clone().filter(|q| !q.trim().is_empty()),
            subject_contains: self.subject.clone().filter(|s| !s.is_empty()),
            created_from: self.created_from,
            created_to: self.created_to,
            sort: self
                .sort
                .as_deref()
                .and_then(TicketSort::parse)
                .unwrap_or_default(),
            page: self.page.unwrap_or(1),
            page_size: self.page_size.unwrap_or(20),
            ..TicketFilter::default()
        }
    }
}

impl From<Hit> for SearchHitDto {
    fn from(hit: Hit) -> Self {
        SearchHitDto {
            ticket: hit.ticket.into(),
            rank: hit.rank,
            matched_in: hit.matched_in,
            subject_highlight: hit.subject_highlight,
            snippet: hit.snippet,
        }
    }
}

impl SavedSearchDto {
    fn of(row: SavedSearchRow) -> Result<Self, ApiError> {
        Ok(SavedSearchDto {
            id: row.id,
            name: row.name,
            query: serde_json::from_value(row.query).map_err(ApiError::internal)?,
            created_at: row.created_at.into(),
        })
    }
}

async fn results(
    app: &SharedApp,
    caller: &crate::app::Caller,
    filter: TicketFilter,
) -> Result<Json<SearchResults>, ApiError> {
    let (page, page_size) = (filter.page, filter.page_size);
    let hits = service::search(app, caller, filter).await?;
    Ok(Json(SearchResults {
        items: hits.items.into_iter().map(SearchHitDto::from).collect(),
        total: hits.total,
        page,
        page_size,
    }))
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
        auth: SignedIn,
        app: Data<&SharedApp>,
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
    ) -> Result<Json<SearchResults>, ApiError> {
        if q.0.trim().is_empty() {
            return Err(ApiError::InvalidParameter {
                field: "q".into(),
                detail: "must not be blank".into(),
            });
        }
        let request = AdvancedSearchRequest {
            q: Some(q.0),
            page: Some(page.0),
            page_size: Some(page_size.0),
            ..AdvancedSearchRequest::default()
        };
        results(&app, &auth.0, request.filter()).await
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        body: JsonBody<AdvancedSearchRequest>,
    ) -> Result<Json<SearchResults>, ApiError> {
        body.0.validate()?;
        results(&app, &auth.0, body.0.filter()).await
    }

    /// Subjects starting with what has been typed so far (at most 10).
    #[oai(path = "/api/search/suggest", method = "get", operation_id = "suggest")]
    async fn suggest(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        #[oai(validator(min_length = 1, max_length = 200))] q: Query<String>,
    ) -> Result<Json<Suggestions>, ApiError> {
        let suggestions = service::suggest(&app, &auth.0, &q.0).await?;
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<SavedSearchDto>>, ApiError> {
        let rows = service::saved(&app, &auth.0).await?;
        let all = rows
            .into_iter()
            .map(SavedSearchDto::of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(Page::of(all, Paging::new(page.0, page_size.0))))
    }

    /// One of your saved searches.
    #[oai(
        path = "/api/search/saved/:id",
        method = "get",
        operation_id = "get_saved_search"
    )]
    async fn saved_one(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<SavedSearchDto>, ApiError> {
        let rows = service::saved(&app, &auth.0).await?;
        let row = rows
            .into_iter()
            .find(|row| row.id == id.0)
            .ok_or_else(|| ApiError::not_found("saved search"))?;
        Ok(Json(SavedSearchDto::of(row)?))
    }

    /// Save a search under a name.
    #[oai(
        path = "/api/search/saved",
        method = "post",
        operation_id = "save_search"
    )]
    async fn save(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<SaveSearchRequest>,
    ) -> Result<SearchSaved, ApiError> {
        let request = body.0;
        request.query.validate()?;
        let name = SearchName::parse(&request.name).map_err(invalid)?;
        let query = serde_json::to_value(&request.query).map_err(ApiError::internal)?;
        let saved = service::save(&app, &auth.0, &origin, name.clone(), query).await?;
        Ok(SearchSaved::Created(
            Json(SavedSearchDto {
                id: saved.id,
                name: name.as_str().to_string(),
                query: request.query,
                created_at: saved.created_at.into(),
            }),
            format!("/api/search/saved/{}", saved.id),
            etag(saved.version),
            consistency_token(saved.position),
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<SearchDeleted, ApiError> {
        service::delete(&app, &auth.0, &origin, id.0).await?;
        Ok(SearchDeleted::NoContent)
    }
}
