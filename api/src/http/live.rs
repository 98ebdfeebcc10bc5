//! `/api/ws` (WebSocket) and `/api/events/stream` (Server-Sent Events): the live stream.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use poem::web::Data;
use poem::web::sse::Event;
use poem::web::websocket::{BoxWebSocketUpgraded, Message, WebSocket, WebSocketStream};
use poem::{Request, RequestBody};
use poem_openapi::auth::ApiKey;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::registry::Registry;
use poem_openapi::types::ParseFromJSON;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, Object, OpenApi, SecurityScheme,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::app::live::{LiveMessage, Viewer};
use crate::app::{Caller, SharedApp};
use crate::http::ApiTags;
use crate::http::principal::{SignedIn, authenticate_token};
use crate::http::problem::ApiError;
use crate::http::wire::Timestamp;
use docket_projections::Checkpoint;

/// A message on the live stream. `type` is one of `ticket_created`, `ticket_updated`,
/// `ticket_assigned`, `ticket_status_changed`, `new_comment`, `ticket_escalated`, `sla_warning`,
/// `sla_breach`, `agent_status`, `alert` (staff: raised, acknowledged or resolved, with the
/// alert's id and state in `data`) (events from the log, with `position`), or `typing`,
/// `presence` and `viewing` (ephemeral, never stored).
#[derive(Debug, Clone, Object)]
pub struct LiveEvent {
    #[oai(rename = "type")]
    pub kind: String,
    /// The event's global position in the log; the SSE `id`, for `Last-Event-ID`.
    #[oai(skip_serializing_if_is_none)]
    pub position: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub ticket_id: Option<Uuid>,
    /// The stored event type, e.g. `TicketStatusChanged`.
    #[oai(skip_serializing_if_is_none)]
    pub event_type: Option<String>,
    /// The ticket's version after the event.
    #[oai(skip_serializing_if_is_none)]
    pub version: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub occurred_at: Option<Timestamp>,
    /// When the log recorded the event.
    #[oai(skip_serializing_if_is_none)]
    pub recorded_at: Option<Timestamp>,
    #[oai(skip_serializing_if_is_none)]
    pub actor: Option<Value>,
    /// The event's fields.
    #[oai(skip_serializing_if_is_none)]
    pub data: Option<Value>,
    /// For `typing`, `presence`, `viewing` and `agent_status`: who.
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<Uuid>,
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<String>,
    /// For `typing` and `viewing`: the person's name.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// For `presence`: `online` or `offline`; for `viewing`: `here` or `left` (staff with the
    /// ticket open, sent every few seconds while it is); for `agent_status`: the agent's new
    /// status; for `alert`: `active`, `acknowledged` or `resolved`.
    #[oai(skip_serializing_if_is_none)]
    pub status: Option<String>,
    /// For `typing`: on an internal note (staff only).
    #[oai(skip_serializing_if_is_none)]
    pub internal: Option<bool>,
}

impl LiveEvent {
    fn from_message(message: &LiveMessage) -> Option<Self> {
        LiveEvent::parse_from_json(Some(message.body.clone())).ok()
    }
}

/// `?access_token=<token>` for clients such as the browser's `EventSource` that cannot set
/// headers.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "access_token", key_in = "query")]
#[allow(dead_code)] // Only its description of the scheme is used; `StreamAuth` checks it.
pub struct StreamQueryToken(ApiKey);

/// The stream's caller: `?access_token=<token>` when given, otherwise the credentials of any
/// signed-in request (`Authorization: Bearer …` or `X-API-Key`).
pub struct StreamAuth(Caller);

impl<'a> ApiExtractor<'a> for StreamAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <SignedIn as ApiExtractor>::register(registry);
        <StreamQueryToken as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <SignedIn as ApiExtractor>::security_schemes();
        schemes.extend(<StreamQueryToken as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let query_token = req.uri().query().and_then(|query| {
            url_query_value(query, "access_token").filter(|token| !token.is_empty())
        });
        match query_token {
            Some(token) => Ok(Self(authenticate_token(req, &token).await?)),
            None => Ok(Self(
                <SignedIn as ApiExtractor>::from_request(req, body, param_opts)
                    .await?
                    .0,
            )),
        }
    }
}

