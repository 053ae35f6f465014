//! The state machine: a command, a record and its definition in; the new record and the
//! journal events that describe the change out. Pure: no IO, no clock, no database.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tend_domain::{
    Actor, Command, Effect, Fields, JournalEvent, ProposedEffect, Recommendation, Record, Role,
};

use std::collections::BTreeMap;

use crate::approval::{self, Slot};
use crate::model::{ApprovalDef, Definition, GroupDef, TransitionDef};
use crate::rejection::Rejection;
use crate::rules::{Hook, LinkedChange, LinkedRecord, RuleInput, RuleRunner};
use crate::values::{check_value, is_present};

/// Longest accepted title, in characters.
pub const MAX_TITLE_LENGTH: usize = 300;
/// Longest accepted description or comment, in characters.
pub const MAX_TEXT_LENGTH: usize = 100_000;

/// Everything a command is decided against.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub definition: &'a Definition,
    /// Version of the definition set, stored on new records.
    pub version: &'a str,
    pub rules: &'a dyn RuleRunner,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    /// Groups of users, which approvers name.
    pub groups: &'a BTreeMap<String, GroupDef>,
    /// Records linked to the record, for rules that look across links.
    pub links: &'a [LinkedRecord],
    /// What the CMDB knows about the record (its CIs, what they affect, the requester's
    /// CIs), for rules; `None` where the caller did not load it.
    pub cmdb: Option<&'a serde_json::Value>,
}

/// The result of an accepted command.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub record: Record,
    pub events: Vec<JournalEvent>,
    /// Set when a reply must open a new record instead of changing this one.
    pub follow_up: Option<FollowUp>,
    /// Automatic transitions to schedule for the record's new state. Empty when the command
    /// did not create the record or move it into a state, so existing timers stay as they are.
    pub timers: Vec<TimerPlan>,
    /// Set when the command took a transition that needs approval: the record stays in its
    /// state and a round of approval requests is opened instead.
    pub approval: Option<ApprovalPlan>,
    /// Effects of rules that act after the command is written: transitions of the record,
    /// links, new records.
    pub follow_ons: Vec<ProposedEffect>,
}

/// A round of approval requests to open for a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPlan {
    pub transition: String,
    pub slots: Vec<Slot>,
    /// Approvals needed to approve the round.
    pub required: usize,
    pub due_at: Option<DateTime<Utc>>,
    /// The comment given with the transition, kept for when the round completes it.
    pub comment: Option<String>,
}

/// An automatic transition (one with `after`) due at a fixed time, unless the record leaves
/// its state first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerPlan {
    pub transition: String,
    pub due_at: DateTime<Utc>,
}

/// A new record to open for a reply to a record that no longer takes replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// Number of the original record.
    pub of: String,
    /// Field of the new record that stores `of`.
    pub field: String,
}

/// Field that stores the original's number when a policy names none.
pub const DEFAULT_FOLLOW_UP_FIELD: &str = "follow_up_of";

impl Outcome {
    /// Checks whether the command changed nothing (for example an update with the same values).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Checks whether the command created the record or moved it into a state (possibly
    /// the same one again), which is when the record's timers are planned anew.
    pub fn entered_state(&self) -> bool {
        self.events.iter().any(|event| {
            matches!(
                event,
                JournalEvent::Created { .. } | JournalEvent::Transitioned { .. }
            )
        })
    }
}

/// Decides a command against an existing record, or a `Create` against none.
pub fn execute(
    context: &Context<'_>,
    record: Option<&Record>,
    command: &Command,
) -> Result<Outcome, Rejection> {
    let mut outcome = decide(context, record, command)?;
    if outcome.entered_state() {
        outcome.timers = plan_timers(context.definition, &outcome.record);
    }
    Ok(outcome)
}

