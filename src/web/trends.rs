//! `/trends`: ΔHU of every material over time per scanner, phantom and protocol.

use super::auth::{read_access, Reading};
use super::{html, Shared};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use maud::html;

/// GET /trends
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, Response> {
    let user = read_access(&state, &headers, &uri, Reading::Page).await?;
    let body = html! { h1 { "Trends" } };
    Ok(html::page("Trends", user.as_ref(), body).into_response())
}
