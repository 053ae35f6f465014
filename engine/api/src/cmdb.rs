//! CI commands: checking attributes against their class, resolving references to other
//! CIs and users, and writing CIs and relationships through the store's write funnel.
//! The REST handlers live in `rest_cmdb`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};
use tend_domain::Actor;
use tend_store::cmdb::{self as store, ChangeSource, Ci, CiChange, CiKey, NewCi, Relationship};
use tend_workflow::cmdb::{AttributeType, CmdbSchema, ResolvedClass};

use crate::error::ApiError;

/// Statuses a CI can be given; `retired` is reached only through the retire command.
pub const STATUSES: [&str; 3] = ["planned", "active", "maintenance"];

/// Checks that `actor` may read and write the CMDB: technicians, process owners and
/// admins. Requesters get nothing, since CIs name hosts, addresses and owners.
pub fn require_staff(actor: &Actor) -> Result<(), ApiError> {
    if actor.is_staff() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "user `{}` may not use the CMDB: it is open to technicians, process owners and admins",
            actor.name
        )))
    }
}

/// Returns the concrete class `name`, or an error naming the classes there are.
pub fn concrete_class<'a>(
    schema: &'a CmdbSchema,
    name: &str,
) -> Result<&'a ResolvedClass, ApiError> {
    let class = schema.class(name).ok_or_else(|| {
        let known: Vec<&str> = schema
            .classes
            .values()
            .filter(|class| !class.is_abstract)
            .map(|class| class.name.as_str())
            .collect();
        ApiError::bad_request(
            "unknown_class",
            format!("unknown CI class `{name}`: use one of {}", known.join(", ")),
            Some("class"),
        )
    })?;
    if class.is_abstract {
        let concrete: Vec<String> = schema
            .subclasses_of(name)
            .into_iter()
            .filter(|sub| schema.class(sub).is_some_and(|c| !c.is_abstract))
            .collect();
        return Err(ApiError::bad_request(
            "abstract_class",
            format!(
                "CI class `{name}` is abstract: create a CI of one of its subclasses ({})",
                concrete.join(", ")
            ),
            Some("class"),
        ));
    }
    Ok(class)
}

