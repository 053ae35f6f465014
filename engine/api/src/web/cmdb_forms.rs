//! The CMDB forms: create a CI (`/cmdb/new`), edit one (`/cmdb/cis/{id}/edit`), retire one
//! after a confirmation page, and add or remove a relationship from the CI page. They call
//! the command functions of `crate::cmdb`, so a rejected form shows the API's message,
//! beside the control it names, with what was entered kept.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tend_store::cmdb::{self as store, Ci};
use tend_workflow::cmdb::{AttributeOwner, AttributeType, ResolvedClass};

use super::cmdb::{
    attribute_label, ci_href, class_label, class_options, require_staff, schema, type_text,
};
use super::cmdb_ci::{RelateProblem, load_from_path, parse_id, render_ci};
use super::display::humanise;
use super::forms::{FormData, FormError, SelectOption};
use super::{Viewer, format_time};
use crate::AppState;
use crate::cmdb::{CiUpdate, STATUSES};
use crate::error::ApiError;

/// Prefix of the attribute controls. It matches the `field` of the API's errors
/// (`attributes.memory_mb`), and keeps attributes such as an application's `version`
/// apart from the form's own controls.
const ATTRIBUTE_PREFIX: &str = "attributes.";

/// One control that edits an attribute.
#[derive(Debug, Serialize)]
struct AttributeInput {
    name: String,
    id: String,
    label: String,
    /// The type, and a warning on attributes that imports may overwrite, e.g.
    /// "number; inventory imports may overwrite it".
    hint: String,
    /// `select`, `textarea`, `checkbox` or `input`.
    control: &'static str,
    /// The `type` attribute of an `input`.
    input_type: &'static str,
    value: String,
    checked: bool,
    options: Vec<SelectOption>,
    required: bool,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CiForm {
    heading: String,
    /// The class chooser of the create page; none on the edit page.
    classes: Option<Vec<SelectOption>>,
    class: String,
    class_label: String,
    action: String,
    cancel: String,
    submit: &'static str,
    version: Option<i64>,
    name: String,
    name_error: Option<String>,
    statuses: Vec<SelectOption>,
    status_error: Option<String>,
    attributes: Vec<AttributeInput>,
    /// Whether the POST form is shown: on the create page, only once a class is chosen.
    show_form: bool,
    error: Option<String>,
    hint: Option<String>,
}

/// Returns the text a control shows for a stored value: lists one item per line.
fn control_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| control_text(Some(item)))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// Builds the controls of a class's attributes. The values come from `form` when a
/// rejected form comes back, else from `ci` (the CI being edited), else are empty.
fn attribute_inputs(
    class: &ResolvedClass,
    ci: Option<&Ci>,
    form: Option<&FormData>,
) -> Vec<AttributeInput> {
    class
        .attributes
        .iter()
        .map(|(name, attribute)| {
            let def = &attribute.def;
            let control_name = format!("{ATTRIBUTE_PREFIX}{name}");
            let stored = ci.and_then(|ci| ci.attributes.get(name));
            let value = match form {
                Some(form) => form.get(&control_name).unwrap_or("").to_owned(),
                None => control_text(stored),
            };
            let checked = match form {
                Some(form) => form.get(&control_name).is_some(),
                None => stored == Some(&Value::Bool(true)),
            };
            let (control, input_type) = match def.kind {
                AttributeType::Enum => ("select", ""),
                AttributeType::Boolean => ("checkbox", ""),
                AttributeType::List => ("textarea", ""),
                AttributeType::Number => ("input", "number"),
                AttributeType::Date => ("input", "date"),
                AttributeType::String | AttributeType::Ci | AttributeType::User => {
                    ("input", "text")
                }
            };
            let options = if def.kind == AttributeType::Enum {
                enum_options(&def.values, &value)
            } else {
                Vec::new()
            };
            let mut hint = type_text(def);
            if def.kind == AttributeType::List {
                hint.push_str(", one value per line");
            }
            if def.value_type() == AttributeType::Ci {
                hint.push_str(", by id or name");
            }
            if def.owner == AttributeOwner::Discovery {
                hint.push_str("; inventory imports may overwrite it");
            }
            AttributeInput {
                id: format!("ci-attribute-{name}"),
                name: control_name,
                label: attribute_label(name, Some(def)),
                hint,
                control,
                input_type,
                value,
                checked,
                options,
                required: def.required,
                error: None,
            }
        })
        .collect()
}

