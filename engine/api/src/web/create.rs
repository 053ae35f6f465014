//! The new-record form. The process is always the query parameter `process`, for the page
//! and for the POST alike. Each render carries a fresh `form_token`, which becomes the
//! create's idempotency key, so a double click or a resubmitted form creates one record.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tend_domain::Actor;
use tend_workflow::{Definition, Rejection};

use super::forms::{
    FieldInput, FormData, FormError, attach_error, field_input, fields_from_form, form_token,
    new_form_token, settable_in, value_text,
};
use super::messages::{FormContext, form_message};
use super::{Viewer, Web};
use crate::AppState;
use crate::commands::NewRecord;
use crate::error::ApiError;

/// Controls of the form that are not fields of the definition.
const CONTROLS: [&str; 4] = ["csrf", "form_token", "title", "description"];

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    process: Option<String>,
}

#[derive(Debug, Serialize)]
struct NewPage {
    process: String,
    process_title: String,
    action: String,
    form_token: String,
    title: String,
    title_error: Option<String>,
    description: String,
    description_error: Option<String>,
    fields: Vec<FieldInput>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProcessChoice {
    href: String,
    title: String,
    description: String,
}

/// Builds the inputs of the fields the actor may set, filled from `form` when the form
/// comes back. A select whose field has a default offers no empty choice, because the
/// engine would put the default there anyway.
fn inputs(definition: &Definition, actor: &Actor, form: Option<&FormData>) -> Vec<FieldInput> {
    let initial = definition.initial_state().unwrap_or_default();
    definition
        .fields
        .iter()
        .filter(|(_, field)| settable_in(field, actor, initial))
        .map(|(name, field)| {
            let default = value_text(field.default.as_ref());
            let sent = form.map(|form| form.get(name).unwrap_or(""));
            let value = match sent {
                Some(text) if !text.trim().is_empty() => text,
                // An empty control is left out of the command, so the default applies.
                Some(_) if field.default.is_some() => default.as_str(),
                Some(_) => "",
                None => default.as_str(),
            };
            let mut input = field_input(name, field, value, "new", field.required);
            if field.default.is_some() {
                input.drop_empty_option();
            }
            input
        })
        .collect()
}

fn new_page(definition: &Definition, actor: &Actor, form: Option<&FormData>) -> NewPage {
    let token = form.and_then(form_token).unwrap_or_else(new_form_token);
    NewPage {
        process: definition.process.clone(),
        process_title: definition.title.clone(),
        action: format!("/records/new?process={}", definition.process),
        form_token: token,
        title: form.and_then(|f| f.get("title")).unwrap_or("").to_owned(),
        title_error: None,
        description: form
            .and_then(|f| f.get("description"))
            .unwrap_or("")
            .to_owned(),
        description_error: None,
        fields: inputs(definition, actor, form),
        error: None,
    }
}

fn render(web: &Web, viewer: &Viewer, status: StatusCode, page: &NewPage) -> Response {
    let title = format!("New {}", page.process_title.to_lowercase());
    web.page(status, "new", Some(viewer), &title, page)
}

/// Checks that the viewer may create records of `definition` before showing the form.
fn may_create(definition: &Definition, viewer: &Viewer) -> Result<(), ApiError> {
    if viewer.actor().may(&definition.permissions.create) {
        Ok(())
    } else {
        Err(ApiError::Rejected(Rejection::Forbidden {
            what: format!("creating a {} record", definition.process),
            roles: definition.permissions.create.clone(),
        }))
    }
}

pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<NewQuery>, QueryRejection>,
) -> Response {
    let process = query
        .ok()
        .and_then(|Query(query)| query.process)
        .filter(|p| !p.is_empty());
    let Some(process) = process else {
        return choose_process(&state, &viewer);
    };
    let definition = match state.commands.engine.definition(&process) {
        Ok(definition) => definition,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    if let Err(error) = may_create(&definition, &viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    render(
        &state.web,
        &viewer,
        StatusCode::OK,
        &new_page(&definition, viewer.actor(), None),
    )
}

fn choose_process(state: &AppState, viewer: &Viewer) -> Response {
    let definitions = state.commands.engine.definitions();
    let choices: Vec<ProcessChoice> = definitions
        .definitions
        .values()
        .filter(|definition| viewer.actor().may(&definition.permissions.create))
        .map(|definition| ProcessChoice {
            href: format!("/records/new?process={}", definition.process),
            title: definition.title.clone(),
            description: definition.description.clone(),
        })
        .collect();
    state.web.page(
        StatusCode::OK,
        "choose_process",
        Some(viewer),
        "New record",
        &serde_json::json!({ "choices": choices }),
    )
}

pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    query: Result<Query<NewQuery>, QueryRejection>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    let Some(process) = query
        .ok()
        .and_then(|Query(query)| query.process)
        .filter(|p| !p.is_empty())
    else {
        let error = ApiError::bad_request(
            "missing_process",
            "the form does not name a process: post it to /records/new?process=NAME",
            Some("process"),
        );
        return state.web.error(Some(&viewer), &error);
    };
    let definition = match state.commands.engine.definition(&process) {
        Ok(definition) => definition,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };

    let input = NewRecord {
        title: form.get("title").unwrap_or("").to_owned(),
        description: form.get("description").unwrap_or("").to_owned(),
        fields: fields_from_form(&definition, &form, &CONTROLS),
        idempotency_key: form_token(&form),
        preset: tend_domain::Fields::new(),
    };
    match state.commands.create(viewer.actor(), &process, input).await {
        Ok((record, created)) => {
            if created {
                tracing::info!(
                    record.number = record.number,
                    user = viewer.actor().name,
                    "record created from the web console"
                );
            }
            Redirect::to(&format!("/records/{}", record.number)).into_response()
        }
        Err(error) if error.status().is_server_error() => state.web.error(Some(&viewer), &error),
        Err(error) => {
            let mut page = new_page(&definition, viewer.actor(), Some(&form));
            let message = form_message(&definition, FormContext::Create, &error);
            match error.field() {
                Some("title") => page.title_error = Some(message.clone()),
                Some("description") => page.description_error = Some(message.clone()),
                field => {
                    attach_error(&mut page.fields, field, &message);
                }
            }
            page.error = Some(message);
            render(&state.web, &viewer, error.status(), &page)
        }
    }
}
