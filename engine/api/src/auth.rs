//! Who is calling: an API token (`Authorization: Bearer ...`) or a web session cookie.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use tend_domain::Actor;

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "tend_session";

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    Token,
    /// A browser session; forms must carry its CSRF token.
    Session {
        secret: String,
        csrf: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub via: Via,
}

impl Caller {
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf, .. } => Some(csrf),
            Via::Token => None,
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// The value of cookie `name` in the `Cookie` headers of `headers`.
pub fn cookie_in<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let store = &state.commands.store;
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let header = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
            let Some(secret) = header.strip_prefix("Bearer ") else {
                return Err(ApiError::Unauthenticated);
            };
            let user = store
                .user_for_token(secret.trim())
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            return Ok(Caller {
                actor: user.actor(),
                via: Via::Token,
            });
        }
        if let Some(secret) = cookie(parts, SESSION_COOKIE)
            && let Some((user, csrf)) = store.session(secret).await?
        {
            return Ok(Caller {
                actor: user.actor(),
                via: Via::Session {
                    secret: secret.to_owned(),
                    csrf,
                },
            });
        }
        Err(ApiError::Unauthenticated)
    }
}