/// The decoded value of `name` in a query string.
fn url_query_value(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

impl StreamAuth {
    fn user(self) -> Caller {
        self.0
    }
}

#[derive(Default)]
pub struct LiveApi;

#[OpenApi(tag = "ApiTags::Live")]
impl LiveApi {
    /// Server-Sent Events: every ticket event you may see, as it is committed. Reconnect with
    /// `Last-Event-ID` (the last `id` received, a log position) to resume without a gap.
    #[oai(
        path = "/api/events/stream",
        method = "get",
        operation_id = "event_stream"
    )]
    async fn stream(
        &self,
        auth: StreamAuth,
        app: Data<&SharedApp>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
        /// Only these tickets (comma-separated ids).
        tickets: Query<Option<String>>,
    ) -> Result<EventStream<BoxStream<'static, LiveEvent>>, ApiError> {
        let mut viewer = Viewer::of(&auth.user());
        viewer.tickets = ticket_list(tickets.0.as_deref())?;
        let resume = resume_point(&app, last_event_id.0.as_deref()).await?;
        // The viewer never changes on this stream; the receiver keeps its value.
        let (_, viewer) = watch::channel(viewer);
        let (tx, rx) = mpsc::channel::<Arc<LiveMessage>>(256);
        app.live.serve(viewer, resume, tx);
        let stream = tokio_stream_from(rx)
            .filter_map(|message| futures::future::ready(LiveEvent::from_message(&message)))
            .boxed();
        Ok(EventStream::new(stream)
            .keep_alive(Duration::from_secs(15))
            .to_event(sse_event))
    }

    /// WebSocket. Authenticate with `Sec-WebSocket-Protocol: bearer, <token>` or by sending
    /// `{"type": "auth", "token": "…"}` first. Then send `{"type": "subscribe_ticket",
    /// "ticket_id": …}` / `unsubscribe_ticket` to narrow the stream (by default you get every
    /// event you may see), `{"type": "typing", "ticket_id": …, "internal": false}` to show
    /// others you are typing, and (staff) `{"type": "viewing", "ticket_id": …, "status":
    /// "here"}` every few seconds while a ticket is open (`"left"` on leaving). Messages
    /// received are `LiveEvent`s.
    #[oai(path = "/api/ws", method = "get", operation_id = "live_websocket")]
    async fn websocket(
        &self,
        app: Data<&SharedApp>,
        request: &Request,
        ws: WebSocket,
        /// `bearer, <access token>`.
        #[oai(name = "Sec-WebSocket-Protocol")]
        protocols: Header<Option<String>>,
    ) -> Result<BoxWebSocketUpgraded, ApiError> {
        let user = match bearer_protocol(protocols.0.as_deref())? {
            Some(token) => Some(
                authenticate_token(request, &token)
                    .await
                    .map_err(into_api_error)?,
            ),
            None => None,
        };
        let app = app.0.clone();
        let ip = request
            .extensions()
            .get::<crate::app::Origin>()
            .and_then(|o| o.ip.clone());
        let ws = if user.is_some() {
            ws.protocols(["bearer"])
        } else {
            ws
        };
        Ok(ws
            .on_upgrade(move |socket| async move {
                serve_socket(app, user, ip, socket).await;
            })
            .boxed())
    }
}

/// The tickets a stream is narrowed to (comma-separated ids); empty for every ticket.
fn ticket_list(raw: Option<&str>) -> Result<HashSet<Uuid>, ApiError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|id| {
            Uuid::parse_str(id).map_err(|_| ApiError::InvalidParameter {
                field: "tickets".into(),
                detail: format!("`{id}` is not a ticket id"),
            })
        })
        .collect()
}

/// Where a stream resumed with `Last-Event-ID` picks up.
async fn resume_point(app: &SharedApp, raw: Option<&str>) -> Result<Option<Checkpoint>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::InvalidParameter {
        field: "Last-Event-ID".into(),
        detail: detail.into(),
    };
    let position: i64 = raw
        .parse()
        .map_err(|_| invalid("must be the id of an event received from this stream"))?;
    app.live
        .resume_point(position)
        .await
        .map_err(ApiError::database)?
        .map(Some)
        .ok_or_else(|| invalid("no event has that id"))
}

/// A live event as Server-Sent Events carry it: its type, its log position as the id.
fn sse_event(event: LiveEvent) -> Event {
    let kind = event.kind.clone();
    let id = event.position;
    let data =
        serde_json::to_string(&poem_openapi::types::ToJSON::to_json(&event)).unwrap_or_default();
    let message = Event::message(data).event_type(kind);
    match id {
        Some(id) => message.id(id.to_string()),
        None => message,
    }
}

/// The token offered as `Sec-WebSocket-Protocol: bearer, <token>`, if any.
fn bearer_protocol(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let offered: Vec<&str> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match offered
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))
    {
        Some(index) => offered
            .get(index + 1)
            .map(|token| Some(token.to_string()))
            .ok_or_else(|| ApiError::Unauthenticated("no token after `bearer`".into())),
        None => Ok(None),
    }
}

