//! Configuration items, their versions and their relationships.
//!
//! The store keeps CIs as the API layer validated them: it does not know the classes, so
//! the caller passes the values of the identification-key and unique attributes
//! ([`CiKey`]) along with each write. Every write of a CI appends a row to
//! `ci_versions` with the attributes that changed, their values before and after, the
//! actor and the source, so [`ci_as_of`] can rebuild a CI as it was at any time.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, sea_query::LockType,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::entities::{ci_keys, ci_relationships, ci_versions, cis, users};
use crate::{Error, now};

/// Status of a CI that is out of use. Retired CIs keep their history and relationships
/// rows, but leave the key index and every active relationship.
pub const RETIRED: &str = "retired";

/// Largest page that [`list_cis`] returns.
pub const MAX_CI_LIMIT: u64 = 500;

/// Origin of a change to the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A person, through the API or the web console.
    Person,
    /// An inventory import.
    Import,
    /// A rule.
    Rule,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Person => "person",
            ChangeSource::Import => "import",
            ChangeSource::Rule => "rule",
        }
    }
}

/// A configuration item as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ci {
    pub id: i64,
    pub class: String,
    pub name: String,
    pub status: String,
    pub attributes: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// One value of an identification-key or unique attribute, as the key index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CiKey {
    pub attribute: String,
    /// The value as written; the index keeps it lower-cased and trimmed.
    pub value: String,
    /// Class within which a unique value may occur once.
    pub scope: String,
    pub unique: bool,
}

/// A new CI, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewCi {
    pub class: String,
    pub name: String,
    pub status: String,
    pub attributes: Map<String, Value>,
    pub keys: Vec<CiKey>,
}

/// A change to a CI. `attributes` contains the attributes to set, and a `null` removes one.
/// `keys` replaces the CI's key values and must be computed from the attributes after
/// the change.
#[derive(Debug, Clone, Default)]
pub struct CiChange {
    pub name: Option<String>,
    pub status: Option<String>,
    pub attributes: Map<String, Value>,
    pub keys: Vec<CiKey>,
}

/// One version of a CI: the changes, their time, their actor and their source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiVersion {
    pub version: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub source: String,
    /// Changed attribute (or `name`, `status`) → `{"before": …, "after": …}`.
    pub changes: Map<String, Value>,
}

/// A relationship between two CIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relationship {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: i64,
    pub target: i64,
    pub created_by: String,
    pub created_via: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub retired_by: Option<String>,
}

/// Filter and page of a CI list, in id order.
#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    /// Classes to list; `None` lists every class.
    pub classes: Option<Vec<String>>,
    /// Text the name contains (ignoring case), or the exact value of a key attribute.
    pub q: Option<String>,
    /// Status to list; `None` lists every CI that is not retired.
    pub status: Option<String>,
    pub limit: u64,
    /// Id of the last CI of the previous page.
    pub after: Option<i64>,
}

/// Normalises a key value so that `AA:BB` and ` aa:bb` match.
pub fn key_value(value: &str) -> String {
    value.trim().to_lowercase()
}

fn to_ci(row: cis::Model) -> Result<Ci, Error> {
    let attributes = match serde_json::from_str(&row.attributes) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Error::corrupt(format!("CI {}", row.id), "attributes")),
        Err(error) => return Err(Error::corrupt(format!("CI {}", row.id), error)),
    };
    Ok(Ci {
        id: row.id,
        class: row.class,
        name: row.name,
        status: row.status,
        attributes,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        retired_at: row.retired_at,
    })
}

fn to_relationship(row: ci_relationships::Model) -> Relationship {
    Relationship {
        id: row.id,
        kind: row.kind,
        source: row.source_id,
        target: row.target_id,
        created_by: row.created_by,
        created_via: row.created_via,
        created_at: row.created_at,
        retired_at: row.retired_at,
        retired_by: row.retired_by,
    }
}

/// Reads one CI.
pub async fn load_ci<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Ci>, Error> {
    cis::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_ci)
        .transpose()
}

/// Reads the CIs with `ids` that exist, in id order.
pub async fn load_cis<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<Vec<Ci>, Error> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::impact::CHUNK) {
        let rows = cis::Entity::find()
            .filter(cis::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for row in rows {
            found.push(to_ci(row)?);
        }
    }
    found.sort_by_key(|ci| ci.id);
    Ok(found)
}

