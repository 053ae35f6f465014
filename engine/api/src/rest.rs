//! The JSON REST API under `/api/v1`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tend_domain::{Command, Fields, Role};
use tend_store::RecordFilter;
use tend_workflow::{DefinitionSet, Rejection};

use crate::AppState;
use crate::auth::Caller;
use crate::commands::NewRecord;
use crate::error::ApiError;
use crate::versions::ReloadOutcome;
use crate::views::{links_json, record_json, record_summary_json};

/// A JSON body whose parse errors come back in the API's error shape, naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    let field = text
        .split('`')
        .nth(1)
        .filter(|_| text.contains("unknown field") || text.contains("missing field"))
        .map(str::to_owned);
    let code = match rejection {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        _ => "invalid_json",
    };
    ApiError::BadRequest {
        code,
        message: format!("invalid request body: {text}"),
        field,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    fields: Fields,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(process): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= 200)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_header",
                        "the Idempotency-Key header must be 1 to 200 visible ASCII characters",
                        Some("Idempotency-Key"),
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let input = NewRecord {
        title: body.title,
        description: body.description,
        fields: body.fields,
        idempotency_key,
        preset: Fields::new(),
    };
    let created = state
        .commands
        .create_journaled(&caller.actor, &process, input, chrono::Utc::now())
        .await?;
    if !created.is_new {
        // A replayed idempotent request: the record may have changed and gained links.
        let body = record_view(&state, &caller, &created.record.number).await?;
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    // A new record has no links yet, and its journal comes from the write itself, so the
    // response needs no read: under load every read is a round trip to the store.
    let definition = state
        .commands
        .engine
        .pinned(&created.record)
        .await?
        .definition;
    let mut body = record_json(
        &definition,
        &created.record,
        &caller.actor,
        Some(&created.journal),
    );
    body["links"] = Value::Array(Vec::new());
    body["attachments"] = Value::Array(Vec::new());
    body["approval_status"] = Value::Null;
    body["approvals"] = Value::Array(Vec::new());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Builds the full view of one record, with its journal and links, described by the
/// definition of the version the record is pinned to.
async fn record_view(state: &AppState, caller: &Caller, number: &str) -> Result<Value, ApiError> {
    let record = state
        .commands
        .record_for_approver(&caller.actor, number)
        .await?;
    let pinned = state.commands.engine.pinned(&record).await?;
    let definition = pinned.definition;
    let journal = state.commands.store.journal(record.id).await?;
    let clocks = crate::clocks::read(&pinned.set, &definition, &record, &journal, Utc::now());
    let rounds = state.commands.store.approval_rounds(record.id).await?;
    let mut links = state.commands.store.links_of(record.id).await?;
    // Requesters may read only their own records, so they get only the links to those.
    if !caller.actor.is_staff() {
        links.retain(|link| link.requester.as_deref() == Some(caller.actor.name.as_str()));
    }
    let mut view = record_json(&definition, &record, &caller.actor, Some(&journal));
    view["links"] = links_json(&state.commands.engine.definitions(), &links);
    view["approval_status"] = rounds
        .last()
        .map_or(Value::Null, |round| Value::String(round.status.clone()));
    view["approvals"] = serde_json::to_value(&rounds).unwrap_or(Value::Null);
    view["clocks"] = serde_json::to_value(&clocks).unwrap_or(Value::Null);
    // Runs show tool output and parameters, which are for the people who work records.
    if caller.actor.is_staff() {
        let runs = state.commands.store.action_runs_of(record.id, 20).await?;
        view["action_runs"] =
            Value::Array(runs.iter().map(crate::rest_actions::run_json).collect());
        let mail = state.commands.store.outbox_of(record.id).await?;
        view["mail"] = Value::Array(mail.iter().map(crate::outbound::outbox_json).collect());
        view["configuration_item"] = crate::rest_cmdb::record_ci(state, &record).await?;
        view["cmdb"] = crate::record_cmdb::context(
            state.commands.store.db(),
            &state.commands.engine.definitions().cmdb,
            &record.fields,
            record.fields.get("requester").and_then(Value::as_str),
            Some(&record.number),
        )
        .await?;
    }
    let attachments = state.commands.store.attachments_of(record.id).await?;
    view["attachments"] = crate::mail_intake::attachments_json(&attachments);
    Ok(view)
}

pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(record_view(&state, &caller, &number).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    process: Option<String>,
    state: Option<String>,
    assignee: Option<String>,
    #[serde(alias = "group")]
    assignment_group: Option<String>,
    priority: Option<String>,
    requester: Option<String>,
    open: Option<bool>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is {limit}: use a value from 1 to 500"),
            Some("limit"),
        ));
    }

    let definitions = state.commands.engine.definitions();
    if let Some(process) = &query.process {
        state.commands.engine.definition(process)?;
    }
    if let Some(requested) = &query.state {
        check_state_filter(&definitions, query.process.as_deref(), requested)?;
    }

    // Requesters list only their own records.
    let requester = if caller.actor.is_staff() {
        query.requester
    } else {
        Some(caller.actor.name.clone())
    };
    let filter = RecordFilter {
        process: query.process,
        state: query.state,
        assignee: query.assignee,
        assignment_group: query.assignment_group,
        requester,
        priority: query.priority,
        open: query.open,
        q: query.q.filter(|q| !q.trim().is_empty()),
        limit,
        cursor: query.cursor,
    };
    let page = state.commands.store.list_records(&filter).await?;
    let records: Vec<Value> = page
        .records
        .iter()
        .map(|r| record_summary_json(definitions.get(&r.process).map(|d| d.as_ref()), r))
        .collect();
    Ok(Json(
        json!({ "records": records, "next_cursor": page.next_cursor }),
    ))
}

