//! The record page (fields, recommendations, journal) with one form per transition the
//! viewer may take, a comment form, and the edit page for people who may update records.
//! A rejected form comes back on the same page with the message beside it and the input kept.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tend_domain::{Command, Fields, Record};
use tend_workflow::{Definition, Rejection, TransitionDef, available_transitions};

use super::forms::{
    FieldInput, FormData, FormError, attach_error, field_input, field_value, fields_from_form,
    value_text,
};
use super::journal::{EntryView, entry_views, params_text, shown};
use super::{Viewer, format_time};
use crate::AppState;
use crate::commands::Replied;
use crate::error::ApiError;

/// Controls of a transition form that are not fields of the definition.
const TRANSITION_CONTROLS: [&str; 2] = ["csrf", "comment"];
/// Controls of the edit form that are not fields of the definition.
const EDIT_CONTROLS: [&str; 4] = ["csrf", "revision", "title", "description"];

/// The form of the record page that was rejected.
enum FormKind {
    Transition(String),
    Comment,
}

/// A rejected submission, shown again on the record page.
struct Problem {
    form: FormKind,
    error: ApiError,
    input: FormData,
}

#[derive(Debug, Serialize)]
struct RecordPage {
    number: String,
    title: String,
    process_title: String,
    state_label: String,
    open: bool,
    description: String,
    created: String,
    updated: String,
    fields: Vec<FieldRow>,
    staff: bool,
    recommendations: Vec<RecommendationView>,
    journal: Vec<EntryView>,
    transitions: Vec<TransitionForm>,
    comment: Option<CommentForm>,
    edit_link: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FieldRow {
    label: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct RecommendationView {
    action: String,
    params: String,
    rule: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct TransitionForm {
    name: String,
    label: String,
    to_label: String,
    action: String,
    comment_id: String,
    fields: Vec<FieldInput>,
    comment_required: bool,
    comment: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CommentForm {
    action: String,
    text: String,
    error: Option<String>,
}

/// Loads the record the viewer may see and the definition of its process.
async fn load(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
) -> Result<(Record, std::sync::Arc<Definition>), ApiError> {
    let record = state.commands.visible(viewer.actor(), number).await?;
    let definition = state.commands.engine.definition(&record.process)?;
    Ok((record, definition))
}

/// Lists the fields that a transition form shows: those the transition requires and those
/// its target state requires, except fields that only rules set.
fn transition_fields<'d>(definition: &'d Definition, step: &TransitionDef) -> Vec<&'d str> {
    let mut names: Vec<&str> = Vec::new();
    let required_in_target = definition
        .fields
        .iter()
        .filter(|(_, field)| field.required_in.contains(&step.to))
        .map(|(name, _)| name.as_str());
    let required = step.requires.iter().filter_map(|name| {
        definition
            .fields
            .get_key_value(name)
            .map(|(name, _)| name.as_str())
    });
    for name in required.chain(required_in_target) {
        let writable = definition.fields.get(name).is_some_and(|f| !f.read_only);
        if writable && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn transition_form(
    definition: &Definition,
    record: &Record,
    step: &TransitionDef,
    problem: Option<&Problem>,
) -> TransitionForm {
    let problem =
        problem.filter(|p| matches!(&p.form, FormKind::Transition(name) if *name == step.name));
    let prefix = format!("t-{}", step.name);
    let mut fields: Vec<FieldInput> = transition_fields(definition, step)
        .into_iter()
        .filter_map(|name| {
            let field = definition.fields.get(name)?;
            let value = match problem {
                Some(problem) => problem.input.get(name).unwrap_or("").to_owned(),
                None => value_text(record.fields.get(name)),
            };
            Some(field_input(name, field, &value, &prefix, true))
        })
        .collect();
    // The message sits beside its field when the form has one, above the form otherwise.
    let mut error = None;
    if let Some(problem) = problem {
        let message = problem.error.public_message();
        if !attach_error(&mut fields, problem.error.field(), &message) {
            error = Some(message);
        }
    }
    TransitionForm {
        name: step.name.clone(),
        label: step.label.clone().unwrap_or_else(|| step.name.clone()),
        to_label: definition.state_label(&step.to).to_owned(),
        action: format!("/records/{}/transitions/{}", record.number, step.name),
        comment_id: format!("{prefix}-comment"),
        fields,
        comment_required: step.comment_required,
        comment: problem
            .and_then(|p| p.input.get("comment"))
            .unwrap_or("")
            .to_owned(),
        error,
    }
}

fn record_page(
    definition: &Definition,
    record: &Record,
    journal: &[tend_domain::JournalEntry],
    viewer: &Viewer,
    problem: Option<&Problem>,
) -> RecordPage {
    let actor = viewer.actor();
    let staff = actor.is_staff();
    let comment = actor.may(&definition.permissions.comment).then(|| {
        let problem = problem.filter(|p| matches!(p.form, FormKind::Comment));
        CommentForm {
            action: format!("/records/{}/comments", record.number),
            text: problem
                .and_then(|p| p.input.get("text"))
                .unwrap_or("")
                .to_owned(),
            error: problem.map(|p| p.error.public_message()),
        }
    });
    // A rejected transition whose form is no longer offered still shows its reason.
    let transitions: Vec<TransitionForm> = available_transitions(definition, record, actor)
        .into_iter()
        .map(|step| transition_form(definition, record, step, problem))
        .collect();
    let shown_elsewhere = match problem.map(|p| &p.form) {
        Some(FormKind::Transition(name)) => transitions.iter().any(|t| t.name == *name),
        Some(FormKind::Comment) => comment.is_some(),
        None => true,
    };
    let error = (!shown_elsewhere)
        .then(|| problem.map(|p| p.error.public_message()))
        .flatten();
    RecordPage {
        number: record.number.clone(),
        title: record.title.clone(),
        process_title: definition.title.clone(),
        state_label: definition.state_label(&record.state).to_owned(),
        open: record.open,
        description: record.description.clone(),
        created: format_time(record.created_at),
        updated: format_time(record.updated_at),
        fields: definition
            .fields
            .iter()
            .map(|(name, field)| FieldRow {
                label: field.label_or(name).to_owned(),
                value: record
                    .fields
                    .get(name)
                    .map_or_else(|| "(empty)".into(), shown),
            })
            .collect(),
        staff,
        recommendations: record
            .recommendations
            .iter()
            .map(|r| RecommendationView {
                action: r.action.clone(),
                params: params_text(&r.params),
                rule: r.rule.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
        journal: entry_views(definition, journal, staff),
        transitions,
        comment,
        edit_link: actor
            .may(&definition.permissions.update)
            .then(|| format!("/records/{}/edit", record.number)),
        error,
    }
}

/// Renders the record page, with a rejected form when there is one.
async fn render_record(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    problem: Option<Problem>,
) -> Response {
    let (record, definition) = match load(state, viewer, number).await {
        Ok(loaded) => loaded,
        Err(error) => return state.web.error(Some(viewer), &error),
    };
    let journal = match state.commands.store.journal(record.id).await {
        Ok(journal) => journal,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let page = record_page(&definition, &record, &journal, viewer, problem.as_ref());
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, |p| p.error.status());
    let title = format!("{} {}", record.number, record.title);
    state
        .web
        .page(status, "record", Some(viewer), &title, &page)
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
) -> Response {
    render_record(&state, &viewer, &number, None).await
}

/// Applies `command` and goes back to the record page, or shows the page with the error.
async fn apply_form(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    command: Command,
    form: FormKind,
    input: FormData,
) -> Response {
    match state.commands.apply(viewer.actor(), number, command).await {
        Ok(record) => Redirect::to(&format!("/records/{}", record.number)).into_response(),
        Err(error @ (ApiError::NotFound { .. } | ApiError::Internal(_))) => {
            state.web.error(Some(viewer), &error)
        }
        Err(error) => {
            let problem = Problem { form, error, input };
            render_record(state, viewer, number, Some(problem)).await
        }
    }
}

pub async fn transition(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((number, name)): Path<(String, String)>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    let (_, definition) = match load(&state, &viewer, &number).await {
        Ok(loaded) => loaded,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let command = Command::Transition {
        name: name.clone(),
        fields: fields_from_form(&definition, &form, &TRANSITION_CONTROLS),
        comment: form
            .get("comment")
            .filter(|text| !text.trim().is_empty())
            .map(str::to_owned),
    };
    apply_form(
        &state,
        &viewer,
        &number,
        command,
        FormKind::Transition(name),
        form,
    )
    .await
}

pub async fn comment(
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
    let text = form.get("text").unwrap_or("").to_owned();
    if viewer.actor().is_staff() {
        let command = Command::Comment { text };
        return apply_form(&state, &viewer, &number, command, FormKind::Comment, form).await;
    }
    // A requester's comment is a reply: it may reopen the record or open a follow-up.
    match state.commands.reply(viewer.actor(), &number, &text).await {
        Ok(Replied::Appended(record)) | Ok(Replied::FollowUp { record, .. }) => {
            Redirect::to(&format!("/records/{}", record.number)).into_response()
        }
        Err(error @ (ApiError::NotFound { .. } | ApiError::Internal(_))) => {
            state.web.error(Some(&viewer), &error)
        }
        Err(error) => {
            let problem = Problem {
                form: FormKind::Comment,
                error,
                input: form,
            };
            render_record(&state, &viewer, &number, Some(problem)).await
        }
    }
}

#[derive(Debug, Serialize)]
struct EditPage {
    number: String,
    action: String,
    cancel: String,
    revision: i64,
    title: String,
    title_error: Option<String>,
    description: String,
    description_error: Option<String>,
    fields: Vec<FieldInput>,
    error: Option<String>,
}

fn edit_page(definition: &Definition, record: &Record, input: Option<&FormData>) -> EditPage {
    let text = |name: &str, current: &str| match input {
        Some(form) => form.get(name).unwrap_or(current).to_owned(),
        None => current.to_owned(),
    };
    EditPage {
        number: record.number.clone(),
        action: format!("/records/{}/edit", record.number),
        cancel: format!("/records/{}", record.number),
        revision: record.revision,
        title: text("title", &record.title),
        title_error: None,
        description: text("description", &record.description),
        description_error: None,
        fields: definition
            .fields
            .iter()
            .filter(|(_, field)| !field.read_only)
            .map(|(name, field)| {
                let value = text(name, &value_text(record.fields.get(name)));
                field_input(name, field, &value, "edit", field.required)
            })
            .collect(),
        error: None,
    }
}

fn may_update(definition: &Definition, viewer: &Viewer, record: &Record) -> Result<(), ApiError> {
    if viewer.actor().may(&definition.permissions.update) {
        Ok(())
    } else {
        Err(ApiError::Rejected(Rejection::Forbidden {
            what: format!("updating {}", record.number),
            roles: definition.permissions.update.clone(),
        }))
    }
}

fn render_edit(state: &AppState, viewer: &Viewer, status: StatusCode, page: &EditPage) -> Response {
    let title = format!("Edit {}", page.number);
    state.web.page(status, "edit", Some(viewer), &title, page)
}

pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
) -> Response {
    let (record, definition) = match load(&state, &viewer, &number).await {
        Ok(loaded) => loaded,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    if let Err(error) = may_update(&definition, &viewer, &record) {
        return state.web.error(Some(&viewer), &error);
    }
    let page = edit_page(&definition, &record, None);
    render_edit(&state, &viewer, StatusCode::OK, &page)
}

/// Collects the field changes of an edit form: every field control that was sent, where an
/// empty control clears the field. Fields the form did not send stay as they are.
fn edited_fields(definition: &Definition, form: &FormData) -> Fields {
    let mut fields = Fields::new();
    for (name, text) in form.pairs() {
        if EDIT_CONTROLS.contains(&name) {
            continue;
        }
        let value = match definition.fields.get(name) {
            Some(_) if text.trim().is_empty() => serde_json::Value::Null,
            Some(field) => field_value(field, text),
            None => serde_json::Value::String(text.to_owned()),
        };
        fields.insert(name.to_owned(), value);
    }
    fields
}

pub async fn edit(
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
    let (record, definition) = match load(&state, &viewer, &number).await {
        Ok(loaded) => loaded,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    // The form shows the record at one revision. Saving it over a newer revision would
    // silently undo someone else's change, so the person reviews the current values first.
    // NOTE: a change that lands between this check and the write is still overwritten.
    let sent_revision = form
        .get("revision")
        .and_then(|r| r.trim().parse::<i64>().ok());
    if sent_revision.is_some_and(|revision| revision != record.revision) {
        let mut page = edit_page(&definition, &record, Some(&form));
        page.error = Some(format!(
            "{} was changed by someone else after you opened this form. Your input is kept \
             below; check it against the record and save again.",
            record.number
        ));
        return render_edit(&state, &viewer, StatusCode::CONFLICT, &page);
    }
    let command = Command::Update {
        title: form.get("title").map(str::to_owned),
        description: form.get("description").map(str::to_owned),
        fields: edited_fields(&definition, &form),
    };
    match state.commands.apply(viewer.actor(), &number, command).await {
        Ok(record) => Redirect::to(&format!("/records/{}", record.number)).into_response(),
        Err(error @ (ApiError::NotFound { .. } | ApiError::Internal(_))) => {
            state.web.error(Some(&viewer), &error)
        }
        Err(error) => {
            let mut page = edit_page(&definition, &record, Some(&form));
            let message = error.public_message();
            match error.field() {
                Some("title") => page.title_error = Some(message.clone()),
                Some("description") => page.description_error = Some(message.clone()),
                field => {
                    attach_error(&mut page.fields, field, &message);
                }
            }
            page.error = Some(message);
            render_edit(&state, &viewer, error.status(), &page)
        }
    }
}