/// Finds the CIs that are not retired and whose name is `name`, ignoring case.
pub async fn find_cis_by_name<C: ConnectionTrait>(db: &C, name: &str) -> Result<Vec<Ci>, Error> {
    cis::Entity::find()
        .filter(cis::Column::NameKey.eq(name.trim().to_lowercase()))
        .filter(cis::Column::RetiredAt.is_null())
        .order_by_asc(cis::Column::Id)
        .limit(20)
        .all(db)
        .await?
        .into_iter()
        .map(to_ci)
        .collect()
}

/// Finds the CIs that are not retired and whose key attribute `attribute` has `value`,
/// the lookup that reconciliation runs for each identification key.
pub async fn find_cis_by_key<C: ConnectionTrait>(
    db: &C,
    attribute: &str,
    value: &str,
) -> Result<Vec<i64>, Error> {
    let rows = ci_keys::Entity::find()
        .filter(ci_keys::Column::Attribute.eq(attribute))
        .filter(ci_keys::Column::Value.eq(key_value(value)))
        .all(db)
        .await?;
    let ids: BTreeSet<i64> = rows.into_iter().map(|row| row.ci_id).collect();
    Ok(ids.into_iter().collect())
}

/// Finds the CIs that are not retired and whose key attribute `attribute` has one of
/// `values`, in chunks that stay below the bind-parameter limits; returns their ids.
pub async fn find_cis_by_key_values<C: ConnectionTrait>(
    db: &C,
    attribute: &str,
    values: &[String],
) -> Result<Vec<i64>, Error> {
    let normalised: BTreeSet<String> = values.iter().map(|value| key_value(value)).collect();
    let normalised: Vec<String> = normalised.into_iter().collect();
    let mut ids = BTreeSet::new();
    for chunk in normalised.chunks(crate::impact::CHUNK) {
        let rows = ci_keys::Entity::find()
            .filter(ci_keys::Column::Attribute.eq(attribute))
            .filter(ci_keys::Column::Value.is_in(chunk.iter().map(String::as_str)))
            .all(db)
            .await?;
        ids.extend(rows.into_iter().map(|row| row.ci_id));
    }
    Ok(ids.into_iter().collect())
}

/// Returns the names in `names` that are not users.
pub async fn unknown_users<C: ConnectionTrait>(
    db: &C,
    names: &BTreeSet<String>,
) -> Result<Vec<String>, Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let known: BTreeSet<String> = users::Entity::find()
        .filter(users::Column::Name.is_in(names.iter().map(String::as_str)))
        .all(db)
        .await?
        .into_iter()
        .map(|user| user.name)
        .collect();
    Ok(names.difference(&known).cloned().collect())
}

/// Inserts a CI and its first version inside a write job. Returns
/// [`Error::AttributeTaken`] when a unique value is used by another CI.
pub async fn insert_ci<C: ConnectionTrait>(
    tx: &C,
    new: NewCi,
    actor: &str,
    source: ChangeSource,
) -> Result<Ci, Error> {
    let at = now();
    let row = cis::ActiveModel {
        class: Set(new.class.clone()),
        name_key: Set(new.name.trim().to_lowercase()),
        name: Set(new.name.clone()),
        status: Set(new.status.clone()),
        attributes: Set(Value::Object(new.attributes.clone()).to_string()),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        retired_at: Set(None),
        ..Default::default()
    };
    let inserted = cis::Entity::insert(row).exec(tx).await?;
    let id = inserted.last_insert_id;
    replace_keys(tx, id, &new.keys).await?;

    let mut changes = Map::new();
    changes.insert("name".into(), json!({ "before": null, "after": new.name }));
    changes.insert(
        "status".into(),
        json!({ "before": null, "after": new.status }),
    );
    for (attribute, value) in &new.attributes {
        changes.insert(attribute.clone(), json!({ "before": null, "after": value }));
    }
    insert_version(tx, id, 1, at, actor, source, &changes).await?;
    load_ci(tx, id).await?.ok_or_else(|| Error::NotFound {
        what: "CI",
        key: id.to_string(),
    })
}

