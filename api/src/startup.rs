//! Building and running the server: database, migrations, background services, routes.
//! `main` and the black-box tests both start Docket through [`Application::build`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use docket_projections::audit::AuditProjection;
use docket_projections::db;
use docket_projections::notify::{self, LogNotifications};
use docket_projections::runtime::{self, Projection, RunnerSettings};
use docket_projections::saved_searches::SavedSearchesProjection;
use docket_projections::sla_config::SlaConfigProjection;
use docket_projections::tickets::TicketsProjection;
use docket_projections::users::UsersProjection;
use docket_projections::workforce::WorkforceProjection;
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::middleware::CatchPanic;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt, Response, Route, Server};
use poem_openapi::OpenApiService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::tokens::TokenService;
use crate::clock::{Clock, SystemClock};
use crate::commands::BusParts;
use crate::config::Settings;
use crate::context::{RequestContext, TrustForwardedFor, request_context};
use crate::json::BodyLimit;
use crate::live::LiveHub;
use crate::metrics::Metrics;
use crate::rate_limit::{self, RateLimits};
use crate::routes::audit::AuditApi;
use crate::routes::auth::AuthApi;
use crate::routes::live::LiveApi;
use crate::routes::routing::RoutingApi;
use crate::routes::search::SearchApi;
use crate::routes::sla::{RulesApi, SlaApi};
use crate::routes::system::SystemApi;
use crate::routes::tickets::TicketsApi;
use crate::routes::users::UsersApi;
use crate::routes::workforce::WorkforceApi;
use crate::state::{AppState, SharedState};
use crate::{accounts, demo, idempotency};

/// Every projector this build runs, with the aggregate types it reads.
pub const PROJECTORS: &[(&str, &[&str])] = &[
    (TicketsProjection::NAME, TicketsProjection::AGGREGATE_TYPES),
    (UsersProjection::NAME, UsersProjection::AGGREGATE_TYPES),
    (AuditProjection::NAME, AuditProjection::AGGREGATE_TYPES),
    (
        SavedSearchesProjection::NAME,
        SavedSearchesProjection::AGGREGATE_TYPES,
    ),
];

/// Accepts connections with Nagle's algorithm off. A live stream writes small messages one
/// after another; with Nagle on, each waited for the client's acknowledgement of the one before,
/// which a client that only reads delays by up to 40 ms (its delayed-ACK timer): a tenth of the
/// stream's messages arrived 25–30 ms late. Responses gain nothing from the coalescing either,
/// as each is written whole.
pub struct NoDelayAcceptor(TcpAcceptor);

impl Acceptor for NoDelayAcceptor {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        if let Err(error) = stream.set_nodelay(true) {
            // The connection still works, only with Nagle's coalescing.
            tracing::debug!(%error, "could not turn off Nagle's algorithm");
        }
        Ok((stream, local, remote, scheme))
    }
}

pub struct Application {
    port: u16,
    acceptor: NoDelayAcceptor,
    state: SharedState,
    shutdown: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    settings: Settings,
}

/// The OpenAPI service: every route, documented.
pub type Apis = (
    AuthApi,
    UsersApi,
    TicketsApi,
    SearchApi,
    SlaApi,
    RulesApi,
    AuditApi,
    WorkforceApi,
    RoutingApi,
    LiveApi,
    SystemApi,
);

pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "Docket", env!("CARGO_PKG_VERSION")).description(
        "Docket is a helpdesk and SLA engine in which every fact is an immutable event. \
         Errors are application/problem+json. Writes return an ETag (send it back in If-Match \
         for optimistic concurrency) and an X-Consistency-Token (send it back on a read to see \
         your own write). POSTs accept an Idempotency-Key.",
    )
}

/// The OpenAPI document as served at `/openapi.json`: poem-openapi's, with every optional
/// property marked `nullable`. An `Option` field that is `None` is written as `null`, and
/// OpenAPI 3.0 only allows `null` where the schema says `nullable: true`; without it, generated
/// clients and schema validators (schemathesis) reject the API's own answers.
pub fn openapi_document() -> serde_json::Value {
    document_of(&api_service())
}

fn document_of(api: &OpenApiService<Apis, ()>) -> serde_json::Value {
    let mut document: serde_json::Value = serde_json::from_str(&api.spec()).unwrap_or_default();
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for schema in schemas.values_mut() {
            mark_optional_properties_nullable(schema);
        }
    }
    document
}

fn mark_optional_properties_nullable(schema: &mut serde_json::Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Some(fields) = property.as_object_mut() else {
            continue;
        };
        // `nullable` beside a bare `$ref` is ignored by OpenAPI 3.0: wrap the reference.
        if let Some(reference) = fields.remove("$ref") {
            fields.insert(
                "allOf".to_string(),
                serde_json::json!([{ "$ref": reference }]),
            );
        }
        fields.insert("nullable".to_string(), serde_json::Value::Bool(true));
    }
}

/// `/openapi.json`, serialised once at start-up.
#[derive(Clone)]
struct OpenApiJson(bytes::Bytes);

#[poem::handler]
fn openapi_json(document: poem::web::Data<&OpenApiJson>) -> Response {
    Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(poem::Body::from_bytes(document.0.0.clone()))
}

