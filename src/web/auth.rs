//! Logging in and out, sessions and who may do what.
//!
//! - A session is a random 256-bit token in the cookie `hured_session` (HttpOnly,
//!   SameSite=Strict, Path=/, `Secure` with `web.secure_cookies`); the database keeps only its
//!   SHA-256, with the user, the expiry (`web.session_hours`) and the session's CSRF token.
//! - Every form carries a CSRF token: the session's, or for the login form a random one that
//!   must equal the `hured_login` cookie set with the form (double submit).
//! - [`users::MAX_FAILED_LOGINS`] failed logins in a row lock the user for
//!   [`users::LOCK_MS`]; an unknown name costs the same hashing time as a known one.
//! - [`read_access`]: pages and `/api/*` need a session unless `web.public_read`;
//!   [`act_access`]: an action needs a physicist's session and its CSRF token (else 403).

use super::{html, Shared, WebError};
use crate::store::{now_ms, NewSession, Role};
use crate::users;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

const SESSION_COOKIE: &str = "hured_session";
const LOGIN_COOKIE: &str = "hured_login";

/// The logged-in user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token (every form of the session carries it).
    pub csrf: String,
}

/// A random 256-bit token, hex.
fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compare two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(state: &Shared, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.web.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let v =
        format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Where a request came from, as the audit log records it: the peer, and what a reverse
/// proxy says in X-Forwarded-For.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap) -> String {
    match headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(fwd) => format!("{fwd} (via {})", peer.ip()),
        None => peer.ip().to_string(),
    }
}

/// The session user of a request, if its cookie names a live session.
pub async fn current_user(
    state: &Shared,
    headers: &HeaderMap,
) -> Result<Option<SessionUser>, WebError> {
    let Some(tok) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let row = state.store.session(&sha256_hex(tok), now_ms()).await?;
    Ok(row.map(|s| SessionUser {
        name: s.user_name,
        role: s.role,
        csrf: s.csrf_token,
    }))
}

/// How a request without a session is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A page: redirect to the login form (and back afterwards).
    Page,
    /// `/api/*`: 401.
    Api,
}

/// May this request read? `Ok(user)` (None: `public_read` without a session), else the
/// response that turns it away.
pub async fn read_access(
    state: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    kind: Reading,
) -> Result<Option<SessionUser>, Response> {
    let user = current_user(state, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    if user.is_some() || state.web.public_read {
        return Ok(user);
    }
    Err(match kind {
        Reading::Api => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Cookie realm=\"hu-red\"")],
            "log in first: POST /login with a user of `hu-red user add`\n",
        )
            .into_response(),
        Reading::Page => {
            let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", html::url_encode(next))).into_response()
        }
    })
}

/// May this request act (POST)? It needs a session whose CSRF token the form carries, of a
/// physicist; anything else answers 403.
pub async fn act_access(
    state: &Shared,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<SessionUser, WebError> {
    let user = current_user(state, headers).await?.ok_or_else(|| {
        WebError::Forbidden("not logged in (or the session expired): log in again".into())
    })?;
    if !same_secret(csrf, &user.csrf) {
        return Err(WebError::Forbidden(
            "the form's CSRF token is missing or not this session's: reload the page and try again"
                .into(),
        ));
    }
    if user.role != Role::Physicist {
        return Err(WebError::Forbidden(format!(
            "{} is a viewer: only a physicist may do this",
            user.name
        )));
    }
    Ok(user)
}

/// A local path to go back to after logging in (never another site): `/` then printable
/// ASCII without a backslash (browsers read `/\host` as `//host`, and drop tabs and newlines
/// from a URL, so `/<TAB>/host` would be `//host` too).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// GET /login: the form, with a fresh login CSRF token (cookie and hidden field).
pub async fn login_form(State(state): State<Shared>, Query(q): Query<NextQuery>) -> Response {
    login_page(&state, q.next.as_deref(), None, StatusCode::OK)
}

fn login_page(
    state: &Shared,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = token();
    let body = html! {
        h1 { "Log in" }
        @if let Some(e) = error { p.notice { (e) } }
        form method="post" action="/login" {
            (html::csrf_field(&csrf))
            input type="hidden" name="next" value=(safe_next(next));
            p { label { "User " input name="username" autocomplete="username" required autofocus; } }
            p { label { "Password " input type="password" name="password" autocomplete="current-password" required; } }
            p { button type="submit" { "Log in" } }
        }
        p.muted { "Users are added on the server: hu-red user add NAME --role physicist|viewer" }
    };
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_COOKIE, &csrf, 3600),
        )],
        html::page("Log in", None, body),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// POST /login.