/// Checks a CI name and returns it trimmed.
pub fn check_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("CI name `{name}` is invalid: give 1 to 200 characters"),
            Some("name"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks a status that a person may set.
pub fn check_status(status: &str) -> Result<String, ApiError> {
    if STATUSES.contains(&status) {
        return Ok(status.to_owned());
    }
    let hint = if status == store::RETIRED {
        "retire a CI with POST /api/v1/cis/{id}/retire".to_owned()
    } else {
        format!("use one of {}", STATUSES.join(", "))
    };
    Err(ApiError::bad_request(
        "invalid_status",
        format!("CI status `{status}` cannot be set: {hint}"),
        Some("status"),
    ))
}

/// A reference to another CI, as the request gave it, to resolve inside the write job.
#[derive(Debug, Clone)]
struct PendingReference {
    attribute: String,
    /// Index within a list attribute.
    item: Option<usize>,
    given: Value,
    class: Option<String>,
}

/// Attributes checked against their class, with the references still to resolve.
#[derive(Debug, Clone, Default)]
pub struct CheckedAttributes {
    pub values: Map<String, Value>,
    references: Vec<PendingReference>,
    users: BTreeSet<String>,
}

/// Checks `input` against `class`. With `creating`, every required attribute must be
/// present; otherwise only the given attributes are checked, and `null` removes one
/// unless it is required.
pub fn check_attributes(
    class: &ResolvedClass,
    input: &Map<String, Value>,
    creating: bool,
) -> Result<CheckedAttributes, ApiError> {
    let mut checked = CheckedAttributes::default();
    for (name, value) in input {
        let Some(attribute) = class.attributes.get(name) else {
            let known: Vec<&str> = class.attributes.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "it has no attributes".to_owned()
            } else {
                format!("use one of {}", known.join(", "))
            };
            return Err(ApiError::bad_request(
                "unknown_attribute",
                format!("class `{}` has no attribute `{name}`: {hint}", class.name),
                Some(&format!("attributes.{name}")),
            ));
        };
        let def = &attribute.def;
        if value.is_null() {
            if def.required {
                return Err(required_error(class, name));
            }
            checked.values.insert(name.clone(), Value::Null);
            continue;
        }
        let normalised = if def.kind == AttributeType::List {
            let Value::Array(items) = value else {
                return Err(type_error(
                    class,
                    name,
                    value,
                    "a JSON array, such as [\"a\", \"b\"]",
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(check_value(
                    class,
                    name,
                    Some(i),
                    def.value_type(),
                    &def.values,
                    def.class.as_deref(),
                    item,
                    &mut checked,
                )?);
            }
            Value::Array(out)
        } else {
            check_value(
                class,
                name,
                None,
                def.kind,
                &def.values,
                def.class.as_deref(),
                value,
                &mut checked,
            )?
        };
        checked.values.insert(name.clone(), normalised);
    }
    if creating {
        for (name, attribute) in &class.attributes {
            let given = checked
                .values
                .get(name)
                .is_some_and(|value| !value.is_null());
            if attribute.def.required && !given {
                return Err(required_error(class, name));
            }
        }
        checked.values.retain(|_, value| !value.is_null());
    }
    Ok(checked)
}

fn required_error(class: &ResolvedClass, name: &str) -> ApiError {
    ApiError::bad_request(
        "missing_attribute",
        format!(
            "attribute `{name}` of class `{}` is required: give it a value",
            class.name
        ),
        Some(&format!("attributes.{name}")),
    )
}

fn type_error(class: &ResolvedClass, name: &str, value: &Value, expected: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_attribute",
        format!(
            "attribute `{name}` of class `{}` is {value}: send {expected}",
            class.name
        ),
        Some(&format!("attributes.{name}")),
    )
}

#[allow(clippy::too_many_arguments)]
fn check_value(
    class: &ResolvedClass,
    name: &str,
    item: Option<usize>,
    kind: AttributeType,
    values: &[String],
    target_class: Option<&str>,
    value: &Value,
    checked: &mut CheckedAttributes,
) -> Result<Value, ApiError> {
    let ok = match kind {
        AttributeType::String => value.is_string(),
        AttributeType::Number => value.is_number(),
        AttributeType::Boolean => value.is_boolean(),
        AttributeType::Date => value
            .as_str()
            .is_some_and(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()),
        AttributeType::Enum => value
            .as_str()
            .is_some_and(|text| values.iter().any(|allowed| allowed == text)),
        AttributeType::Ci => {
            value.as_i64().is_some_and(|id| id > 0)
                || value.as_str().is_some_and(|text| !text.trim().is_empty())
        }
        AttributeType::User => value.as_str().is_some_and(|text| !text.trim().is_empty()),
        AttributeType::List => false,
    };
    if !ok {
        let expected = match kind {
            AttributeType::String => "a JSON string".to_owned(),
            AttributeType::Number => "a JSON number, such as 4096".to_owned(),
            AttributeType::Boolean => "true or false".to_owned(),
            AttributeType::Date => "a date as YYYY-MM-DD, such as \"2026-12-31\"".to_owned(),
            AttributeType::Enum => format!("one of {}", values.join(", ")),
            AttributeType::Ci => "the id or the name of a CI".to_owned(),
            AttributeType::User => "the name of a user".to_owned(),
            AttributeType::List => "a single value".to_owned(),
        };
        let place = match item {
            Some(i) => format!("{name}[{i}]"),
            None => name.to_owned(),
        };
        return Err(type_error(class, &place, value, &expected));
    }
    match kind {
        AttributeType::Ci => checked.references.push(PendingReference {
            attribute: name.to_owned(),
            item,
            given: value.clone(),
            class: target_class.map(str::to_owned),
        }),
        AttributeType::User => {
            checked
                .users
                .insert(value.as_str().unwrap_or_default().trim().to_owned());
        }
        _ => {}
    }
    Ok(match value {
        Value::String(text) if kind == AttributeType::User => Value::String(text.trim().to_owned()),
        other => other.clone(),
    })
}

/// Resolves a CI given by id (a number or a string of digits) or by name inside a write
/// job. A name must match exactly one CI that is not retired, of `class` when set.
pub async fn resolve_ci(
    tx: &tend_store::Transaction,
    schema: &CmdbSchema,
    given: &Value,
    class: Option<&str>,
    field: &str,
) -> Result<Ci, ApiError> {
    let text = match given {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        other => {
            return Err(ApiError::bad_request(
                "invalid_reference",
                format!("`{field}` is {other}: give the id or the name of a CI"),
                Some(field),
            ));
        }
    };
    let found = match text.parse::<i64>() {
        Ok(id) => store::load_ci(tx, id)
            .await?
            .filter(|ci| ci.retired_at.is_none())
            .into_iter()
            .collect::<Vec<_>>(),
        Err(_) => store::find_cis_by_name(tx, &text).await?,
    };
    let matching: Vec<Ci> = found
        .into_iter()
        .filter(|ci| match class {
            Some(class) => schema.class(&ci.class).is_some_and(|c| c.is_a(class)),
            None => true,
        })
        .collect();
    let of_class = class
        .map(|c| format!(" of class `{c}`"))
        .unwrap_or_default();
    match matching.len() {
        1 => Ok(matching
            .into_iter()
            .next()
            .unwrap_or_else(|| unreachable!())),
        0 => Err(ApiError::bad_request(
            "unknown_ci",
            format!(
                "`{field}` names CI `{text}`, but no CI{of_class} that is not retired has that id or name: create it first or fix the reference"
            ),
            Some(field),
        )),
        _ => {
            let ids: Vec<String> = matching.iter().map(|ci| ci.id.to_string()).collect();
            Err(ApiError::bad_request(
                "ambiguous_ci",
                format!(
                    "`{field}` names CI `{text}`, which matches CIs {}: give the id instead",
                    ids.join(", ")
                ),
                Some(field),
            ))
        }
    }
}

/// Resolves the references of `checked` and checks its users inside a write job,
/// replacing each CI reference by the id of the CI it names.
async fn resolve_references(
    tx: &tend_store::Transaction,
    schema: &CmdbSchema,
    checked: &mut CheckedAttributes,
) -> Result<(), ApiError> {
    for reference in &checked.references {
        let field = match reference.item {
            Some(i) => format!("attributes.{}[{i}]", reference.attribute),
            None => format!("attributes.{}", reference.attribute),
        };
        let ci = resolve_ci(
            tx,
            schema,
            &reference.given,
            reference.class.as_deref(),
            &field,
        )
        .await?;
        let slot = checked.values.get_mut(&reference.attribute);
        match (slot, reference.item) {
            (Some(Value::Array(items)), Some(i)) if i < items.len() => {
                items[i] = Value::from(ci.id)
            }
            (Some(slot), None) => *slot = Value::from(ci.id),
            _ => {}
        }
    }
    let unknown = store::unknown_users(tx, &checked.users).await?;
    if let Some(user) = unknown.first() {
        let attribute = checked
            .values
            .iter()
            .find(|(_, value)| value_names_user(value, user))
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            "unknown_user",
            format!(
                "attribute `{attribute}` names user `{user}`, who does not exist: add the user or fix the name"
            ),
            Some(&format!("attributes.{attribute}")),
        ));
    }
    Ok(())
}