pub fn routes(state: SharedState, settings: &Settings) -> impl Endpoint + use<> {
    let api = api_service();
    let explorer = api.swagger_ui();
    let document = OpenApiJson(document_of(&api).to_string().into());
    Route::new()
        .at("/openapi.json", poem::get(openapi_json).data(document))
        .nest("/docs", explorer)
        .nest("/", api)
        .with(CatchPanic::new())
        .around(idempotency::idempotency)
        .around(rate_limit::limit)
        .around(request_context)
        .data(state)
        .data(Arc::new(RateLimits::from_settings(settings)))
        .data(BodyLimit(settings.max_body_bytes))
        .data(TrustForwardedFor(settings.trust_forwarded_for))
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let secret = settings.jwt_secret()?;
        let bootstrap = settings.bootstrap_admin()?;
        db::ensure_database(&settings.database_url).await?;
        // The server announces its own commits (see `notify`), so the trigger on `events`
        // need not notify inside them.
        let pool = db::connect_with(
            notify::notifying_after_commit(db::connect_options(&settings.database_url)?),
            settings.db_max_connections,
            settings.db_acquire_timeout(),
        )
        .await?;
        db::migrate(&pool).await?;
        tracing::info!("database ready and migrated");

        let (shutdown, shutdown_rx) = watch::channel(false);
        let notifications = notify::listen(&pool, shutdown_rx.clone()).await?;
        let metrics = Metrics::new();
        let tokens = TokenService::new(
            &secret,
            chrono::Duration::seconds(i64::try_from(settings.access_token_ttl_secs)?),
            chrono::Duration::seconds(i64::try_from(settings.refresh_token_ttl_secs)?),
        );
        let live = LiveHub::start(pool.clone(), notifications.clone(), shutdown_rx.clone()).await?;
        let buses = BusParts {
            pool: pool.clone(),
            metrics: metrics.clone(),
            notifications: notifications.clone(),
            remembered: settings.remembered_aggregates,
            appenders: Arc::new(crate::appenders::Appenders::new(
                (*pool.connect_options()).clone(),
                settings.append_connections,
                settings.db_acquire_timeout(),
            )),
        };
        let state = Arc::new(AppState {
            pool: pool.clone(),
            tickets: buses.bus(),
            users: buses.bus(),
            saved_searches: buses.bus(),
            sla_policies: buses.bus(),
            sla_calendars: buses.bus(),
            escalation_rules: buses.bus(),
            skills: buses.bus(),
            teams: buses.bus(),
            agents: buses.bus(),
            shifts: buses.bus(),
            routing_weights: settings.routing_weights(),
            routable_agents: Default::default(),
            sla_catalog: Default::default(),
            live,
            clock,
            tokens,
            notifications: notifications.clone(),
            metrics,
            consistency_wait: settings.consistency_wait(),
            account_freshness: settings.account_freshness(),
            ranked_searches: crate::routes::search::RankedSearches::new(
                settings.search_rank_ahead_from,
                settings.search_ranked_max,
            ),
        });

        let background = spawn_background(&state, notifications, shutdown_rx);

        if let Some((email, password)) = bootstrap {
            let created = accounts::ensure_admin(
                &state,
                &email,
                password.expose(),
                "Administrator",
                RequestContext::system("bootstrap").metadata(None),
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the first administrator failed: {e}"))?;
            if created {
                tracing::info!(%email, "created the first administrator");
            }
        }
        if settings.demo {
            demo::load(&state)
                .await
                .map_err(|e| anyhow::anyhow!("loading demo data failed: {e}"))?;
        }

        let acceptor = NoDelayAcceptor(
            TcpListener::bind(settings.listen.clone())
                .into_acceptor()
                .await?,
        );
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .ok_or_else(|| anyhow::anyhow!("the listener has no address"))?;
        tracing::info!(
            "Docket listening on http://{}:{port} (API explorer at /docs, spec at /openapi.json)",
            settings
                .listen
                .rsplit_once(':')
                .map_or("127.0.0.1", |(host, _)| host)
        );
        if settings.demo {
            demo::print_credentials(port);
        }
        Ok(Self {
            port,
            acceptor,
            state,
            shutdown,
            background,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// Serves until `signal` completes, then stops the background services.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = routes(self.state.clone(), &self.settings);
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, signal, Some(Duration::from_secs(10)))
            .await;
        let _ = self.shutdown.send(true);
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.state.pool.close().await;
        served.map_err(Into::into)
    }
}

fn spawn_background(
    state: &SharedState,
    notifications: LogNotifications,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let settings = RunnerSettings::default();
    let mut tasks = vec![
        tokio::spawn(runtime::run(
            TicketsProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(runtime::run(
            UsersProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(runtime::run(
            AuditProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(runtime::run(
            SavedSearchesProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(runtime::run(
            SlaConfigProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(runtime::run(
            WorkforceProjection,
            state.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(crate::routing::run_router(state.clone(), shutdown.clone())),
        tokio::spawn(crate::sla::run_scheduler(
            state.clone(),
            notifications.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(crate::sla::run_propagator(
            state.clone(),
            notifications,
            shutdown.clone(),
        )),
        tokio::spawn(crate::sla::run_rules(state.clone(), shutdown.clone())),
    ];
    let pool = state.pool.clone();
    let mut stop = shutdown;
    tasks.push(tokio::spawn(async move {
        loop {
            match idempotency::purge_expired(&pool).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(keys = n, "forgot expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not purge idempotency keys"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = stop.changed() => if *stop.borrow() { return; }
            }
        }
    }));
    tasks
}
