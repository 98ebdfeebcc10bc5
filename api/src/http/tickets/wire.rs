//! The wire types of `/api/tickets`: requests, the ticket and its comments as clients see them,
//! and the responses each operation documents.

use docket_domain::ticket::{StatusPeriod, TicketEvent};
use docket_domain::values::TicketNumber;
use docket_projections::log::RecordedEvent;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::tickets::{
    CommentAdded, CommentView, NewTicket, SkillNamed, TicketDetail, TicketView, Written,
};
use crate::http::invalid;
use crate::http::principal::consistency_token;
use crate::http::problem::ApiError;
use crate::http::wire::Timestamp;
use crate::http::wire::{ClockStateDto, PriorityDto, RoleDto, StatusDto};
use crate::http::{etag, matches_any};
use docket_domain::ticket::TicketDetailsChange;
use docket_domain::values::{Category, Description, SkillName, Subject, Tags};

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    /// One line, at most 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub subject: String,
    /// At most 50,000 characters.
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub description: String,
    pub priority: PriorityDto,
    #[oai(validator(max_length = 100))]
    pub category: Option<String>,
    /// At most 20 tags of at most 50 characters.
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
    /// The customer the ticket is for. Staff must give it; a customer may only name themself.
    pub customer_id: Option<Uuid>,
    /// Route the ticket to the best eligible agent at once; with nobody eligible it waits in
    /// the queue (`GET /api/tickets/queue`) with its requirements.
    pub auto_assign: Option<bool>,
    /// The skill the ticket needs, by name or id (routing considers only agents who hold it).
    #[oai(validator(max_length = 100))]
    pub skill: Option<String>,
    /// The team responsible; routing then considers only its members.
    pub team_id: Option<Uuid>,
}

/// Only the fields present change. `"category": null` clears the category.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub subject: Option<String>,
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub description: Option<String>,
    pub priority: Option<PriorityDto>,
    #[serde(default)]
    #[oai(validator(max_length = 100))]
    pub category: MaybeUndefined<String>,
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatusRequest {
    pub status: StatusDto,
    /// Why, recorded with the change.
    #[oai(validator(max_length = 50000))]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// An active agent or manager. Absent: the caller takes the ticket ("assign to me");
    /// `null`: nobody holds it any more.
    #[serde(default)]
    pub agent_id: MaybeUndefined<Uuid>,
    #[oai(validator(max_length = 2000))]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct EscalateRequest {
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub reason: String,
    /// Reassign to this active agent or manager as well.
    pub escalate_to: Option<Uuid>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct TicketTeamRequest {
    /// The team that works the ticket from now on; `null`: no team.
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// At most 50,000 characters.
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub body: String,
    /// Internal notes are for staff only; customers can neither post nor see them.
    #[serde(default)]
    #[oai(default)]
    pub internal: bool,
}

#[derive(Debug, Clone, Object)]
pub struct TicketDto {
    pub id: Uuid,
    /// `TKT-000001`, ...
    pub number: String,
    pub subject: String,
    pub description: String,
    pub priority: PriorityDto,
    pub status: StatusDto,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub customer_id: Uuid,
    pub assignee_id: Option<Uuid>,
    /// The team the ticket is assigned to, if any.
    pub team_id: Option<Uuid>,
    pub escalation_level: i64,
    pub comment_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The ticket's version: its number of events. Send it back in `If-Match`.
    pub version: i64,
    /// The worst state of its SLA clocks still counting.
    pub sla_state: Option<ClockStateDto>,
    /// The nearest deadline of a running SLA clock.
    pub sla_due_at: Option<Timestamp>,
    /// Some SLA target of this ticket has been breached.
    pub sla_breached: bool,
}

#[derive(Debug, Clone, Object)]
pub struct CommentDto {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub author_role: RoleDto,
    pub body: String,
    pub internal: bool,
    pub created_at: Timestamp,
    /// The ticket's version once this comment was added (a write's own answer: send it back
    /// in `If-Match`).
    pub ticket_version: i64,
}

#[derive(Debug, Clone, Object)]
pub struct TicketDetailDto {
    #[oai(flatten)]
    pub ticket: TicketDto,
    /// In the order they were made. Customers never see internal ones.
    pub comments: Vec<CommentDto>,
}

#[derive(Debug, Clone, Object)]
pub struct TicketPage {
    pub items: Vec<TicketDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

#[derive(Debug, Clone, Object)]
pub struct HistoryActor {
    pub id: Option<Uuid>,
    pub role: Option<RoleDto>,
    /// The actor is a service account (an integration), not a person.
    pub service: bool,
    /// The API key the change was made with, if it was.
    pub api_key_id: Option<Uuid>,
}

#[derive(Debug, Clone, Object)]
pub struct HistoryEntry {
    /// The event's sequence within the ticket: 1, 2, 3, ...
    pub sequence: i64,
    /// The event type, such as `TicketCreated`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// When it happened (business time).
    pub occurred_at: Option<Timestamp>,
    /// When the log recorded it.
    pub recorded_at: Timestamp,
    pub actor: HistoryActor,
    /// The event's fields, as stored.
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Object)]
pub struct TicketHistory {
    pub ticket_id: Uuid,
    pub events: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Object)]
