//! The web face of `hu-red serve` (`[web]`): a dashboard for physicists and the operations
//! endpoints for IT, on the service's tokio runtime (axum).
//!
//! - Pages, server-rendered HTML (maud: every value escaped, a DICOM header's text included),
//!   charts as inline SVG, no script and nothing fetched from elsewhere: `/` recent runs,
//!   `/runs/{id}` a run (`runs`), `/trends` (`trends`), `/baselines` with the audit log
//!   (`baselines`), `/series` what is being received and the outbox (`series`); `/login`
//!   (`auth`).
//! - Actions (physicists, POST with the session's CSRF token): `/runs/{id}/baseline`,
//!   `/runs/{id}/resend` (`runs`, through `crate::actions`, audited).
//! - JSON: `/api/runs`, `/api/runs/{id}` (`api`).
//! - Operations, no login: `/healthz`, `/metrics` (`ops`).
//!
//! Access (`auth`): without a session, pages redirect to `/login` and `/api/*` answers 401,
//! unless `web.public_read`; a POST without the session's CSRF token, or by a viewer, answers
//! 403.

mod api;
mod auth;
mod baselines;
mod chart;
mod html;
mod ops;
mod runs;
mod series;
mod trends;

use crate::config::{MailConfig, ScannerConfig, WebConfig};
use crate::identity::ProtocolField;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::supervisor;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::info;

/// What the web server reads and acts on (shared by every request).
pub struct AppState {
    pub store: Store,
    pub web: WebConfig,
    pub data_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// The supervised tasks (`/healthz`).
    pub tasks: supervisor::Status,
    /// `qa.protocol_fields`: the protocol key of a baseline set from a run.
    pub protocol_fields: Vec<ProtocolField>,
    pub mail: MailConfig,
    pub scanners: Vec<ScannerConfig>,
}

pub type Shared = Arc<AppState>;

/// Every route.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/files/{name}", get(runs::file))
        .route("/runs/{id}/baseline", post(runs::set_baseline))
        .route("/runs/{id}/resend", post(runs::resend))
        .route("/trends", get(trends::page))
        .route("/baselines", get(baselines::page))
        .route("/series", get(series::page))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// On every response: no framing by other sites, no script, images and forms only from here,
/// no content-type guessing, no full URL in the Referer sent elsewhere.
async fn security_headers(mut r: Response) -> Response {
    use axum::http::{header, HeaderValue};
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// Serve `router(state)` on `listener` until `shutdown` completes (in-flight requests are
/// finished first).
pub async fn serve(
    listener: TcpListener,
    state: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "web: listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn not_found() -> Response {
    WebError::NotFound("no such page".into()).into_response()
}

/// A request that could not be answered: its status and a page (or text) saying why.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Action(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) | WebError::Action(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            // the database refused or is unreachable: try again later
            WebError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("web: {self}");
        }
        (status, html::error_page(status, &self.to_string())).into_response()
    }
}