pub async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    match cookie(&headers, LOGIN_COOKIE) {
        Some(c) if !c.is_empty() && same_secret(c, &f.csrf) => {}
        _ => {
            return WebError::Forbidden(
                "the login form's CSRF token is missing or stale: open /login again".into(),
            )
            .into_response()
        }
    }
    let address = client_address(peer, &headers);
    match check_login(&state, &f.username, &f.password, &address).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            return login_page(
                &state,
                f.next.as_deref(),
                Some(&why),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => return e.into_response(),
    }
    let tok = token();
    let now = now_ms();
    let hours = i64::from(state.web.session_hours);
    let created = state
        .store
        .create_session(&NewSession {
            token_hash: &sha256_hex(&tok),
            user_name: &f.username,
            csrf_token: &token(),
            created_at: now,
            expires_at: now + hours * 3_600_000,
            address: Some(&address),
        })
        .await;
    if let Err(e) = created {
        return WebError::from(e).into_response();
    }
    tracing::info!(user = %f.username, %address, "web: logged in");
    let mut r = Redirect::to(&safe_next(f.next.as_deref())).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &tok, hours * 3600),
    );
    h.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    r
}

/// `Ok(Ok(()))` when the password is right and the user not locked; `Ok(Err(message))` to
/// show on the form.
async fn check_login(
    state: &Shared,
    name: &str,
    password: &str,
    address: &str,
) -> Result<Result<(), String>, WebError> {
    const REFUSED: &str = "wrong user name or password";
    let user = state.store.get_user(name).await?;
    let hash = user
        .as_ref()
        .map_or(users::dummy_hash().to_string(), |u| u.password_hash.clone());
    let pw = password.to_string();
    let matches = tokio::task::spawn_blocking(move || users::verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user else {
        return Ok(Err(REFUSED.into()));
    };
    let now = now_ms();
    if let Some(until) = user.locked_until.filter(|&t| t > now) {
        return Ok(Err(format!(
            "{name} is locked after {} failed logins until {}: wait, or ask an administrator",
            users::MAX_FAILED_LOGINS,
            html::when(until)
        )));
    }
    if !matches {
        let lock = now + users::LOCK_MS;
        if let Some(until) = state
            .store
            .record_login_failure(name, users::MAX_FAILED_LOGINS, lock)
            .await?
        {
            tracing::warn!(user = %name, %address, "web: user locked after failed logins");
            state
                .store
                .record_audit(&crate::store::AuditEntry {
                    at: now,
                    user_name: name.to_string(),
                    action: "login.locked".into(),
                    target: Some(format!("user {name}")),
                    detail: Some(format!(
                        "{} failed logins: locked until {}",
                        users::MAX_FAILED_LOGINS,
                        html::when(until)
                    )),
                    address: Some(address.to_string()),
                })
                .await?;
        }
        return Ok(Err(REFUSED.into()));
    }
    state.store.record_login_success(name).await?;
    Ok(Ok(()))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// POST /logout (with the session's CSRF token).
pub async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match current_user(&state, &headers).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    match (user, cookie(&headers, SESSION_COOKIE)) {
        (Some(u), Some(tok)) if same_secret(&f.csrf, &u.csrf) => {
            if let Err(e) = state.store.delete_session(&sha256_hex(tok)).await {
                return WebError::from(e).into_response();
            }
        }
        (Some(_), _) => {
            return WebError::Forbidden("the form's CSRF token is not this session's".into())
                .into_response()
        }
        (None, _) => {}
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hured_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
    }

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/runs/3")), "/runs/3");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/ /x",
            "/r\u{e9}sum\u{e9}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
