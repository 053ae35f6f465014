//! The record page (fields, service levels, recommendations, journal) with one form per
//! transition the viewer may take, a comment form, and the edit page for people who may
//! update records.
//! A rejected form comes back on the same page with the message beside it and the input kept.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Serialize;
use tend_domain::{Actor, Command, Fields, Record};
use tend_workflow::{Definition, Rejection, TransitionDef, available_transitions};

use super::display::{field_label, field_text, humanise, process_noun, transition_label};
use super::forms::{
    FieldInput, FormData, FormError, attach_error, field_input, field_value, fields_from_form,
    settable_in, value_text,
};
use super::journal::{EntryView, entry_views};
use super::messages::{FormContext, form_message};
use super::sla::{ClockSection, clock_sections};
use super::tools::{RecommendationView, RunView, recommendation_views, run_views};
use super::{Viewer, format_time};
use crate::AppState;
use crate::commands::{Pinned, Replied};
use crate::error::ApiError;

/// Controls of a transition form that are not fields of the definition.
const TRANSITION_CONTROLS: [&str; 2] = ["csrf", "comment"];
/// Controls of the edit form that are not fields of the definition.
const EDIT_CONTROLS: [&str; 4] = ["csrf", "revision", "title", "description"];

/// The form of the record page that was rejected.
enum FormKind {
    Transition(String),
    Comment,
    /// A decision on the approval request with this id.
    Approval(i64),
}

/// A rejected submission, shown again on the record page.
struct Problem {
    form: FormKind,
    error: ApiError,
    input: FormData,
}