/// Lists the choices of an enum with an empty first choice, so that a browser never
/// submits a value the person did not choose. A value the class no longer allows stays
/// visible.
fn enum_options(values: &[String], current: &str) -> Vec<SelectOption> {
    let mut options = vec![SelectOption {
        value: String::new(),
        label: "(none)".to_owned(),
        selected: current.is_empty(),
    }];
    options.extend(values.iter().map(|value| SelectOption {
        value: value.clone(),
        label: humanise(value),
        selected: value == current,
    }));
    if !current.is_empty() && !values.iter().any(|value| value == current) {
        options.push(SelectOption {
            value: current.to_owned(),
            label: humanise(current),
            selected: true,
        });
    }
    options
}

fn status_options(current: &str) -> Vec<SelectOption> {
    STATUSES
        .iter()
        .map(|status| SelectOption {
            value: (*status).to_owned(),
            label: humanise(status),
            selected: *status == current,
        })
        .collect()
}

/// Turns the text of one value into JSON by the attribute's type. Text that does not parse
/// stays text, so that the class check names the attribute and the value.
fn typed_value(kind: AttributeType, text: &str) -> Value {
    let trimmed = text.trim();
    match kind {
        AttributeType::Number => {
            if let Ok(integer) = trimmed.parse::<i64>() {
                Value::from(integer)
            } else {
                trimmed
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(trimmed.to_owned()), Value::Number)
            }
        }
        AttributeType::Boolean => match trimmed {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        _ => Value::String(trimmed.to_owned()),
    }
}

/// Collects the attributes of a submitted form. On create (`current` is `None`) an empty
/// control leaves the attribute out. On edit it removes the value (`null`), which changes
/// nothing when the CI has none.
///
/// A checkbox sends nothing when it is unchecked, so "unchecked" cannot tell "no" from
/// "not known". An unchecked box therefore sets `false` only when the CI already has a
/// value, and otherwise leaves the attribute unset.
fn attributes_from_form(
    class: &ResolvedClass,
    form: &FormData,
    current: Option<&Ci>,
) -> Map<String, Value> {
    let mut attributes = Map::new();
    for (name, attribute) in &class.attributes {
        let def = &attribute.def;
        let sent = form.get(&format!("{ATTRIBUTE_PREFIX}{name}"));
        if def.kind == AttributeType::Boolean {
            let had_value = current.is_some_and(|ci| ci.attributes.contains_key(name));
            if sent.is_some() {
                attributes.insert(name.clone(), Value::Bool(true));
            } else if had_value {
                attributes.insert(name.clone(), Value::Bool(false));
            }
            continue;
        }
        let Some(text) = sent else {
            continue;
        };
        let value = if def.kind == AttributeType::List {
            let items: Vec<Value> = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| typed_value(def.value_type(), line))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        } else {
            (!text.trim().is_empty()).then(|| typed_value(def.kind, text))
        };
        match (value, current) {
            (Some(value), _) => {
                attributes.insert(name.clone(), value);
            }
            (None, Some(_)) => {
                attributes.insert(name.clone(), Value::Null);
            }
            (None, None) => {}
        }
    }
    attributes
}

/// Shows `error` beside the control it names (`name`, `status` or an attribute) and
/// returns false when the form has no such control.
fn attach_error(page: &mut CiForm, error: &ApiError) -> bool {
    let message = error.public_message();
    let Some(field) = error.field() else {
        return false;
    };
    // A list item's error names the item (`attributes.ip_addresses[2]`); the control is
    // the whole list.
    let field = field.split('[').next().unwrap_or(field);
    match field {
        "name" => page.name_error = Some(message),
        "status" => page.status_error = Some(message),
        _ => match page.attributes.iter_mut().find(|input| input.name == field) {
            Some(input) => input.error = Some(message),
            None => return false,
        },
    }
    true
}