/// Applies `change` to CI `id` inside a write job and records a version with what
/// changed. When `expected_version` is set and the CI moved on, returns
/// [`Error::CiConflict`]. A change that changes nothing writes nothing and returns the
/// CI as it is.
pub async fn update_ci<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    change: CiChange,
    expected_version: Option<i64>,
    actor: &str,
    source: ChangeSource,
) -> Result<Ci, Error> {
    let ci = load_ci_for_update(tx, id).await?;
    if let Some(expected) = expected_version
        && expected != ci.version
    {
        return Err(Error::CiConflict {
            id,
            expected,
            found: ci.version,
        });
    }
    if ci.retired_at.is_some() {
        return Err(Error::Invalid(format!(
            "CI {id} ({}) is retired and cannot be changed: create a new CI instead",
            ci.name
        )));
    }

    let mut changes = Map::new();
    let mut attributes = ci.attributes.clone();
    for (attribute, value) in &change.attributes {
        let before = attributes.get(attribute).cloned().unwrap_or(Value::Null);
        if &before == value {
            continue;
        }
        if Value::is_null(value) {
            attributes.remove(attribute);
        } else {
            attributes.insert(attribute.clone(), value.clone());
        }
        changes.insert(
            attribute.clone(),
            json!({ "before": before, "after": value }),
        );
    }
    let name = change.name.unwrap_or_else(|| ci.name.clone());
    if name != ci.name {
        changes.insert("name".into(), json!({ "before": ci.name, "after": name }));
    }
    let status = change.status.unwrap_or_else(|| ci.status.clone());
    if status != ci.status {
        changes.insert(
            "status".into(),
            json!({ "before": ci.status, "after": status }),
        );
    }
    if changes.is_empty() {
        return Ok(ci);
    }

    let at = now();
    let version = ci.version + 1;
    replace_keys(tx, id, &change.keys).await?;
    let mut row = cis::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "CI",
            key: id.to_string(),
        })?
        .into_active_model();
    row.name_key = Set(name.trim().to_lowercase());
    row.name = Set(name);
    row.status = Set(status);
    row.attributes = Set(Value::Object(attributes).to_string());
    row.version = Set(version);
    row.updated_at = Set(at);
    row.update(tx).await?;
    insert_version(tx, id, version, at, actor, source, &changes).await?;
    load_ci(tx, id).await?.ok_or_else(|| Error::NotFound {
        what: "CI",
        key: id.to_string(),
    })
}

/// Retires CI `id` inside a write job: sets its status to `retired`, removes its key
/// values (so that a replacement may take them) and retires its active relationships.
/// Returns the retired CI and the relationships it left.
pub async fn retire_ci<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    actor: &str,
    source: ChangeSource,
) -> Result<(Ci, Vec<Relationship>), Error> {
    let ci = load_ci_for_update(tx, id).await?;
    if ci.retired_at.is_some() {
        return Err(Error::Invalid(format!(
            "CI {id} ({}) is retired already",
            ci.name
        )));
    }
    let at = now();
    let version = ci.version + 1;
    replace_keys(tx, id, &[]).await?;
    let mut row = cis::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "CI",
            key: id.to_string(),
        })?
        .into_active_model();
    row.status = Set(RETIRED.to_owned());
    row.version = Set(version);
    row.updated_at = Set(at);
    row.retired_at = Set(Some(at));
    row.update(tx).await?;
    let mut changes = Map::new();
    changes.insert(
        "status".into(),
        json!({ "before": ci.status, "after": RETIRED }),
    );
    insert_version(tx, id, version, at, actor, source, &changes).await?;

    let active = ci_relationships::Entity::find()
        .filter(active_at_either_end(id))
        .all(tx)
        .await?;
    let mut retired = Vec::with_capacity(active.len());
    for relationship in active {
        retired.push(retire_row(tx, relationship, actor, at).await?);
    }
    let ci = load_ci(tx, id).await?.ok_or_else(|| Error::NotFound {
        what: "CI",
        key: id.to_string(),
    })?;
    Ok((ci, retired))
}

