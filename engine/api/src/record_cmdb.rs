//! The CMDB context of a record: the CIs it names (its `ci` field and, for changes,
//! the `cis` list), what a failure of them affects downstream with the business services
//! among it, the other open records on the same CIs (changes, known errors, problems,
//! incidents), the CIs that the requester owns, and for a release the members of its
//! target collection. Record pages and the API show it, and rules read it as the `cmdb`
//! variable.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};
use tend_store::cmdb::{self as store, Ci};
use tend_store::impact::{self, Walk};
use tend_workflow::cmdb::{CmdbSchema, ImpactDirection};

use crate::error::ApiError;
use crate::rest_cmdb::ci_summary;

/// Depth of the impact analysis of a record's CIs.
pub const RECORD_IMPACT_DEPTH: u32 = 5;
/// Most CIs a record may name for its impact analysis; more are left out.
const MAX_RECORD_CIS: usize = 50;
/// Most open records and requester CIs listed.
const LIST_LIMIT: u64 = 50;
/// Class whose CIs count as the business services a failure affects.
const SERVICE_CLASS: &str = "business_service";
/// Criticality values from lowest to highest, as the shipped classes declare them.
const CRITICALITY: [&str; 4] = ["low", "medium", "high", "critical"];

/// Returns the relationship types an impact analysis follows, by direction: `down`
/// walks to what a failure affects, `up` to what the CIs depend on.
pub fn impact_walk(schema: &CmdbSchema, down: bool) -> Walk {
    let mut walk = Walk::default();
    for (name, kind) in schema.relationship_types.iter().filter(|(_, k)| k.impact) {
        let walks_to_source = (kind.impact_flows == ImpactDirection::ToSource) == down;
        if walks_to_source {
            walk.target_to_source.push(name.clone());
        } else {
            walk.source_to_target.push(name.clone());
        }
    }
    walk
}

