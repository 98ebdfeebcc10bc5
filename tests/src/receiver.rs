//! A real HTTP receiver for webhooks, started by a test: it verifies every delivery's signature
//! with the `standardwebhooks` crate (the specification's own Rust library), applies each
//! `webhook-id` once, and can be slow, answer an error, or be down for a while.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::listener::TcpListener;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server};
use serde_json::Value;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Value,
    /// The body's bytes, as signed.
    pub raw: Vec<u8>,
    /// The signature verified with the secret the receiver holds.
    pub verified: bool,
    /// The first time this `webhook-id` arrived (a repeat is not applied again).
    pub applied: bool,
    /// When it arrived (for lateness measurements).
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    secrets: Vec<String>,
    received: Vec<Received>,
    applied: HashSet<String>,
    status: u16,
    delay: Duration,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

#[poem::handler]
async fn receive(req: &Request, body: poem::Body, state: Data<&Arc<Mutex<State>>>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let arrived = std::time::Instant::now();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (secrets, status, delay) = {
        let state = state.lock().unwrap();
        (state.secrets.clone(), state.status, state.delay)
    };
    tokio::time::sleep(delay).await;
    let verified = secrets.iter().any(|secret| {
        standardwebhooks::Webhook::new(secret)
            .and_then(|hook| hook.verify(&bytes, req.headers()))
            .is_ok()
    });
    let webhook_id = header("webhook-id");
    let mut state = state.lock().unwrap();
    let applied =
        (200..300).contains(&status) && verified && state.applied.insert(webhook_id.clone());
    state.received.push(Received {
        webhook_id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: bytes.clone(),
        verified,
        applied,
        at: arrived,
    });
    Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .body(if verified { "thanks" } else { "bad signature" })
}

impl Received {
    /// Whether `secret` alone verifies this delivery's signature.
    pub fn verifies_with(&self, secret: &str) -> bool {
        let mut headers = poem::http::HeaderMap::new();
        for (name, value) in [
            ("webhook-id", &self.webhook_id),
            ("webhook-timestamp", &self.timestamp),
            ("webhook-signature", &self.signature),
        ] {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        standardwebhooks::Webhook::new(secret)
            .and_then(|hook| hook.verify(&self.raw, &headers))
            .is_ok()
    }
}

impl Receiver {
    /// A receiver on a free port.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// A receiver on `port` (to come back where a stopped one was).
    pub async fn start_on(port: u16) -> Self {
        let state = Arc::new(Mutex::new(State {
            status: 200,
            ..State::default()
        }));
        let mut receiver = Self {
            port,
            state,
            stop: None,
            server: None,
        };
        receiver.listen().await;
        receiver
    }

    async fn listen(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(self.state.clone());
        let listener = TcpListener::bind(format!("127.0.0.1:{}", self.port));
        self.server = Some(tokio::spawn(async move {
            let _ = Server::new(listener)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = rx.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        }));
        self.stop = Some(tx);
        // Listening once a connection is accepted.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the receiver did not start on {}", self.port);
    }

    /// Stops listening (connections are refused) until [`Receiver::resume`].
    pub async fn go_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub async fn resume(&mut self) {
        self.listen().await;
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The secrets it verifies signatures with (any one may match).
    pub fn trust(&self, secret: &str) {
        self.state.lock().unwrap().secrets.push(secret.to_string());
    }

    pub fn answer(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    pub fn take_time(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (up to `most`) until `enough` holds for what was received; what was received.
    pub async fn wait_for(
        &self,
        most: Duration,
        enough: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let started = std::time::Instant::now();
        loop {
            let received = self.received();
            if enough(&received) || started.elapsed() > most {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