fn render_form(state: &AppState, viewer: &Viewer, status: StatusCode, page: &CiForm) -> Response {
    state
        .web
        .page(status, "cmdb_form", Some(viewer), &page.heading, page)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewQuery {
    class: String,
}

/// Builds the create page. Without a usable class it shows only the class chooser.
fn new_page(state: &AppState, class: &str, form: Option<&FormData>) -> (CiForm, Option<ApiError>) {
    let schema = schema(state);
    let resolved = match class.trim() {
        "" => Ok(None),
        name => crate::cmdb::concrete_class(&schema, name).map(Some),
    };
    let text = |name: &str, default: &str| {
        form.and_then(|form| form.get(name))
            .unwrap_or(default)
            .to_owned()
    };
    let status = text("status", "active");
    let mut page = CiForm {
        heading: "New CI".to_owned(),
        classes: Some(class_options(&schema, class.trim(), true)),
        class: class.trim().to_owned(),
        class_label: String::new(),
        action: "/cmdb/new".to_owned(),
        cancel: "/cmdb".to_owned(),
        submit: "Create CI",
        version: None,
        name: text("name", ""),
        name_error: None,
        statuses: status_options(&status),
        status_error: None,
        attributes: Vec::new(),
        show_form: false,
        error: None,
        hint: None,
    };
    match resolved {
        Ok(Some(resolved)) => {
            page.heading = format!("New {}", resolved.label.to_lowercase());
            page.class_label = resolved.label.clone();
            page.attributes = attribute_inputs(resolved, None, form);
            page.show_form = true;
            (page, None)
        }
        Ok(None) => (page, None),
        Err(error) => {
            page.error = Some(error.public_message());
            (page, Some(error))
        }
    }
}

/// `GET /cmdb/new?class=`: the class chooser, and the form of the chosen class.
pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<NewQuery>, QueryRejection>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let class = query.map(|Query(query)| query.class).unwrap_or_default();
    let (page, error) = new_page(&state, &class, None);
    let status = error.map_or(StatusCode::OK, |error| error.status());
    render_form(&state, &viewer, status, &page)
}

/// `POST /cmdb/new`: creates the CI and opens its page, or shows the form again with
/// the error.
// NOTE: a create form carries no idempotency key, so a double click can create two CIs
// unless a unique attribute, such as a serial number, rejects the second.
pub async fn create(
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

    let class = form.get("class").unwrap_or("").trim().to_owned();
    let (mut page, error) = new_page(&state, &class, Some(&form));
    if let Some(error) = error {
        return render_form(&state, &viewer, error.status(), &page);
    }
    let schema = schema(&state);
    let Some(resolved) = schema.class(&class) else {
        let error = ApiError::bad_request(
            "unknown_class",
            "choose the class of the new CI",
            Some("class"),
        );
        page.error = Some(error.public_message());
        return render_form(&state, &viewer, error.status(), &page);
    };

    let attributes = attributes_from_form(resolved, &form, None);
    let status = form.get("status").map(str::trim).filter(|s| !s.is_empty());
    let created = crate::cmdb::create_ci(
        &state.commands.store,
        schema.clone(),
        viewer.actor(),
        &class,
        form.get("name").unwrap_or(""),
        status,
        &attributes,
    )
    .await;
    if let Ok(ci) = &created {
        run_ci_rules(&state, ci.id).await;
    }

    match created {
        Ok(ci) => {
            tracing::info!(ci.id = ci.id, ci.class = %ci.class, actor = %viewer.actor().name, "CI created in the console");
            Redirect::to(&ci_href(ci.id)).into_response()
        }
        Err(error @ ApiError::Internal(_)) => state.web.error(Some(&viewer), &error),
        Err(error) => {
            attach_error(&mut page, &error);
            page.error = Some(format!(
                "The CI was not created: {}",
                error.public_message()
            ));
            render_form(&state, &viewer, error.status(), &page)
        }
    }
}

/// Returns the class of a CI to edit, or the error `update_ci` would give.
fn edit_class(state: &AppState, ci: &Ci) -> Result<ResolvedClass, ApiError> {
    if ci.retired_at.is_some() {
        return Err(ApiError::bad_request(
            "ci_retired",
            format!(
                "CI {} ({}) is retired and cannot be changed: create a new CI instead",
                ci.id, ci.name
            ),
            None,
        ));
    }
    schema(state).class(&ci.class).cloned().ok_or_else(|| {
        ApiError::bad_request(
            "unknown_class",
            format!(
                "CI {} is of class `{}`, which the loaded definitions no longer declare: restore the class in workflows/cmdb/classes/",
                ci.id, ci.class
            ),
            None,
        )
    })
}

