//! The inventory part of the REST API: agents and people hand in inventory documents,
//! and staff read the import log and import kept documents again.
//!
//! `POST /api/v1/inventory` speaks the FusionInventory agent's protocol as well: an agent
//! posts zlib-compressed XML, first a `PROLOG` that is answered `SEND`, then the
//! inventory, and gets XML replies compressed the same way. Agents that cannot send a
//! bearer token log in with HTTP Basic, the token as the password.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tend_domain::{Actor, Role};
use tend_store::inventory as log;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::inventory::{self, ImportError};

/// Largest request body, compressed or not; the document is also bounded once
/// decompressed by [`tend_inventory::DEFAULT_MAX_BYTES`].
pub const MAX_BODY_BYTES: usize = tend_inventory::DEFAULT_MAX_BYTES;

/// Checks that `actor` may hand in inventories: an inventory agent account or staff.
fn require_importer(actor: &Actor) -> Result<(), ApiError> {
    if actor.is_staff() || actor.has_role(Role::InventoryAgent) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "user `{}` may not import inventories: create an agent account with `--role inventory_agent`, or use a technician's token",
        actor.name
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Plans the import and returns the changes without writing them.
    #[serde(default)]
    dry_run: bool,
}

/// Checks whether the request comes from an inventory agent, which expects the
/// protocol's XML replies rather than the JSON report.
fn from_agent(headers: &HeaderMap, compressed: bool) -> bool {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    compressed || agent.contains("fusioninventory") || agent.contains("glpi-agent")
}

/// `POST /inventory`: imports a FusionInventory/GLPI agent XML (zlib-compressed or not),
/// a GLPI agent JSON or an `lshw -json` document, and returns the report. The status is
/// 201 when something was created or changed, and 200 when nothing changed or on a dry
/// run. It is 409 when an item conflicts with the CMDB, and 422 when an item cannot be
/// imported or the document cannot be read. The log keeps the document in both cases.
pub async fn import(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = match caller {
        Ok(caller) => caller,
        Err(ApiError::Unauthenticated) => return Ok(basic_challenge()),
        Err(error) => return Err(error),
    };
    require_importer(&caller.actor)?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "{}: the only option is ?dry_run=true",
                rejection.body_text()
            ),
            Some("dry_run"),
        )
    })?;
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(ApiError::bad_request(
            "document_too_large",
            format!(
                "the document is larger than {MAX_BODY_BYTES} bytes: send one device's inventory per request"
            ),
            None,
        ));
    };
    let compressed = bytes.first() == Some(&0x78);
    let agent = from_agent(&headers, compressed);
    let result = inventory::import(
        &state.commands,
        &caller.actor,
        &bytes,
        tend_inventory::DEFAULT_MAX_BYTES,
        query.dry_run,
    )
    .await;
    match result {
        Ok(report) => {
            let conflicts = report.count("conflict");
            let rejected = report.count("rejected");
            let changed = report.count("create") + report.count("update");
            tracing::info!(
                source = report.source,
                device_id = report.device_id.as_deref().unwrap_or(""),
                items = report.items.len(),
                changed,
                conflicts,
                rejected,
                dry_run = report.dry_run,
                "inventory imported"
            );
            if agent {
                return Ok(agent_reply("<REPLY></REPLY>", compressed, StatusCode::OK));
            }
            let status = if conflicts > 0 {
                StatusCode::CONFLICT
            } else if rejected > 0 {
                StatusCode::UNPROCESSABLE_ENTITY
            } else if changed > 0 && !report.dry_run {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(report)).into_response())
        }
        Err(ImportError::Prolog { device_id }) => {
            tracing::debug!(
                device_id = device_id.as_deref().unwrap_or(""),
                "agent prolog"
            );
            Ok(agent_reply(
                "<REPLY><RESPONSE>SEND</RESPONSE><PROLOG_FREQ>24</PROLOG_FREQ></REPLY>",
                compressed,
                StatusCode::OK,
            ))
        }
        Err(error) => {
            let error = ApiError::from(error);
            if let ApiError::BadRequest { message, .. } = &error {
                tracing::warn!(%message, "inventory document rejected");
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": { "code": "invalid_inventory", "message": message } })),
                )
                    .into_response());
            }
            Err(error)
        }
    }
}

/// Returns a 401 that requests HTTP Basic credentials, which is what makes an agent
/// configured with `--user` and `--password` send them.
fn basic_challenge() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": { "code": "unauthenticated", "message": "authentication required: send `Authorization: Bearer TOKEN`, or HTTP Basic with the token's user and the token as password" } })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Tend inventory\""),
    );
    response
}

/// Returns an XML reply of the agent protocol, compressed when the request was.
fn agent_reply(reply: &str, compressed: bool, status: StatusCode) -> Response {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n{reply}\n");
    if compressed {
        (
            status,
            [(header::CONTENT_TYPE, "application/x-compress-zlib")],
            tend_inventory::compress(xml.as_bytes()),
        )
            .into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    ci: Option<i64>,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<u64>,
}

/// Outcomes an import log entry can have.
pub const OUTCOMES: [&str; 6] = [
    "created",
    "updated",
    "unchanged",
    "conflict",
    "rejected",
    "resolved",
];

/// `GET /inventory/imports`: the import log, newest first, by outcome or CI.
pub async fn imports(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    crate::cmdb::require_staff(&caller.actor)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    if let Some(outcome) = &query.outcome
        && !OUTCOMES.contains(&outcome.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_outcome",
            format!(
                "unknown outcome `{outcome}`: use one of {}",
                OUTCOMES.join(", ")
            ),
            Some("outcome"),
        ));
    }
    let limit = query.limit.unwrap_or(50);
    let entries = log::list_imports(
        state.commands.store.db(),
        query.outcome.as_deref(),
        query.ci,
        query.before,
        limit,
    )
    .await?;
    let next = (entries.len() as u64 == limit.clamp(1, log::MAX_IMPORT_LIMIT))
        .then(|| entries.last().map(|entry| entry.id))
        .flatten();
    Ok(Json(json!({ "imports": entries, "next_before": next })))
}

/// `GET /inventory/imports/{id}`: one log entry.
pub async fn import_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    crate::cmdb::require_staff(&caller.actor)?;
    let (entry, _) = log::import_document(state.commands.store.db(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "inventory import",
            key: id.to_string(),
        })?;
    Ok(Json(json!({ "import": entry })))
}

/// `POST /inventory/imports/{id}/retry`: imports the document a conflict or rejection
/// kept, once the CMDB or the definitions are corrected.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    crate::cmdb::require_staff(&caller.actor)?;
    let report = inventory::import_again(&state.commands, &caller.actor, id).await?;
    Ok(Json(report).into_response())
}
