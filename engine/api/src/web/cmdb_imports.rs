//! The inventory import log in the console: `/cmdb/imports` lists the imported items,
//! newest first, `/cmdb/imports/{id}` shows one entry, and "Import again" imports the
//! document that a conflict or a rejection kept, as `POST /api/v1/inventory/imports/{id}/retry`
//! does.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tend_store::cmdb::{self as store, Ci};
use tend_store::inventory::{self as log, ImportEntry};
use tend_workflow::cmdb::CmdbSchema;

use super::cmdb::{CiLink, ci_href, ci_link, require_staff, schema};
use super::display::humanise;
use super::forms::{FormData, FormError, SelectOption};
use super::{Viewer, format_time};
use crate::AppState;
use crate::error::ApiError;
use crate::inventory::ImportReport;
use crate::rest_inventory::OUTCOMES;

/// Entries per page of the log.
const PAGE_SIZE: u64 = 50;

/// Outcomes whose entry kept its document, which can be imported again.
const RETRIED_OUTCOMES: [&str; 2] = ["conflict", "rejected"];

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct LogQuery {
    outcome: String,
    before: String,
}

#[derive(Debug, Serialize)]
struct EntryRow {
    id: i64,
    href: String,
    received: String,
    received_iso: String,
    source: String,
    device_id: String,
    actor: String,
    outcome: String,
    item_name: String,
    ci: Option<CiLink>,
    /// The CI id of an entry whose CI no longer loads.
    ci_id: Option<i64>,
    message: String,
    retry_action: Option<String>,
}

/// The outcome of one item of a document imported again.
#[derive(Debug, Serialize)]
struct NoticeItem {
    name: String,
    action: String,
    ci_href: Option<String>,
    message: String,
}

#[derive(Debug, Serialize)]
struct Notice {
    text: String,
    error: bool,
    items: Vec<NoticeItem>,
}

#[derive(Debug, Serialize)]
struct LogPage {
    filters: LogQuery,
    outcomes: Vec<SelectOption>,
    rows: Vec<EntryRow>,
    next_link: Option<String>,
    first_link: Option<String>,
    notice: Option<Notice>,
    error: Option<String>,
}

fn log_link(outcome: &str, before: Option<i64>) -> String {
    let before = before.map(|id| id.to_string()).unwrap_or_default();
    let pairs = [("outcome", outcome), ("before", before.as_str())];
    let present: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let query = serde_urlencoded::to_string(present).unwrap_or_default();
    if query.is_empty() {
        "/cmdb/imports".into()
    } else {
        format!("/cmdb/imports?{query}")
    }
}

fn check_outcome(outcome: &str) -> Result<Option<&str>, ApiError> {
    match outcome {
        "" => Ok(None),
        known if OUTCOMES.contains(&known) => Ok(Some(known)),
        other => Err(ApiError::bad_request(
            "invalid_outcome",
            format!(
                "unknown outcome `{other}`: use one of {}",
                OUTCOMES.join(", ")
            ),
            Some("outcome"),
        )),
    }
}

fn entry_row(entry: &ImportEntry, cis: &BTreeMap<i64, Ci>, schema: &CmdbSchema) -> EntryRow {
    let retried =
        RETRIED_OUTCOMES.contains(&entry.outcome.as_str()) && entry.document_bytes.is_some();
    EntryRow {
        id: entry.id,
        href: format!("/cmdb/imports/{}", entry.id),
        received: format_time(entry.received_at),
        received_iso: entry.received_at.to_rfc3339(),
        source: entry.source.clone(),
        device_id: entry.device_id.clone().unwrap_or_default(),
        actor: entry.actor.clone(),
        outcome: humanise(&entry.outcome),
        item_name: entry.item_name.clone().unwrap_or_default(),
        ci: entry
            .ci_id
            .and_then(|id| cis.get(&id))
            .map(|ci| ci_link(schema, ci)),
        ci_id: entry.ci_id,
        message: entry.message.clone().unwrap_or_default(),
        retry_action: retried.then(|| format!("/cmdb/imports/{}/retry", entry.id)),
    }
}

/// Loads the CIs the entries name, in one query.
async fn cis_of(state: &AppState, entries: &[ImportEntry]) -> Result<BTreeMap<i64, Ci>, ApiError> {
    let mut ids: Vec<i64> = entries.iter().filter_map(|entry| entry.ci_id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(store::load_cis(state.commands.store.db(), &ids)
        .await?
        .into_iter()
        .map(|ci| (ci.id, ci))
        .collect())
}

/// `GET /cmdb/imports?outcome=&before=`: the import log, newest first.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let filters = match query {
        Ok(Query(filters)) => filters,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text(), None);
            return state.web.error(Some(&viewer), &error);
        }
    };
    render_log(&state, &viewer, filters, StatusCode::OK, None).await
}

