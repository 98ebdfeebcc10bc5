//! `/api/notifications`: each person's own in-app notifications; what they want to be told of
//! (`/api/users/me/notification-preferences`); and who follows a ticket
//! (`/api/tickets/{id}/followers`).

use docket_domain::notice::{Channel, NotificationPreferences};
use docket_domain::values::NotificationKind;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::notifications::{self, NotificationView};
use crate::app::{Origin, SharedApp, tickets};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{Timestamp, default_page, default_page_size};
use crate::http::{ApiTags, etag};

#[derive(Debug, Clone, Object)]
pub struct NotificationDto {
    pub id: Uuid,
    /// Why you were told: `assigned`, `customer_reply`, `public_reply`, `status_changed`,
    /// `sla_warning`, `sla_breached`, `escalated`, `mentioned`, `followed`, `webhook_disabled`
    /// or `rule`.
    pub kind: String,
    pub ticket_id: Option<Uuid>,
    /// `TKT-000051`.
    pub ticket_number: Option<String>,
    pub title: String,
    /// The words it is about (a comment, a reason), or the ticket's subject.
    pub body: Option<String>,
    /// Who caused it (absent: Docket itself).
    pub actor_id: Option<Uuid>,
    pub created_at: Timestamp,
    /// Absent while unread.
    pub read_at: Option<Timestamp>,
}

impl From<NotificationView> for NotificationDto {
    fn from(n: NotificationView) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            ticket_id: n.ticket_id,
            ticket_number: n
                .ticket_number
                .map(|number| docket_domain::values::TicketNumber(number).to_string()),
            title: n.title,
            body: n.body,
            actor_id: n.actor_id,
            created_at: n.created_at.into(),
            read_at: n.read_at.map(Timestamp),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct UnreadCount {
    pub count: i64,
}

#[derive(Debug, Clone, Object)]
pub struct MarkedRead {
    /// How many were unread.
    pub marked: u64,
}

/// One kind of notification and the channels it comes by.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct KindChoice {
    /// See `NotificationDto.kind`.
    pub kind: String,
    /// In the app (the bell, the live stream).
    pub in_app: bool,
    /// By e-mail.
    pub email: bool,
}

