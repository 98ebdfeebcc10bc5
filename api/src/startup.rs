//! Building and running the server: database, migrations, background services, routes.
//! `main` and the black-box tests both start Docket through [`Application::build`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use docket_projections::db;
use docket_projections::notify::{self, LogNotifications};
use docket_projections::registry::PROJECTORS;
use docket_projections::runtime::RunnerSettings;
use poem::Server;
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::accounts::tokens::TokenService;
use crate::app::bus::BusParts;
use crate::app::bus::appenders::Appenders;
use crate::app::consistency::{Consistency, OwnWrites};
use crate::app::live::LiveHub;
use crate::app::metrics::Metrics;
use crate::app::outbound::{self, Outbound, OutboundSettings};
use crate::app::search::RankedSearches;
use crate::app::time::{SystemTime, TimeSource};
use crate::app::{App, Origin, SharedApp, accounts, alerts, router, sla};
use crate::config::Settings;
use crate::demo;
use crate::http::idempotency;

/// How many writers' newest positions a process remembers for their reads.
const REMEMBERED_WRITERS: usize = 100_000;

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
    app: SharedApp,
    shutdown: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    settings: Settings,
}

/// The OpenAPI document as served at `/openapi.json` (see `http::openapi_document`).
pub fn openapi_document() -> serde_json::Value {
    crate::http::openapi_document()
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_time(settings, Arc::new(SystemTime)).await
    }

    pub async fn build_with_time(
        settings: Settings,
        time: Arc<dyn TimeSource>,
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
        let own_writes = Arc::new(OwnWrites::new(REMEMBERED_WRITERS));
        let buses = BusParts {
            pool: pool.clone(),
            metrics: metrics.clone(),
            notifications: notifications.clone(),
            remembered: settings.remembered_aggregates,
            appenders: Arc::new(Appenders::new(
                (*pool.connect_options()).clone(),
                settings.append_connections,
                settings.db_acquire_timeout(),
            )),
            own_writes: own_writes.clone(),
        };
        let app = Arc::new(App {
            pool: pool.clone(),
            tickets: buses.bus(),
            users: buses.bus(),
            api_keys: buses.bus(),
            saved_searches: buses.bus(),
            sla_policies: buses.bus(),
            sla_calendars: buses.bus(),
            escalation_rules: buses.bus(),
            skills: buses.bus(),
            teams: buses.bus(),
            agents: buses.bus(),
            shifts: buses.bus(),
            webhooks: buses.bus(),
            email_templates: buses.bus(),
            alerts: buses.bus(),
            automations: buses.bus(),
            routing_weights: settings.routing_weights(),
            routable_agents: Default::default(),
            sla_catalog: Default::default(),
            live,
            outbound: Outbound::new(OutboundSettings::from_settings(&settings)),
            time,
            tokens,
            api_key_cache: Default::default(),
            notifications: notifications.clone(),
            metrics,
            consistency: Consistency::new(
                pool.clone(),
                notifications.clone(),
                settings.consistency_wait(),
                own_writes,
            ),
            account_freshness: settings.account_freshness(),
            ranked_searches: RankedSearches::new(
                settings.search_rank_ahead_from,
                settings.search_ranked_max,
            ),
        });

        let background = spawn_background(&app, notifications, shutdown_rx);

        if let Some((email, password)) = bootstrap {
            let created = accounts::ensure_admin(
                &app,
                &email,
                password.expose(),
                "Administrator",
                Origin::system("bootstrap").metadata(None),
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the first administrator failed: {e}"))?;
            if created {
                tracing::info!(%email, "created the first administrator");
            }
        }
        if settings.demo {
            demo::load(&app)
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
            "Docket listening on http://{}:{port} (web app at /, API explorer at /docs, spec at /openapi.json)",
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
            app,
            shutdown,
            background,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The application services this server runs on.
    pub fn app(&self) -> SharedApp {
        self.app.clone()
    }

    /// Serves until `signal` completes, then stops the background services.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let routes = crate::http::routes(self.app.clone(), &self.settings);
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, signal, Some(Duration::from_secs(10)))
            .await;
        let _ = self.shutdown.send(true);
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.app.pool.close().await;
        served.map_err(Into::into)
    }
}

fn spawn_background(
    app: &SharedApp,
    notifications: LogNotifications,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let settings = RunnerSettings::default();
    let mut tasks: Vec<JoinHandle<()>> = PROJECTORS
        .iter()
        .map(|projector| {
            tokio::spawn(projector.run(
                app.pool.clone(),
                notifications.clone(),
                settings,
                shutdown.clone(),
            ))
        })
        .collect();
    // The outbound dispatcher runs like a projector but is not one (never rebuilt).
    for subscriber in [
        &outbound::dispatch::WEBHOOK_DISPATCH,
        &outbound::notifier::NOTIFIER,
        &alerts::alerter::ALERTER,
        &crate::app::automation_engine::AUTOMATION,
    ] {
        tasks.push(tokio::spawn(subscriber.run(
            app.pool.clone(),
            notifications.clone(),
            settings,
            shutdown.clone(),
        )));
    }
    tasks.extend([
        tokio::spawn(outbound::delivery::run(app.clone(), shutdown.clone())),
        tokio::spawn(outbound::mail::run(app.clone(), shutdown.clone())),
        tokio::spawn(alerts::alerter::run_raiser(app.clone(), shutdown.clone())),
        tokio::spawn(alerts::watch::run(app.clone(), shutdown.clone())),
        tokio::spawn(crate::app::automation_engine::run_executor(
            app.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(app.metrics.clone().keep_up(shutdown.clone())),
        tokio::spawn(router::run_router(app.clone(), shutdown.clone())),
        tokio::spawn(sla::scheduler::run(app.clone(), shutdown.clone())),
        tokio::spawn(sla::propagation::run(app.clone(), shutdown.clone())),
        tokio::spawn(sla::escalation::run(app.clone(), shutdown.clone())),
    ]);
    let pool = app.pool.clone();
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