/// Lists the automatic transitions from the record's state, due `after` its state change.
pub fn plan_timers(definition: &Definition, record: &Record) -> Vec<TimerPlan> {
    definition
        .transitions
        .iter()
        .filter(|step| step.from.contains(&record.state))
        .filter_map(|step| {
            let after = step.after?;
            Some(TimerPlan {
                transition: step.name.clone(),
                due_at: record.state_changed_at + after.duration(),
            })
        })
        .collect()
}

fn decide(
    context: &Context<'_>,
    record: Option<&Record>,
    command: &Command,
) -> Result<Outcome, Rejection> {
    match (command, record) {
        (
            Command::Create {
                title,
                description,
                fields,
                preset,
            },
            _,
        ) => create(context, title, description, fields, preset),
        (
            Command::Transition {
                name,
                fields,
                comment,
            },
            Some(record),
        ) => transition(context, record, name, fields, comment.as_deref(), false),
        (
            Command::Update {
                title,
                description,
                fields,
            },
            Some(record),
        ) => update(
            context,
            record,
            title.as_deref(),
            description.as_deref(),
            fields,
        ),
        (Command::Comment { text }, Some(record)) => comment(context, record, text),
        (Command::Reply { text }, Some(record)) => reply(context, record, text),
        (_, None) => Err(Rejection::InvalidInput {
            field: "record".into(),
            message: format!("a {} command needs an existing record", command.kind()),
        }),
    }
}

fn check_role(actor: &Actor, allowed: &[Role], what: impl Into<String>) -> Result<(), Rejection> {
    if actor.may(allowed) {
        Ok(())
    } else {
        Err(Rejection::Forbidden {
            what: what.into(),
            roles: allowed.to_vec(),
        })
    }
}

fn check_text(field: &str, text: &str, limit: usize, required: bool) -> Result<(), Rejection> {
    if required && text.trim().is_empty() {
        return Err(Rejection::RequiredFieldMissing {
            field: field.into(),
            context: String::new(),
        });
    }
    let length = text.chars().count();
    if length > limit {
        return Err(Rejection::InvalidInput {
            field: field.into(),
            message: format!("it is {length} characters long; the limit is {limit}"),
        });
    }
    Ok(())
}

