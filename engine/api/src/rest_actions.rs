//! The REST endpoints of plugin actions: the plugins a server offers, runs queued on a
//! record, and the state of a run.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};

use crate::AppState;
use crate::actions::{ActionInput, may_run};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::rest::ApiJson;

/// `GET /plugins`: every plugin with its actions and their parameters, and whether the
/// caller may run each action.
pub async fn plugins(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let plugins: Vec<Value> = state
        .commands
        .plugins
        .iter()
        .map(|plugin| {
            let actions: Vec<Value> = plugin
                .actions()
                .iter()
                .map(|spec| {
                    let mut view = serde_json::to_value(spec).unwrap_or(Value::Null);
                    view["allowed"] = Value::Bool(may_run(&caller.actor, spec));
                    view
                })
                .collect();
            json!({
                "name": plugin.name(),
                "description": plugin.description(),
                "actions": actions,
            })
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}

/// `POST /records/{number}/actions`: queues a run of an action on the record and returns
/// it with status 202.
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<ActionInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = state
        .commands
        .queue_action(&caller.actor, &number, body, Utc::now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run))))
}

/// Parameters that replace or add to a recommendation's parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationRun {
    #[serde(default)]
    params: serde_json::Map<String, Value>,
}

/// `POST /records/{number}/recommendations/{index}/run`: queues a run of the record's
/// recommendation `index` (from 0, in the order the record lists them) with its
/// parameters, after replacing those the body gives. The recommendation must name its
/// action as `plugin/action`; parameters the action does not declare are left out.
pub async fn run_recommendation(
    State(state): State<AppState>,
    caller: Caller,
    Path((number, index)): Path<(String, usize)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The body is optional: without one the recommendation runs as it is.
    let overrides: RecommendationRun = if body.iter().all(u8::is_ascii_whitespace) {
        RecommendationRun::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_json",
                format!("invalid request body: {error}; send {{\"params\": {{...}}}} or nothing"),
                None,
            )
        })?
    };
    let record = state.commands.visible(&caller.actor, &number).await?;
    let Some(recommendation) = record.recommendations.get(index) else {
        return Err(ApiError::NotFound {
            what: "recommendation",
            key: format!("{number}/{index}"),
        });
    };
    let Some((plugin, action)) = recommendation.action.split_once('/') else {
        return Err(ApiError::bad_request(
            "unknown_action",
            format!(
                "recommendation {index} names `{}`, which is not a plugin action: change rule {} to name it as plugin/action",
                recommendation.action, recommendation.rule
            ),
            Some("action"),
        ));
    };
    let declared: Vec<String> = state
        .commands
        .plugins
        .action(plugin, action)
        .map(|(_, spec)| spec.params.keys().cloned().collect())
        .unwrap_or_default();
    let mut params = serde_json::Map::new();
    if let Value::Object(given) = &recommendation.params {
        for (name, value) in given {
            if declared.contains(name) && !value.is_null() {
                params.insert(name.clone(), value.clone());
            }
        }
    }
    params.extend(overrides.params);
    let input = ActionInput {
        plugin: plugin.to_owned(),
        action: action.to_owned(),
        params,
        reason: Some(recommendation.reason.clone()),
    };
    let run = state
        .commands
        .queue_action(&caller.actor, &number, input, Utc::now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run_json(&run))))
}

/// `GET /action-runs/{id}`: one run. Staff see every run; others only the runs of records
/// they may see.
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let run = state.commands.action_run(id).await?;
    if !caller.actor.is_staff() {
        let visible = match &run.record_number {
            Some(number) => state.commands.visible(&caller.actor, number).await.is_ok(),
            None => false,
        };
        if !visible {
            return Err(ApiError::NotFound {
                what: "action run",
                key: id.to_string(),
            });
        }
    }
    Ok(Json(run_json(&run)))
}

/// The body of an approval decision.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why: optional to approve, required to reject.
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /action-runs/{id}/approve`: approves a run that waits for an approval, which
/// queues it.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional here: an approval needs no reason.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Decision>(&body)
            .map_err(|error| {
                ApiError::bad_request(
                    "invalid_body",
                    format!(
                        "the body must be a JSON object such as {{\"reason\": \"...\"}}: {error}"
                    ),
                    None,
                )
            })?
            .reason
    };
    let run = state
        .commands
        .decide_action(&caller.actor, id, true, reason, Utc::now())
        .await?;
    Ok(Json(run_json(&run)))
}

/// `POST /action-runs/{id}/reject` with `{"reason": ...}`: rejects a run that waits for
/// an approval, which ends it without running.
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<Value>, ApiError> {
    let run = state
        .commands
        .decide_action(&caller.actor, id, false, body.reason, Utc::now())
        .await?;
    Ok(Json(run_json(&run)))
}

/// Writes a run as the API returns it.
pub fn run_json(run: &tend_store::action_runs::ActionRun) -> Value {
    serde_json::to_value(run).unwrap_or(Value::Null)
}
