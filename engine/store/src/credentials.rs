//! API tokens and web sessions. Both are stored only as the SHA-256 of their secret, so a
//! copy of the database hands out no working credentials.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use rand::rngs::OsRng;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use crate::entities::{api_tokens, sessions};
use crate::identity::{active_user, require_user};
use crate::{Error, Store, User, now};

/// Prefix of every API token secret, so that leaked tokens are easy to recognize.
pub const TOKEN_PREFIX: &str = "tend_";

/// How often `user_for_token` refreshes a token's `last_used_at`; a refresh is a write.
const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Store {
    /// Creates an API token for `user` and returns its secret, which is not stored and so
    /// cannot be shown again.
    pub async fn create_token(&self, user: &str, label: &str) -> Result<String, Error> {
        let secret = format!("{TOKEN_PREFIX}{}", random_text(40));
        let token_hash = sha256_hex(&secret);
        let (user, label) = (user.to_owned(), label.to_owned());
        self.write(move |tx| {
            Box::pin(async move {
                let owner = require_user(tx, &user).await?;
                let row = api_tokens::ActiveModel {
                    user_id: Set(owner.id),
                    label: Set(label),
                    token_hash: Set(token_hash),
                    created_at: Set(now()),
                    last_used_at: Set(None),
                    ..Default::default()
                };
                api_tokens::Entity::insert(row).exec(tx).await?;
                Ok(())
            })
        })
        .await?;
        Ok(secret)
    }

    /// Returns the active user that owns the token `secret`, or `None`.
    pub async fn user_for_token(&self, secret: &str) -> Result<Option<User>, Error> {
        let Some(token) = api_tokens::Entity::find()
            .filter(api_tokens::Column::TokenHash.eq(sha256_hex(secret)))
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = active_user(self.db(), token.user_id).await? else {
            return Ok(None);
        };

        let stamp = now();
        if token
            .last_used_at
            .is_none_or(|used| stamp - used >= LAST_USED_RESOLUTION)
        {
            // Best effort and not awaited: a lost timestamp must not fail the request.
            let store = self.clone();
            tokio::spawn(async move {
                let result = store
                    .write(move |tx| {
                        Box::pin(async move {
                            let row = api_tokens::ActiveModel {
                                id: Set(token.id),
                                last_used_at: Set(Some(stamp)),
                                ..Default::default()
                            };
                            api_tokens::Entity::update(row).exec(tx).await?;
                            Ok(())
                        })
                    })
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%error, token.id = token.id, "failed to record the token's last use");
                }
            });
        }
        Ok(Some(user))
    }

    /// Opens a web session for `user` lasting `ttl`. Returns the cookie secret and the CSRF
    /// token of the session; only the SHA-256 of the secret is stored.
    pub async fn create_session(
        &self,
        user: &str,
        ttl: Duration,
    ) -> Result<(String, String), Error> {
        let ttl = chrono::TimeDelta::from_std(ttl).map_err(|_| {
            Error::Invalid(format!(
                "invalid session lifetime {ttl:?}: use at most a few years"
            ))
        })?;
        let secret = random_text(43);
        let csrf_token = random_text(32);
        let id = sha256_hex(&secret);
        let (user, csrf) = (user.to_owned(), csrf_token.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let owner = require_user(tx, &user).await?;
                let created_at = now();
                let row = sessions::ActiveModel {
                    id: Set(id),
                    user_id: Set(owner.id),
                    csrf_token: Set(csrf),
                    created_at: Set(created_at),
                    expires_at: Set(created_at + ttl),
                };
                sessions::Entity::insert(row).exec(tx).await?;
                Ok(())
            })
        })
        .await?;
        Ok((secret, csrf_token))
    }

    /// Returns the session's user and CSRF token, or `None` when the session is unknown,
    /// expired, or its user is inactive.
    pub async fn session(&self, secret: &str) -> Result<Option<(User, String)>, Error> {
        let Some(session) = sessions::Entity::find_by_id(sha256_hex(secret))
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        if session.expires_at <= Utc::now() {
            return Ok(None);
        }
        Ok(active_user(self.db(), session.user_id)
            .await?
            .map(|user| (user, session.csrf_token)))
    }

    pub async fn delete_session(&self, secret: &str) -> Result<(), Error> {
        let id = sha256_hex(secret);
        self.write(move |tx| {
            Box::pin(async move {
                sessions::Entity::delete_by_id(id).exec(tx).await?;
                Ok(())
            })
        })
        .await
    }

    /// Deletes expired sessions and returns how many there were.
    pub async fn purge_expired_sessions(&self) -> Result<u64, Error> {
        self.write(|tx| {
            Box::pin(async move {
                let deleted = sessions::Entity::delete_many()
                    .filter(sessions::Column::ExpiresAt.lte(now()))
                    .exec(tx)
                    .await?;
                Ok(deleted.rows_affected)
            })
        })
        .await
    }
}

/// Hex SHA-256 of a secret, the form in which tokens and session ids are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn random_text(length: usize) -> String {
    let mut rng = OsRng;
    (0..length)
        .map(|_| char::from(URL_SAFE[rng.gen_range(0..URL_SAFE.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_text_is_url_safe() {
        let text = random_text(200);
        assert_eq!(text.len(), 200);
        assert!(text.bytes().all(|byte| URL_SAFE.contains(&byte)));
        assert_ne!(random_text(40), random_text(40));
    }
}
