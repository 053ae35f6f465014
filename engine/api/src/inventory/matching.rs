//! Finding the CI an inventory item describes, by the identification keys of its class.
//!
//! The keys are tried in the class's order (a subclass's keys first). The first key that
//! the item carries and that matches decides, after two checks. Another unique key of the
//! item (serial number, UUID) must not point to a different CI. The matched CI must not
//! contain a different value of a unique key the item carries. Either failure is a
//! conflict, reported and never guessed. An item that carries no key at all falls back to
//! its host name.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;
use serde_json::Value;
use tend_inventory::Item;
use tend_store::cmdb::{self as store, Ci};
use tend_workflow::cmdb::{CmdbSchema, ResolvedClass};

/// The outcome of matching one item.
#[derive(Debug, Clone)]
pub enum Match {
    /// No CI describes the item: a new one is created.
    New,
    /// CI `ci` describes it; `by` names the key (`uuid`, `package_name+version`, `name`).
    Found { ci: Box<Ci>, by: String },
    /// The keys disagree: the message names the CIs and values, and what to do.
    Conflict(String),
}

/// Returns the values of one attribute as the key index compares them.
fn key_values(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(key_values).collect(),
        Value::String(text) => vec![store::key_value(text)],
        Value::Null => Vec::new(),
        other => vec![store::key_value(&other.to_string())],
    }
}

/// Finds the CI that `item` describes among the CIs of `root` and its subclasses, by the
/// keys of `class`.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    class: &ResolvedClass,
    root: &str,
    item: &Item,
) -> Result<Match, tend_store::Error> {
    let in_scope =
        |ci: &Ci| ci.retired_at.is_none() && schema.class(&ci.class).is_some_and(|c| c.is_a(root));

    // The CIs that each key the item carries points to, in key order.
    let mut by_key: Vec<(String, BTreeSet<i64>, bool)> = Vec::new();
    let mut seen_keys = BTreeSet::new();
    for key in &class.keys {
        if !seen_keys.insert(key.clone()) {
            continue;
        }
        let carried = key.iter().all(|attribute| {
            item.attributes
                .get(attribute)
                .is_some_and(|v| !key_values(v).is_empty())
        });
        if !carried {
            continue;
        }
        let mut matching: Option<BTreeSet<i64>> = None;
        for attribute in key {
            let mut ids = BTreeSet::new();
            for value in key_values(&item.attributes[attribute]) {
                ids.extend(store::find_cis_by_key(db, attribute, &value).await?);
            }
            matching = Some(match matching {
                None => ids,
                Some(before) => before.intersection(&ids).copied().collect(),
            });
        }
        let unique = key.len() == 1
            && class
                .attributes
                .get(&key[0])
                .is_some_and(|attribute| attribute.def.unique);
        by_key.push((key.join("+"), matching.unwrap_or_default(), unique));
    }

    // Load every candidate once, and keep those in scope.
    let all_ids: Vec<i64> = by_key
        .iter()
        .flat_map(|(_, ids, _)| ids.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let candidates: BTreeMap<i64, Ci> = store::load_cis(db, &all_ids)
        .await?
        .into_iter()
        .filter(|ci| in_scope(ci))
        .map(|ci| (ci.id, ci))
        .collect();
    for (_, ids, _) in &mut by_key {
        ids.retain(|id| candidates.contains_key(id));
    }

    if by_key.is_empty() {
        return find_by_name(db, item, in_scope).await;
    }
    let Some((key, ids, _)) = by_key.iter().find(|(_, ids, _)| !ids.is_empty()) else {
        return Ok(Match::New);
    };
    if ids.len() > 1 {
        return Ok(Match::Conflict(format!(
            "{} CIs match the document by {key} ({}): merge or retire the duplicates, or correct their {key}, then import again",
            ids.len(),
            describe(ids.iter().filter_map(|id| candidates.get(id)))
        )));
    }
    let id = *ids.iter().next().unwrap_or_else(|| unreachable!());
    let ci = &candidates[&id];

    for (other_key, other_ids, unique) in &by_key {
        if *unique && !other_ids.is_empty() && !other_ids.contains(&id) {
            return Ok(Match::Conflict(format!(
                "the document matches {} by {key} but {} by {other_key}: these may be two machines or one recorded twice; fix the CIs, then import again",
                describe([ci]),
                describe(other_ids.iter().filter_map(|other| candidates.get(other)))
            )));
        }
    }
    for (attribute, resolved) in &class.attributes {
        if !resolved.def.unique {
            continue;
        }
        let (Some(Value::String(stored)), Some(Value::String(reported))) =
            (ci.attributes.get(attribute), item.attributes.get(attribute))
        else {
            continue;
        };
        if store::key_value(stored) != store::key_value(reported) {
            return Ok(Match::Conflict(format!(
                "the document matches {} by {key}, but its {attribute} is `{stored}` and the document reports `{reported}`: if the part was replaced, correct {attribute} on the CI; if this is another machine that shares the {key}, retire or correct the CI that holds it; then import again",
                describe([ci])
            )));
        }
    }
    Ok(Match::Found {
        ci: Box::new(ci.clone()),
        by: key.clone(),
    })
}

/// Matches an item that carries no identification key by its host name.
async fn find_by_name<C: ConnectionTrait>(
    db: &C,
    item: &Item,
    in_scope: impl Fn(&Ci) -> bool,
) -> Result<Match, tend_store::Error> {
    let Some(name) = item.name.as_deref().filter(|name| !name.trim().is_empty()) else {
        return Ok(Match::New);
    };
    let found: Vec<Ci> = store::find_cis_by_name(db, name)
        .await?
        .into_iter()
        .filter(|ci| in_scope(ci))
        .collect();
    Ok(match found.len() {
        0 => Match::New,
        1 => Match::Found {
            ci: Box::new(found.into_iter().next().unwrap_or_else(|| unreachable!())),
            by: "name".to_owned(),
        },
        _ => Match::Conflict(format!(
            "the document carries no serial number, UUID, MAC address or FQDN, and its name `{name}` matches {}: give the CIs distinct names or send an inventory with hardware identifiers",
            describe(found.iter())
        )),
    })
}

fn describe<'a>(cis: impl IntoIterator<Item = &'a Ci>) -> String {
    cis.into_iter()
        .map(|ci| format!("CI {} ({}, a {})", ci.id, ci.name, ci.class))
        .collect::<Vec<_>>()
        .join(", ")
}