/// Splits a list of CI names or ids written by people: one per line, or separated by
/// commas, semicolons or spaces, as the change's `cis` field is.
fn split_names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Resolves a CI given by id or name to the single CI that is not retired, if any.
async fn resolve<C: ConnectionTrait>(db: &C, given: &str) -> Result<Option<Ci>, ApiError> {
    let found: Vec<Ci> = match given.parse::<i64>() {
        Ok(id) => store::load_ci(db, id).await?.into_iter().collect(),
        Err(_) => store::find_cis_by_name(db, given).await?,
    };
    let mut found: Vec<Ci> = found
        .into_iter()
        .filter(|ci| ci.retired_at.is_none())
        .collect();
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// Ranks a criticality value: 0 for none or unknown, then low 1 to critical 4.
fn rank(criticality: Option<&Value>) -> usize {
    criticality
        .and_then(Value::as_str)
        .and_then(|value| CRITICALITY.iter().position(|known| *known == value))
        .map_or(0, |index| index + 1)
}

/// Builds the CMDB context of a record with `fields`, opened by `requester`. `number`
/// is the record's own number, left out of the lists of other records. Returns `null`
/// when the CMDB has no classes.
pub async fn context<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    fields: &Map<String, Value>,
    requester: Option<&str>,
    number: Option<&str>,
) -> Result<Value, ApiError> {
    if schema.classes.is_empty() {
        return Ok(Value::Null);
    }
    let mut given: Vec<String> = Vec::new();
    if let Some(ci) = fields.get("ci").and_then(Value::as_str) {
        given.extend(split_names(ci));
    }
    if let Some(list) = fields.get("cis").and_then(Value::as_str) {
        given.extend(split_names(list));
    }
    let mut seen = BTreeSet::new();
    given.retain(|name| seen.insert(name.to_lowercase()));
    given.truncate(MAX_RECORD_CIS);

    let mut cis: Vec<Ci> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for name in &given {
        match resolve(db, name).await? {
            Some(ci) if !cis.iter().any(|known| known.id == ci.id) => cis.push(ci),
            Some(_) => {}
            None => unknown.push(name.clone()),
        }
    }

    let ids: Vec<i64> = cis.iter().map(|ci| ci.id).collect();
    let walked = impact::walk(db, &ids, &impact_walk(schema, true), RECORD_IMPACT_DEPTH).await?;
    let reached_ids: Vec<i64> = walked.reached.iter().map(|hit| hit.ci).collect();
    let reached = store::load_cis(db, &reached_ids).await?;
    let is_service = |ci: &Ci| {
        schema
            .class(&ci.class)
            .is_some_and(|c| c.is_a(SERVICE_CLASS))
    };
    let mut services: Vec<&Ci> = cis
        .iter()
        .chain(reached.iter())
        .filter(|ci| is_service(ci))
        .collect();
    services.sort_by(|a, b| {
        rank(b.attributes.get("criticality"))
            .cmp(&rank(a.attributes.get("criticality")))
            .then(a.name.cmp(&b.name))
    });
    let highest = services
        .first()
        .and_then(|ci| ci.attributes.get("criticality"))
        .cloned()
        .unwrap_or(Value::Null);
    let critical = services
        .iter()
        .filter(|ci| rank(ci.attributes.get("criticality")) >= 3)
        .count();

    let mut names: Vec<String> = Vec::new();
    for ci in &cis {
        names.push(ci.id.to_string());
        names.push(ci.name.clone());
    }
    let others = if names.is_empty() {
        Vec::new()
    } else {
        store::open_records_naming(db, &names, LIST_LIMIT).await?
    };
    let of_process = |process: &str| -> Vec<Value> {
        others
            .iter()
            .filter(|record| record.process == process)
            .filter(|record| Some(record.number.as_str()) != number)
            .map(|record| json!({ "number": record.number, "title": record.title, "state": record.state }))
            .collect()
    };

    let requester_cis = match requester {
        Some(user) => {
            let ids = store::find_cis_by_key(db, "owner", user).await?;
            store::load_cis(db, &ids)
                .await?
                .iter()
                .filter(|ci| ci.retired_at.is_none())
                .take(LIST_LIMIT as usize)
                .map(|ci| ci_summary(schema, ci))
                .collect()
        }
        None => Vec::new(),
    };

    let target = match fields.get("target_collection").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => match schema.collections.get(name.trim()) {
            Some(collection) => {
                let members = crate::collections::members(db, schema, collection).await?;
                json!({
                    "collection": name.trim(),
                    "label": collection.label,
                    "count": members.len(),
                    "cis": members.iter().take(LIST_LIMIT as usize).map(|ci| ci_summary(schema, ci)).collect::<Vec<_>>(),
                })
            }
            None => json!({ "collection": name.trim(), "unknown": true, "count": 0 }),
        },
        _ => Value::Null,
    };

    Ok(json!({
        "target": target,
        "cis": cis.iter().map(|ci| ci_summary(schema, ci)).collect::<Vec<_>>(),
        "unknown_cis": unknown,
        "affected": {
            "count": reached.len(),
            "depth": RECORD_IMPACT_DEPTH,
            "cis": reached.iter().take(LIST_LIMIT as usize).map(|ci| ci_summary(schema, ci)).collect::<Vec<_>>(),
            "services": services.iter().map(|ci| ci_summary(schema, ci)).collect::<Vec<_>>(),
            "critical_services": critical,
            "highest_criticality": highest,
            "cycles": walked.cycles.len(),
        },
        "open_changes": of_process("change"),
        "known_errors": of_process("known_error"),
        "problems": of_process("problem"),
        "incidents": of_process("incident"),
        "requester_cis": requester_cis,
    }))
}

/// Actor of the record updates that follow a renamed CI.
pub const CMDB_ACTOR: &str = "cmdb";

/// Makes the open records whose `ci` field names `before` name `after`, after a person or
/// an import renamed the CI, so that they stay attached to it. Each record is changed
/// through its process's update, journaled as the `cmdb` actor. A record that rejects
/// the change is logged and left as it is. Closed records keep the name they were closed
/// with.
pub async fn follow_rename(commands: &crate::Commands, before: &str, after: &str) {
    if before == after {
        return;
    }
    let records = match store::open_records_naming(
        commands.store.db(),
        &[before.to_owned()],
        RENAME_LIMIT,
    )
    .await
    {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(before, after, %error, "the records of a renamed CI could not be read");
            return;
        }
    };
    let actor = tend_domain::Actor::system(CMDB_ACTOR);
    for record in records {
        let mut fields = serde_json::Map::new();
        fields.insert("ci".into(), Value::String(after.to_owned()));
        let command = tend_domain::Command::Update {
            title: None,
            description: None,
            fields,
        };
        if let Err(error) = commands.apply(&actor, &record.number, command).await {
            tracing::warn!(number = %record.number, before, after, %error, "a record did not follow its CI's new name");
        }
    }
}

/// Most open records that follow one rename.
const RENAME_LIMIT: u64 = 1000;
