//! Evaluating CI collections: the CIs of a collection's classes and statuses that meet
//! all of its conditions. A condition `equals` or `in` on an indexed attribute (a key,
//! a unique attribute, or a reference to a user or CI) narrows the candidates through the
//! key index first. Without one, the collection's classes are read page by page.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;
use serde_json::Value;
use tend_store::cmdb::{self as store, Ci, CiFilter, MAX_CI_LIMIT};
use tend_workflow::cmdb::{AttributeType, CmdbSchema, Collection, Operators};

use crate::error::ApiError;

/// A condition ready to test: its operators, the attribute's value type, and for a CI
/// reference the ids that the names in `equals` and `in` resolved to.
struct Test {
    attribute: String,
    operators: Operators,
    value_type: AttributeType,
    referenced: Option<BTreeSet<String>>,
}

/// Returns the collection `name`.
pub fn collection<'a>(schema: &'a CmdbSchema, name: &str) -> Result<&'a Collection, ApiError> {
    schema
        .collections
        .get(name)
        .ok_or_else(|| ApiError::NotFound {
            what: "collection",
            key: name.to_owned(),
        })
}

/// Returns the members of `collection`, in id order.
pub async fn members<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    collection: &Collection,
) -> Result<Vec<Ci>, ApiError> {
    let mut classes: BTreeSet<String> = BTreeSet::new();
    for class in &collection.classes {
        classes.extend(schema.subclasses_of(class));
    }
    let tests = prepare(db, schema, collection, &classes).await?;

    let candidates = match indexed_candidates(db, schema, &classes, &tests).await? {
        Some(cis) => cis,
        None => scan(db, &classes, &collection.status).await?,
    };
    let statuses: Vec<&str> = collection.status.iter().map(String::as_str).collect();
    Ok(candidates
        .into_iter()
        .filter(|ci| classes.contains(&ci.class))
        .filter(|ci| {
            if statuses.is_empty() {
                ci.retired_at.is_none()
            } else {
                statuses.contains(&ci.status.as_str())
            }
        })
        .filter(|ci| tests.iter().all(|test| meets(ci, test)))
        .collect())
}

/// Resolves the conditions: value types from the classes, and CI names to ids.
async fn prepare<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    collection: &Collection,
    classes: &BTreeSet<String>,
) -> Result<Vec<Test>, ApiError> {
    let mut tests = Vec::new();
    for (attribute, condition) in &collection.conditions {
        let value_type = classes
            .iter()
            .filter_map(|class| schema.class(class))
            .find_map(|class| class.attributes.get(attribute))
            .map_or(AttributeType::String, |resolved| resolved.def.value_type());
        let operators = condition.operators();
        let referenced = if value_type == AttributeType::Ci {
            let mut ids = BTreeSet::new();
            let given = operators
                .equals
                .iter()
                .chain(operators.any_of.iter().flatten());
            for value in given {
                let text = text_of(value);
                match text.parse::<i64>() {
                    Ok(id) => {
                        ids.insert(id.to_string());
                    }
                    Err(_) => {
                        for ci in store::find_cis_by_name(db, &text).await? {
                            ids.insert(ci.id.to_string());
                        }
                    }
                }
            }
            Some(ids)
        } else {
            None
        };
        tests.push(Test {
            attribute: attribute.clone(),
            operators,
            value_type,
            referenced,
        });
    }
    Ok(tests)
}

/// Narrows the candidates through the key index when a condition allows it.
async fn indexed_candidates<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    classes: &BTreeSet<String>,
    tests: &[Test],
) -> Result<Option<Vec<Ci>>, ApiError> {
    let indexed = |attribute: &str| {
        classes
            .iter()
            .filter_map(|class| schema.class(class))
            .any(|class| {
                class.attributes.get(attribute).is_some_and(|resolved| {
                    resolved.def.unique
                        || matches!(
                            resolved.def.value_type(),
                            AttributeType::User | AttributeType::Ci
                        )
                        || class.keys.iter().flatten().any(|key| key == attribute)
                })
            })
    };
    for test in tests {
        if !indexed(&test.attribute) {
            continue;
        }
        let values: Vec<String> = match &test.referenced {
            Some(ids) => ids.iter().cloned().collect(),
            None => test
                .operators
                .equals
                .iter()
                .chain(test.operators.any_of.iter().flatten())
                .map(text_of)
                .collect(),
        };
        if values.is_empty() && test.referenced.is_none() {
            continue;
        }
        let ids = store::find_cis_by_key_values(db, &test.attribute, &values).await?;
        return Ok(Some(store::load_cis(db, &ids).await?));
    }
    Ok(None)
}