impl Problem {
    /// Words the error for the page, with the labels of the form it came from.
    fn message(&self, definition: &Definition) -> String {
        let context = match &self.form {
            FormKind::Transition(name) => match definition.transition(name) {
                Some(step) => FormContext::Transition(step),
                // Only an unknown transition has no definition, and its message names it.
                None => return self.error.public_message(),
            },
            FormKind::Comment => FormContext::Comment,
            FormKind::Approval(_) => return self.error.public_message(),
        };
        form_message(definition, context, &self.error)
    }
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
    /// The record's SLA clocks; the section is left out when there are none.
    clocks: Vec<ClockSection>,
    staff: bool,
    recommendations: Vec<RecommendationView>,
    /// The record's recent action runs, for staff.
    runs: Vec<RunView>,
    journal: Vec<EntryView>,
    transitions: Vec<TransitionForm>,
    comment: Option<CommentForm>,
    edit_link: Option<String>,
    approvals: Vec<RoundView>,
    /// Files that came with the record's mail.
    attachments: Vec<super::mail::AttachmentRow>,
    /// The record's CMDB context, for the Configuration section.
    cmdb: Option<serde_json::Value>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RoundView {
    heading: String,
    status: String,
    detail: String,
    requests: Vec<RequestRow>,
}

#[derive(Debug, Serialize)]
struct RequestRow {
    approver: String,
    status: String,
    decided: Option<String>,
    reason: String,
    /// The decision form, for a pending request the viewer may decide.
    form: Option<DecisionForm>,
}

#[derive(Debug, Serialize)]
struct DecisionForm {
    action: String,
    reason_id: String,
    reason: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FieldRow {
    label: String,
    value: String,
    /// The page of the CI that the `ci` field names, for staff.
    href: Option<String>,
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
    comment_error: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CommentForm {
    action: String,
    /// The effect of a requester's reply besides the comment itself (a reopen or a
    /// follow-up record).
    hint: Option<String>,
    text: String,
    error: Option<String>,
}

/// Loads the record the viewer may see and the definition of its process, in the version
/// the record is pinned to.
async fn load(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
) -> Result<(Record, std::sync::Arc<Definition>), ApiError> {
    let (record, pinned) = load_pinned(state, viewer, number).await?;
    Ok((record, pinned.definition))
}

/// Loads the record the viewer may see with the definition set it is pinned to.
async fn load_pinned(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
) -> Result<(Record, Pinned), ApiError> {
    let record = state
        .commands
        .record_for_approver(viewer.actor(), number)
        .await?;
    let pinned = state.commands.engine.pinned(&record).await?;
    Ok((record, pinned))
}

/// Lists the fields that a transition form shows: those the transition requires and those
/// its target state requires, except fields that `actor` may not set in the record's
/// current `state`.
fn transition_fields<'d>(
    definition: &'d Definition,
    step: &TransitionDef,
    actor: &Actor,
    state: &str,
) -> Vec<&'d str> {
    let mut names: Vec<&str> = Vec::new();
    let required_in_target = definition
        .fields
        .iter()
        .filter(|(_, field)| field.required_in.contains(&step.to))
        .map(|(name, _)| name.as_str());
    let required_by_target = definition
        .states
        .get(&step.to)
        .map(|target| target.requires.as_slice())
        .unwrap_or_default();
    let declared = |name: &String| {
        definition
            .fields
            .get_key_value(name)
            .map(|(name, _)| name.as_str())
    };
    let required = step
        .requires
        .iter()
        .chain(required_by_target)
        .filter_map(declared);
    for name in required.chain(required_in_target) {
        let settable = definition
            .fields
            .get(name)
            .is_some_and(|field| settable_in(field, actor, state));
        if settable && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn transition_form(
    definition: &Definition,
    record: &Record,
    step: &TransitionDef,
    actor: &Actor,
    problem: Option<&Problem>,
) -> TransitionForm {
    let problem =
        problem.filter(|p| matches!(&p.form, FormKind::Transition(name) if *name == step.name));
    let prefix = format!("t-{}", step.name);
    let mut fields: Vec<FieldInput> = transition_fields(definition, step, actor, &record.state)
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
    // The message sits beside its field or the comment when the form has them, above the
    // form otherwise.
    let mut error = None;
    let mut comment_error = None;
    if let Some(problem) = problem {
        let message = problem.message(definition);
        let field = problem.error.field();
        if field == Some("comment") && step.comment_required {
            comment_error = Some(message);
        } else if !attach_error(&mut fields, field, &message) {
            error = Some(message);
        }
    }
    TransitionForm {
        name: step.name.clone(),
        label: transition_label(step),
        to_label: definition.state_label(&step.to).to_owned(),
        action: format!("/records/{}/transitions/{}", record.number, step.name),
        comment_id: format!("{prefix}-comment"),
        fields,
        comment_required: step.comment_required,
        comment: problem
            .and_then(|p| p.input.get("comment"))
            .unwrap_or("")
            .to_owned(),
        comment_error,
        error,
    }
}

/// Tells a requester what a reply does under the definition's reply policy: reopen the
/// record, open a follow-up record, or nothing more than a comment (`None`).
// NOTE: this repeats the reply decision of the workflow engine, so that the page shows it
// before the form is sent. A change to that decision must be made here as well.
fn reply_hint(
    definition: &Definition,
    record: &Record,
    actor: &Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let policy = definition.replies.as_ref()?;
    let noun = process_noun(definition);
    let follow_up = format!(
        "This {noun} is {}, so your comment opens a new {noun} that refers to it.",
        definition.state_label(&record.state)
    );
    if policy.follow_up_in.contains(&record.state) {
        return Some(follow_up);
    }
    let step = definition.transition(policy.reopen.as_deref()?)?;
    if !step.from.contains(&record.state) {
        return None;
    }
    let in_time = policy
        .reopen_within
        .is_none_or(|within| now - record.state_changed_at <= within.duration());
    if !in_time && !policy.follow_up_in.is_empty() {
        Some(follow_up)
    } else if in_time && actor.may(&step.roles) {
        Some(format!("Your comment reopens this {noun}."))
    } else {
        None
    }
}

/// Shows the approval rounds of a record, newest first, with a decision form on each
/// pending request the viewer may decide.
fn approval_views(
    definition: &Definition,
    number: &str,
    rounds: &[tend_store::approvals::Round],
    viewer: &Viewer,
    problem: Option<&Problem>,
) -> Vec<RoundView> {
    let name = &viewer.actor().name;
    rounds
        .iter()
        .rev()
        .map(|round| {
            let label = definition
                .transition(&round.transition)
                .map_or_else(|| humanise(&round.transition), transition_label);
            let mut detail = format!(
                "Asked by {} on {}; {} of {} approvals needed",
                round.requested_by,
                format_time(round.requested_at),
                round.required,
                round.total
            );
            if let Some(due) = round.due_at {
                detail += &format!("; decide by {}", format_time(due));
            }
            if round.escalated {
                detail += "; escalated after the deadline";
            }
            RoundView {
                heading: format!("Round {}: {label}", round.round),
                status: humanise(&round.status),
                detail,
                requests: round
                    .requests
                    .iter()
                    .map(|request| {
                        let mine = round.is_pending()
                            && request.status == tend_store::approvals::PENDING
                            && request.users.contains(name);
                        let problem = problem.filter(
                            |p| matches!(p.form, FormKind::Approval(id) if id == request.id),
                        );
                        RequestRow {
                            approver: request.approver.clone(),
                            status: humanise(&request.status),
                            decided: request.decided_by.as_ref().map(|by| {
                                format!(
                                    "{by}{}",
                                    request
                                        .decided_at
                                        .map(|at| format!(", {}", format_time(at)))
                                        .unwrap_or_default()
                                )
                            }),
                            reason: request.reason.clone(),
                            form: mine.then(|| DecisionForm {
                                action: format!("/records/{number}/approvals/{}", request.id),
                                reason_id: format!("reason-{}", request.id),
                                reason: problem
                                    .and_then(|p| p.input.get("reason"))
                                    .unwrap_or("")
                                    .to_owned(),
                                error: problem.map(|p| p.error.public_message()),
                            }),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What the record page shows besides the record and its definition.
struct PageParts<'a> {
    journal: &'a [tend_domain::JournalEntry],
    rounds: &'a [tend_store::approvals::Round],
    clocks: Vec<ClockSection>,
    plugins: &'a tend_plugin_api::PluginRegistry,
    runs: &'a [tend_store::action_runs::ActionRun],
    /// A rejected run form: the recommendation's index, the message and the input.
    run_problem: Option<(usize, String, FormData)>,
    attachments: &'a [tend_store::mail::AttachmentInfo],
    /// The CI that the record's `ci` field names, resolved for staff only, since the
    /// CMDB is theirs.
    configuration_item: Option<&'a tend_store::cmdb::Ci>,
    /// The record's CMDB context (`record_cmdb::context`), for staff only.
    cmdb: Option<serde_json::Value>,
}

fn record_page(
    definition: &Definition,
    record: &Record,
    parts: PageParts<'_>,
    viewer: &Viewer,
    problem: Option<&Problem>,
) -> RecordPage {
    let PageParts {
        journal,
        rounds,
        clocks,
        plugins,
        runs,
        run_problem,
        attachments,
        configuration_item,
        cmdb,
    } = parts;
    let actor = viewer.actor();
    let staff = actor.is_staff();
    // An approver who is neither staff nor the requester reads the record to decide, and
    // may not act on it otherwise.
    let participant = staff || record.field_str("requester") == Some(actor.name.as_str());
    let waiting = rounds.iter().any(|round| round.is_pending());
    let comment = (participant && actor.may(&definition.permissions.comment)).then(|| {
        let problem = problem.filter(|p| matches!(p.form, FormKind::Comment));
        // Only a requester's comment is a reply, because staff comments are plain comments.
        let hint = (!staff)
            .then(|| reply_hint(definition, record, actor, chrono::Utc::now()))
            .flatten();
        CommentForm {
            action: format!("/records/{}/comments", record.number),
            hint,
            text: problem
                .and_then(|p| p.input.get("text"))
                .unwrap_or("")
                .to_owned(),
            error: problem.map(|p| p.message(definition)),
        }
    });
    // A rejected transition whose form is no longer offered still shows its reason.
    // While a round is pending, the transitions that need approval are decided in the
    // Approvals section, not asked for again.
    let transitions: Vec<TransitionForm> = available_transitions(definition, record, actor)
        .into_iter()
        .filter(|_| participant)
        .filter(|step| !(waiting && step.approval.is_some()))
        .map(|step| transition_form(definition, record, step, actor, problem))
        .collect();
    let approvals = approval_views(definition, &record.number, rounds, viewer, problem);
    let shown_elsewhere = match problem.map(|p| &p.form) {
        Some(FormKind::Transition(name)) => transitions.iter().any(|t| t.name == *name),
        Some(FormKind::Comment) => comment.is_some(),
        Some(FormKind::Approval(id)) => {
            approvals
                .iter()
                .flat_map(|round| &round.requests)
                .any(|request| {
                    request
                        .form
                        .as_ref()
                        .is_some_and(|form| form.reason_id == format!("reason-{id}"))
                })
        }
        None => true,
    };
    let error = (!shown_elsewhere)
        .then(|| problem.map(|p| p.message(definition)))
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
            .map(|(name, field)| match configuration_item {
                Some(ci) if name == "ci" => FieldRow {
                    label: field_label(name, field),
                    value: ci.name.clone(),
                    href: Some(format!("/cmdb/cis/{}", ci.id)),
                },
                _ => FieldRow {
                    label: field_label(name, field),
                    value: record
                        .fields
                        .get(name)
                        .map_or_else(|| "(empty)".into(), |value| field_text(Some(field), value)),
                    href: None,
                },
            })
            .collect(),
        clocks,
        staff,
        recommendations: if staff {
            recommendation_views(
                &record.number,
                &record.recommendations,
                plugins,
                actor,
                run_problem
                    .as_ref()
                    .map(|(index, message, input)| (*index, message.as_str(), input)),
            )
        } else {
            Vec::new()
        },
        runs: if staff {
            run_views(runs, plugins, actor)
        } else {
            Vec::new()
        },
        journal: entry_views(definition, journal, staff),
        transitions,
        comment,
        edit_link: actor
            .may(&definition.permissions.update)
            .then(|| format!("/records/{}/edit", record.number)),
        approvals,
        attachments: attachments
            .iter()
            .map(|attachment| {
                let mut row = super::mail::attachment_row(attachment);
                row.message_href = attachment
                    .mail_message_id
                    .map(|id| format!("/mail/messages/{id}"));
                row
            })
            .collect(),
        cmdb,
        error,
    }
}

/// Checks whether the process names CIs or a collection, which the Configuration
/// section shows.
fn relates_to_cmdb(definition: &Definition) -> bool {
    ["ci", "cis", "target_collection"]
        .iter()
        .any(|field| definition.fields.contains_key(*field))
}

/// Renders the record page, with a rejected form when there is one.
async fn render_record(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    problem: Option<Problem>,
) -> Response {
    render_page(state, viewer, number, problem, None).await
}

/// Shows the record page with the run form of recommendation `index` rejected by `error`.
pub(super) async fn render_with_run_error(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    index: usize,
    error: &ApiError,
    input: FormData,
) -> Response {
    let message = error.public_message();
    let mut response =
        render_page(state, viewer, number, None, Some((index, message, input))).await;
    if response.status() == StatusCode::OK {
        *response.status_mut() = error.status();
    }
    response
}

async fn render_page(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    problem: Option<Problem>,
    run_problem: Option<(usize, String, FormData)>,
) -> Response {
    let (record, pinned) = match load_pinned(state, viewer, number).await {
        Ok(loaded) => loaded,
        Err(error) => return state.web.error(Some(viewer), &error),
    };
    let definition = &pinned.definition;
    let journal = match state.commands.store.journal(record.id).await {
        Ok(journal) => journal,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let rounds = match state.commands.store.approval_rounds(record.id).await {
        Ok(rounds) => rounds,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let clocks = crate::clocks::read(&pinned.set, definition, &record, &journal, Utc::now());
    let runs = if viewer.actor().is_staff() {
        match state.commands.store.action_runs_of(record.id, 20).await {
            Ok(runs) => runs,
            Err(error) => return state.web.error(Some(viewer), &error.into()),
        }
    } else {
        Vec::new()
    };
    let attachments = match state.commands.store.attachments_of(record.id).await {
        Ok(attachments) => attachments,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let configuration_item = if viewer.actor().is_staff() {
        match crate::rest_cmdb::configuration_item(state, &record).await {
            Ok(ci) => ci,
            Err(error) => return state.web.error(Some(viewer), &error),
        }
    } else {
        None
    };
    let cmdb = if viewer.actor().is_staff() {
        match crate::record_cmdb::context(
            state.commands.store.db(),
            &state.commands.engine.definitions().cmdb,
            &record.fields,
            record.field_str("requester"),
            Some(&record.number),
        )
        .await
        {
            Ok(serde_json::Value::Null) => None,
            Ok(value) if relates_to_cmdb(definition) => Some(value),
            Ok(_) => None,
            Err(error) => return state.web.error(Some(viewer), &error),
        }
    } else {
        None
    };
    let parts = PageParts {
        attachments: &attachments,
        configuration_item: configuration_item.as_ref(),
        cmdb,
        journal: &journal,
        rounds: &rounds,
        clocks: clock_sections(&pinned.set, &clocks),
        plugins: &state.commands.plugins,
        runs: &runs,
        run_problem,
    };
    let page = record_page(definition, &record, parts, viewer, problem.as_ref());
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

/// Records a decision on an approval request from the record page: the button pressed
/// (`decision` = approve or reject) and the reason.
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
    let decided = match crate::approvals::Decision::parse(form.get("decision").unwrap_or("")) {
        Ok(decision) => {
            state
                .commands
                .decide_approval(
                    viewer.actor(),
                    &number,
                    id,
                    decision,
                    form.get("reason").unwrap_or(""),
                )
                .await
        }
        Err(error) => Err(error),
    };
    match decided {
        Ok(record) => Redirect::to(&format!("/records/{}", record.number)).into_response(),
        Err(error @ (ApiError::NotFound { .. } | ApiError::Internal(_))) => {
            state.web.error(Some(&viewer), &error)
        }
        Err(error) => {
            let problem = Problem {
                form: FormKind::Approval(id),
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

fn edit_page(
    definition: &Definition,
    record: &Record,
    actor: &Actor,
    input: Option<&FormData>,
) -> EditPage {
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
            .filter(|(_, field)| settable_in(field, actor, &record.state))
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
    let page = edit_page(&definition, &record, viewer.actor(), None);
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
        let mut page = edit_page(&definition, &record, viewer.actor(), Some(&form));
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
            let mut page = edit_page(&definition, &record, viewer.actor(), Some(&form));
            let context = FormContext::Edit {
                state: &record.state,
            };
            let message = form_message(&definition, context, &error);
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
