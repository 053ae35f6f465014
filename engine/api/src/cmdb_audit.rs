//! The CMDB audit: CIs that discovery has not seen for a while, people-owned attributes
//! whose value differs from what an agent reports, CIs with no relationship, and recent
//! import conflicts. It can open one task per kind of finding in the process that
//! `workflows/cmdb/audit.yaml` names.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tend_domain::{Actor, Fields};
use tend_store::cmdb::{self as store, Ci};
use tend_store::{cmdb_audit, inventory};
use tend_workflow::cmdb::{AttributeOwner, CmdbSchema};

use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;
use crate::rest_cmdb::ci_summary;

/// Most CIs listed per kind of finding; the totals count them all.
pub const DEFAULT_LIMIT: u64 = 200;
/// Most findings listed in a task's description.
const TASK_LINES: usize = 100;

/// A CI that discovery has not seen since the cutoff.
#[derive(Debug, Clone, Serialize)]
pub struct StaleCi {
    pub ci: Value,
    /// When a source last saw it; none when no source ever did.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A people-owned attribute whose value differs from what a source reports.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub ci: Value,
    pub attribute: String,
    pub value: Value,
    pub reported: Value,
    pub source: String,
    pub reported_at: DateTime<Utc>,
}

/// Findings of one kind: the first ones and how many there are.
#[derive(Debug, Clone, Serialize)]
pub struct Findings<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub generated_at: DateTime<Utc>,
    pub stale_after_days: u32,
    pub stale: Findings<StaleCi>,
    pub disagreements: Findings<Disagreement>,
    pub orphans: Findings<Value>,
    /// Import log entries of the same period whose items conflicted with the CMDB.
    pub import_conflicts: Findings<Value>,
}

/// Runs the audit. `stale_after_days` overrides the setting of `audit.yaml`.
pub async fn audit(
    db: &impl sea_orm::ConnectionTrait,
    schema: &CmdbSchema,
    stale_after_days: Option<u32>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<AuditReport, ApiError> {
    let days = stale_after_days
        .unwrap_or(schema.audit.stale_after_days)
        .max(1);
    let cutoff = now - Duration::days(i64::from(days));

    // Only classes that discovery writes can go stale.
    let discovered_classes: Vec<String> = schema
        .classes
        .values()
        .filter(|class| !class.is_abstract && !class.sources.is_empty())
        .filter(|class| {
            !schema
                .audit
                .stale_ignore
                .iter()
                .any(|ignored| class.is_a(ignored))
        })
        .map(|class| class.name.clone())
        .collect();
    let stale = cmdb_audit::stale_cis(db, &discovered_classes, cutoff, limit).await?;
    let ids: Vec<i64> = stale.cis.iter().map(|ci| ci.id).collect();
    let seen = cmdb_audit::last_seen(db, &ids).await?;
    let stale = Findings {
        total: stale.total,
        items: stale
            .cis
            .iter()
            .map(|ci| StaleCi {
                ci: ci_summary(schema, ci),
                last_seen_at: seen.get(&ci.id).copied(),
            })
            .collect(),
    };

    let orphan_classes: Vec<String> = schema
        .classes
        .values()
        .filter(|class| !class.is_abstract)
        .filter(|class| {
            !schema
                .audit
                .orphans_ignore
                .iter()
                .any(|ignored| class.is_a(ignored))
        })
        .map(|class| class.name.clone())
        .collect();
    let orphans = cmdb_audit::orphan_cis(db, &orphan_classes, limit).await?;
    let orphans = Findings {
        total: orphans.total,
        items: orphans
            .cis
            .iter()
            .map(|ci| ci_summary(schema, ci))
            .collect(),
    };

    let disagreements = disagreements(db, schema, limit).await?;

    let conflicts = inventory::list_imports(db, Some("conflict"), None, None, limit).await?;
    let recent: Vec<Value> = conflicts
        .into_iter()
        .filter(|entry| entry.received_at >= cutoff)
        .map(|entry| serde_json::to_value(entry).unwrap_or(Value::Null))
        .collect();
    let import_conflicts = Findings {
        total: inventory::count_imports(db, "conflict", cutoff).await?,
        items: recent,
    };

    Ok(AuditReport {
        generated_at: now,
        stale_after_days: days,
        stale,
        disagreements,
        orphans,
        import_conflicts,
    })
}

/// Compares every value that a source reported of a people-owned attribute with the CI's
/// value. An attribute the CI leaves empty is no disagreement, and neither is a firmware
/// placeholder.
async fn disagreements(
    db: &impl sea_orm::ConnectionTrait,
    schema: &CmdbSchema,
    limit: u64,
) -> Result<Findings<Disagreement>, ApiError> {
    let mut people_owned: Vec<String> = schema
        .classes
        .values()
        .flat_map(|class| class.attributes.iter())
        .filter(|(_, attribute)| attribute.def.owner == AttributeOwner::People)
        .map(|(name, _)| name.clone())
        .collect();
    people_owned.sort();
    people_owned.dedup();
    let reported = inventory::discovered_values(db, &people_owned).await?;
    let ids: Vec<i64> = reported
        .iter()
        .map(|(id, _)| *id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let cis: BTreeMap<i64, Ci> = store::load_cis(db, &ids)
        .await?
        .into_iter()
        .filter(|ci| ci.retired_at.is_none())
        .map(|ci| (ci.id, ci))
        .collect();

    let mut items = Vec::new();
    let mut total = 0u64;
    for (id, entry) in reported {
        if entry.placeholder {
            continue;
        }
        let Some(ci) = cis.get(&id) else {
            continue;
        };
        let Some(class) = schema.class(&ci.class) else {
            continue;
        };
        let people = class
            .attributes
            .get(&entry.attribute)
            .is_some_and(|attribute| attribute.def.owner == AttributeOwner::People);
        let Some(value) = ci.attributes.get(&entry.attribute) else {
            continue;
        };
        if !people || same_value(value, &entry.value) {
            continue;
        }
        total += 1;
        if (items.len() as u64) < limit {
            items.push(Disagreement {
                ci: ci_summary(schema, ci),
                attribute: entry.attribute.clone(),
                value: value.clone(),
                reported: entry.value.clone(),
                source: entry.source.clone(),
                reported_at: entry.reported_at,
            });
        }
    }
    Ok(Findings { total, items })
}

/// Compares two values as the key index does for text: ignoring case and surrounding
/// spaces, so `IT-0042` and ` it-0042` agree.
pub fn same_value(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::String(left), Value::String(right)) => {
            store::key_value(left) == store::key_value(right)
        }
        _ => left == right,
    }
}

