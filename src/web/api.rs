//! `/api/runs` (the run objects of `hu-red runs --json`, newest first, with the filters of
//! `/` and `limit`/`offset`) and `/api/runs/{id}` (a run with its materials and ROIs).

use super::auth::{read_access, Reading};
use super::runs::RunsQuery;
use super::{Shared, WebError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// The most runs one request returns.
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct ApiQuery {
    #[serde(flatten)]
    runs: RunsQuery,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// GET /api/runs
pub async fn runs(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ApiQuery>,
) -> Result<Response, Response> {
    read_access(&state, &headers, &uri, Reading::Api).await?;
    let r: Result<Response, WebError> = async {
        let filter = q.runs.filter()?;
        let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        let (runs, _) = state
            .store
            .find_runs(&filter, q.offset.unwrap_or(0), limit)
            .await?;
        Ok(Json(runs).into_response())
    }
    .await;
    r.map_err(api_error)
}

/// GET /api/runs/{id}
pub async fn run(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response, Response> {
    read_access(&state, &headers, &uri, Reading::Api).await?;
    match state.store.get_run(id).await {
        Ok(Some(d)) => Ok(Json(d).into_response()),
        Ok(None) => Err(api_error(WebError::NotFound(format!("no run {id}")))),
        Err(e) => Err(api_error(e.into())),
    }
}

/// An API error as JSON: `{"error": "..."}` with the page's status.
fn api_error(e: WebError) -> Response {
    let status = e.status();
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}
