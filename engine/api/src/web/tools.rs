//! Tools on the record page: the recommendations of rules with a run form each, filled in
//! from the recommendation so that running one needs no retyping, and the record's recent
//! action runs. A recommendation names its action as `plugin/action`, such as
//! `recovery/restore_file`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use tend_domain::{Actor, Recommendation, Role};
use tend_plugin_api::{ActionSpec, ParamType, PluginRegistry};
use tend_store::action_runs::{ActionRun, RunStatus};

use super::Viewer;
use super::display::{Param, action_label, humanise, param_list};
use super::format_time;
use super::forms::{FormData, FormError};
use crate::AppState;
use crate::actions::{ActionInput, may_run};
use crate::error::ApiError;

/// A recommendation as the record page shows it.
#[derive(Debug, Serialize)]
pub struct RecommendationView {
    /// The action's label, or its name humanised when no plugin offers it.
    pub action: String,
    /// Parameters with a value, because rules pass null for those they do not know.
    pub params: Vec<Param>,
    pub rule: String,
    pub reason: String,
    /// The run form, when a plugin offers the action and the viewer may run it.
    pub form: Option<RunForm>,
    /// The reason there is no run form, shown to staff.
    pub not_runnable: Option<String>,
}

/// The form that queues a run of a recommended action.
#[derive(Debug, Serialize)]
pub struct RunForm {
    pub action: String,
    pub plugin: String,
    pub name: String,
    pub reason: String,
    pub inputs: Vec<ParamInput>,
    pub error: Option<String>,
}

/// One parameter of a run form.
#[derive(Debug, Serialize)]
pub struct ParamInput {
    /// The form control's name: `param.NAME`.
    pub name: String,
    pub id: String,
    pub label: String,
    pub value: String,
    pub required: bool,
    /// `text`, `textarea`, `number`, `checkbox` or `select`.
    pub control: &'static str,
    pub checked: bool,
    pub options: Vec<Choice>,
    pub hint: String,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// A run of an action on the record.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: i64,
    pub action: String,
    pub status: String,
    pub actor: String,
    pub queued: String,
    pub summary: String,
    /// The approve and reject form, for an approver of a run that waits for one.
    pub decide_action: Option<String>,
}

/// Splits a recommended action `plugin/action` into its parts.
fn split_action(action: &str) -> Option<(&str, &str)> {
    action
        .split_once('/')
        .filter(|(plugin, name)| !plugin.is_empty() && !name.is_empty())
}

/// Builds the views of a record's recommendations for `actor`. `failed` is the index of a
/// recommendation whose run was rejected, with the message and the input to show again.
pub fn recommendation_views(
    record_number: &str,
    recommendations: &[Recommendation],
    plugins: &PluginRegistry,
    actor: &Actor,
    failed: Option<(usize, &str, &FormData)>,
) -> Vec<RecommendationView> {
    recommendations
        .iter()
        .enumerate()
        .map(|(index, recommendation)| {
            let found = split_action(&recommendation.action)
                .and_then(|(plugin, name)| plugins.action(plugin, name));
            let (label, form, not_runnable) = match found {
                None => (
                    action_label(&recommendation.action),
                    None,
                    Some(format!(
                        "No installed plugin offers {}: install the plugin, or change the rule to name an installed action as plugin/action",
                        recommendation.action
                    )),
                ),
                Some((_, spec)) if !may_run(actor, spec) => (
                    spec.label.clone(),
                    None,
                    Some(format!(
                        "Running it needs one of the roles {}",
                        spec.roles.join(", ")
                    )),
                ),
                Some((plugin, spec)) => {
                    let failed = failed.filter(|(at, _, _)| *at == index);
                    let form = run_form(
                        record_number,
                        plugin.name(),
                        spec,
                        recommendation,
                        index,
                        failed.map(|(_, message, input)| (message, input)),
                    );
                    (spec.label.clone(), Some(form), None)
                }
            };
            RecommendationView {
                action: label,
                params: param_list(&recommendation.params),
                rule: recommendation.rule.clone(),
                reason: recommendation.reason.clone(),
                form,
                not_runnable,
            }
        })
        .collect()
}