/// Checks fields given by a person: declared, writable by their roles and well-typed.
fn check_input_fields(
    definition: &Definition,
    actor: &Actor,
    state: &str,
    fields: &Fields,
) -> Result<(), Rejection> {
    for (name, value) in fields {
        let Some(field) = definition.fields.get(name) else {
            return Err(Rejection::UnknownField {
                process: definition.process.clone(),
                field: name.clone(),
                known: definition
                    .fields
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if field.read_only {
            return Err(Rejection::ReadOnlyField {
                field: name.clone(),
            });
        }
        if field.read_only_in.iter().any(|s| s == state) {
            return Err(Rejection::FieldLockedInState {
                field: name.clone(),
                state: state.to_owned(),
            });
        }
        if !field.set_by.is_empty() && !actor.may(&field.set_by) {
            return Err(Rejection::FieldForbidden {
                field: name.clone(),
                roles: field.set_by.clone(),
            });
        }
        check_value(field, value).map_err(|message| Rejection::InvalidValue {
            field: name.clone(),
            message,
        })?;
    }
    Ok(())
}

fn create(
    context: &Context<'_>,
    title: &str,
    description: &str,
    input: &Fields,
    preset: &Fields,
) -> Result<Outcome, Rejection> {
    let definition = context.definition;
    let actor = context.actor;
    check_role(
        actor,
        &definition.permissions.create,
        format!("creating a {} record", definition.process),
    )?;
    check_text("title", title, MAX_TITLE_LENGTH, true)?;
    check_text("description", description, MAX_TEXT_LENGTH, false)?;
    let initial = definition
        .initial_state()
        .expect("a validated definition has an initial state");
    check_input_fields(definition, context.actor, initial, input)?;

    let mut fields = Fields::new();
    // Defaults first, so that rules see the same record whatever channel created it.
    for (name, field) in &definition.fields {
        if let Some(default) = &field.default {
            fields.insert(name.clone(), default.clone());
        }
    }
    for (name, value) in input {
        fields.insert(name.clone(), value.clone());
    }
    for (name, value) in preset {
        let Some(field) = definition.fields.get(name) else {
            return Err(Rejection::UnknownField {
                process: definition.process.clone(),
                field: name.clone(),
                known: definition
                    .fields
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        check_value(field, value).map_err(|message| Rejection::InvalidValue {
            field: name.clone(),
            message,
        })?;
        fields.insert(name.clone(), value.clone());
    }
    if definition.fields.contains_key("requester") {
        let given = fields
            .get("requester")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match given {
            Some(other) if !actor.is_staff() && other != actor.name => {
                return Err(Rejection::Forbidden {
                    what: "opening a record for someone else".into(),
                    roles: vec![Role::Technician],
                });
            }
            Some(_) => {}
            None => {
                fields.insert("requester".into(), Value::String(actor.name.clone()));
            }
        }
    }
    for (name, field) in &definition.fields {
        if field.required && !is_present(fields.get(name)) {
            return Err(Rejection::RequiredFieldMissing {
                field: name.clone(),
                context: format!(" to create a {} record", definition.process),
            });
        }
    }
    let state = definition
        .initial_state()
        .expect("a validated definition has an initial state")
        .to_owned();
    let mut record = Record {
        id: 0,
        number: String::new(),
        process: definition.process.clone(),
        definition_version: context.version.to_owned(),
        open: definition.is_open_state(&state),
        state: state.clone(),
        title: title.trim().to_owned(),
        description: description.to_owned(),
        fields,
        recommendations: Vec::new(),
        created_at: context.now,
        updated_at: context.now,
        state_changed_at: context.now,
        revision: 0,
    };
    let mut follow_ons = Vec::new();
    let mut events = vec![JournalEvent::Created {
        title: record.title.clone(),
        description: record.description.clone(),
        state,
        fields: record.fields.clone(),
    }];
    run_rules(
        context,
        Hook::OnCreate,
        &mut record,
        None,
        None,
        &mut events,
        &mut follow_ons,
    );
    Ok(Outcome {
        record,
        events,
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons,
    })
}

fn update(
    context: &Context<'_>,
    current: &Record,
    title: Option<&str>,
    description: Option<&str>,
    input: &Fields,
) -> Result<Outcome, Rejection> {
    let definition = context.definition;
    check_role(
        context.actor,
        &definition.permissions.update,
        format!("updating {}", current.number),
    )?;
    check_input_fields(definition, context.actor, &current.state, input)?;
    let mut record = current.clone();
    let mut events = Vec::new();
    let mut follow_ons = Vec::new();
    if let Some(title) = title {
        check_text("title", title, MAX_TITLE_LENGTH, true)?;
        let title = title.trim();
        if title != record.title {
            events.push(JournalEvent::TextChanged {
                field: "title".into(),
                from: record.title.clone(),
                to: title.to_owned(),
            });
            record.title = title.to_owned();
        }
    }
    if let Some(description) = description {
        check_text("description", description, MAX_TEXT_LENGTH, false)?;
        if description != record.description {
            events.push(JournalEvent::TextChanged {
                field: "description".into(),
                from: record.description.clone(),
                to: description.to_owned(),
            });
            record.description = description.to_owned();
        }
    }
    apply_field_changes(&mut record, input, &mut events);
    check_required_in_state(definition, &record, &record.state)?;
    if !events.is_empty() {
        record.updated_at = context.now;
        run_rules(
            context,
            Hook::OnUpdate,
            &mut record,
            Some(current),
            None,
            &mut events,
            &mut follow_ons,
        );
    }
    Ok(Outcome {
        record,
        events,
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons,
    })
}

/// Completes a transition whose approval round was approved. The transition is decided
/// again (its guard, required fields and rules run on the record as it is now), but no new
/// round is opened.
pub fn execute_approved(
    context: &Context<'_>,
    record: &Record,
    name: &str,
    comment: Option<&str>,
) -> Result<Outcome, Rejection> {
    let mut outcome = transition(context, record, name, &Fields::new(), comment, true)?;
    outcome.timers = plan_timers(context.definition, &outcome.record);
    Ok(outcome)
}

fn transition(
    context: &Context<'_>,
    current: &Record,
    name: &str,
    input: &Fields,
    comment: Option<&str>,
    approved: bool,
) -> Result<Outcome, Rejection> {
    let definition = context.definition;
    let Some(step) = definition.transition(name) else {
        return Err(Rejection::UnknownTransition {
            process: definition.process.clone(),
            name: name.to_owned(),
            known: definition
                .transitions
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if !step.from.contains(&current.state) {
        return Err(Rejection::TransitionNotAllowed {
            name: name.to_owned(),
            state: current.state.clone(),
            allowed: step.from.join(", "),
        });
    }
    check_role(
        context.actor,
        &step.roles,
        format!("transition `{name}` on {}", current.number),
    )?;
    check_input_fields(definition, context.actor, &current.state, input)?;
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if let Some(text) = comment {
        check_text("comment", text, MAX_TEXT_LENGTH, false)?;
    } else if step.comment_required {
        return Err(Rejection::CommentRequired {
            name: name.to_owned(),
        });
    }

    let mut record = current.clone();
    let mut events = Vec::new();
    let fields_changed = apply_field_changes(&mut record, input, &mut events);
    for field in &step.requires {
        if !is_present(record.fields.get(field)) {
            return Err(Rejection::RequiredFieldMissing {
                field: field.clone(),
                context: format!(" to take transition `{name}`"),
            });
        }
    }
    check_required_in_state(definition, &record, &step.to)?;
    if let Some(guard) = &step.guard {
        check_guard(context, guard, name, &record, current)?;
    }
    let mut follow_ons = Vec::new();
    if let Some(approval) = step.approval.as_ref().filter(|_| !approved)
        && let Some(plan) = plan_approval(context, approval, name, &record, current, comment)?
    {
        if fields_changed {
            run_rules(
                context,
                Hook::OnUpdate,
                &mut record,
                Some(current),
                None,
                &mut events,
                &mut follow_ons,
            );
        }
        // The journal dates its entries by `updated_at`, so the request must carry now.
        record.updated_at = context.now;
        events.push(JournalEvent::ApprovalRequested {
            round: 0,
            transition: name.to_owned(),
            approvers: plan.slots.iter().map(|s| s.approver.clone()).collect(),
            required: i64::try_from(plan.required).unwrap_or(i64::MAX),
            due_at: plan.due_at,
        });
        if let Some(text) = comment {
            events.push(JournalEvent::Commented {
                text: text.to_owned(),
            });
        }
        return Ok(Outcome {
            record,
            events,
            follow_up: None,
            timers: Vec::new(),
            approval: Some(plan),
            follow_ons,
        });
    }

    if fields_changed {
        run_rules(
            context,
            Hook::OnUpdate,
            &mut record,
            Some(current),
            None,
            &mut events,
            &mut follow_ons,
        );
    }
    events.push(JournalEvent::Transitioned {
        transition: name.to_owned(),
        from: current.state.clone(),
        to: step.to.clone(),
    });
    if let Some(text) = comment {
        events.push(JournalEvent::Commented {
            text: text.to_owned(),
        });
    }
    record.state = step.to.clone();
    record.open = definition.is_open_state(&record.state);
    record.updated_at = context.now;
    record.state_changed_at = context.now;
    run_rules(
        context,
        Hook::OnTransition,
        &mut record,
        Some(current),
        Some(name),
        &mut events,
        &mut follow_ons,
    );
    Ok(Outcome {
        record,
        events,
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons,
    })
}

fn comment(context: &Context<'_>, current: &Record, text: &str) -> Result<Outcome, Rejection> {
    let definition = context.definition;
    check_role(
        context.actor,
        &definition.permissions.comment,
        format!("commenting on {}", current.number),
    )?;
    check_text("text", text, MAX_TEXT_LENGTH, true)?;
    let mut record = current.clone();
    record.updated_at = context.now;
    Ok(Outcome {
        record,
        events: vec![JournalEvent::Commented {
            text: text.trim().to_owned(),
        }],
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons: Vec::new(),
    })
}

/// Decides a requester's reply with the definition's reply policy: reopen a record that
/// entered a reopenable state recently, open a follow-up for a closed one (or one past the
/// reopen window), and keep the reply as a comment otherwise.
fn reply(context: &Context<'_>, current: &Record, text: &str) -> Result<Outcome, Rejection> {
    let definition = context.definition;
    check_role(
        context.actor,
        &definition.permissions.comment,
        format!("replying to {}", current.number),
    )?;
    check_text("text", text, MAX_TEXT_LENGTH, true)?;
    let Some(policy) = &definition.replies else {
        return comment(context, current, text);
    };
    let follow_up = || {
        Ok(Outcome {
            record: current.clone(),
            events: Vec::new(),
            follow_up: Some(FollowUp {
                of: current.number.clone(),
                field: policy
                    .follow_up_field
                    .clone()
                    .unwrap_or_else(|| DEFAULT_FOLLOW_UP_FIELD.to_owned()),
            }),
            timers: Vec::new(),
            approval: None,
            follow_ons: Vec::new(),
        })
    };
    if policy.follow_up_in.contains(&current.state) {
        return follow_up();
    }
    if let Some(name) = &policy.reopen
        && let Some(step) = definition.transition(name)
        && step.from.contains(&current.state)
    {
        let in_time = policy
            .reopen_within
            .is_none_or(|within| context.now - current.state_changed_at <= within.duration());
        if !in_time && !policy.follow_up_in.is_empty() {
            return follow_up();
        }
        if in_time && context.actor.may(&step.roles) {
            return transition(context, current, name, &Fields::new(), Some(text), false);
        }
    }
    comment(context, current, text)
}

/// Applies field values given by a person; returns whether any value changed.
fn apply_field_changes(
    record: &mut Record,
    input: &Fields,
    events: &mut Vec<JournalEvent>,
) -> bool {
    let mut changed = false;
    for (name, value) in input {
        let old = record.fields.get(name).cloned().unwrap_or(Value::Null);
        if old == *value {
            continue;
        }
        events.push(JournalEvent::FieldChanged {
            field: name.clone(),
            from: old,
            to: value.clone(),
            rule: None,
            reason: None,
        });
        if value.is_null() {
            record.fields.remove(name);
        } else {
            record.fields.insert(name.clone(), value.clone());
        }
        changed = true;
    }
    changed
}

fn check_required_in_state(
    definition: &Definition,
    record: &Record,
    state: &str,
) -> Result<(), Rejection> {
    for (name, field) in &definition.fields {
        if field.required_in.iter().any(|s| s == state) && !is_present(record.fields.get(name)) {
            return Err(Rejection::RequiredFieldMissing {
                field: name.clone(),
                context: format!(" in state `{state}`"),
            });
        }
    }
    let required_by_state = definition.states.get(state).map(|s| s.requires.as_slice());
    for name in required_by_state.unwrap_or_default() {
        if !is_present(record.fields.get(name)) {
            return Err(Rejection::RequiredFieldMissing {
                field: name.clone(),
                context: format!(" in state `{state}`"),
            });
        }
    }
    Ok(())
}

/// Runs an entitlement rule (a catalog item's) on the record an order would open. The rule
/// refuses the order with `deny(message)`; a rule that fails to run refuses it too.
pub fn check_entitlement(
    context: &Context<'_>,
    rule: &str,
    candidate: &Record,
) -> Result<(), Rejection> {
    check_guard(context, rule, "order", candidate, candidate)
}

/// Runs a transition's guard on the record as it would be after the transition's field
/// values. A `deny` blocks the transition with the guard's message. A guard that fails to
/// run blocks it too, because a broken check must not let every record through.
fn check_guard(
    context: &Context<'_>,
    guard: &str,
    name: &str,
    candidate: &Record,
    current: &Record,
) -> Result<(), Rejection> {
    let input = RuleInput {
        hook: Hook::Guard,
        record: candidate,
        previous: Some(current),
        actor: context.actor,
        transition: Some(name),
        links: context.links,
        cmdb: context.cmdb,
        alert: None,
        linked: None,
        now: context.now,
        email: None,
    };
    let denied = |message: String| Rejection::GuardFailed {
        transition: name.to_owned(),
        message,
    };
    match context.rules.run(guard, &input) {
        Ok(effects) => match effects
            .into_iter()
            .find_map(|proposed| match proposed.effect {
                Effect::Deny { message } => Some(message),
                _ => None,
            }) {
            Some(message) => Err(denied(message)),
            None => Ok(()),
        },
        Err(failure) => Err(denied(format!(
            "transition `{name}` is blocked because its guard `{guard}` failed: {}",
            failure.message
        ))),
    }
}

/// Runs the rules of one hook in order, each on the record with the effects of those
/// before it. A failing rule, or an effect that the definition does not allow, is
/// journaled and skipped, and the command itself goes on.
fn run_rules(
    context: &Context<'_>,
    hook: Hook,
    record: &mut Record,
    previous: Option<&Record>,
    transition: Option<&str>,
    events: &mut Vec<JournalEvent>,
    follow_ons: &mut Vec<ProposedEffect>,
) {
    run_hook(
        context, hook, record, previous, transition, None, events, follow_ons,
    );
}

/// Runs the rules of `hook`; `linked` is the change an `on_linked` hook reacts to.
#[allow(clippy::too_many_arguments)]
fn run_hook(
    context: &Context<'_>,
    hook: Hook,
    record: &mut Record,
    previous: Option<&Record>,
    transition: Option<&str>,
    linked: Option<&LinkedChange>,
    events: &mut Vec<JournalEvent>,
    follow_ons: &mut Vec<ProposedEffect>,
) {
    let rules = match hook {
        Hook::OnCreate => &context.definition.rules.on_create,
        Hook::OnUpdate => &context.definition.rules.on_update,
        Hook::OnTransition => &context.definition.rules.on_transition,
        Hook::OnLinked => &context.definition.rules.on_linked,
        Hook::Guard
        | Hook::Approvers
        | Hook::OnTimer
        | Hook::OnEmail
        | Hook::OnCiChange
        | Hook::OnAlert => {
            return;
        }
    };
    for rule in rules {
        let input = RuleInput {
            hook,
            record,
            previous,
            actor: context.actor,
            transition,
            links: context.links,
            cmdb: context.cmdb,
            alert: None,
            linked,
            now: context.now,
            email: None,
        };
        match context.rules.run(rule, &input) {
            Ok(effects) => {
                for proposed in effects {
                    if proposed.effect.is_follow_on() {
                        follow_ons.push(proposed);
                    } else {
                        apply_effect(context.definition, record, proposed, events);
                    }
                }
            }
            Err(failure) => events.push(JournalEvent::RuleFailed {
                rule: rule.clone(),
                error: failure.message,
            }),
        }
    }
}

fn apply_effect(
    definition: &Definition,
    record: &mut Record,
    proposed: ProposedEffect,
    events: &mut Vec<JournalEvent>,
) {
    let ProposedEffect {
        rule,
        reason,
        effect,
    } = proposed;
    match effect {
        Effect::SetField { field, value } => {
            let Some(declaration) = definition.fields.get(&field) else {
                events.push(JournalEvent::RuleFailed {
                    rule,
                    error: format!(
                        "proposed a value for undeclared field `{field}`; declare it in the {} definition or fix the rule",
                        definition.process
                    ),
                });
                return;
            };
            if let Err(message) = check_value(declaration, &value) {
                events.push(JournalEvent::RuleFailed {
                    rule,
                    error: format!("proposed an invalid value for `{field}`: {message}"),
                });
                return;
            }
            let old = record.fields.get(&field).cloned().unwrap_or(Value::Null);
            if old == value {
                return;
            }
            if value.is_null() {
                record.fields.remove(&field);
            } else {
                record.fields.insert(field.clone(), value.clone());
            }
            events.push(JournalEvent::FieldChanged {
                field,
                from: old,
                to: value,
                rule: Some(rule),
                reason: Some(reason),
            });
        }
        Effect::Recommend { action, params } => {
            record.recommendations.retain(|r| r.action != action);
            record.recommendations.push(Recommendation {
                action: action.clone(),
                params: params.clone(),
                rule: rule.clone(),
                reason: reason.clone(),
            });
            events.push(JournalEvent::Recommended {
                action,
                params,
                rule,
                reason,
            });
        }
        Effect::Note { text } => events.push(JournalEvent::Note { text, rule, reason }),
        Effect::Deny { .. } => events.push(JournalEvent::RuleFailed {
            rule,
            error: "called deny(), which only blocks transitions when the rule is a guard".into(),
        }),
        Effect::Approver { .. } => events.push(JournalEvent::RuleFailed {
            rule,
            error: "called approver(), which only names approvers when the rule is a transition's approval rule".into(),
        }),
        Effect::Transition { .. }
        | Effect::Link { .. }
        | Effect::Open { .. }
        | Effect::RunAction { .. } => {
            unreachable!("follow-on effects are collected, not applied")
        }
    }
}

/// Decides who must approve `name` on `record`: the definition's approvers and those its
/// approval rule names, without the person asking and the record's requester (unless the
/// definition allows self-approval). Returns `None` when no approver is named, which means
/// the transition needs no approval this time (a rule may require approval of risky
/// changes only).
fn plan_approval(
    context: &Context<'_>,
    approval: &ApprovalDef,
    name: &str,
    record: &Record,
    current: &Record,
    comment: Option<&str>,
) -> Result<Option<ApprovalPlan>, Rejection> {
    let mut approvers = approval.approvers.clone();
    if let Some(rule) = &approval.rule {
        let input = RuleInput {
            hook: Hook::Approvers,
            record,
            previous: Some(current),
            actor: context.actor,
            transition: Some(name),
            links: context.links,
            cmdb: context.cmdb,
            alert: None,
            linked: None,
            now: context.now,
            email: None,
        };
        let effects = context.rules.run(rule, &input).map_err(|failure| {
            Rejection::ApprovalUnavailable {
                transition: name.to_owned(),
                message: format!(
                    "its approval rule `{rule}` failed ({}), so nobody can be asked: fix the rule",
                    failure.message
                ),
            }
        })?;
        approvers.extend(effects.into_iter().filter_map(|p| match p.effect {
            Effect::Approver { approver } => Some(approver),
            _ => None,
        }));
    }
    if approvers.is_empty() {
        return Ok(None);
    }
    let mut excluded: Vec<&str> = Vec::new();
    if !approval.allow_self_approval {
        excluded.push(context.actor.name.as_str());
        if let Some(requester) = record.field_str("requester") {
            excluded.push(requester);
        }
    }
    let slots = approval::expand(&approvers, context.groups, &excluded).map_err(|message| {
        Rejection::ApprovalUnavailable {
            transition: name.to_owned(),
            message,
        }
    })?;
    if slots.is_empty() {
        return Err(Rejection::ApprovalUnavailable {
            transition: name.to_owned(),
            message: format!(
                "every approver named ({}) is the person asking or the record's requester, who may not approve their own request: ask another approver to be added, or allow self-approval in the definition",
                approvers.join(", ")
            ),
        });
    }
    let required = approval.required(slots.len());
    if required > slots.len() {
        return Err(Rejection::ApprovalUnavailable {
            transition: name.to_owned(),
            message: format!(
                "it needs {required} approvals and only {} approvers can be asked ({}): lower the quorum or add approvers",
                slots.len(),
                slots
                    .iter()
                    .map(|s| s.approver.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(Some(ApprovalPlan {
        transition: name.to_owned(),
        slots,
        required,
        due_at: approval.deadline.map(|d| context.now + d.duration()),
        comment: comment.map(str::to_owned),
    }))
}

/// Runs the `on_linked` rules of `record` for a transition of a linked record. Returns
/// the journal events (field changes, notes) and the follow-on effects the rules proposed;
/// an outcome without events and follow-ons means the rules did nothing.
pub fn react_to_linked(context: &Context<'_>, current: &Record, change: &LinkedChange) -> Outcome {
    let mut record = current.clone();
    let mut events = Vec::new();
    let mut follow_ons = Vec::new();
    run_hook(
        context,
        Hook::OnLinked,
        &mut record,
        Some(current),
        None,
        Some(change),
        &mut events,
        &mut follow_ons,
    );
    if !events.is_empty() {
        record.updated_at = context.now;
    }
    Outcome {
        record,
        events,
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons,
    }
}

/// Runs rule `rule` on `current` for a timer that fired, such as an SLA threshold, and
/// returns its effects as an outcome: field changes and notes applied to the record, and
/// follow-on effects collected. A failing rule is journaled.
pub fn run_timer_rule(context: &Context<'_>, current: &Record, rule: &str) -> Outcome {
    let mut record = current.clone();
    let mut events = Vec::new();
    let mut follow_ons = Vec::new();
    let input = RuleInput {
        hook: Hook::OnTimer,
        record: &record,
        previous: Some(current),
        actor: context.actor,
        transition: None,
        links: context.links,
        cmdb: context.cmdb,
        alert: None,
        linked: None,
        now: context.now,
        email: None,
    };
    match context.rules.run(rule, &input) {
        Ok(effects) => {
            for proposed in effects {
                if proposed.effect.is_follow_on() {
                    follow_ons.push(proposed);
                } else {
                    apply_effect(context.definition, &mut record, proposed, &mut events);
                }
            }
        }
        Err(failure) => events.push(JournalEvent::RuleFailed {
            rule: rule.to_owned(),
            error: failure.message,
        }),
    }
    if !events.is_empty() {
        record.updated_at = context.now;
    }
    Outcome {
        record,
        events,
        follow_up: None,
        timers: Vec::new(),
        approval: None,
        follow_ons,
    }
}

/// Lists the transitions `actor` may take from the record's current state.
pub fn available_transitions<'d>(
    definition: &'d Definition,
    record: &Record,
    actor: &Actor,
) -> Vec<&'d TransitionDef> {
    definition
        .transitions
        .iter()
        .filter(|t| t.from.contains(&record.state) && actor.may(&t.roles))
        .collect()
}

/// Shortest sequence of transitions from `from` to `to`, for replays whose history starts
/// after creation. Returns `None` when `to` cannot be reached.
pub fn path_between<'d>(
    definition: &'d Definition,
    from: &str,
    to: &str,
) -> Option<Vec<&'d TransitionDef>> {
    use std::collections::{HashMap, VecDeque};
    if from == to {
        return Some(Vec::new());
    }
    let mut came_from: HashMap<&str, (&str, &TransitionDef)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(state) = queue.pop_front() {
        for step in &definition.transitions {
            if step.from.iter().any(|s| s == state)
                && step.to != from
                && !came_from.contains_key(step.to.as_str())
            {
                came_from.insert(&step.to, (state, step));
                if step.to == to {
                    let mut path = Vec::new();
                    let mut at = to;
                    while at != from {
                        let (previous, step) = came_from[at];
                        path.push(step);
                        at = previous;
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(&step.to);
            }
        }
    }
    None
}
