//! Live-stream clients for tests: Server-Sent Events over reqwest, WebSocket over tungstenite.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
    /// Message types passed over (a test of the log's events leaves out the notifications
    /// pushed beside them).
    ignored: Vec<String>,
}

impl SseClient {
    /// Connects to `/api/events/stream` with a bearer token and optional `Last-Event-ID`.
    pub async fn connect(
        address: &str,
        token: &str,
        last_event_id: Option<&str>,
        query: &str,
    ) -> SseClient {
        let client = reqwest::Client::new();
        let mut request = client
            .get(format!("{address}/api/events/stream{query}"))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200, "the stream answers 200");
        SseClient {
            response,
            buffer: String::new(),
            ignored: Vec::new(),
        }
    }

    /// The same stream, passing over messages of type `kind`.
    pub fn ignoring(mut self, kind: &str) -> Self {
        self.ignored.push(kind.to_string());
        self
    }

    /// The next event with data, or `None` after `wait` of silence.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event.event = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                if self
                    .ignored
                    .iter()
                    .any(|kind| event.data["type"] == kind.as_str())
                {
                    continue;
                }
                return Some(event);
            }
            let remaining = deadline.checked_duration_since(tokio::time::Instant::now())?;
            match tokio::time::timeout(remaining, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Events until one of type `kind` arrives (returned), or `None` after `wait`.
    pub async fn until(&mut self, kind: &str, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let remaining = deadline.checked_duration_since(tokio::time::Instant::now())?;
            let event = self.next(remaining).await?;
            if event.data["type"] == kind {
                return Some(event);
            }
        }
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    /// Connects to `/api/ws`, authenticating with `Sec-WebSocket-Protocol: bearer, <token>`.
    pub async fn connect_with_protocol(address: &str, token: &str) -> WsClient {
        let url = format!("{}/api/ws", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            format!("bearer, {token}").parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("bearer")
        );
        WsClient { socket }
    }

    /// Connects without credentials; the first message must authenticate.
    pub async fn connect(address: &str) -> WsClient {
        let url = format!("{}/api/ws", address.replacen("http", "ws", 1));
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        WsClient { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    /// The next JSON message, or `None` after `wait` or when the server closes.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let remaining = deadline.checked_duration_since(tokio::time::Instant::now())?;
            match tokio::time::timeout(remaining, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(text.as_str()).ok();
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => {
                    return None;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Messages until one of type `kind` arrives.
    pub async fn until(&mut self, kind: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let remaining = deadline.checked_duration_since(tokio::time::Instant::now())?;
            let message = self.next(remaining).await?;
            if message["type"] == kind {
                return Some(message);
            }
        }
    }
}