async fn load_ci_for_update<C: ConnectionTrait>(tx: &C, id: i64) -> Result<Ci, Error> {
    let mut query = cis::Entity::find_by_id(id);
    if tx.get_database_backend() == DbBackend::Postgres {
        query = query.lock(LockType::Update);
    }
    let row = query.one(tx).await?.ok_or_else(|| Error::NotFound {
        what: "CI",
        key: id.to_string(),
    })?;
    to_ci(row)
}

async fn insert_version<C: ConnectionTrait>(
    tx: &C,
    ci_id: i64,
    version: i64,
    at: DateTime<Utc>,
    actor: &str,
    source: ChangeSource,
    changes: &Map<String, Value>,
) -> Result<(), Error> {
    let row = ci_versions::ActiveModel {
        ci_id: Set(ci_id),
        version: Set(version),
        at: Set(at),
        actor: Set(actor.to_owned()),
        source: Set(source.as_str().to_owned()),
        changes: Set(Value::Object(changes.clone()).to_string()),
        ..Default::default()
    };
    ci_versions::Entity::insert(row).exec(tx).await?;
    Ok(())
}

/// Replaces the key values of CI `ci_id`, after checking that no other CI uses one of
/// its unique values. The check runs first because on PostgreSQL a failed insert aborts
/// the rest of the job; the unique index still catches a CI written meanwhile by
/// another node.
async fn replace_keys<C: ConnectionTrait>(tx: &C, ci_id: i64, keys: &[CiKey]) -> Result<(), Error> {
    let mut rows: BTreeSet<(String, String, String, bool)> = BTreeSet::new();
    for key in keys {
        let value = key_value(&key.value);
        if value.is_empty() {
            continue;
        }
        rows.insert((key.attribute.clone(), value, key.scope.clone(), key.unique));
    }
    for (attribute, value, scope, unique) in &rows {
        if !unique {
            continue;
        }
        let holder = ci_keys::Entity::find()
            .filter(ci_keys::Column::Scope.eq(scope.as_str()))
            .filter(ci_keys::Column::Attribute.eq(attribute.as_str()))
            .filter(ci_keys::Column::Value.eq(value.as_str()))
            .filter(ci_keys::Column::IsUnique.eq(true))
            .filter(ci_keys::Column::CiId.ne(ci_id))
            .one(tx)
            .await?;
        if let Some(holder) = holder {
            let other = load_ci(tx, holder.ci_id).await?;
            return Err(Error::AttributeTaken {
                attribute: attribute.clone(),
                value: value.clone(),
                ci_id: holder.ci_id,
                ci_name: other.map(|ci| ci.name).unwrap_or_default(),
            });
        }
    }
    ci_keys::Entity::delete_many()
        .filter(ci_keys::Column::CiId.eq(ci_id))
        .exec(tx)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows
        .into_iter()
        .map(|(attribute, value, scope, unique)| ci_keys::ActiveModel {
            ci_id: Set(ci_id),
            attribute: Set(attribute),
            value: Set(value),
            scope: Set(scope),
            is_unique: Set(unique),
            ..Default::default()
        });
    ci_keys::Entity::insert_many(models).exec(tx).await?;
    Ok(())
}

/// Reads every version of CI `id`, oldest first.
pub async fn ci_versions<C: ConnectionTrait>(db: &C, id: i64) -> Result<Vec<CiVersion>, Error> {
    let rows = ci_versions::Entity::find()
        .filter(ci_versions::Column::CiId.eq(id))
        .order_by_asc(ci_versions::Column::Version)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let changes = match serde_json::from_str(&row.changes) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(Error::corrupt(
                        format!("version {} of CI {id}", row.version),
                        "changes",
                    ));
                }
            };
            Ok(CiVersion {
                version: row.version,
                at: row.at,
                actor: row.actor,
                source: row.source,
                changes,
            })
        })
        .collect()
}