#[derive(Debug, Clone, Object)]
pub struct NotificationPreferencesDto {
    /// Every kind, with its channels.
    pub kinds: Vec<KindChoice>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SetPreferencesRequest {
    /// The kinds to set; kinds not listed keep their channels.
    pub kinds: Vec<KindChoice>,
}

fn preferences_dto(preferences: &NotificationPreferences) -> NotificationPreferencesDto {
    NotificationPreferencesDto {
        kinds: NotificationKind::ALL
            .iter()
            .map(|kind| KindChoice {
                kind: kind.as_str().to_string(),
                in_app: preferences.wants(*kind, Channel::InApp),
                email: preferences.wants(*kind, Channel::Email),
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct FollowRequest {
    /// Who is to follow (staff); absent: you.
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Object)]
pub struct FollowersDto {
    pub ticket_id: Uuid,
    pub followers: Vec<Uuid>,
}

#[derive(ApiResponse)]
pub enum Read {
    /// Marked read.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Followed {
    /// Who follows the ticket now; the `ETag` is the ticket's version.
    #[oai(status = 200)]
    Ok(Json<FollowersDto>, #[oai(header = "ETag")] String),
}

#[derive(Default)]
pub struct NotificationsApi;

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// Your notifications, newest first.
    #[oai(
        path = "/api/notifications",
        method = "get",
        operation_id = "list_notifications"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Only unread ones.
        #[oai(default)]
        unread: Query<bool>,
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
    ) -> Result<Json<Page<NotificationDto>>, ApiError> {
        let (found, total) =
            notifications::list(&app, &auth.0, unread.0, page.0, page_size.0).await?;
        Ok(Json(Page::read(
            found,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// How many of your notifications are unread.
    #[oai(
        path = "/api/notifications/unread/count",
        method = "get",
        operation_id = "unread_notification_count"
    )]
    async fn unread_count(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<UnreadCount>, ApiError> {
        Ok(Json(UnreadCount {
            count: notifications::unread_count(&app, &auth.0).await?,
        }))
    }

    /// Mark one of your notifications read.
    #[oai(
        path = "/api/notifications/:id/read",
        method = "patch",
        operation_id = "mark_notification_read"
    )]
    async fn mark_read(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Read, ApiError> {
        notifications::mark_read(&app, &auth.0, id.0).await?;
        Ok(Read::NoContent)
    }

    /// Mark all your notifications read.
    #[oai(
        path = "/api/notifications/read-all",
        method = "patch",
        operation_id = "mark_all_notifications_read"
    )]
    async fn mark_all_read(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<MarkedRead>, ApiError> {
        Ok(Json(MarkedRead {
            marked: notifications::mark_all_read(&app, &auth.0).await?,
        }))
    }

    /// What you are told of, by which channel.
    #[oai(
        path = "/api/users/me/notification-preferences",
        method = "get",
        operation_id = "get_notification_preferences"
    )]
    async fn preferences(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<NotificationPreferencesDto>, ApiError> {
        let preferences = notifications::preferences(&app, &auth.0).await?;
        Ok(Json(preferences_dto(&preferences)))
    }

    /// Turn kinds of notifications on and off, per channel (in the app, by e-mail).
    #[oai(
        path = "/api/users/me/notification-preferences",
        method = "put",
        operation_id = "set_notification_preferences"
    )]
    async fn set_preferences(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<SetPreferencesRequest>,
    ) -> Result<Json<NotificationPreferencesDto>, ApiError> {
        let current = notifications::preferences(&app, &auth.0).await?;
        let mut in_app_off = current.in_app_off.clone();
        let mut email_off = current.email_off.clone();
        for (index, choice) in body.0.kinds.iter().enumerate() {
            let kind = choice
                .kind
                .parse::<NotificationKind>()
                .map_err(|e| ApiError::validation(format!("kinds[{index}].kind"), e.reason))?;
            for (off, on) in [
                (&mut in_app_off, choice.in_app),
                (&mut email_off, choice.email),
            ] {
                off.retain(|k| *k != kind);
                if !on {
                    off.push(kind);
                }
            }
        }
        let chosen = NotificationPreferences::new(&in_app_off, &email_off);
        let set = notifications::set_preferences(&app, &auth.0, &origin, chosen).await?;
        Ok(Json(preferences_dto(&set)))
    }

    /// Who follows the ticket (staff): they are told of its comments, status changes,
    /// assignments, escalations and breaches.
    #[oai(
        path = "/api/tickets/:id/followers",
        method = "get",
        operation_id = "ticket_followers"
    )]
    async fn followers(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<FollowersDto>, ApiError> {
        let followers = tickets::followers(&app, &auth.0, id.0).await?;
        Ok(Json(FollowersDto {
            ticket_id: id.0,
            followers: followers.into_iter().map(|f| f.0).collect(),
        }))
    }

    /// Follow the ticket (staff), or (agents, managers, admins) have a colleague follow it.
    #[oai(
        path = "/api/tickets/:id/followers",
        method = "post",
        operation_id = "follow_ticket"
    )]
    async fn follow(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<FollowRequest>,
    ) -> Result<Followed, ApiError> {
        let written = tickets::follow(&app, &auth.0, &origin, id.0, body.0.user_id).await?;
        followed(&app, &auth.0, id.0, written.ticket.version).await
    }

    /// Stop following the ticket, or (agents, managers, admins) take a colleague off it.
    #[oai(
        path = "/api/tickets/:id/followers",
        method = "delete",
        operation_id = "unfollow_ticket"
    )]
    async fn unfollow(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// Who stops following; absent: you.
        user_id: Query<Option<Uuid>>,
    ) -> Result<Followed, ApiError> {
        let written = tickets::unfollow(&app, &auth.0, &origin, id.0, user_id.0).await?;
        followed(&app, &auth.0, id.0, written.ticket.version).await
    }
}

async fn followed(
    app: &SharedApp,
    caller: &crate::app::Caller,
    id: Uuid,
    version: i64,
) -> Result<Followed, ApiError> {
    let followers = tickets::followers(app, caller, id).await?;
    Ok(Followed::Ok(
        Json(FollowersDto {
            ticket_id: id,
            followers: followers.into_iter().map(|f| f.0).collect(),
        }),
        etag(version),
    ))
}