pub struct StatusPeriodDto {
    pub status: StatusDto,
    pub entered_at: Timestamp,
    /// Absent while the ticket is still in this status.
    pub left_at: Option<Timestamp>,
    /// Seconds spent (up to now for the current status).
    pub seconds: i64,
}

#[derive(Debug, Clone, Object)]
pub struct TicketTimeline {
    pub ticket_id: Uuid,
    pub periods: Vec<StatusPeriodDto>,
}

#[derive(ApiResponse)]
pub enum TicketCreated {
    /// The ticket was opened.
    #[oai(status = 201)]
    Created(
        Json<TicketDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
        /// Send back as `X-Consistency-Token` to read your own write.
        #[oai(header = "X-Consistency-Token")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum TicketWritten {
    /// The ticket after the change.
    #[oai(status = 200)]
    Ok(
        Json<TicketDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum TicketRead {
    #[oai(status = 200)]
    Ok(Json<Box<TicketDetailDto>>, #[oai(header = "ETag")] String),
    /// The ticket is still at the version `If-None-Match` named.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum TicketList {
    /// One page; its weak ETag changes whenever any ticket on it, or the total, does.
    #[oai(status = 200)]
    Ok(Json<TicketPage>, #[oai(header = "ETag")] String),
    /// The page is as it was when `If-None-Match`'s ETag was given.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum CommentCreated {
    /// The comment was added. The ETag is the ticket's new version.
    #[oai(status = 201)]
    Created(
        Json<CommentDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

// ---- conversions -----------------------------------------------------------------------------

impl CreateTicketRequest {
    /// The ticket asked for, in the domain's values.
    pub fn ticket(self) -> Result<NewTicket, ApiError> {
        let skill = match self.skill.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(match Uuid::parse_str(raw) {
                Ok(id) => SkillNamed::Id(id),
                Err(_) => SkillNamed::Name(
                    SkillName::parse(raw).map_err(|e| ApiError::validation("skill", e.reason))?,
                ),
            }),
        };
        Ok(NewTicket {
            customer_id: self.customer_id,
            subject: Subject::parse(&self.subject).map_err(invalid)?,
            description: Description::parse(&self.description).map_err(invalid)?,
            priority: self.priority.into(),
            category: self
                .category
                .as_deref()
                .map(Category::parse)
                .transpose()
                .map_err(invalid)?,
            tags: Tags::parse(self.tags.as_deref().unwrap_or_default()).map_err(invalid)?,
            auto_assign: self.auto_assign.unwrap_or(false),
            skill,
            team_id: self.team_id,
        })
    }
}

impl UpdateTicketRequest {
    /// The change asked for, in the domain's values.
    pub fn change(self) -> Result<TicketDetailsChange, ApiError> {
        Ok(TicketDetailsChange {
            subject: self
                .subject
                .as_deref()
                .map(Subject::parse)
                .transpose()
                .map_err(invalid)?,
            description: self
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()
                .map_err(invalid)?,
            priority: self.priority.map(Into::into),
            category: match self.category {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(Some(Category::parse(&text).map_err(invalid)?)),
            },
            tags: self
                .tags
                .as_deref()
                .map(Tags::parse)
                .transpose()
                .map_err(invalid)?,
        })
    }
}

impl From<TicketView> for TicketDto {
    fn from(row: TicketView) -> Self {
        Self {
            id: row.id,
            number: TicketNumber(row.number).to_string(),
            subject: row.subject,
            description: row.description,
            priority: row.priority.into(),
            status: row.status.into(),
            category: row.category,
            tags: row.tags,
            customer_id: row.customer_id,
            assignee_id: row.assignee_id,
            team_id: row.team_id,
            escalation_level: i64::from(row.escalation_level),
            comment_count: i64::from(row.comment_count),
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            version: row.version,
            sla_state: row.sla_state.map(Into::into),
            sla_due_at: row.sla_due_at.map(Timestamp),
            sla_breached: row.sla_breached,
        }
    }
}

impl From<CommentView> for CommentDto {
    fn from(row: CommentView) -> Self {
        Self {
            id: row.id,
            ticket_id: row.ticket_id,
            author_id: row.author_id,
            author_role: row.author_role.into(),
            body: row.body,
            internal: row.internal,
            created_at: row.created_at.into(),
            ticket_version: row.sequence,
        }
    }
}

impl TicketCreated {
    pub fn created(written: Written) -> Self {
        let (id, version) = (written.ticket.id, written.ticket.version);
        TicketCreated::Created(
            Json(written.ticket.into()),
            format!("/api/tickets/{id}"),
            etag(version),
            consistency_token(written.position),
        )
    }
}

impl TicketWritten {
    pub fn ok(written: Written) -> Self {
        let version = written.ticket.version;
        TicketWritten::Ok(
            Json(written.ticket.into()),
            etag(version),
            consistency_token(written.position),
        )
    }
}

impl TicketRead {
    /// The ticket, or 304 when the caller's `If-None-Match` already names its version.
    pub fn of(detail: TicketDetail, if_none_match: Option<&str>) -> Self {
        let tag = etag(detail.ticket.version);
        if matches_any(if_none_match, &tag) {
            return TicketRead::NotModified(tag);
        }
        TicketRead::Ok(
            Json(Box::new(TicketDetailDto {
                ticket: detail.ticket.into(),
                comments: detail.comments.into_iter().map(CommentDto::from).collect(),
            })),
            tag,
        )
    }
}

impl TicketList {
    /// The page, or 304 when the caller's `If-None-Match` already names it.
    pub fn of(page: TicketPage, if_none_match: Option<&str>) -> Self {
        let tag = page_etag(&page);
        if matches_any(if_none_match, &tag) {
            TicketList::NotModified(tag)
        } else {
            TicketList::Ok(Json(page), tag)
        }
    }
}

/// A weak ETag for a page of tickets: what is on it (each ticket at its version), in order,
/// and the total.
fn page_etag(page: &TicketPage) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(format!("{} {} {}", page.total, page.page, page.page_size));
    for ticket in &page.items {
        hash.update(format!(" {}:{}", ticket.id, ticket.version));
    }
    format!("W/\"{}\"", hex::encode(&hash.finalize()[..12]))
}

impl CommentCreated {
    pub fn created(added: CommentAdded) -> Self {
        let location = format!(
            "/api/tickets/{}/comments/{}",
            added.comment.ticket_id, added.comment.id
        );
        CommentCreated::Created(
            Json(added.comment.into()),
            location,
            etag(added.ticket_version),
            consistency_token(added.position),
        )
    }
}

pub use crate::app::audit::event_data;

impl HistoryEntry {
    pub fn of(event: &RecordedEvent, payload: &TicketEvent) -> Self {
        let actor = payload.actor();
        let metadata = event.metadata();
        HistoryEntry {
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            occurred_at: Some((payload.occurred_at()).into()),
            recorded_at: event.recorded_at.into(),
            actor: HistoryActor {
                id: Some(actor.user_id.0),
                role: Some(actor.role.into()),
                service: metadata.actor_kind.as_deref() == Some("service"),
                api_key_id: metadata
                    .api_key_id
                    .as_deref()
                    .and_then(|id| Uuid::parse_str(id).ok()),
            },
            data: event_data("ticket", event.data()),
        }
    }
}

impl From<StatusPeriod> for StatusPeriodDto {
    fn from(period: StatusPeriod) -> Self {
        Self {
            status: period.status.into(),
            entered_at: period.entered_at.into(),
            left_at: period.left_at.map(Timestamp),
            seconds: period.seconds,
        }
    }
}