/// A task the audit opened, or found open already for the same day.
#[derive(Debug, Clone, Serialize)]
pub struct AuditTask {
    pub finding: &'static str,
    pub number: String,
    pub count: u64,
}

/// Name of the system actor that opens the audit's tasks, whoever asked: the tasks of one
/// day are keyed under it, so the API, the console and the CLI share them.
pub const AUDIT_ACTOR: &str = "cmdb-audit";

/// Opens one task per kind of finding that has any, in the process `audit.yaml` names,
/// as [`AUDIT_ACTOR`] on behalf of `requested_by`. The tasks of one day are opened once:
/// asking again, by any path, returns the same records.
pub async fn open_tasks(
    commands: &Commands,
    schema: &CmdbSchema,
    requested_by: &Actor,
    report: &AuditReport,
) -> Result<Vec<AuditTask>, ApiError> {
    let actor = &Actor::system(AUDIT_ACTOR);
    let day = report.generated_at.format("%Y-%m-%d");
    let days = report.stale_after_days;
    let mut kinds: Vec<(&'static str, String, u64, Vec<String>)> = Vec::new();
    kinds.push((
        "stale",
        format!("CIs not seen by discovery for {days} days"),
        report.stale.total,
        report
            .stale
            .items
            .iter()
            .map(|item| {
                let seen = item
                    .last_seen_at
                    .map(|at| format!("last seen {}", at.format("%Y-%m-%d")))
                    .unwrap_or_else(|| "never seen by discovery".to_owned());
                format!("- {}: {seen}", describe(&item.ci))
            })
            .collect(),
    ));
    kinds.push((
        "disagreements",
        "People-owned attributes that discovery reports differently".to_owned(),
        report.disagreements.total,
        report
            .disagreements
            .items
            .iter()
            .map(|item| {
                format!(
                    "- {}: {} is {} in the CMDB, {} reports {}",
                    describe(&item.ci),
                    item.attribute,
                    item.value,
                    item.source,
                    item.reported
                )
            })
            .collect(),
    ));
    kinds.push((
        "orphans",
        "CIs with no relationship".to_owned(),
        report.orphans.total,
        report
            .orphans
            .items
            .iter()
            .map(|ci| format!("- {}", describe(ci)))
            .collect(),
    ));
    kinds.push((
        "import_conflicts",
        format!("Inventory imports in conflict with the CMDB in the last {days} days"),
        report.import_conflicts.total,
        report
            .import_conflicts
            .items
            .iter()
            .map(|entry| {
                format!(
                    "- import {} ({}): {}",
                    entry["id"],
                    entry["item_name"].as_str().unwrap_or("unnamed"),
                    entry["message"].as_str().unwrap_or_default()
                )
            })
            .collect(),
    ));

    let mut tasks = Vec::new();
    for (finding, scope, count, mut lines) in kinds {
        if count == 0 {
            continue;
        }
        if lines.len() > TASK_LINES {
            lines.truncate(TASK_LINES);
            lines.push(format!(
                "- … and {} more (see GET /api/v1/cmdb/audit)",
                count - TASK_LINES as u64
            ));
        }
        let mut fields = Fields::new();
        fields.insert("kind".into(), json!("audit"));
        fields.insert("scope".into(), json!(scope));
        fields.insert("discrepancies".into(), json!(count));
        let input = NewRecord {
            title: format!("CMDB audit: {count} {}", scope.to_lowercase()),
            description: format!(
                "The CMDB audit of {day}, asked for by {}, found {count}:\n\n{}\n",
                requested_by.name,
                lines.join("\n")
            ),
            fields,
            idempotency_key: Some(format!("cmdb-audit-{finding}-{day}")),
            preset: Fields::new(),
        };
        let (record, _) = commands
            .create(actor, &schema.audit.task_process, input)
            .await?;
        tasks.push(AuditTask {
            finding,
            number: record.number,
            count,
        });
    }
    Ok(tasks)
}

fn describe(ci: &Value) -> String {
    format!(
        "{} {} (CI {})",
        ci["class_label"]
            .as_str()
            .or(ci["class"].as_str())
            .unwrap_or("CI"),
        ci["name"].as_str().unwrap_or_default(),
        ci["id"]
    )
}