async fn render_log(
    state: &AppState,
    viewer: &Viewer,
    filters: LogQuery,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    if let Err(error) = require_staff(viewer) {
        return state.web.error(Some(viewer), &error);
    }

    let outcome = filters.outcome.trim().to_owned();
    let mut page = LogPage {
        outcomes: std::iter::once(("", "Any".to_owned()))
            .chain(OUTCOMES.iter().map(|outcome| (*outcome, humanise(outcome))))
            .map(|(value, label)| SelectOption {
                value: value.to_owned(),
                label,
                selected: value == outcome,
            })
            .collect(),
        rows: Vec::new(),
        next_link: None,
        first_link: (!filters.before.trim().is_empty()).then(|| log_link(&outcome, None)),
        notice,
        error: None,
        filters: filters.clone(),
    };

    let checked = check_outcome(&outcome).and_then(|outcome| {
        let before = match filters.before.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "`before` is `{text}`, which is not an import id: follow the Next page link"
                    ),
                    Some("before"),
                )
            })?),
        };
        Ok((outcome, before))
    });
    let (outcome_filter, before) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            page.error = Some(error.public_message());
            return state.web.page(
                error.status(),
                "cmdb_imports",
                Some(viewer),
                "Inventory imports",
                &page,
            );
        }
    };

    let entries = match log::list_imports(
        state.commands.store.db(),
        outcome_filter,
        None,
        before,
        PAGE_SIZE,
    )
    .await
    {
        Ok(entries) => entries,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let cis = match cis_of(state, &entries).await {
        Ok(cis) => cis,
        Err(error) => return state.web.error(Some(viewer), &error),
    };
    let schema = schema(state);
    page.rows = entries
        .iter()
        .map(|entry| entry_row(entry, &cis, &schema))
        .collect();
    page.next_link = (entries.len() as u64 == PAGE_SIZE)
        .then(|| {
            entries
                .last()
                .map(|entry| log_link(&outcome, Some(entry.id)))
        })
        .flatten();
    state.web.page(
        status,
        "cmdb_imports",
        Some(viewer),
        "Inventory imports",
        &page,
    )
}

#[derive(Debug, Serialize)]
struct EntryPage {
    row: EntryRow,
    sha256: String,
    document_bytes: Option<usize>,
    summary: Option<String>,
}

/// `GET /cmdb/imports/{id}`: one log entry with the summary the import wrote.
pub async fn entry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let not_found = || ApiError::NotFound {
        what: "inventory import",
        key: id.clone(),
    };
    let Ok(number) = id.parse::<i64>() else {
        return state.web.error(Some(&viewer), &not_found());
    };
    let entry = match log::import_document(state.commands.store.db(), number).await {
        Ok(Some((entry, _))) => entry,
        Ok(None) => return state.web.error(Some(&viewer), &not_found()),
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let cis = match cis_of(&state, std::slice::from_ref(&entry)).await {
        Ok(cis) => cis,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let summary = (!entry.summary.is_null())
        .then(|| serde_json::to_string_pretty(&entry.summary).unwrap_or_default());
    let page = EntryPage {
        row: entry_row(&entry, &cis, &schema(&state)),
        sha256: entry.sha256.clone(),
        document_bytes: entry.document_bytes,
        summary,
    };
    let title = format!("Inventory import {}", entry.id);
    state
        .web
        .page(StatusCode::OK, "cmdb_import", Some(&viewer), &title, &page)
}

fn notice_of(id: i64, report: &ImportReport) -> Notice {
    let items = report
        .items
        .iter()
        .map(|item| NoticeItem {
            name: item.plan.name.clone(),
            action: humanise(item.plan.action),
            ci_href: item.plan.ci_id.map(ci_href),
            message: item.plan.message.clone().unwrap_or_default(),
        })
        .collect();
    let failed = report.count("conflict") + report.count("rejected");
    let mut text = format!("The document of import {id} was imported again.");
    if failed > 0 {
        text.push_str(&format!(
            " {failed} of its {} items are still in conflict or rejected; the list below says why.",
            report.items.len()
        ));
    }
    Notice {
        text,
        error: failed > 0,
        items,
    }
}

/// `POST /cmdb/imports/{id}/retry`: imports a kept document again and shows the log with
/// what became of each item. The form's `outcome` keeps the log's filter.
pub async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
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
    let Ok(id) = id.parse::<i64>() else {
        let error = ApiError::NotFound {
            what: "inventory import",
            key: id,
        };
        return state.web.error(Some(&viewer), &error);
    };
    let filters = LogQuery {
        outcome: form.get("outcome").unwrap_or("").to_owned(),
        before: String::new(),
    };
    let result = crate::inventory::import_again(&state.commands, viewer.actor(), id).await;
    let (status, notice) = match result {
        Ok(report) => {
            tracing::info!(import = id, items = report.items.len(), actor = %viewer.actor().name, "inventory document imported again from the console");
            (StatusCode::OK, notice_of(id, &report))
        }
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(%error, import = id, "importing a kept inventory document again failed");
            }
            let notice = Notice {
                text: format!(
                    "The document of import {id} was not imported again: {}",
                    error.public_message()
                ),
                error: true,
                items: Vec::new(),
            };
            (error.status(), notice)
        }
    };
    render_log(&state, &viewer, filters, status, Some(notice)).await
}