fn value_names_user(value: &Value, user: &str) -> bool {
    match value {
        Value::String(text) => text == user,
        Value::Array(items) => items.iter().any(|item| value_names_user(item, user)),
        _ => false,
    }
}

/// Returns the key-index rows of a CI of `class` with `attributes`: every value of an
/// attribute that is unique or part of an identification key, and of every reference to
/// a user or a CI, so that "the CIs that user X owns" and "the CIs in location Y" are
/// index lookups, and of every attribute marked `indexed`.
pub fn keys_of(class: &ResolvedClass, attributes: &Map<String, Value>) -> Vec<CiKey> {
    let key_attributes: BTreeSet<&str> = class.keys.iter().flatten().map(String::as_str).collect();
    let mut keys = Vec::new();
    for (name, attribute) in &class.attributes {
        let unique = attribute.def.unique;
        let reference = matches!(
            attribute.def.value_type(),
            AttributeType::User | AttributeType::Ci
        );
        if !unique
            && !reference
            && !attribute.def.indexed
            && !key_attributes.contains(name.as_str())
        {
            continue;
        }
        let values: Vec<&Value> = match attributes.get(name) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(value) => vec![value],
        };
        for value in values {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            keys.push(CiKey {
                attribute: name.clone(),
                value: text,
                scope: attribute.declared_by.clone(),
                unique,
            });
        }
    }
    keys
}

