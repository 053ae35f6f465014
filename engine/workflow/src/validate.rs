//! Semantic checks of one definition: everything serde cannot see on its own.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;

use crate::load::FileReport;
use crate::model::{Definition, FieldType};
use crate::values::check_value;

/// Names every record has; a field may not reuse them because rules see fields and these
/// side by side on `record`.
pub const RESERVED_NAMES: [&str; 9] = [
    "id",
    "number",
    "process",
    "state",
    "title",
    "description",
    "created_at",
    "updated_at",
    "state_changed_at",
];

pub(crate) fn validate_definition(
    definition: &Definition,
    file: &Path,
    report: &mut FileReport<'_>,
) {
    check_names(definition, file, report);
    check_fields(definition, report);
    check_states(definition, report);
    check_transitions(definition, report);
    check_timed_transitions(definition, report);
    check_approvals(definition, report);
    check_trends(definition, report);
    check_schedule(definition, report);
    check_reachability(definition, report);
    check_replies(definition, report);
    check_automatic_actions(definition, report);
}

/// Checks that each automatic action is named as `plugin/action`. Which plugins exist is
/// known to the server only, so it checks the rest when a rule asks for a run.
fn check_automatic_actions(definition: &Definition, report: &mut FileReport<'_>) {
    for (position, action) in definition.automatic_actions.iter().enumerate() {
        let named = action.split_once('/').is_some_and(|(plugin, name)| {
            !plugin.is_empty() && !name.is_empty() && !name.contains('/')
        });
        if !named {
            report.error(
                &format!("automatic_actions[{position}]"),
                format!(
                    "`{action}` does not name a plugin action: write it as plugin/action, such as script/disk_usage"
                ),
            );
        }
    }
}