/// Builds the edit page of `ci` at `version`, filled from `form` when it comes back.
fn edit_page(
    ci: &Ci,
    class: &ResolvedClass,
    version: Option<i64>,
    form: Option<&FormData>,
) -> CiForm {
    let text = |name: &str, current: &str| {
        form.and_then(|form| form.get(name))
            .unwrap_or(current)
            .to_owned()
    };
    let status = text("status", &ci.status);
    CiForm {
        heading: format!("Edit {}", ci.name),
        classes: None,
        class: ci.class.clone(),
        class_label: class.label.clone(),
        action: format!("{}/edit", ci_href(ci.id)),
        cancel: ci_href(ci.id),
        submit: "Save",
        version,
        name: text("name", &ci.name),
        name_error: None,
        statuses: status_options(&status),
        status_error: None,
        attributes: attribute_inputs(class, Some(ci), form),
        show_form: true,
        error: None,
        hint: None,
    }
}

/// `GET /cmdb/cis/{id}/edit`: the CI's name, status and attributes in one form.
pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }

    let ci = match load_from_path(&state, &id).await {
        Ok(ci) => ci,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let class = match edit_class(&state, &ci) {
        Ok(class) => class,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let page = edit_page(&ci, &class, Some(ci.version), None);
    render_form(&state, &viewer, StatusCode::OK, &page)
}

/// Rebuilds CI `ci` as it was at `version`, from its history.
async fn shown_version(state: &AppState, ci: &Ci, version: i64) -> Result<Ci, ApiError> {
    let versions = tend_store::cmdb::ci_versions(state.commands.store.db(), ci.id).await?;
    let at = versions
        .iter()
        .find(|entry| entry.version == version)
        .map(|entry| entry.at)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_version",
                format!(
                    "the form's version {version} is not a version of CI {}: open the edit form again",
                    ci.id
                ),
                Some("version"),
            )
        })?;
    tend_store::cmdb::ci_as_of(ci, &versions, at).ok_or(ApiError::NotFound {
        what: "CI",
        key: format!("{} at version {version}", ci.id),
    })
}

/// Returns the update that the form makes to `shown`, the CI as the form showed it: the
/// name, status and attributes whose submitted value differs from the shown one.
fn changes_against(
    class: &ResolvedClass,
    form: &FormData,
    shown: &Ci,
    version: Option<i64>,
) -> CiUpdate {
    let mut attributes = attributes_from_form(class, form, Some(shown));
    attributes.retain(|name, value| {
        let before = shown.attributes.get(name).unwrap_or(&Value::Null);
        before != value
    });
    let name = form
        .get("name")
        .filter(|name| name.trim() != shown.name)
        .map(str::to_owned);
    let status = form
        .get("status")
        .map(str::trim)
        .filter(|status| !status.is_empty() && *status != shown.status)
        .map(str::to_owned);
    CiUpdate {
        name,
        status,
        attributes,
        version,
    }
}

/// Builds the form to show after a version conflict: the controls the person changed
/// keep their input, and every other control takes the current CI's value.
fn merge_into_current(
    class: &ResolvedClass,
    form: &FormData,
    shown: &Ci,
    current: &Ci,
) -> FormData {
    let changed = changes_against(class, form, shown, None);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in form.pairs() {
        let attribute = key.strip_prefix(ATTRIBUTE_PREFIX);
        let untouched = match attribute {
            Some(name) => !changed.attributes.contains_key(name),
            None => {
                (key == "name" && changed.name.is_none())
                    || (key == "status" && changed.status.is_none())
            }
        };
        if !untouched {
            pairs.push((key.to_owned(), value.to_owned()));
        }
    }
    if changed.name.is_none() {
        pairs.push(("name".to_owned(), current.name.clone()));
    }
    if changed.status.is_none() {
        pairs.push(("status".to_owned(), current.status.clone()));
    }
    for (name, attribute) in &class.attributes {
        if changed.attributes.contains_key(name) {
            continue;
        }
        let control = format!("{ATTRIBUTE_PREFIX}{name}");
        let value = current.attributes.get(name);
        if attribute.def.kind == AttributeType::Boolean {
            if value == Some(&Value::Bool(true)) {
                pairs.push((control, "on".to_owned()));
            }
        } else {
            pairs.push((control, control_text(value)));
        }
    }
    FormData::from_pairs(pairs).unwrap_or_default()
}