/// Rebuilds CI `ci` as it was at `at` from its versions, or `None` when it did not exist
/// yet. The id, class and creation time are those of `ci`.
pub fn ci_as_of(ci: &Ci, versions: &[CiVersion], at: DateTime<Utc>) -> Option<Ci> {
    let mut past = Ci {
        attributes: Map::new(),
        version: 0,
        retired_at: None,
        updated_at: ci.created_at,
        ..ci.clone()
    };
    for version in versions.iter().filter(|version| version.at <= at) {
        for (attribute, change) in &version.changes {
            let after = change.get("after").cloned().unwrap_or(Value::Null);
            match attribute.as_str() {
                "name" => past.name = after.as_str().unwrap_or_default().to_owned(),
                "status" => {
                    past.status = after.as_str().unwrap_or_default().to_owned();
                    if past.status == RETIRED {
                        past.retired_at = Some(version.at);
                    }
                }
                _ if Value::is_null(&after) => {
                    past.attributes.remove(attribute);
                }
                _ => {
                    past.attributes.insert(attribute.clone(), after);
                }
            }
        }
        past.version = version.version;
        past.updated_at = version.at;
    }
    (past.version > 0).then_some(past)
}

/// Lists CIs in id order, one page after `filter.after`. Returns the page and whether
/// more CIs follow.
pub async fn list_cis<C: ConnectionTrait>(
    db: &C,
    filter: &CiFilter,
) -> Result<(Vec<Ci>, bool), Error> {
    let limit = filter.limit.clamp(1, MAX_CI_LIMIT);
    let mut query = cis::Entity::find().order_by_asc(cis::Column::Id);
    if let Some(classes) = &filter.classes {
        query = query.filter(cis::Column::Class.is_in(classes.iter().map(String::as_str)));
    }
    query = match &filter.status {
        Some(status) => query.filter(cis::Column::Status.eq(status.as_str())),
        None => query.filter(cis::Column::RetiredAt.is_null()),
    };
    if let Some(after) = filter.after {
        query = query.filter(cis::Column::Id.gt(after));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let lowered = q.to_lowercase();
        let pattern = format!(
            "%{}%",
            lowered
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        // A CI named `q` also finds the CIs that refer to it (its id is the key value of
        // their reference attributes), so `q=Berlin HQ` lists what is located there.
        let mut values = vec![key_value(q)];
        values.extend(
            find_cis_by_name(db, q)
                .await?
                .iter()
                .map(|named| named.id.to_string()),
        );
        let by_key = Query::select()
            .column(ci_keys::Column::CiId)
            .from(ci_keys::Entity)
            .and_where(Expr::col(ci_keys::Column::Value).is_in(values))
            .to_owned();
        query = query.filter(
            Condition::any()
                .add(
                    Expr::col(cis::Column::NameKey)
                        .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
                )
                .add(Expr::col(cis::Column::Id).in_subquery(by_key)),
        );
    }
    let mut rows = query.limit(limit + 1).all(db).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let page = rows.into_iter().map(to_ci).collect::<Result<_, _>>()?;
    Ok((page, more))
}

/// Inserts a relationship inside a write job. Returns `Error::Duplicate` when the same
/// active relationship exists, and `Error::Invalid` for a CI related to itself or, when
/// `containment` is set, for a relationship that would close a cycle of its type.
pub async fn insert_relationship<C: ConnectionTrait>(
    tx: &C,
    kind: &str,
    source: i64,
    target: i64,
    containment: bool,
    actor: &str,
    via: ChangeSource,
) -> Result<Relationship, Error> {
    if source == target {
        return Err(Error::Invalid(format!(
            "CI {source} cannot have a `{kind}` relationship with itself: choose another target"
        )));
    }
    let existing = ci_relationships::Entity::find()
        .filter(ci_relationships::Column::Kind.eq(kind))
        .filter(ci_relationships::Column::SourceId.eq(source))
        .filter(ci_relationships::Column::TargetId.eq(target))
        .filter(ci_relationships::Column::RetiredAt.is_null())
        .one(tx)
        .await?;
    if let Some(existing) = existing {
        return Err(Error::Duplicate {
            what: "relationship",
            key: format!(
                "{kind} from CI {source} to CI {target} (relationship {})",
                existing.id
            ),
        });
    }
    if containment && let Some(path) = crate::impact::path_between(tx, kind, target, source).await?
    {
        let chain: Vec<String> = path.iter().map(|id| format!("CI {id}")).collect();
        return Err(Error::Invalid(format!(
            "a `{kind}` relationship from CI {source} to CI {target} would close a cycle, since {} already: nothing can contain itself, so fix the existing relationships first",
            chain.join(format!(" {kind} ").as_str())
        )));
    }
    let row = ci_relationships::ActiveModel {
        kind: Set(kind.to_owned()),
        source_id: Set(source),
        target_id: Set(target),
        created_by: Set(actor.to_owned()),
        created_via: Set(via.as_str().to_owned()),
        created_at: Set(now()),
        retired_at: Set(None),
        retired_by: Set(None),
        ..Default::default()
    };
    let key = format!("{kind} from CI {source} to CI {target}");
    let inserted = ci_relationships::Entity::insert(row)
        .exec(tx)
        .await
        .map_err(|error| Error::from_insert(error, "relationship", &key))?;
    load_relationship(tx, inserted.last_insert_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "relationship",
            key: inserted.last_insert_id.to_string(),
        })
}

