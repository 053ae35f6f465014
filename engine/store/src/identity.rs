//! Users and their passwords, stored as argon2id PHC strings.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::rngs::OsRng;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use tend_domain::{Actor, Role};

use crate::credentials::random_text;
use crate::entities::users;
use crate::{Error, Store, now};

/// A person or machine account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub active: bool,
    /// Whether the user gets notifications about changes they made themselves.
    pub notify_own_changes: bool,
    /// Language of the user's notifications, such as `fr`; `None` for the mailbox's.
    pub locale: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Returns the actor that commands of this user carry.
    pub fn actor(&self) -> Actor {
        Actor::new(self.name.clone(), self.roles.clone())
    }
}

impl Store {
    /// Adds a user with an argon2id hash of `password`. Returns `Error::Duplicate` when the
    /// name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        email: Option<&str>,
        roles: &[Role],
        password: &str,
    ) -> Result<User, Error> {
        validate_name(name)?;
        let password_hash = hash_password(password).await?;
        let row = users::ActiveModel {
            name: Set(name.to_owned()),
            email: Set(email.map(str::to_owned)),
            roles: Set(roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(",")),
            password_hash: Set(password_hash),
            active: Set(true),
            created_at: Set(now()),
            ..Default::default()
        };
        let name = name.to_owned();
        let id = self
            .write(move |tx| {
                Box::pin(async move {
                    let inserted = users::Entity::insert(row)
                        .exec(tx)
                        .await
                        .map_err(|error| Error::from_insert(error, "user", &name))?;
                    Ok(inserted.last_insert_id)
                })
            })
            .await?;
        let user = users::Entity::find_by_id(id).one(self.db()).await?;
        to_user(user.ok_or_else(|| {
            Error::corrupt("user", format!("user id {id} vanished after its insert"))
        })?)
    }

    pub async fn count_users(&self) -> Result<u64, Error> {
        Ok(users::Entity::find().count(self.db()).await?)
    }

    pub async fn find_user(&self, name: &str) -> Result<Option<User>, Error> {
        find_model(self.db(), name).await?.map(to_user).transpose()
    }

    /// Lists every user, ordered by name.
    pub async fn list_users(&self) -> Result<Vec<User>, Error> {
        users::Entity::find()
            .order_by_asc(users::Column::Name)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_user)
            .collect()
    }

    /// Returns the user when `password` matches and the user is active, otherwise `None`.
    /// An unknown name costs one hash check too, so timing does not reveal which names exist.
    pub async fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>, Error> {
        let model = find_model(self.db(), name).await?;
        let stored = match &model {
            Some(model) => model.password_hash.clone(),
            None => dummy_hash().to_owned(),
        };
        let matches = check_password(password.to_owned(), stored).await?;
        match model {
            Some(model) if matches && model.active => Ok(Some(to_user(model)?)),
            _ => Ok(None),
        }
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), Error> {
        let password_hash = hash_password(password).await?;
        self.update_user(name, move |row| row.password_hash = Set(password_hash))
            .await
    }

    /// Sets whether user `name` gets notifications about their own changes.
    pub async fn set_notify_own_changes(&self, name: &str, enabled: bool) -> Result<(), Error> {
        let name = name.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                let user = require_user(tx, &name).await?;
                let row = users::ActiveModel {
                    id: Set(user.id),
                    notify_own_changes: Set(enabled),
                    ..Default::default()
                };
                users::Entity::update(row).exec(tx).await?;
                Ok(())
            })
        })
        .await
    }

    /// Sets the language of user `name`'s notifications, or clears it with `None`.
    pub async fn set_user_locale(&self, name: &str, locale: Option<String>) -> Result<(), Error> {
        self.update_user(name, move |row| row.locale = Set(locale))
            .await
    }

    /// Activates or deactivates a user; an inactive user can neither log in nor use tokens
    /// or sessions.
    pub async fn set_user_active(&self, name: &str, active: bool) -> Result<(), Error> {
        self.update_user(name, move |row| row.active = Set(active))
            .await
    }

    async fn update_user(
        &self,
        name: &str,
        change: impl FnOnce(&mut users::ActiveModel) + Send + 'static,
    ) -> Result<(), Error> {
        let name = name.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                let user = require_user(tx, &name).await?;
                let mut row = users::ActiveModel {
                    id: Set(user.id),
                    ..Default::default()
                };
                change(&mut row);
                users::Entity::update(row).exec(tx).await?;
                Ok(())
            })
        })
        .await
    }
}

fn validate_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':');
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid user name `{name}`: use 1 to 100 characters without spaces or colons"
        )))
    }
}

/// Hashes on a blocking thread: argon2 takes tens of milliseconds of CPU by design.
async fn hash_password(password: &str) -> Result<String, Error> {
    if password.is_empty() {
        return Err(Error::Invalid(
            "invalid password: it is empty; choose a non-empty password".into(),
        ));
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| Error::Password(error.to_string()))
    })
    .await
    .map_err(|error| Error::Password(error.to_string()))?
}

async fn check_password(password: String, stored: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&stored).map_err(|error| Error::corrupt("password hash", error))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|error| Error::Password(error.to_string()))?
}

/// Returns a valid hash of a random password, checked when a user name is unknown.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(random_text(32).as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

async fn find_model<C: ConnectionTrait>(db: &C, name: &str) -> Result<Option<users::Model>, Error> {
    Ok(users::Entity::find()
        .filter(users::Column::Name.eq(name))
        .one(db)
        .await?)
}

pub(crate) async fn require_user<C: ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<users::Model, Error> {
    find_model(db, name).await?.ok_or_else(|| Error::NotFound {
        what: "user",
        key: name.to_owned(),
    })
}

pub(crate) async fn active_user<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<User>, Error> {
    match users::Entity::find_by_id(id).one(db).await? {
        Some(model) if model.active => Ok(Some(to_user(model)?)),
        _ => Ok(None),
    }
}

pub(crate) fn to_user(model: users::Model) -> Result<User, Error> {
    let roles = model
        .roles
        .split(',')
        .filter(|role| !role.is_empty())
        .map(|role| role.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Error::corrupt(format!("roles of user {}", model.name), error))?;
    Ok(User {
        id: model.id,
        name: model.name,
        email: model.email,
        roles,
        active: model.active,
        notify_own_changes: model.notify_own_changes,
        locale: model.locale,
        created_at: model.created_at,
    })
}

/// Loads the users named `names` inside a write job; names without a user are left out.
pub async fn users_named<C: ConnectionTrait>(db: &C, names: &[String]) -> Result<Vec<User>, Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    users::Entity::find()
        .filter(users::Column::Name.is_in(names.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(to_user)
        .collect()
}

/// Finds the oldest user whose email is `address` (compared without case) inside a
/// write job.
pub async fn user_with_email<C: ConnectionTrait>(
    db: &C,
    address: &str,
) -> Result<Option<User>, Error> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    users::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(users::Column::Email))).eq(address.to_lowercase()))
        .order_by_asc(users::Column::Id)
        .one(db)
        .await?
        .map(to_user)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_colons_or_spaces_are_invalid() {
        assert!(validate_name("ada").is_ok());
        assert!(validate_name("ada.lovelace@example.org").is_ok());
        for name in ["", "a b", "a:b", "tab\there"] {
            assert!(validate_name(name).is_err(), "{name:?}");
        }
    }
}