/// `POST /cmdb/cis/{id}/edit`: saves the form as one new version of the CI. The form
/// carries the version it showed, so a CI changed since then is not overwritten.
pub async fn edit(
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

    let ci = match load_from_path(&state, &id).await {
        Ok(ci) => ci,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let class = match edit_class(&state, &ci) {
        Ok(class) => class,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };

    let sent_version = form.get("version").map(str::trim).unwrap_or("");
    let version = match sent_version {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(version) => Some(version),
            Err(_) => {
                let error = ApiError::bad_request(
                    "invalid_version",
                    format!(
                        "the form's version `{text}` is not a number: open the edit form again"
                    ),
                    Some("version"),
                );
                return state.web.error(Some(&viewer), &error);
            }
        },
    };
    // Only what the person changed against the version the form showed is sent, so a
    // save after a version conflict cannot undo another person's change to a field the
    // person left alone.
    let shown = match version {
        Some(version) if version != ci.version => match shown_version(&state, &ci, version).await {
            Ok(shown) => shown,
            Err(error) => return state.web.error(Some(&viewer), &error),
        },
        _ => ci.clone(),
    };
    let update = changes_against(&class, &form, &shown, version);
    let updated = crate::cmdb::update_ci(
        &state.commands.store,
        schema(&state),
        viewer.actor(),
        ci.id,
        update,
    )
    .await;
    if let Ok(updated) = &updated {
        crate::record_cmdb::follow_rename(&state.commands, &ci.name, &updated.name).await;
        run_ci_rules(&state, updated.id).await;
    }

    match updated {
        Ok(ci) => Redirect::to(&ci_href(ci.id)).into_response(),
        Err(error @ (ApiError::NotFound { .. } | ApiError::Internal(_))) => {
            state.web.error(Some(&viewer), &error)
        }
        Err(error @ ApiError::Stale(_)) => {
            // The form now carries the current version and the current values, except
            // for the fields the person changed, so saving it again applies only those.
            let merged = merge_into_current(&class, &form, &shown, &ci);
            let mut page = edit_page(&ci, &class, Some(ci.version), Some(&merged));
            page.error = Some(format!("The CI was not saved: {}", error.public_message()));
            page.hint = Some(format!(
                "Your input is kept below. Compare it with the current CI (version {}), which opens from the Cancel link, then save again to replace that version.",
                ci.version
            ));
            render_form(&state, &viewer, error.status(), &page)
        }
        Err(error) => {
            let mut page = edit_page(&ci, &class, version, Some(&form));
            attach_error(&mut page, &error);
            page.error = Some(format!("The CI was not saved: {}", error.public_message()));
            render_form(&state, &viewer, error.status(), &page)
        }
    }
}

#[derive(Debug, Serialize)]
struct RetirePage {
    name: String,
    class_label: String,
    href: String,
    action: String,
    relationships: usize,
    records: usize,
}