/// Retires relationship `id` inside a write job; the row stays for history.
pub async fn retire_relationship<C: ConnectionTrait>(
    tx: &C,
    id: i64,
    actor: &str,
) -> Result<Relationship, Error> {
    let row = ci_relationships::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "relationship",
            key: id.to_string(),
        })?;
    if row.retired_at.is_some() {
        return Err(Error::Invalid(format!(
            "relationship {id} is retired already"
        )));
    }
    retire_row(tx, row, actor, now()).await
}

async fn retire_row<C: ConnectionTrait>(
    tx: &C,
    row: ci_relationships::Model,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Relationship, Error> {
    let mut active = row.into_active_model();
    active.retired_at = Set(Some(at));
    active.retired_by = Set(Some(actor.to_owned()));
    Ok(to_relationship(active.update(tx).await?))
}

pub async fn load_relationship<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<Relationship>, Error> {
    Ok(ci_relationships::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_relationship))
}

/// Reads the active relationships of CI `id`, both those it is the source of and those
/// it is the target of, in id order.
pub async fn relationships_of<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Vec<Relationship>, Error> {
    Ok(ci_relationships::Entity::find()
        .filter(active_at_either_end(id))
        .order_by_asc(ci_relationships::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_relationship)
        .collect())
}

/// Matches the active relationships that CI `id` is the source or the target of, with
/// each branch of the OR on its own index.
fn active_at_either_end(id: i64) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(ci_relationships::Column::RetiredAt.is_null())
                .add(ci_relationships::Column::SourceId.eq(id)),
        )
        .add(
            Condition::all()
                .add(ci_relationships::Column::RetiredAt.is_null())
                .add(ci_relationships::Column::TargetId.eq(id)),
        )
}

/// Reads the relationships of CI `id` that were active at `at`, in id order.
pub async fn relationships_at<C: ConnectionTrait>(
    db: &C,
    id: i64,
    at: DateTime<Utc>,
) -> Result<Vec<Relationship>, Error> {
    Ok(ci_relationships::Entity::find()
        .filter(
            Condition::any()
                .add(ci_relationships::Column::SourceId.eq(id))
                .add(ci_relationships::Column::TargetId.eq(id)),
        )
        .filter(ci_relationships::Column::CreatedAt.lte(at))
        .filter(
            Condition::any()
                .add(ci_relationships::Column::RetiredAt.is_null())
                .add(ci_relationships::Column::RetiredAt.gt(at)),
        )
        .order_by_asc(ci_relationships::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_relationship)
        .collect())
}

/// An open record that names a CI in its `ci` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOfCi {
    pub number: String,
    pub process: String,
    pub title: String,
    pub state: String,
}

/// Reads the open records whose `ci` field is one of `names` (a CI's id and name), newest
/// first, at most `limit`, through the index on the records' `ci` column.
pub async fn open_records_naming<C: ConnectionTrait>(
    db: &C,
    names: &[String],
    limit: u64,
) -> Result<Vec<RecordOfCi>, Error> {
    use crate::entities::records;
    Ok(records::Entity::find()
        .filter(records::Column::Ci.is_in(names.iter().map(String::as_str)))
        .filter(records::Column::IsOpen.eq(true))
        .order_by_desc(records::Column::UpdatedAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|row| RecordOfCi {
            number: row.number,
            process: row.process,
            title: row.title,
            state: row.state,
        })
        .collect())
}
