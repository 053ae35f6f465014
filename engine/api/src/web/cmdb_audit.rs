//! The CMDB audit in the console: `/cmdb/audit` shows the report of `GET /api/v1/cmdb/audit`
//! (stale CIs, disagreements with discovery, orphans and recent import conflicts), and its
//! button opens the audit tasks as `POST /api/v1/cmdb/audit/tasks` does.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_store::cmdb::MAX_CI_LIMIT;

use super::cmdb::{attribute_label, ci_href, require_staff, schema, value_text};
use super::forms::{FormData, FormError};
use super::{Viewer, format_time};
use crate::AppState;
use crate::cmdb_audit::{AuditReport, AuditTask, DEFAULT_LIMIT};
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    stale_days: String,
}

/// A CI named by an audit finding.
#[derive(Debug, Serialize)]
struct CiCell {
    href: String,
    name: String,
    class_label: String,
}

#[derive(Debug, Serialize)]
struct StaleRow {
    ci: CiCell,
    last_seen: String,
}

#[derive(Debug, Serialize)]
struct DisagreementRow {
    ci: CiCell,
    attribute: String,
    value: String,
    reported: String,
    source: String,
    reported_at: String,
}

#[derive(Debug, Serialize)]
struct ConflictRow {
    href: String,
    id: String,
    received: String,
    item_name: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct Section<T> {
    total: u64,
    shown: usize,
    items: Vec<T>,
}

#[derive(Debug, Serialize)]
struct TaskLink {
    finding: String,
    number: String,
    href: String,
    count: u64,
}

#[derive(Debug, Serialize)]
struct AuditPage {
    generated: String,
    stale_days: String,
    stale_after_days: u32,
    stale: Section<StaleRow>,
    disagreements: Section<DisagreementRow>,
    orphans: Section<CiCell>,
    conflicts: Section<ConflictRow>,
    tasks: Option<Vec<TaskLink>>,
}

fn section<T, U>(total: u64, items: &[T], row: impl Fn(&T) -> U) -> Section<U> {
    Section {
        total,
        shown: items.len(),
        items: items.iter().map(row).collect(),
    }
}

fn ci_cell(ci: &Value) -> CiCell {
    CiCell {
        href: ci["id"].as_i64().map(ci_href).unwrap_or_default(),
        name: ci["name"].as_str().unwrap_or_default().to_owned(),
        class_label: ci["class_label"]
            .as_str()
            .or(ci["class"].as_str())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn time_of(value: &Value) -> String {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| format_time(at.with_timezone(&Utc)))
        .unwrap_or_default()
}

/// Reads the form's "stale after" days; empty means the setting of `audit.yaml`.
fn stale_days(text: &str) -> Result<Option<u32>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        days => match days.parse::<u32>() {
            Ok(days) if days >= 1 => Ok(Some(days)),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "stale after `{days}` days is not a whole number of days from 1: leave it empty for the setting of workflows/cmdb/audit.yaml"
                ),
                Some("stale_days"),
            )),
        },
    }
}

fn audit_page(
    state: &AppState,
    report: &AuditReport,
    stale_days: &str,
    tasks: Option<&[AuditTask]>,
) -> AuditPage {
    let schema = schema(state);
    AuditPage {
        generated: format_time(report.generated_at),
        stale_days: stale_days.to_owned(),
        stale_after_days: report.stale_after_days,
        stale: section(report.stale.total, &report.stale.items, |item| StaleRow {
            ci: ci_cell(&item.ci),
            last_seen: item
                .last_seen_at
                .map_or_else(|| "never".to_owned(), format_time),
        }),
        disagreements: section(
            report.disagreements.total,
            &report.disagreements.items,
            |item| {
                let def = item.ci["class"]
                    .as_str()
                    .and_then(|class| schema.class(class))
                    .and_then(|class| class.attributes.get(&item.attribute))
                    .map(|attribute| &attribute.def);
                DisagreementRow {
                    ci: ci_cell(&item.ci),
                    attribute: attribute_label(&item.attribute, def),
                    value: value_text(def, &item.value),
                    reported: value_text(def, &item.reported),
                    source: item.source.clone(),
                    reported_at: format_time(item.reported_at),
                }
            },
        ),
        orphans: section(report.orphans.total, &report.orphans.items, ci_cell),
        conflicts: section(
            report.import_conflicts.total,
            &report.import_conflicts.items,
            |entry| ConflictRow {
                href: format!("/cmdb/imports/{}", entry["id"]),
                id: entry["id"].to_string(),
                received: time_of(&entry["received_at"]),
                item_name: entry["item_name"].as_str().unwrap_or("unnamed").to_owned(),
                message: entry["message"].as_str().unwrap_or_default().to_owned(),
            },
        ),
        tasks: tasks.map(|tasks| {
            tasks
                .iter()
                .map(|task| TaskLink {
                    finding: finding_label(task.finding).to_owned(),
                    href: format!("/records/{}", task.number),
                    number: task.number.clone(),
                    count: task.count,
                })
                .collect()
        }),
    }
}

fn finding_label(finding: &str) -> &str {
    match finding {
        "stale" => "Stale CIs",
        "disagreements" => "Disagreements with discovery",
        "orphans" => "CIs without relationships",
        "import_conflicts" => "Import conflicts",
        other => other,
    }
}

async fn run_audit(state: &AppState, days: Option<u32>) -> Result<AuditReport, ApiError> {
    crate::cmdb_audit::audit(
        state.commands.store.db(),
        &schema(state),
        days,
        DEFAULT_LIMIT.clamp(1, MAX_CI_LIMIT),
        Utc::now(),
    )
    .await
}

fn render(state: &AppState, viewer: &Viewer, status: StatusCode, page: &AuditPage) -> Response {
    state
        .web
        .page(status, "cmdb_audit", Some(viewer), "CMDB audit", page)
}

/// `GET /cmdb/audit?stale_days=`: the audit report.
pub async fn report(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text(), None);
            return state.web.error(Some(&viewer), &error);
        }
    };
    let days = match stale_days(&query.stale_days) {
        Ok(days) => days,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    match run_audit(&state, days).await {
        Ok(report) => {
            let page = audit_page(&state, &report, query.stale_days.trim(), None);
            render(&state, &viewer, StatusCode::OK, &page)
        }
        Err(error) => state.web.error(Some(&viewer), &error),
    }
}

/// `POST /cmdb/audit/tasks`: runs the audit, opens one task per kind of finding (once a
/// day) and shows the report with links to the tasks.
pub async fn open_tasks(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let text = form.get("stale_days").unwrap_or("").trim().to_owned();
    let days = match stale_days(&text) {
        Ok(days) => days,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let report = match run_audit(&state, days).await {
        Ok(report) => report,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let opened =
        crate::cmdb_audit::open_tasks(&state.commands, &schema(&state), viewer.actor(), &report)
            .await;
    match opened {
        Ok(tasks) => {
            tracing::info!(tasks = tasks.len(), actor = %viewer.actor().name, "CMDB audit tasks opened from the console");
            let page = audit_page(&state, &report, &text, Some(&tasks));
            render(&state, &viewer, StatusCode::OK, &page)
        }
        Err(error) => state.web.error(Some(&viewer), &error),
    }
}
