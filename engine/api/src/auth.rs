//! Caller authentication: an API token (`Authorization: Bearer ...`, or as the password of
//! HTTP Basic credentials with the token's user name) or a web session cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use tend_domain::Actor;

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "tend_session";

/// How long a token lookup is reused. A deactivated user's token keeps working for at most
/// this long.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries kept before the cache is emptied; bounds memory under many distinct tokens.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Recently verified API tokens, keyed by the SHA-256 of the secret, so that a busy client
/// does not cost two queries per request.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Actor, Instant)>>,
}

impl TokenCache {
    async fn actor(
        &self,
        store: &tend_store::Store,
        secret: &str,
    ) -> Result<Option<Actor>, ApiError> {
        let key = tend_store::sha256_hex(secret);
        if let Some((actor, at)) = self.lock().get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(actor.clone()));
        }
        let Some(user) = store.user_for_token(secret).await? else {
            self.lock().remove(&key);
            return Ok(None);
        };
        let actor = user.actor();
        let mut entries = self.lock();
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, (actor.clone(), Instant::now()));
        Ok(Some(actor))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Actor, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The credential the caller authenticated with.
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

/// Returns the value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// Returns the value of cookie `name` in the `Cookie` headers of `headers`.
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

/// Reads HTTP Basic credentials whose password is an API token, for clients such as
/// inventory agents that cannot send a bearer token. Returns the token and the user name,
/// which must be the token's user.
fn basic_credentials(encoded: &str) -> Option<(String, Option<String>)> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, token) = text.split_once(':')?;
    Some((token.to_owned(), Some(user.to_owned())))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let store = &state.commands.store;
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let header = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
            let (secret, user) = if let Some(secret) = header.strip_prefix("Bearer ") {
                (secret.trim().to_owned(), None)
            } else if let Some(encoded) = header.strip_prefix("Basic ") {
                basic_credentials(encoded).ok_or(ApiError::Unauthenticated)?
            } else {
                return Err(ApiError::Unauthenticated);
            };
            let actor = state
                .tokens
                .actor(store, &secret)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            if user.is_some_and(|user| user != actor.name) {
                return Err(ApiError::Unauthenticated);
            }
            return Ok(Caller {
                actor,
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