/// Maps the store's refusals of CMDB writes to API errors with the right status.
pub fn store_error(error: tend_store::Error) -> ApiError {
    match error {
        tend_store::Error::AttributeTaken { .. } => {
            let message = error.to_string();
            ApiError::Duplicate(message)
        }
        tend_store::Error::CiConflict { .. } => ApiError::Stale(error.to_string()),
        tend_store::Error::Duplicate { what, key } => {
            ApiError::Duplicate(format!("{what} {key} exists already: nothing was added"))
        }
        other => ApiError::from(other),
    }
}

/// Creates a CI after checking it against its class.
pub async fn create_ci(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    class: &str,
    name: &str,
    status: Option<&str>,
    attributes: &Map<String, Value>,
) -> Result<Ci, ApiError> {
    let resolved = concrete_class(&schema, class)?.clone();
    let name = check_name(name)?;
    let status = check_status(status.unwrap_or("active"))?;
    let checked = check_attributes(&resolved, attributes, true)?;
    let actor_name = actor.name.clone();
    store_handle
        .write(move |tx| {
            Box::pin(async move {
                let mut checked = checked;
                resolve_references(tx, &schema, &mut checked)
                    .await
                    .map_err(tend_store::Error::rejected)?;
                let keys = keys_of(&resolved, &checked.values);
                let new = NewCi {
                    class: resolved.name.clone(),
                    name,
                    status,
                    attributes: checked.values,
                    keys,
                };
                store::insert_ci(tx, new, &actor_name, ChangeSource::Person).await
            })
        })
        .await
        .map_err(store_error)
}

/// Input of a CI update.
#[derive(Debug, Clone, Default)]
pub struct CiUpdate {
    pub name: Option<String>,
    pub status: Option<String>,
    pub attributes: Map<String, Value>,
    /// The version the caller read; a CI changed since then is not overwritten.
    pub version: Option<i64>,
}

/// Changes a CI's name, status or attributes, as one new version by a person.
pub async fn update_ci(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    id: i64,
    update: CiUpdate,
) -> Result<Ci, ApiError> {
    update_ci_from(
        store_handle,
        schema,
        actor,
        id,
        update,
        ChangeSource::Person,
    )
    .await
}

/// Changes a CI's name, status or attributes, as one new version from `source`.
pub async fn update_ci_from(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    id: i64,
    update: CiUpdate,
    source: ChangeSource,
) -> Result<Ci, ApiError> {
    let current = store::load_ci(store_handle.db(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "CI",
            key: id.to_string(),
        })?;
    let class = schema.class(&current.class).cloned().ok_or_else(|| {
        ApiError::bad_request(
            "unknown_class",
            format!(
                "CI {id} is of class `{}`, which the loaded definitions no longer declare: restore the class in workflows/cmdb/classes/",
                current.class
            ),
            None,
        )
    })?;
    let name = update.name.as_deref().map(check_name).transpose()?;
    let status = update.status.as_deref().map(check_status).transpose()?;
    let checked = check_attributes(&class, &update.attributes, false)?;
    let actor_name = actor.name.clone();
    store_handle
        .write(move |tx| {
            Box::pin(async move {
                let mut checked = checked;
                resolve_references(tx, &schema, &mut checked)
                    .await
                    .map_err(tend_store::Error::rejected)?;
                // The key rows follow the attributes as they will be after the change.
                let stored = store::load_ci(tx, id)
                    .await?
                    .ok_or(tend_store::Error::NotFound {
                        what: "CI",
                        key: id.to_string(),
                    })?;
                let mut after = stored.attributes.clone();
                for (attribute, value) in &checked.values {
                    if value.is_null() {
                        after.remove(attribute);
                    } else {
                        after.insert(attribute.clone(), value.clone());
                    }
                }
                let change = CiChange {
                    name,
                    status,
                    attributes: checked.values,
                    keys: keys_of(&class, &after),
                };
                store::update_ci(tx, id, change, update.version, &actor_name, source).await
            })
        })
        .await
        .map_err(store_error)
}