fn check_replies(definition: &Definition, report: &mut FileReport<'_>) {
    let Some(policy) = &definition.replies else {
        return;
    };
    if let Some(name) = &policy.reopen
        && definition.transition(name).is_none()
    {
        report.error(
            "replies.reopen",
            format!("replies reopen with unknown transition `{name}`: name one of the transitions"),
        );
    }
    if policy.reopen_within.is_some() && policy.reopen.is_none() {
        report.error(
            "replies.reopen_within",
            "`reopen_within` needs `reopen`: name the transition a reply takes",
        );
    }
    for (i, state) in policy.follow_up_in.iter().enumerate() {
        if !definition.states.contains_key(state) {
            report.error(
                &format!("replies.follow_up_in[{i}]"),
                format!(
                    "replies open follow-ups in unknown state `{state}`: {}",
                    choices(state, definition.states.keys())
                ),
            );
        }
    }
    let field = policy
        .follow_up_field
        .as_deref()
        .unwrap_or(crate::engine::DEFAULT_FOLLOW_UP_FIELD);
    if !policy.follow_up_in.is_empty() {
        match definition.fields.get(field) {
            None => report.error(
                "replies",
                format!(
                    "follow-up records need the field `{field}` for the original's number: declare it with `type: string`"
                ),
            ),
            Some(declared) if declared.kind != FieldType::String || declared.read_only => {
                report.error(
                    &format!("fields.{field}"),
                    format!(
                        "field `{field}` holds the original's number of a follow-up: make it `type: string` and not read_only"
                    ),
                )
            }
            Some(_) => {}
        }
    }
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_names(definition: &Definition, file: &Path, report: &mut FileReport<'_>) {
    if !is_identifier(&definition.process) {
        report.error(
            "process",
            format!(
                "invalid process name `{}`: use lower-case letters, digits and underscores, starting with a letter",
                definition.process
            ),
        );
    }
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != definition.process {
        report.error(
            "process",
            format!(
                "process `{}` is defined in {stem}.yaml: rename the file to {}.yaml or the process to `{stem}`",
                definition.process, definition.process
            ),
        );
    }
    let prefix = &definition.number_prefix;
    if prefix.is_empty() || prefix.len() > 8 || !prefix.chars().all(|c| c.is_ascii_uppercase()) {
        report.error(
            "number_prefix",
            format!("invalid number prefix `{prefix}`: use 1 to 8 upper-case letters, e.g. INC"),
        );
    }
    if !(3..=12).contains(&definition.number_digits) {
        report.error(
            "number_digits",
            format!(
                "number_digits is {}: use a value from 3 to 12",
                definition.number_digits
            ),
        );
    }
}

fn check_fields(definition: &Definition, report: &mut FileReport<'_>) {
    for (name, field) in &definition.fields {
        let path = format!("fields.{name}");
        if !is_identifier(name) {
            report.error(
                &path,
                format!(
                    "invalid field name `{name}`: use lower-case letters, digits and underscores"
                ),
            );
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            report.error(
                &path,
                format!("field name `{name}` is reserved for every record: choose another name"),
            );
        }
        if field.kind == FieldType::Enum && field.values.is_empty() {
            report.error(
                &format!("{path}.values"),
                format!("enum field `{name}` has no values: list them under `values`"),
            );
        }
        if field.kind != FieldType::Enum && !field.values.is_empty() {
            report.error(
                &format!("{path}.values"),
                format!(
                    "field `{name}` is of type {} and cannot have `values`: make it `type: enum` or remove `values`",
                    field.kind.as_str()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, value) in field.values.iter().enumerate() {
            if !seen.insert(value) {
                report.error(
                    &format!("{path}.values[{i}]"),
                    format!("value `{value}` is listed twice in `{name}`: remove one"),
                );
            }
        }
        if let Some(default) = &field.default
            && let Err(message) = check_value(field, default)
        {
            report.error(
                &format!("{path}.default"),
                format!("default of `{name}` is invalid: {message}"),
            );
        }
        for (i, state) in field.read_only_in.iter().enumerate() {
            if !definition.states.contains_key(state) {
                report.error(
                    &format!("{path}.read_only_in[{i}]"),
                    format!(
                        "field `{name}` is read-only in unknown state `{state}`: {}",
                        choices(state, definition.states.keys())
                    ),
                );
            }
        }
        for (i, state) in field.required_in.iter().enumerate() {
            if !definition.states.contains_key(state) {
                report.error(
                    &format!("{path}.required_in[{i}]"),
                    format!(
                        "field `{name}` is required in unknown state `{state}`: {}",
                        choices(state, definition.states.keys())
                    ),
                );
            }
        }
    }
}

fn check_states(definition: &Definition, report: &mut FileReport<'_>) {
    if definition.states.is_empty() {
        report.error(
            "states",
            "the process has no states: declare at least one under `states`",
        );
        return;
    }
    for (name, state) in &definition.states {
        for (i, field) in state.requires.iter().enumerate() {
            if !definition.fields.contains_key(field) {
                report.error(
                    &format!("states.{name}.requires[{i}]"),
                    format!(
                        "state `{name}` requires undeclared field `{field}`: {}",
                        match closest(field, definition.fields.keys()) {
                            Some(close) => format!(
                                "did you mean `{close}`? Otherwise declare it under `fields`"
                            ),
                            None => "declare it under `fields`".to_owned(),
                        }
                    ),
                );
            }
        }
    }
    for name in definition.states.keys() {
        if !is_identifier(name) {
            report.error(
                &format!("states.{name}"),
                format!(
                    "invalid state name `{name}`: use lower-case letters, digits and underscores"
                ),
            );
        }
    }
    let initial: Vec<&String> = definition
        .states
        .iter()
        .filter(|(_, s)| s.initial)
        .map(|(n, _)| n)
        .collect();
    match initial.as_slice() {
        [] => report.error(
            "states",
            "no state is marked `initial: true`: mark the state new records start in",
        ),
        [_] => {}
        [_, second, ..] => report.error(
            &format!("states.{second}.initial"),
            format!(
                "more than one initial state ({}): keep `initial: true` on one state",
                list(initial.iter().copied())
            ),
        ),
    }
}

fn check_transitions(definition: &Definition, report: &mut FileReport<'_>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, transition) in definition.transitions.iter().enumerate() {
        let path = format!("transitions[{i}]");
        if !is_identifier(&transition.name) {
            report.error(
                &format!("{path}.name"),
                format!(
                    "invalid transition name `{}`: use lower-case letters, digits and underscores",
                    transition.name
                ),
            );
        }
        if let Some(first) = names.insert(&transition.name, i) {
            report.error(
                &format!("{path}.name"),
                format!(
                    "transition `{}` is declared twice (also transitions[{first}]): give each a unique name",
                    transition.name
                ),
            );
        }
        if transition.from.is_empty() {
            report.error(
                &format!("{path}.from"),
                "`from` is empty: list the states the transition starts from",
            );
        }
        for (j, state) in transition.from.iter().enumerate() {
            match definition.states.get(state) {
                None => report.error(
                    &format!("{path}.from[{j}]"),
                    format!(
                        "transition `{}` starts from unknown state `{state}`: {}",
                        transition.name,
                        choices(state, definition.states.keys())
                    ),
                ),
                Some(s) if s.is_final => report.error(
                    &format!("{path}.from[{j}]"),
                    format!(
                        "transition `{}` starts from final state `{state}`: remove it or make the state not final",
                        transition.name
                    ),
                ),
                Some(_) => {}
            }
        }
        if !definition.states.contains_key(&transition.to) {
            report.error(
                &format!("{path}.to"),
                format!(
                    "transition `{}` leads to unknown state `{}`: {}",
                    transition.name,
                    transition.to,
                    choices(&transition.to, definition.states.keys())
                ),
            );
        }
        if transition.roles.is_empty() {
            report.error(
                &format!("{path}.roles"),
                format!(
                    "no role may take transition `{}`: list at least one role",
                    transition.name
                ),
            );
        }
        for (j, field) in transition.requires.iter().enumerate() {
            if !definition.fields.contains_key(field) {
                report.error(
                    &format!("{path}.requires[{j}]"),
                    format!(
                        "transition `{}` requires undeclared field `{field}`: {}",
                        transition.name,
                        match closest(field, definition.fields.keys()) {
                            Some(close) => format!(
                                "did you mean `{close}`? Otherwise declare it under `fields`"
                            ),
                            None => "declare it under `fields`".to_owned(),
                        }
                    ),
                );
            }
        }
    }
}

/// Checks automatic transitions. The system takes them without a person to give input, so
/// they may not require fields or a comment. One state may have only one, because two would
/// race for the same record.
fn check_timed_transitions(definition: &Definition, report: &mut FileReport<'_>) {
    let mut timed_from: HashMap<&str, &str> = HashMap::new();
    for (i, transition) in definition.transitions.iter().enumerate() {
        if transition.after.is_none() {
            continue;
        }
        let path = format!("transitions[{i}].after");
        if !transition.requires.is_empty() {
            report.error(
                &path,
                format!(
                    "transition `{}` has both `after` and `requires`, but nobody is there to fill in fields when the system takes it: remove one of them",
                    transition.name
                ),
            );
        }
        if transition.comment_required {
            report.error(
                &path,
                format!(
                    "transition `{}` has both `after` and `comment_required`, but nobody is there to write a comment when the system takes it: remove one of them",
                    transition.name
                ),
            );
        }
        for state in &transition.from {
            if let Some(other) = timed_from.insert(state, &transition.name) {
                report.error(
                    &path,
                    format!(
                        "transitions `{other}` and `{}` both leave state `{state}` with `after`: keep `after` on one of them",
                        transition.name
                    ),
                );
            }
        }
    }
}

/// Checks the approval blocks of transitions. Approver names are checked against the
/// groups when the whole set is loaded.
fn check_approvals(definition: &Definition, report: &mut FileReport<'_>) {
    use crate::model::{ApprovalPolicy, DeadlineAction};
    for (i, transition) in definition.transitions.iter().enumerate() {
        let Some(approval) = &transition.approval else {
            continue;
        };
        let name = &transition.name;
        let path = format!("transitions[{i}].approval");
        if approval.approvers.is_empty() && approval.rule.is_none() {
            report.error(
                &path,
                format!("transition `{name}` needs approval from nobody: list `approvers` or name a `rule` that chooses them"),
            );
        }
        if transition.after.is_some() {
            report.error(
                &format!("transitions[{i}].after"),
                format!("transition `{name}` has both `after` and `approval`, but an automatic transition cannot wait for approvers: remove one of them"),
            );
        }
        match (approval.policy, approval.quorum) {
            (ApprovalPolicy::Quorum, None | Some(0)) => report.error(
                &format!("{path}.quorum"),
                "`policy: quorum` needs `quorum`, the number of approvals needed, from 1 up",
            ),
            (ApprovalPolicy::Quorum, Some(_)) | (_, None) => {}
            (policy, Some(_)) => report.error(
                &format!("{path}.quorum"),
                format!("`quorum` counts only with `policy: quorum`, and the policy is `{}`: set `policy: quorum` or remove `quorum`", policy.as_str()),
            ),
        }
        match (approval.policy, approval.share) {
            (ApprovalPolicy::Share, Some(1..=100)) => {}
            (ApprovalPolicy::Share, other) => report.error(
                &format!("{path}.share"),
                format!(
                    "`policy: share` needs `share`, the percentage of approvers needed, from 1 to 100{}",
                    other.map(|v| format!(", not {v}")).unwrap_or_default()
                ),
            ),
            (_, None) => {}
            (policy, Some(_)) => report.error(
                &format!("{path}.share"),
                format!("`share` counts only with `policy: share`, and the policy is `{}`: set `policy: share` or remove `share`", policy.as_str()),
            ),
        }
        match (approval.deadline, approval.on_deadline) {
            (Some(_), DeadlineAction::Escalate) if approval.escalate_to.is_empty() => report.error(
                &format!("{path}.deadline"),
                format!("transition `{name}` escalates at its deadline but names nobody to escalate to: list `escalate_to`, or set `on_deadline: reject` or `approve`"),
            ),
            (None, _) if !approval.escalate_to.is_empty() => report.error(
                &format!("{path}.escalate_to"),
                "`escalate_to` is used when the deadline passes, and there is no `deadline`: add one, e.g. `deadline: 2d`",
            ),
            (None, DeadlineAction::Reject | DeadlineAction::Approve) => report.error(
                &format!("{path}.on_deadline"),
                "`on_deadline` acts when the deadline passes, and there is no `deadline`: add one, e.g. `deadline: 2d`",
            ),
            _ => {}
        }
        if let Some(on_reject) = &approval.on_reject {
            match definition.transition(on_reject) {
                None => report.error(
                    &format!("{path}.on_reject"),
                    format!(
                        "`on_reject` names unknown transition `{on_reject}`: {}",
                        choices(on_reject, definition.transitions.iter().map(|t| &t.name))
                    ),
                ),
                Some(step) => {
                    if step.approval.is_some() {
                        report.error(
                            &format!("{path}.on_reject"),
                            format!("transition `{on_reject}` needs approval itself, so a rejection could not take it: choose a transition without `approval`"),
                        );
                    }
                    for state in &transition.from {
                        if !step.from.contains(state) {
                            report.error(
                                &format!("{path}.on_reject"),
                                format!("a rejection of `{name}` can happen in state `{state}`, which transition `{on_reject}` does not start from: add `{state}` to its `from`"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Checks trends against the definition's fields. The process they open and their link
/// type are checked when the whole set is loaded.
fn check_trends(definition: &Definition, report: &mut FileReport<'_>) {
    for (i, trend) in definition.trends.iter().enumerate() {
        let path = format!("trends[{i}]");
        if trend.match_fields.is_empty() {
            report.error(
                &format!("{path}.match"),
                format!(
                    "trend `{}` matches no field: list the fields the records share, e.g. [ci]",
                    trend.name
                ),
            );
        }
        for (j, field) in trend.match_fields.iter().enumerate() {
            if !definition.fields.contains_key(field) {
                report.error(
                    &format!("{path}.match[{j}]"),
                    format!(
                        "trend `{}` matches undeclared field `{field}`: {}",
                        trend.name,
                        choices(field, definition.fields.keys())
                    ),
                );
            }
        }
        if trend.threshold < 2 {
            report.error(
                &format!("{path}.threshold"),
                format!(
                    "trend `{}` has threshold {}, but a trend needs at least 2 records: raise it",
                    trend.name, trend.threshold
                ),
            );
        }
    }
}

/// Checks the `schedule` block against the definition's fields, transitions and states.
fn check_schedule(definition: &Definition, report: &mut FileReport<'_>) {
    let Some(schedule) = &definition.schedule else {
        return;
    };
    let ci_kinds = &[FieldType::Text, FieldType::String, FieldType::CiRef][..];
    let named = [
        ("start", &schedule.start, &[FieldType::Datetime][..]),
        ("end", &schedule.end, &[FieldType::Datetime][..]),
    ]
    .into_iter()
    .chain(schedule.cis.iter().map(|field| ("cis", field, ci_kinds)));
    for (key, field, kinds) in named {
        match definition.fields.get(field) {
            None => report.error(
                &format!("schedule.{key}"),
                format!(
                    "schedule `{key}` names undeclared field `{field}`: {}",
                    choices(field, definition.fields.keys())
                ),
            ),
            Some(declared) if !kinds.contains(&declared.kind) => report.error(
                &format!("schedule.{key}"),
                format!(
                    "schedule `{key}` needs a field of type {}, and `{field}` is {}",
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    declared.kind.as_str()
                ),
            ),
            Some(_) => {}
        }
    }
    for (i, name) in schedule.check_on.iter().enumerate() {
        if definition.transition(name).is_none() {
            report.error(
                &format!("schedule.check_on[{i}]"),
                format!(
                    "schedule checks unknown transition `{name}`: {}",
                    choices(name, definition.transitions.iter().map(|t| &t.name))
                ),
            );
        }
    }
    for (i, state) in schedule.blocking_states.iter().enumerate() {
        if !definition.states.contains_key(state) {
            report.error(
                &format!("schedule.blocking_states[{i}]"),
                format!(
                    "unknown state `{state}`: {}",
                    choices(state, definition.states.keys())
                ),
            );
        }
    }
    if let Some(exempt) = &schedule.freeze_exempt
        && !definition.fields.contains_key(&exempt.field)
    {
        report.error(
            "schedule.freeze_exempt.field",
            format!(
                "freeze exemption names undeclared field `{}`: {}",
                exempt.field,
                choices(&exempt.field, definition.fields.keys())
            ),
        );
    }
}

fn check_reachability(definition: &Definition, report: &mut FileReport<'_>) {
    let Some(initial) = definition.initial_state() else {
        return;
    };
    let mut reached = BTreeSet::from([initial]);
    let mut queue = VecDeque::from([initial]);
    while let Some(state) = queue.pop_front() {
        for transition in &definition.transitions {
            if transition.from.iter().any(|s| s == state) && reached.insert(&transition.to) {
                queue.push_back(&transition.to);
            }
        }
    }
    for (name, state) in &definition.states {
        if !reached.contains(name.as_str()) {
            report.error(
                &format!("states.{name}"),
                format!(
                    "state `{name}` cannot be reached from the initial state `{initial}`: add a transition to it or remove it"
                ),
            );
        } else if !state.is_final && !definition.transitions.iter().any(|t| t.from.contains(name)) {
            report.error(
                &format!("states.{name}"),
                format!("state `{name}` has no transition out: add one or mark it `final: true`"),
            );
        }
    }
}

/// Suggests the closest name when there is one, else lists the valid names.
pub(crate) fn choices<'a>(
    name: &str,
    names: impl IntoIterator<Item = &'a String> + Clone,
) -> String {
    match closest(name, names.clone()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("use one of {}", list(names)),
    }
}

/// Finds the name within two single-character edits of `name`, if exactly one is that close.
pub(crate) fn closest<'a>(
    name: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Option<&'a str> {
    let mut close = names
        .into_iter()
        .filter(|candidate| edit_distance(name, candidate) <= 2);
    let first = close.next()?;
    close.next().is_none().then_some(first.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, left) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != *right);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