/// `GET /cmdb/cis/{id}/retire`: the confirmation page, with the relationships that
/// retiring also retires and the open records that name the CI.
pub async fn retire_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }

    let ci = match load_from_path(&state, &id).await {
        Ok(ci) => ci,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    if let Some(retired) = ci.retired_at {
        let error = ApiError::bad_request(
            "ci_retired",
            format!(
                "CI {} ({}) was retired on {}",
                ci.id,
                ci.name,
                format_time(retired)
            ),
            None,
        );
        return state.web.error(Some(&viewer), &error);
    }
    let db = state.commands.store.db();
    let relationships = match store::relationships_of(db, ci.id).await {
        Ok(relationships) => relationships.len(),
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let names = vec![ci.id.to_string(), ci.name.clone()];
    let records =
        match store::open_records_naming(db, &names, crate::rest_cmdb::RECORDS_PER_CI).await {
            Ok(records) => records.len(),
            Err(error) => return state.web.error(Some(&viewer), &error.into()),
        };
    let page = RetirePage {
        name: ci.name.clone(),
        class_label: class_label(&schema(&state), &ci.class),
        href: ci_href(ci.id),
        action: format!("{}/retire", ci_href(ci.id)),
        relationships,
        records,
    };
    let title = format!("Retire {}", ci.name);
    state
        .web
        .page(StatusCode::OK, "cmdb_retire", Some(&viewer), &title, &page)
}

/// `POST /cmdb/cis/{id}/retire`: retires the CI and its relationships.
pub async fn retire(
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
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    match crate::cmdb::retire_ci(&state.commands.store, viewer.actor(), id).await {
        Ok((ci, relationships)) => {
            tracing::info!(ci.id = ci.id, relationships = relationships.len(), actor = %viewer.actor().name, "CI retired in the console");
            Redirect::to(&ci_href(ci.id)).into_response()
        }
        Err(error) => state.web.error(Some(&viewer), &error),
    }
}

/// Reads the relationship choice of the CI page's form: `out:TYPE` makes this CI the
/// source, `in:TYPE` the target.
fn relationship_choice(choice: &str) -> Result<(bool, &str), ApiError> {
    match choice.split_once(':') {
        Some(("out", kind)) if !kind.is_empty() => Ok((true, kind)),
        Some(("in", kind)) if !kind.is_empty() => Ok((false, kind)),
        _ => Err(ApiError::bad_request(
            "missing_relationship_type",
            "choose how this CI relates to the other one",
            Some("type"),
        )),
    }
}

/// `POST /cmdb/cis/{id}/relationships`: relates the CI to another one, named by id or
/// name, as the source or the target of the chosen type.
pub async fn relate(
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
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let choice = form.get("type").unwrap_or("").trim().to_owned();
    let other = form.get("other").unwrap_or("").trim().to_owned();
    let related = match relationship_choice(&choice) {
        Ok((outgoing, kind)) => {
            let this = Value::from(id);
            let that = Value::String(other.clone());
            let (source, target) = if outgoing { (this, that) } else { (that, this) };
            crate::cmdb::relate(
                &state.commands.store,
                schema(&state),
                viewer.actor(),
                kind,
                source,
                target,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match related {
        Ok(_) => Redirect::to(&format!("{}#relationships", ci_href(id))).into_response(),
        Err(error @ ApiError::Internal(_)) => state.web.error(Some(&viewer), &error),
        Err(error) => {
            let problem = RelateProblem {
                error,
                kind: choice,
                other,
            };
            render_ci(&state, &viewer, id, None, Some(problem)).await
        }
    }
}

/// `POST /cmdb/cis/{id}/relationships/{relationship}/remove`: retires one relationship
/// of the CI; its row stays for the CI's history.
pub async fn unrelate(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((id, relationship)): Path<(String, String)>,
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
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let not_found = || ApiError::NotFound {
        what: "relationship",
        key: format!("{relationship} of CI {id}"),
    };
    let Ok(relationship_id) = relationship.parse::<i64>() else {
        return state.web.error(Some(&viewer), &not_found());
    };
    // The form names the CI, so a relationship of another CI is not found here.
    let found = store::load_relationship(state.commands.store.db(), relationship_id).await;
    match found {
        Ok(Some(found)) if found.source == id || found.target == id => {}
        Ok(_) => return state.web.error(Some(&viewer), &not_found()),
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    }
    match crate::cmdb::unrelate(&state.commands.store, viewer.actor(), relationship_id).await {
        Ok(_) => Redirect::to(&format!("{}#relationships", ci_href(id))).into_response(),
        Err(error @ ApiError::Internal(_)) => state.web.error(Some(&viewer), &error),
        Err(error) => {
            let problem = RelateProblem {
                error,
                kind: String::new(),
                other: String::new(),
            };
            render_ci(&state, &viewer, id, None, Some(problem)).await
        }
    }
}

/// Runs the class's CI rules after a change made in the console, as the API does. A
/// failure is logged, the person's change is kept, and the CI page shows the result.
async fn run_ci_rules(state: &AppState, id: i64) {
    let rules = state.commands.engine.current().rules.clone();
    let schema = state.commands.engine.definitions().cmdb.clone();
    if let Err(error) =
        crate::ci_rules::run(&state.commands.store, schema, rules.as_ref(), id).await
    {
        tracing::warn!(ci = id, %error, "the CI rules could not run after a console change");
    }
}

#[cfg(test)]
mod tests {
    use tend_workflow::cmdb::{AttributeDef, ResolvedAttribute};

    use super::*;

    fn attribute(kind: AttributeType, of: Option<AttributeType>) -> ResolvedAttribute {
        ResolvedAttribute {
            def: AttributeDef {
                kind,
                label: None,
                of,
                values: Vec::new(),
                class: None,
                required: false,
                unique: false,
                owner: AttributeOwner::People,
                indexed: false,
                sources: Vec::new(),
            },
            declared_by: "laptop".into(),
        }
    }

    fn laptop() -> ResolvedClass {
        let attributes = [
            ("memory_mb", attribute(AttributeType::Number, None)),
            (
                "ip_addresses",
                attribute(AttributeType::List, Some(AttributeType::String)),
            ),
            ("encrypted", attribute(AttributeType::Boolean, None)),
            ("asset_tag", attribute(AttributeType::String, None)),
        ]
        .into_iter()
        .map(|(name, attribute)| (name.to_owned(), attribute))
        .collect();
        ResolvedClass {
            name: "laptop".into(),
            label: "Laptop".into(),
            is_abstract: false,
            ancestors: Vec::new(),
            attributes,
            keys: Vec::new(),
            sources: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn form(pairs: &[(&str, &str)]) -> FormData {
        let encoded = serde_urlencoded::to_string(pairs).unwrap();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&encoded).unwrap();
        FormData::from_pairs(pairs).unwrap()
    }

    fn ci(attributes: Value) -> Ci {
        Ci {
            id: 1,
            class: "laptop".into(),
            name: "lt-1".into(),
            status: "active".into(),
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            retired_at: None,
        }
    }

    #[test]
    fn create_leaves_empty_controls_out() {
        let sent = form(&[
            ("attributes.memory_mb", "16384"),
            ("attributes.ip_addresses", "10.0.0.5\n\n 10.0.0.6 "),
            ("attributes.asset_tag", " "),
        ]);
        let attributes = attributes_from_form(&laptop(), &sent, None);
        assert_eq!(
            Value::Object(attributes),
            serde_json::json!({ "memory_mb": 16384, "ip_addresses": ["10.0.0.5", "10.0.0.6"] })
        );
    }

    #[test]
    fn edit_clears_emptied_controls() {
        let current = ci(serde_json::json!({ "asset_tag": "IT-1", "encrypted": true }));
        let sent = form(&[
            ("attributes.memory_mb", "lots"),
            ("attributes.ip_addresses", ""),
            ("attributes.asset_tag", ""),
        ]);
        let attributes = attributes_from_form(&laptop(), &sent, Some(&current));
        assert_eq!(
            Value::Object(attributes),
            serde_json::json!({ "memory_mb": "lots", "ip_addresses": null, "asset_tag": null, "encrypted": false })
        );
    }

    #[test]
    fn unchecked_box_keeps_unknown_unset() {
        let current = ci(serde_json::json!({}));
        let attributes = attributes_from_form(&laptop(), &form(&[]), Some(&current));
        assert!(!attributes.contains_key("encrypted"), "{attributes:?}");
        let checked = form(&[("attributes.encrypted", "true")]);
        let attributes = attributes_from_form(&laptop(), &checked, Some(&current));
        assert_eq!(attributes["encrypted"], Value::Bool(true));
    }

    #[test]
    fn relationship_choice_names_the_end() {
        assert_eq!(
            relationship_choice("out:runs_on").unwrap(),
            (true, "runs_on")
        );
        assert_eq!(
            relationship_choice("in:hosted_by").unwrap(),
            (false, "hosted_by")
        );
        assert!(relationship_choice("").is_err());
        assert!(relationship_choice("sideways:runs_on").is_err());
    }
}