/// Retires a CI and its relationships.
pub async fn retire_ci(
    store_handle: &tend_store::Store,
    actor: &Actor,
    id: i64,
) -> Result<(Ci, Vec<Relationship>), ApiError> {
    let actor_name = actor.name.clone();
    store_handle
        .write(move |tx| {
            Box::pin(
                async move { store::retire_ci(tx, id, &actor_name, ChangeSource::Person).await },
            )
        })
        .await
        .map_err(store_error)
}

/// Relates two CIs for a person after checking the type and the classes at both ends.
pub async fn relate(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    kind: &str,
    source: Value,
    target: Value,
) -> Result<Relationship, ApiError> {
    relate_from(
        store_handle,
        schema,
        actor,
        kind,
        source,
        target,
        ChangeSource::Person,
    )
    .await
}

/// Relates two CIs on behalf of `via` after checking the type and the classes at both
/// ends.
pub async fn relate_from(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    kind: &str,
    source: Value,
    target: Value,
    via: ChangeSource,
) -> Result<Relationship, ApiError> {
    let Some(definition) = schema.relationship_type(kind).cloned() else {
        let known: Vec<&str> = schema
            .relationship_types
            .keys()
            .map(String::as_str)
            .collect();
        return Err(ApiError::bad_request(
            "unknown_relationship_type",
            format!(
                "unknown relationship type `{kind}`: use one of {}",
                known.join(", ")
            ),
            Some("type"),
        ));
    };
    let kind = kind.to_owned();
    let actor_name = actor.name.clone();
    store_handle
        .write(move |tx| {
            Box::pin(async move {
                let source = resolve_ci(tx, &schema, &source, None, "source")
                    .await
                    .map_err(tend_store::Error::rejected)?;
                let target = resolve_ci(tx, &schema, &target, None, "target")
                    .await
                    .map_err(tend_store::Error::rejected)?;
                for (end, ci, allowed, listed) in [
                    ("source", &source, schema.allows_source(&definition, &source.class), &definition.from),
                    ("target", &target, schema.allows_target(&definition, &target.class), &definition.to),
                ] {
                    if !allowed {
                        return Err(tend_store::Error::rejected(ApiError::bad_request(
                            "class_not_allowed",
                            format!(
                                "a `{kind}` relationship cannot have CI {} ({}, a {}) as its {end}: its {end} must be of class {} or a subclass",
                                ci.id,
                                ci.name,
                                ci.class,
                                listed.join(", ")
                            ),
                            Some(end),
                        )));
                    }
                }
                store::insert_relationship(
                    tx,
                    &kind,
                    source.id,
                    target.id,
                    definition.containment,
                    &actor_name,
                    via,
                )
                .await
            })
        })
        .await
        .map_err(store_error)
}

/// Retires relationship `id`.
pub async fn unrelate(
    store_handle: &tend_store::Store,
    actor: &Actor,
    id: i64,
) -> Result<Relationship, ApiError> {
    let actor_name = actor.name.clone();
    store_handle
        .write(move |tx| {
            Box::pin(async move { store::retire_relationship(tx, id, &actor_name).await })
        })
        .await
        .map_err(store_error)
}