/// Rejects a `state` filter that no record can match: with `process`, a state that process
/// does not declare, and without it, a state that no loaded definition declares.
// NOTE: only the loaded definitions are consulted, so a state that an older definition
// version had and the current one dropped is rejected too.
fn check_state_filter(
    definitions: &DefinitionSet,
    process: Option<&str>,
    requested: &str,
) -> Result<(), ApiError> {
    let mut known: Vec<&str> = Vec::new();
    for definition in definitions.definitions.values() {
        if process.is_some_and(|process| process != definition.process) {
            continue;
        }
        for name in definition.states.keys() {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
    }
    if known.contains(&requested) {
        return Ok(());
    }
    let scope = match process {
        Some(process) => format!("process `{process}`"),
        None => "any process".to_owned(),
    };
    let message = if known.is_empty() {
        format!("state `{requested}` is not a state of {scope}: no process definition is loaded")
    } else {
        format!(
            "state `{requested}` is not a state of {scope}: use one of {}",
            known.join(", ")
        )
    };
    Err(ApiError::bad_request(
        "invalid_query",
        message,
        Some("state"),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    #[serde(default)]
    fields: Fields,
    #[serde(default)]
    comment: Option<String>,
}

pub async fn transition(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: a transition without fields or comment may send nothing.
    let body: TransitionBody = if body.iter().all(u8::is_ascii_whitespace) {
        TransitionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_json",
                format!("invalid request body: {error}"),
                None,
            )
        })?
    };
    let command = Command::Transition {
        name,
        fields: body.fields,
        comment: body.comment,
    };
    state
        .commands
        .apply(&caller.actor, &number, command)
        .await?;
    Ok(Json(record_view(&state, &caller, &number).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    text: String,
}

pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Response, ApiError> {
    let command = Command::Comment { text: body.text };
    state
        .commands
        .apply(&caller.actor, &number, command)
        .await?;
    let view = record_view(&state, &caller, &number).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Applies a requester's reply, which may reopen the record or open a follow-up record.
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Response, ApiError> {
    match state
        .commands
        .reply(&caller.actor, &number, &body.text)
        .await?
    {
        crate::commands::Replied::Appended(record) => {
            let view = record_view(&state, &caller, &record.number).await?;
            Ok((StatusCode::OK, Json(view)).into_response())
        }
        crate::commands::Replied::FollowUp { record, original } => {
            let mut view = record_view(&state, &caller, &record.number).await?;
            view["follow_up_of"] = Value::String(original);
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// Name of a link type from `workflows/links/*.yaml`.
    #[serde(rename = "type")]
    link_type: String,
    /// Number of the record the link points to.
    target: String,
}

/// Links the record in the path (the source) to `target`. Returns 201 and the source.
pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Response, ApiError> {
    state
        .commands
        .link(&caller.actor, &number, &body.link_type, &body.target)
        .await?;
    let view = record_view(&state, &caller, &number).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /records/{number}/approvals/{id}`: an approver approves or rejects request `id`.
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, id)): Path<(String, i64)>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<Value>, ApiError> {
    let decision = crate::approvals::Decision::parse(&body.decision)?;
    state
        .commands
        .decide_approval(&caller.actor, &number, id, decision, &body.reason)
        .await?;
    Ok(Json(record_view(&state, &caller, &number).await?))
}

/// `GET /catalog`: the catalog items the caller may order.
pub async fn catalog(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    Json(json!({ "items": state.commands.catalog(&caller.actor) }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    answers: Fields,
}

/// `POST /catalog/{item}`: orders a catalog item; returns the new record.
pub async fn order(
    State(state): State<AppState>,
    caller: Caller,
    Path(item): Path<String>,
    ApiJson(body): ApiJson<OrderBody>,
) -> Result<Response, ApiError> {
    let record = state
        .commands
        .order(&caller.actor, &item, body.title.as_deref(), &body.answers)
        .await?;
    let view = record_view(&state, &caller, &record.number).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /approvals`: the approval requests waiting for the caller's decision.
pub async fn my_approvals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let pending = state
        .commands
        .store
        .pending_approvals(&caller.actor.name)
        .await?;
    Ok(Json(json!({ "approvals": pending })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    fields: Fields,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let command = Command::Update {
        title: body.title,
        description: body.description,
        fields: body.fields,
    };
    state
        .commands
        .apply(&caller.actor, &number, command)
        .await?;
    Ok(Json(record_view(&state, &caller, &number).await?))
}

pub async fn processes(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    let set = state.commands.engine.definitions();
    let processes: Vec<Value> = set
        .definitions
        .values()
        .map(|d| {
            json!({
                "process": d.process,
                "title": d.title,
                "number_prefix": d.number_prefix,
                "version": set.version,
                "states": d.states.keys().collect::<Vec<_>>(),
                "fields": d.fields,
            })
        })
        .collect();
    let link_types: Vec<Value> = set
        .link_types
        .iter()
        .map(|(name, link_type)| {
            json!({
                "type": name,
                "label": link_type.label,
                "inverse_label": link_type.inverse_label,
                "from": link_type.from,
                "to": link_type.to,
            })
        })
        .collect();
    Json(json!({
        "version": set.version,
        "processes": processes,
        "link_types": link_types,
    }))
}

/// Checks that the caller may see and reload the definitions: process owners and admins.
fn check_process_owner(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.actor.may(&[Role::ProcessOwner]) {
        return Ok(());
    }
    Err(ApiError::Rejected(Rejection::Forbidden {
        what: what.to_owned(),
        roles: vec![Role::ProcessOwner, Role::Admin],
    }))
}

/// Returns the current definition version, the definitions directory and the outcome of the
/// last load or reload with its diagnostics.
pub async fn definitions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    check_process_owner(&caller, "reading the definition status")?;
    let engine = &state.commands.engine;
    let set = engine.definitions();
    Ok(Json(json!({
        "version": set.version,
        "processes": set.definitions.keys().collect::<Vec<_>>(),
        "source": engine.source().map(|source| source.display().to_string()),
        "last_reload": engine.status(),
        "warnings": state.commands.group_warnings().await?,
    })))
}

/// Reloads the definitions directory. Returns the outcome with 200 when a version serves
/// from the files (new or unchanged), 422 when the set has errors and 500 when it could not
/// be read or stored. In the last two cases the previous version keeps serving, and the
/// body has an `error` object besides the outcome.
pub async fn reload(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    check_process_owner(&caller, "reloading the definitions")?;
    let status = state.commands.engine.reload("api").await?;
    tracing::info!(actor = %caller.actor.name, outcome = ?status.outcome, "definitions reload requested");
    let (code, error_code) = match status.outcome {
        ReloadOutcome::Loaded | ReloadOutcome::Unchanged => (StatusCode::OK, None),
        ReloadOutcome::Rejected => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("definitions_rejected"),
        ),
        ReloadOutcome::Failed => (StatusCode::INTERNAL_SERVER_ERROR, Some("reload_failed")),
    };
    let mut body = serde_json::to_value(&status).map_err(|error| {
        ApiError::Internal(format!("the reload status cannot be encoded: {error}"))
    })?;
    if let Some(error_code) = error_code {
        body["error"] = json!({
            "code": error_code,
            "message": status.message,
            "field": Value::Null,
        });
    }
    Ok((code, Json(body)).into_response())
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.commands.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check failed: the store is unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "the store is unreachable" })),
            )
                .into_response()
        }
    }
}

/// Answers a method that the path does not take, in the API's error shape.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = json!({
        "error": {
            "code": "method_not_allowed",
            "message": format!("{method} is not allowed on {}: see docs/api.md for the methods each path takes", uri.path()),
            "field": null,
        }
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound {
        what: "API path",
        key: "this path".into(),
    }
}