fn into_api_error(error: poem::Error) -> ApiError {
    match error.downcast::<ApiError>() {
        Ok(api) => api,
        Err(other) => ApiError::Unauthenticated(other.to_string()),
    }
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Arc<LiveMessage>>,
) -> impl futures::Stream<Item = Arc<LiveMessage>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn send_json(
    sink: &mut futures::stream::SplitSink<WebSocketStream, Message>,
    value: &Value,
) -> bool {
    sink.send(Message::Text(value.to_string())).await.is_ok()
}

/// One WebSocket connection: authenticate, then pump messages both ways until either side ends.
async fn serve_socket(
    app: SharedApp,
    user: Option<Caller>,
    ip: Option<String>,
    socket: WebSocketStream,
) {
    let (mut sink, mut incoming) = socket.split();
    let user = match user {
        Some(user) => user,
        None => {
            let first = tokio::time::timeout(Duration::from_secs(10), incoming.next()).await;
            let token = match first {
                Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| v["type"] == "auth")
                    .and_then(|v| v["token"].as_str().map(str::to_string)),
                _ => None,
            };
            let authenticated = match token {
                Some(token) => {
                    crate::http::principal::authenticate_with(&app, &token, ip.as_deref())
                        .await
                        .ok()
                }
                None => None,
            };
            match authenticated {
                Some(user) => user,
                None => {
                    let _ = send_json(
                        &mut sink,
                        &json!({"type": "error", "error": "unauthenticated",
                                "detail": "send {\"type\":\"auth\",\"token\":\"<access token>\"} first"}),
                    )
                    .await;
                    let _ = sink.close().await;
                    return;
                }
            }
        }
    };
    // Listen first, then welcome: a client that has its welcome misses nothing after it.
    let (viewer_tx, viewer_rx) = watch::channel(Viewer::of(&user));
    let (tx, mut rx) = mpsc::channel::<Arc<LiveMessage>>(256);
    app.live.serve(viewer_rx, None, tx);
    let _ = send_json(
        &mut sink,
        &json!({"type": "welcome", "user_id": user.id, "role": user.role}),
    )
    .await;
    let _ = app.live.presence(&user, true).await;
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(message) => {
                    if !send_json(&mut sink, &message.body).await {
                        break;
                    }
                }
                None => break,
            },
            received = incoming.next() => match received {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle_client_message(&app, &user, &viewer_tx, &text).await;
                    if let Some(reply) = reply
                        && !send_json(&mut sink, &reply).await
                    {
                        break;
                    }
                }
                Some(Ok(Message::Ping(payload))) => {
                    if sink.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = app.live.presence(&user, false).await;
}

/// Handles a message from a client; returns a reply for it, if any.
async fn handle_client_message(
    app: &SharedApp,
    user: &Caller,
    viewer: &watch::Sender<Viewer>,
    text: &str,
) -> Option<Value> {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return Some(
            json!({"type": "error", "error": "malformed", "detail": "messages are JSON objects"}),
        );
    };
    let kind = message["type"].as_str().unwrap_or_default();
    let ticket = message["ticket_id"]
        .as_str()
        .and_then(|t| Uuid::parse_str(t).ok());
    let not_found =
        |ticket: Uuid| json!({"type": "error", "error": "not_found", "ticket_id": ticket});
    match (kind, ticket) {
        ("subscribe_ticket", Some(ticket)) => {
            if !app.live.may_watch(user, ticket).await {
                return Some(not_found(ticket));
            }
            viewer.send_modify(|v| {
                v.tickets.insert(ticket);
            });
            Some(json!({"type": "subscribed", "ticket_id": ticket}))
        }
        ("unsubscribe_ticket", Some(ticket)) => {
            viewer.send_modify(|v| {
                v.tickets.remove(&ticket);
            });
            Some(json!({"type": "unsubscribed", "ticket_id": ticket}))
        }
        ("typing", Some(ticket)) => {
            if !app.live.may_watch(user, ticket).await {
                return Some(not_found(ticket));
            }
            let internal = message["internal"] == true;
            app.live
                .typing(user, ticket, internal)
                .await
                .err()
                .map(|_| json!({"type": "error", "error": "unavailable"}))
        }
        ("viewing", Some(ticket)) => {
            if !app.live.may_watch(user, ticket).await {
                return Some(not_found(ticket));
            }
            let here = message["status"] != "left";
            app.live
                .viewing(user, ticket, here)
                .await
                .err()
                .map(|_| json!({"type": "error", "error": "unavailable"}))
        }
        ("ping", _) => Some(json!({"type": "pong"})),
        _ => Some(json!({"type": "error", "error": "unknown_message",
                          "detail": "expected subscribe_ticket, unsubscribe_ticket, typing, viewing or ping with a ticket_id"})),
    }
}