fn run_form(
    record_number: &str,
    plugin: &str,
    spec: &ActionSpec,
    recommendation: &Recommendation,
    index: usize,
    failed: Option<(&str, &FormData)>,
) -> RunForm {
    let inputs = spec
        .params
        .iter()
        .map(|(name, param)| {
            let control_name = format!("param.{name}");
            let given = match failed {
                Some((_, input)) => input.get(&control_name).map(str::to_owned),
                None => recommendation
                    .params
                    .get(name)
                    .or(param.default.as_ref())
                    .filter(|value| !value.is_null())
                    .map(|value| match value {
                        Value::String(text) => text.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|item| {
                                item.as_str()
                                    .map_or_else(|| item.to_string(), str::to_owned)
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                        other => other.to_string(),
                    }),
            };
            let value = given.unwrap_or_default();
            let control = match param.kind {
                ParamType::String => "text",
                ParamType::Text | ParamType::List => "textarea",
                ParamType::Integer | ParamType::Number => "number",
                ParamType::Boolean => "checkbox",
                ParamType::Enum => "select",
            };
            let checked =
                param.kind == ParamType::Boolean && matches!(value.as_str(), "true" | "on");
            let options = param
                .values
                .iter()
                .map(|option| Choice {
                    value: option.clone(),
                    selected: *option == value,
                })
                .collect();
            let hint = if param.kind == ParamType::List {
                "One value a line.".to_owned()
            } else {
                param.description.clone()
            };
            ParamInput {
                id: format!("run-{index}-{name}"),
                name: control_name,
                label: if param.label.is_empty() {
                    humanise(name)
                } else {
                    param.label.clone()
                },
                value,
                required: param.required && param.default.is_none(),
                control,
                checked,
                options,
                hint,
            }
        })
        .collect();
    RunForm {
        action: format!("/records/{record_number}/actions"),
        plugin: plugin.to_owned(),
        name: spec.name.clone(),
        reason: recommendation.reason.clone(),
        inputs,
        error: failed.map(|(message, _)| message.to_owned()),
    }
}

/// Builds the views of a record's runs.
pub fn run_views(runs: &[ActionRun], plugins: &PluginRegistry, viewer: &Actor) -> Vec<RunView> {
    let approver = viewer.is_admin() || viewer.has_role(Role::ProcessOwner);
    runs.iter()
        .map(|run| RunView {
            decide_action: (approver
                && run.status == RunStatus::AwaitingApproval
                && run.actor != viewer.name)
                .then(|| {
                    format!(
                        "/records/{}/action-runs/{}/decision",
                        run.record_number.as_deref().unwrap_or_default(),
                        run.id
                    )
                }),
            id: run.id,
            action: plugins.action(&run.plugin, &run.action).map_or_else(
                || format!("{} {}", run.plugin, run.action),
                |(_, spec)| spec.label.clone(),
            ),
            status: humanise(run.status.as_str()),
            actor: run.actor.clone(),
            queued: format_time(run.queued_at),
            summary: run.summary.clone().unwrap_or_default(),
        })
        .collect()
}

/// Reads the parameters of a run form: `param.NAME` controls, typed by the action's
/// declaration. Empty controls are left out, so defaults apply; an unchecked checkbox is
/// `false`.
fn form_params(spec: &ActionSpec, form: &FormData) -> Map<String, Value> {
    let mut params = Map::new();
    for (name, param) in &spec.params {
        let raw = form.get(&format!("param.{name}"));
        let value = match (param.kind, raw) {
            (ParamType::Boolean, raw) => Value::Bool(matches!(raw, Some("on" | "true"))),
            (_, None) => continue,
            (_, Some(text)) if text.trim().is_empty() => continue,
            (ParamType::Integer, Some(text)) => text
                .trim()
                .parse::<i64>()
                .map_or_else(|_| Value::String(text.to_owned()), Value::from),
            (ParamType::Number, Some(text)) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(text.to_owned()), Value::Number),
            (ParamType::List, Some(text)) => Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(|line| Value::String(line.to_owned()))
                    .collect(),
            ),
            (_, Some(text)) => Value::String(text.to_owned()),
        };
        params.insert(name.clone(), value);
    }
    params
}

/// `POST /records/{number}/actions`: queues a run from a recommendation's form and goes
/// back to the record's runs, or shows the page with the error beside the form.
pub async fn run(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(number): Path<String>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    let plugin = form.get("plugin").unwrap_or_default().to_owned();
    let action = form.get("action").unwrap_or_default().to_owned();
    let index = form
        .get("recommendation")
        .and_then(|text| text.parse::<usize>().ok());
    let params = match state.commands.plugins.action(&plugin, &action) {
        Some((_, spec)) => form_params(spec, &form),
        None => Map::new(),
    };
    let input = ActionInput {
        plugin,
        action,
        params,
        reason: form.get("reason").map(str::to_owned),
    };
    match state
        .commands
        .queue_action(viewer.actor(), &number, input, Utc::now())
        .await
    {
        Ok(_) => Redirect::to(&format!("/records/{number}#runs")).into_response(),
        Err(error) => match index {
            Some(index) => {
                super::detail::render_with_run_error(&state, &viewer, &number, index, &error, form)
                    .await
            }
            None => state.web.error(Some(&viewer), &error),
        },
    }
}

/// `POST /records/{number}/action-runs/{id}/decision`: approves or rejects a run from the
/// record page (`decision` = approve or reject, with `reason`).
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((number, id)): Path<(String, i64)>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    let approve = form.get("decision") == Some("approve");
    let reason = form
        .get("reason")
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    let belongs = match state.commands.action_run(id).await {
        Ok(run) => run.record_number.as_deref() == Some(number.as_str()),
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    if !belongs {
        let error = ApiError::NotFound {
            what: "action run of this record",
            key: format!("{number} run {id}"),
        };
        return state.web.error(Some(&viewer), &error);
    }
    match state
        .commands
        .decide_action(viewer.actor(), id, approve, reason, Utc::now())
        .await
    {
        Ok(_) => Redirect::to(&format!("/records/{number}#runs")).into_response(),
        Err(error) => state.web.error(Some(&viewer), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommended_action_names_plugin_and_action() {
        assert_eq!(
            split_action("recovery/restore_file"),
            Some(("recovery", "restore_file"))
        );
        assert_eq!(split_action("recover"), None);
        assert_eq!(split_action("/restore"), None);
        assert_eq!(split_action("recovery/"), None);
    }
}
