//! CI rules: the rules a CI class lists under `rules:`, run with the `on_ci_change` hook
//! after a person or an import created or changed a CI of the class.
//!
//! A rule reads the CI as `record`: its attributes as fields, plus `id`, `class`, `name`
//! and `status`. Two effects apply:
//! - `set_field(attribute, value, reason)` sets an attribute of the CI, checked against
//!   its class like a person's change;
//! - `link_to(relationship_type, ci, reason)` relates the CI, as source, to the CI named
//!   by id or name, when the type allows both classes and the relationship is new.
//!
//! The rules run in the class's order and each sees the attributes that the ones before
//! it set. Their changes are written together as one version with the source `rule` and
//! the rule's name as actor, and they run no rules again, so rules cannot loop.

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use tend_domain::{Actor, Effect, Record};
use tend_store::cmdb::{self as store, ChangeSource};
use tend_workflow::cmdb::CmdbSchema;
use tend_workflow::{Hook, RuleInput, RuleRunner};

use crate::error::ApiError;

/// Outcome of the rules of one CI.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleReport {
    /// Attribute → value set by a rule.
    pub set: Map<String, Value>,
    /// Relationships created, as `type → CI id`.
    pub related: Vec<(String, i64)>,
    /// Effects that could not be applied, with the reason.
    pub skipped: Vec<String>,
}

/// Builds the record that a rule reads for a CI.
fn as_record(ci: &store::Ci) -> Record {
    let mut fields = ci.attributes.clone();
    fields.insert("id".into(), Value::from(ci.id));
    fields.insert("class".into(), Value::String(ci.class.clone()));
    fields.insert("name".into(), Value::String(ci.name.clone()));
    fields.insert("status".into(), Value::String(ci.status.clone()));
    Record {
        id: ci.id,
        number: format!("CI{}", ci.id),
        process: format!("cmdb:{}", ci.class),
        definition_version: String::new(),
        state: ci.status.clone(),
        open: ci.retired_at.is_none(),
        title: ci.name.clone(),
        description: String::new(),
        fields,
        recommendations: Vec::new(),
        created_at: ci.created_at,
        updated_at: ci.updated_at,
        state_changed_at: ci.updated_at,
        revision: ci.version,
    }
}

/// Runs the rules of CI `id`'s class and writes what they decided. A rule that fails is
/// logged and skipped, and so is an effect that cannot be applied, so a broken rule never
/// undoes the change that triggered it.
pub async fn run(
    store_handle: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    rules: &dyn RuleRunner,
    id: i64,
) -> Result<RuleReport, ApiError> {
    let mut report = RuleReport::default();
    let Some(ci) = store::load_ci(store_handle.db(), id).await? else {
        return Ok(report);
    };
    let Some(class) = schema.class(&ci.class).cloned() else {
        return Ok(report);
    };
    if class.rules.is_empty() || ci.retired_at.is_some() {
        return Ok(report);
    }

    let mut record = as_record(&ci);
    let mut links: Vec<(String, String, String)> = Vec::new();
    let mut actor_names: Vec<String> = Vec::new();
    for rule in &class.rules {
        let actor = Actor::system(rule.clone());
        let input = RuleInput {
            hook: Hook::OnCiChange,
            record: &record,
            previous: None,
            actor: &actor,
            transition: None,
            links: &[],
            linked: None,
            now: Utc::now(),
            email: None,
            cmdb: None,
            alert: None,
        };
        let effects = match rules.run(rule, &input) {
            Ok(effects) => effects,
            Err(failure) => {
                tracing::warn!(rule, ci = id, error = %failure.message, "a CI rule failed");
                report
                    .skipped
                    .push(format!("rule {rule} failed: {}", failure.message));
                continue;
            }
        };
        for proposed in effects {
            match proposed.effect {
                Effect::SetField { field, value } => {
                    if !class.attributes.contains_key(&field) {
                        report.skipped.push(format!(
                            "rule {rule} sets `{field}`, which class `{}` does not have",
                            class.name
                        ));
                        continue;
                    }
                    if record.fields.get(&field) != Some(&value) {
                        record.fields.insert(field.clone(), value.clone());
                        report.set.insert(field, value);
                        if !actor_names.contains(rule) {
                            actor_names.push(rule.clone());
                        }
                    }
                }
                Effect::Link { link_type, target } => {
                    links.push((rule.clone(), link_type, target));
                }
                other => report.skipped.push(format!(
                    "rule {rule} proposed `{}`, which CI rules do not apply: use set_field or link_to",
                    effect_name(&other)
                )),
            }
        }
    }

    if !report.set.is_empty() {
        let checked = crate::cmdb::check_attributes(&class, &report.set, false);
        match checked {
            Ok(_) => {
                let update = crate::cmdb::CiUpdate {
                    attributes: report.set.clone(),
                    ..Default::default()
                };
                let actor = Actor::system(actor_names.join(", "));
                if let Err(error) = crate::cmdb::update_ci_from(
                    store_handle,
                    schema.clone(),
                    &actor,
                    id,
                    update,
                    ChangeSource::Rule,
                )
                .await
                {
                    tracing::warn!(ci = id, %error, "a CI rule's change was rejected");
                    report
                        .skipped
                        .push(format!("the rules' change was rejected: {error}"));
                    report.set.clear();
                }
            }
            Err(error) => {
                tracing::warn!(ci = id, %error, "a CI rule set an invalid value");
                report.skipped.push(error.to_string());
                report.set.clear();
            }
        }
    }

    for (rule, kind, target) in links {
        match relate(store_handle, &schema, &rule, id, &kind, &target).await {
            Ok(Some(other)) => report.related.push((kind, other)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(rule, ci = id, %error, "a CI rule's relationship was rejected");
                report
                    .skipped
                    .push(format!("rule {rule}: {kind} to {target}: {error}"));
            }
        }
    }
    Ok(report)
}

/// Relates CI `id` to `target` with `kind` for rule `rule`; returns the target's id, or
/// `None` when the relationship exists already.
async fn relate(
    store_handle: &tend_store::Store,
    schema: &Arc<CmdbSchema>,
    rule: &str,
    id: i64,
    kind: &str,
    target: &str,
) -> Result<Option<i64>, ApiError> {
    let actor = Actor::system(rule.to_owned());
    let given = match target.parse::<i64>() {
        Ok(number) => Value::from(number),
        Err(_) => Value::String(target.to_owned()),
    };
    match crate::cmdb::relate_from(
        store_handle,
        schema.clone(),
        &actor,
        kind,
        Value::from(id),
        given,
        ChangeSource::Rule,
    )
    .await
    {
        Ok(relationship) => Ok(Some(relationship.target)),
        Err(ApiError::Duplicate(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

fn effect_name(effect: &Effect) -> String {
    serde_json::to_value(effect)
        .ok()
        .and_then(|value| {
            value
                .get("effect")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "effect".to_owned())
}
