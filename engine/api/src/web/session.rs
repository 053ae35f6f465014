//! Login, logout, the caller of a page, and the CSRF check of POST forms.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tend_domain::Actor;

use super::forms::{FormData, FormError};
use crate::AppState;
use crate::auth::{Caller, SESSION_COOKIE, Via, cookie_in};
use crate::error::ApiError;
use crate::versions::ReloadOutcome;

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Header through which a client that is not a plain HTML form may send the CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";

const INVALID_LOGIN: &str = "Invalid user name or password.";

/// The logged-in caller of a page. Without a valid session or token, a page request is
/// redirected to the login form (the JSON API returns 401 instead).
pub struct Viewer {
    pub caller: Caller,
    /// For process owners and admins: why the last definitions reload was not applied.
    pub definitions_notice: Option<String>,
}

impl Viewer {
    pub fn actor(&self) -> &Actor {
        &self.caller.actor
    }

    /// Builds the layout's header data: name, roles, whether a logout button applies and
    /// whether the staff pages are linked.
    pub(super) fn layout_json(&self) -> Value {
        let roles: Vec<&str> = self.caller.actor.roles.iter().map(|r| r.as_str()).collect();
        json!({
            "name": self.caller.actor.name,
            "roles": roles.join(", "),
            "logout": matches!(self.caller.via, Via::Session { .. }),
            "staff": self.caller.actor.is_staff(),
            "notice": self.definitions_notice,
        })
    }

    /// Checks the CSRF token of a POST. Session callers must send the session's token in
    /// the form field `csrf` or the `X-CSRF-Token` header. Token callers pass: a browser
    /// never adds an `Authorization` header to a cross-site request by itself.
    pub(super) fn csrf_valid(&self, headers: &HeaderMap, form: Option<&FormData>) -> bool {
        let Some(expected) = self.caller.csrf() else {
            return true;
        };
        let sent = form
            .and_then(|form| form.get("csrf"))
            .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        match sent {
            Some(sent) => constant_time_eq(sent.as_bytes(), expected.as_bytes()),
            None => false,
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => {
                let definitions_notice = definitions_notice(state, &caller);
                Ok(Viewer {
                    caller,
                    definitions_notice,
                })
            }
            Err(ApiError::Unauthenticated) => Err(login_redirect(parts)),
            Err(error) => Err(state.web.error(None, &error)),
        }
    }
}

/// Returns the message of the last definitions reload when it was not applied and the
/// caller may act on it (a process owner or admin).
fn definitions_notice(state: &AppState, caller: &Caller) -> Option<String> {
    if !caller.actor.may(&[tend_domain::Role::ProcessOwner]) {
        return None;
    }
    let status = state.commands.engine.status()?;
    match status.outcome {
        ReloadOutcome::Rejected | ReloadOutcome::Failed => {
            let first = status
                .diagnostics
                .first()
                .map(|d| {
                    format!(
                        " First error: {}:{}:{}: {}",
                        d.file, d.line, d.column, d.message
                    )
                })
                .unwrap_or_default();
            Some(format!(
                "{}.{first} All errors: GET /api/v1/definitions.",
                status.message
            ))
        }
        ReloadOutcome::Loaded | ReloadOutcome::Unchanged => None,
    }
}

/// Sends the browser to the login form; a GET comes back to its page after the login.
fn login_redirect(parts: &Parts) -> Response {
    if parts.method != Method::GET {
        return Redirect::to("/login").into_response();
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/records", |path| path.as_str());
    let query = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// Compares two byte strings in time that depends only on their lengths, so that a wrong
/// CSRF token does not reveal how many of its leading bytes were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A local path to return to after the login. Anything else (another host, `//host`,
/// backslashes, control characters) falls back to the record list, so the login form cannot
/// be used to send people to another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/records",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    user: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    state.web.page(
        status,
        "login",
        None,
        "Log in",
        &json!({ "user": user, "next": next, "error": error }),
    )
}

pub async fn login_form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let next = query.ok().and_then(|Query(query)| query.next);
    login_page(&state, StatusCode::OK, "", safe_next(next.as_deref()), None)
}

pub async fn login(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, None),
    };
    let user = form.get("user").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let next = safe_next(form.get("next")).to_owned();
    let store = &state.commands.store;

    let verified = if user.is_empty() || password.is_empty() {
        None
    } else {
        match store.verify_password(user, password).await {
            Ok(verified) => verified,
            Err(error) => return state.web.error(None, &error.into()),
        }
    };
    let Some(verified) = verified else {
        tracing::info!(user, "web login failed");
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            user,
            &next,
            Some(INVALID_LOGIN),
        );
    };

    let (secret, _csrf) = match store
        .create_session(&verified.name, state.web.session_ttl)
        .await
    {
        Ok(session) => session,
        Err(error) => return state.web.error(None, &error.into()),
    };
    // A new login replaces the session this browser had, so that an old cookie cannot
    // outlive the login that follows it.
    if let Some(old) = cookie_in(&request_headers, SESSION_COOKIE)
        && let Err(error) = store.delete_session(old).await
    {
        tracing::warn!(%error, "failed to delete the previous session at login");
    }
    tracing::info!(user = verified.name, "web login");
    let mut response = Redirect::to(&next).into_response();
    let cookie = session_cookie(&secret, state.web.session_ttl, state.web.secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    if let Via::Session { secret, .. } = &viewer.caller.via
        && let Err(error) = state.commands.store.delete_session(secret).await
    {
        return state.web.error(Some(&viewer), &error.into());
    }
    tracing::info!(user = viewer.actor().name, "web logout");
    let mut response = Redirect::to("/login").into_response();
    let expired = expired_cookie(state.web.secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn session_cookie(secret: &str, ttl: Duration, secure: bool) -> String {
    let mut cookie = format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}",
        ttl.as_secs()
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

fn expired_cookie(secure: bool) -> String {
    session_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/records/INC0000001")),
            "/records/INC0000001"
        );
        assert_eq!(
            safe_next(Some("/records?q=a&open=true")),
            "/records?q=a&open=true"
        );
        for hostile in [
            "https://evil.test/",
            "//evil.test/",
            "/\\evil.test",
            "records",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/records", "{hostile}");
        }
        assert_eq!(safe_next(None), "/records");
    }

    #[test]
    fn session_cookie_attributes() {
        let plain = session_cookie("s3cret", Duration::from_secs(60), false);
        assert_eq!(
            plain,
            "tend_session=s3cret; HttpOnly; SameSite=Lax; Path=/; Max-Age=60"
        );
        let secure = session_cookie("s3cret", Duration::from_secs(60), true);
        assert!(secure.ends_with("; Secure"), "{secure}");
    }
}