/// Reads every CI of `classes`, page by page, and the retired ones only when the
/// collection's statuses include `retired`.
async fn scan<C: ConnectionTrait>(
    db: &C,
    classes: &BTreeSet<String>,
    statuses: &[String],
) -> Result<Vec<Ci>, ApiError> {
    let mut passes: Vec<Option<String>> = vec![None];
    if statuses.iter().any(|status| status == store::RETIRED) {
        passes.push(Some(store::RETIRED.to_owned()));
    }
    let mut all = Vec::new();
    for status in passes {
        let mut after = None;
        loop {
            let filter = CiFilter {
                classes: Some(classes.iter().cloned().collect()),
                q: None,
                status: status.clone(),
                limit: MAX_CI_LIMIT,
                after,
            };
            let (page, more) = store::list_cis(db, &filter).await?;
            after = page.last().map(|ci| ci.id);
            all.extend(page);
            if !more {
                break;
            }
        }
    }
    Ok(all)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.trim().to_lowercase(),
        other => other.to_string(),
    }
}

/// Checks whether CI `ci` meets `test`.
fn meets(ci: &Ci, test: &Test) -> bool {
    let value = ci
        .attributes
        .get(&test.attribute)
        .filter(|value| !value.is_null())
        .filter(|value| !value.as_array().is_some_and(Vec::is_empty));
    let operators = &test.operators;
    if let Some(present) = operators.present
        && present != value.is_some()
    {
        return false;
    }
    let Some(value) = value else {
        // Only `present: false` holds for an attribute without a value.
        return operators.present == Some(false)
            && operators.equals.is_none()
            && operators.any_of.is_none()
            && operators.contains.is_none()
            && operators.at_least.is_none()
            && operators.at_most.is_none();
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let equal = |item: &Value, expected: &Value| match &test.referenced {
        Some(ids) => ids.contains(&text_of(item)),
        None => match (item, expected) {
            (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
            _ => text_of(item) == text_of(expected),
        },
    };
    if let Some(expected) = &operators.equals
        && !items.iter().any(|item| equal(item, expected))
    {
        return false;
    }
    if let Some(any_of) = &operators.any_of
        && !items
            .iter()
            .any(|item| any_of.iter().any(|expected| equal(item, expected)))
    {
        return false;
    }
    if let Some(texts) = &operators.contains {
        let needles: Vec<String> = texts
            .to_vec()
            .iter()
            .map(|text| text.trim().to_lowercase())
            .collect();
        let found = items.iter().any(|item| {
            let haystack = text_of(item);
            needles
                .iter()
                .any(|needle| haystack.contains(needle.as_str()))
        });
        if !found {
            return false;
        }
    }
    let compare = |item: &Value, bound: &Value| -> Option<std::cmp::Ordering> {
        match test.value_type {
            AttributeType::Number => item.as_f64()?.partial_cmp(&bound.as_f64()?),
            AttributeType::Date => Some(item.as_str()?.cmp(bound.as_str()?)),
            _ => None,
        }
    };
    if let Some(bound) = &operators.at_least
        && !items
            .iter()
            .any(|item| compare(item, bound).is_some_and(|order| order.is_ge()))
    {
        return false;
    }
    if let Some(bound) = &operators.at_most
        && !items
            .iter()
            .any(|item| compare(item, bound).is_some_and(|order| order.is_le()))
    {
        return false;
    }
    true
}

/// Counts `cis` by the value of `attribute` (each item of a list counts), for reports.
/// CIs without a value count under `(none)`.
pub fn group_by(cis: &[Ci], attribute: &str) -> BTreeMap<String, u64> {
    let mut groups = BTreeMap::new();
    for ci in cis {
        let value = match attribute {
            "class" => Some(Value::String(ci.class.clone())),
            "status" => Some(Value::String(ci.status.clone())),
            _ => ci.attributes.get(attribute).cloned(),
        };
        let keys: Vec<String> = match value {
            None | Some(Value::Null) => vec!["(none)".to_owned()],
            Some(Value::Array(items)) if items.is_empty() => vec!["(none)".to_owned()],
            Some(Value::Array(items)) => items.iter().map(display).collect(),
            Some(other) => vec![display(&other)],
        };
        for key in keys {
            *groups.entry(key).or_insert(0) += 1;
        }
    }
    groups
}

fn display(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
