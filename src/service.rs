//! `hu-red serve`: wires the configuration, the store, the SCP, the series assembler, the QA
//! workers and the report sender together, and shuts them down in order (stop accepting and
//! finish in-flight C-STOREs, stop queueing, finish the runs in progress, stop sending: queued
//! reports stay in the outbox for the next start).
//!
//! ```text
//! socket ─► scp (file fsync+rename ∥ StoreSink db row) ─► C-STORE-RSP
//!                                            │
//!               series::run_assembler (stable age) ─► queue ─► worker::run_workers ─► runs
//!                                                                  │ (+ outbox row)
//!                                                   notify::run_sender ─► SMTP / .eml
//! retention::run_daily (at start, then every 24 h) ─► instance rows deleted, then their files
//! ```

use crate::config::{Config, ValidConfig};
use crate::notify;
use crate::phantom::{PhantomError, PhantomSet};
use crate::qa::{self, RESULTS_DIR};
use crate::scp::tls::{ServerTls, TlsError, TlsListener};
use crate::scp::{self, ScpError, ScpSettings};
use crate::series::{self, StoreSink};
use crate::store::{Store, StoreError, StoreOptions};
use crate::supervisor;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("qa.phantom_config: {0}")]
    Phantom(#[from] PhantomError),
    #[error("storage.data_dir {path}: {reason} (create it or point storage.data_dir at a writable folder)")]
    DataDir {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} {addr}: {reason} (is another DICOM server on that port? ports below 1024 need CAP_NET_BIND_SERVICE)")]
    Bind {
        /// `scp.bind` or `scp.tls.bind`.
        key: &'static str,
        addr: String,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Scp(#[from] ScpError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("qa.tolerances: {0}")]
    Tolerances(String),
    #[error("qa.protocol_fields: {0}")]
    ProtocolFields(String),
    #[error("the service task ended abnormally: {0}")]
    Task(String),
    #[error(transparent)]
    GaveUp(#[from] supervisor::GaveUp),
}

fn flatten(
    r: Result<Result<(), ServiceError>, tokio::task::JoinError>,
) -> Result<(), ServiceError> {
    r.unwrap_or_else(|e| Err(ServiceError::Task(e.to_string())))
}

/// How long a stopping service waits for the web server's requests in flight.
const WEB_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A service started in this process (used by `serve` and by the tests).
pub struct RunningService {
    /// The address the SCP listens on (the real port when `scp.bind` asked for port 0).
    pub addr: SocketAddr,
    /// The DICOM TLS listener's address, when `scp.tls.bind` is set.
    pub tls_addr: Option<SocketAddr>,
    /// The web server's address, when `web.bind` is set.
    pub web_addr: Option<SocketAddr>,
    pub store: Store,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl RunningService {
    /// Graceful shutdown, then wait for it to finish.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.stop.send(true);
        self.join().await
    }

    /// Wait until the service ends by itself (it does not, unless it fails).
    pub async fn join(self) -> Result<(), ServiceError> {
        flatten(self.task.await)
    }
}

/// What the SCP is given of `[scp]` (and where it stores).
fn scp_settings(scp: &crate::config::ScpConfig, data_dir: &std::path::Path) -> ScpSettings {
    ScpSettings {
        ae_title: scp.ae_title.clone(),
        allowed_calling_aes: scp.allowed_calling_aes.clone(),
        max_associations: scp.max_associations,
        max_associations_per_ae: scp.max_associations_per_ae,
        max_handshakes: scp.max_handshakes,
        handshake_timeout: scp.handshake_timeout(),
        max_association_duration: scp.max_association_duration(),
        min_transfer_rate: scp.min_transfer_rate,
        max_pdu: scp.max_pdu,
        read_timeout: scp.read_timeout(),
        idle_timeout: scp.idle_timeout(),
        data_dir: data_dir.to_path_buf(),
        ..ScpSettings::default()
    }
}

/// Start everything; returns once the SCP is listening.
pub async fn start(config: ValidConfig) -> Result<RunningService, ServiceError> {
    let data_dir = config.storage.data_dir.clone();
    std::fs::create_dir_all(data_dir.join(RESULTS_DIR)).map_err(|reason| {
        ServiceError::DataDir {
            path: data_dir.clone(),
            reason,
        }
    })?;
    let mut phantoms = PhantomSet::load(config.qa.phantom_config.as_deref())?;
    phantoms
        .apply_tolerances(&config.qa.tolerances)
        .map_err(ServiceError::Tolerances)?;
    let mailer = notify::Mailer::from_config(&config.mail, &data_dir)?;
    let protocol_fields = crate::identity::ProtocolField::parse_list(&config.qa.protocol_fields)
        .map_err(ServiceError::ProtocolFields)?;
    let (store, installation) = open_store(&config, &data_dir).await?;

    let Listeners {
        scp: (listener, addr),
        tls,
        web,
    } = Listeners::bind(&config).await?;
    let tls_addr = tls.as_ref().map(|(_, a)| *a);
    let tls = tls.map(|(l, _)| l);
    let web_addr = web.as_ref().map(|(_, a)| *a);
    let mut settings = scp_settings(&config.scp, &data_dir);
    let metrics = settings.metrics.clone();
    let tasks_status = supervisor::Status::default();
    let web = web.map(|(listener, _)| {
        let state = web_state(&config, &store, &metrics, &tasks_status, &protocol_fields);
        (listener, state)
    });
    settings.metrics = metrics;
    info!(
        %addr,
        tls_addr = %tls_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
        web_addr = %web_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
        ae_title = %config.scp.ae_title,
        database = %store.display_url(),
        data_dir = %data_dir.display(),
        mail = %mailer.describe(),
        "hu-red serve: listening"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let store2 = store.clone();
    let task = tokio::spawn(async move {
        let (queue_tx, queue_rx) = mpsc::channel(config.qa.queue_capacity.max(1));
        let queue: qa::Queue = Arc::new(tokio::sync::Mutex::new(queue_rx));
        let wake = Arc::new(tokio::sync::Notify::new());
        let ctx = qa::Context {
            store: store2.clone(),
            settings: Arc::new(qa_settings(&config, protocol_fields)),
            phantoms: Arc::new(phantoms),
            installation,
            mail_domain: mailer.domain.clone(),
            wake_sender: wake.clone(),
        };
        let tasks = supervised_tasks(
            &config, &store2, queue_tx, queue, ctx, mailer, wake, &stop_rx,
        );
        // The supervisor restarts a failed task; one that keeps failing stops the service.
        let gave_up = Arc::new(tokio::sync::Notify::new());
        let supervisor = tokio::spawn({
            let gave_up = gave_up.clone();
            let stop = stop_rx.clone();
            async move {
                let r = supervisor::supervise_with_status(
                    tasks,
                    supervisor::Policy::default(),
                    stop,
                    tasks_status,
                )
                .await;
                if r.is_err() {
                    gave_up.notify_one();
                }
                r
            }
        });
        let web_task = web.map(|(listener, state)| spawn_web(listener, state, stop_rx.clone()));
        let mut scp_stop = stop_rx.clone();
        let sink = Arc::new(StoreSink {
            store: store2.clone(),
        });
        let scp_result = scp::serve_with_tls(listener, tls, settings, sink, async move {
            tokio::select! {
                _ = scp_stop.wait_for(|stop| *stop) => {}
                _ = gave_up.notified() => {}
            }
        })
        .await;
        // The SCP has finished its in-flight operations: stop queueing, finish the runs (the
        // supervisor returns once every task has ended); the web server finishes its requests.
        if let Some(w) = web_task {
            let stopping = *stop_rx.borrow();
            stop_web(w, stopping).await;
        }
        let supervised = supervisor
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?;
        store2.close().await;
        info!("hu-red serve: stopped");
        supervised?;
        scp_result.map_err(ServiceError::from)
    });
    Ok(RunningService {
        addr,
        tls_addr,
        web_addr,
        store,
        stop: stop_tx,
        task,
    })
}

/// The database, with the files and rows of an earlier run reconciled, the scanners table
/// mirrored from the configuration, and this database's installation id.
async fn open_store(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<(Store, String), ServiceError> {
    let store = Store::connect_with(
        &config.database.url,
        &StoreOptions {
            max_connections: config.database.max_connections,
            ..StoreOptions::default()
        },
    )
    .await?;
    series::recover(&store, data_dir, config.scp.max_associations).await?;
    qa::recover_results(&store, data_dir).await?;
    // The scanners table mirrors the configuration at every start (reports and queries read
    // it; runs keep their scanner's name, so an entry removed loses no history).
    store.sync_scanners(&config.scanners).await?;
    let installation = store.installation_id().await?;
    Ok((store, installation))
}

/// The service's listeners, bound before anything is accepted.
struct Listeners {
    scp: (TcpListener, SocketAddr),
    /// `[scp.tls]`, when set.
    tls: Option<(TlsListener, SocketAddr)>,
    /// `[web] bind`, when set.
    web: Option<(TcpListener, SocketAddr)>,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Listeners, ServiceError> {
        let scp = bind("scp.bind", &config.scp.bind).await?;
        let tls = match config.scp.tls.files() {
            None => None,
            Some(files) => {
                let tls = ServerTls::load(&files)?;
                let (listener, addr) = bind("scp.tls.bind", &config.scp.tls.bind).await?;
                Some((TlsListener::new(listener, tls), addr))
            }
        };
        let web = match config.web.bind_addr() {
            Some(a) => Some(bind("web.bind", a).await?),
            None => None,
        };
        Ok(Listeners { scp, tls, web })
    }
}

/// What the dashboard reads and acts on.
fn web_state(
    config: &Config,
    store: &Store,
    metrics: &Arc<crate::metrics::Metrics>,
    tasks: &supervisor::Status,
    protocol_fields: &[crate::identity::ProtocolField],
) -> Arc<crate::web::AppState> {
    Arc::new(crate::web::AppState {
        store: store.clone(),
        web: config.web.clone(),
        data_dir: config.storage.data_dir.clone(),
        metrics: metrics.clone(),
        tasks: tasks.clone(),
        protocol_fields: protocol_fields.to_vec(),
        mail: config.mail.clone(),
        scanners: config.scanners.clone(),
    })
}

/// The web server, until `stop` turns true.
fn spawn_web(
    listener: TcpListener,
    state: Arc<crate::web::AppState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(e) = crate::web::serve(listener, state, stopped).await {
            tracing::error!("web server stopped: {e}");
        }
    })
}

/// Wait for the web server to finish its requests in flight (`stopping`: it was told to stop
/// by the same signal), at most [`WEB_GRACE`]; otherwise (the supervisor gave up) cut it off.
async fn stop_web(mut task: tokio::task::JoinHandle<()>, stopping: bool) {
    if !stopping || tokio::time::timeout(WEB_GRACE, &mut task).await.is_err() {
        task.abort();
    }
}

/// A listener on `addr` (the value of the setting `key`) and its real address.
async fn bind(key: &'static str, addr: &str) -> Result<(TcpListener, SocketAddr), ServiceError> {
    let failed = |reason| ServiceError::Bind {
        key,
        addr: addr.to_string(),
        reason,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    Ok((listener, local))
}

/// The long-lived tasks of the service, each a factory the supervisor can start again: the
/// assembler (re-queues the stable series at each start), the QA worker pool (takes over the
/// same queue), the report sender (resets messages left `sending`) and the retention purge (at
/// start, then every 24 h).
#[allow(clippy::too_many_arguments)]
fn supervised_tasks(
    config: &Config,
    store: &Store,
    queue_tx: mpsc::Sender<crate::series::SeriesJob>,
    queue: qa::Queue,
    ctx: qa::Context,
    mailer: notify::Mailer,
    wake: Arc<tokio::sync::Notify>,
    stop: &watch::Receiver<bool>,
) -> Vec<(&'static str, supervisor::TaskFactory)> {
    let assembler: supervisor::TaskFactory = {
        let (store, stable, stop) = (store.clone(), config.series.stable_age(), stop.clone());
        Arc::new(move || {
            let run = series::run_assembler(store.clone(), stable, queue_tx.clone(), stop.clone());
            Box::pin(async move {
                run.await;
                Ok(())
            })
        })
    };
    let workers: supervisor::TaskFactory = {
        let (n, stop) = (config.qa.worker_count(), stop.clone());
        Arc::new(move || {
            let run = qa::run_workers(ctx.clone(), queue.clone(), n, stop.clone());
            Box::pin(async move {
                run.await;
                Ok(())
            })
        })
    };
    let sender: supervisor::TaskFactory = {
        let (store, data_dir, stop) =
            (store.clone(), config.storage.data_dir.clone(), stop.clone());
        let policy = notify::RetryPolicy::from_config(&config.mail);
        Arc::new(move || {
            let run = notify::run_sender(
                store.clone(),
                mailer.clone(),
                data_dir.clone(),
                policy,
                wake.clone(),
                stop.clone(),
            );
            Box::pin(async move {
                run.await;
                Ok(())
            })
        })
    };
    let retention: supervisor::TaskFactory = {
        let (store, stop) = (store.clone(), stop.clone());
        let settings = retention_settings(config);
        Arc::new(move || {
            let run = crate::retention::run_daily(store.clone(), settings.clone(), stop.clone());
            Box::pin(async move {
                run.await;
                Ok(())
            })
        })
    };
    let watch: supervisor::TaskFactory = {
        let (store, data_dir, stop) =
            (store.clone(), config.storage.data_dir.clone(), stop.clone());
        Arc::new(move || {
            let run = crate::health::watch_database(store.clone(), data_dir.clone(), stop.clone());
            Box::pin(async move {
                run.await;
                Ok(())
            })
        })
    };
    vec![
        ("database watch", watch),
        ("assembler", assembler),
        ("QA workers", workers),
        ("report sender", sender),
        ("retention purge", retention),
    ]
}

/// The retention room's settings: `storage.data_dir` and `[retention]`.
fn retention_settings(config: &Config) -> crate::retention::Settings {
    crate::retention::Settings {
        data_dir: config.storage.data_dir.clone(),
        policy: crate::retention::Policy::from_days(
            config.retention.unrecognised_days,
            config.retention.instances_days,
        ),
    }
}

/// The QA room's settings, from the validated configuration.
fn qa_settings(
    config: &Config,
    protocol_fields: Vec<crate::identity::ProtocolField>,
) -> qa::Settings {
    qa::Settings {
        data_dir: config.storage.data_dir.clone(),
        phantom: config.qa.phantom.clone(),
        slab_mm: config.qa.slab_mm,
        trend_runs: config.qa.trend_runs,
        auto_baseline: config.qa.auto_baseline,
        protocol_fields,
        scanners: config.scanners.clone(),
        mail: config.mail.clone(),
    }
}

/// Run until `shutdown` completes (SIGTERM/SIGINT in `serve`), then stop gracefully.
pub async fn run(
    config: ValidConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let RunningService { stop, mut task, .. } = start(config).await?;
    tokio::select! {
        _ = shutdown => {
            info!("shutdown requested: finishing in-flight work");
            let _ = stop.send(true);
            flatten(task.await)
        }
        r = &mut task => flatten(r),
    }
}
