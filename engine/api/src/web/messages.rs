//! Messages for a rejected form, worded for the person at the page: they name fields,
//! transitions and states by their labels, where the REST API's messages use the machine
//! names that API clients send. Rejections that only a stale or hand-made form can cause
//! (an unknown field, transition or process) keep the API's message, because the machine
//! name is what identifies the problem.

use tend_domain::Role;
use tend_workflow::{Definition, FieldType, Rejection, TransitionDef};

use super::display::{humanise, input_label, lowercase_first, process_noun, transition_label};
use crate::error::ApiError;

/// The rejected form, which decides what "required" or "not allowed" refers to.
#[derive(Debug, Clone, Copy)]
pub enum FormContext<'a> {
    /// The new-record form.
    Create,
    /// The edit form of a record in `state`.
    Edit { state: &'a str },
    /// The form of one transition.
    Transition(&'a TransitionDef),
    /// The comment form (a comment or, from a requester, a reply).
    Comment,
}

/// Builds the message shown on the page for `error`, which rejected a form of `context`.
pub fn form_message(definition: &Definition, context: FormContext<'_>, error: &ApiError) -> String {
    let ApiError::Rejected(rejection) = error else {
        return error.public_message();
    };
    let label = |name: &str| input_label(definition, name);
    match rejection {
        Rejection::RequiredFieldMissing { field, .. } => {
            required_message(definition, context, field)
        }
        Rejection::InvalidValue { field, message } => {
            invalid_value_message(definition, field, message)
        }
        Rejection::InvalidInput { field, message } => format!("{}: {message}.", label(field)),
        Rejection::ReadOnlyField { field } => format!(
            "{} is set by rules, so it cannot be changed by hand.",
            label(field)
        ),
        Rejection::FieldForbidden { field, roles } => {
            format!("You need {} to set {}.", roles_phrase(roles), label(field))
        }
        Rejection::Forbidden { roles, .. } => forbidden_message(definition, context, roles),
        Rejection::FieldLockedInState { field, state } => format!(
            "{} cannot be changed while this {} is {}.",
            label(field),
            process_noun(definition),
            definition.state_label(state)
        ),
        // The definition's author wrote the guard's message for the people who take the
        // transition.
        Rejection::GuardFailed { message, .. } => message.clone(),
        Rejection::CommentRequired { name } => {
            format!(
                "{} needs a comment that says why.",
                named_transition(definition, name)
            )
        }
        Rejection::TransitionNotAllowed { name, state, .. } => format!(
            "{} is not possible while this {} is {}.",
            named_transition(definition, name),
            process_noun(definition),
            definition.state_label(state)
        ),
        Rejection::ApprovalUnavailable {
            transition,
            message,
        } => format!(
            "{} needs approval, and {message}.",
            named_transition(definition, transition)
        ),
        Rejection::ScheduleConflict {
            transition,
            conflicts,
        } => format!(
            "{} is not possible now because {}.",
            named_transition(definition, transition),
            conflicts.join("; ")
        ),
        Rejection::UnknownField { .. }
        | Rejection::UnknownTransition { .. }
        | Rejection::UnknownProcess { .. } => error.public_message(),
    }
}

fn required_message(definition: &Definition, context: FormContext<'_>, field: &str) -> String {
    let label = input_label(definition, field);
    match context {
        FormContext::Comment if field == "text" => {
            "The comment is empty, so nothing was sent. Write the comment first.".into()
        }
        FormContext::Transition(step) => {
            format!(
                "{label} is required to {}.",
                action_phrase(definition, step)
            )
        }
        FormContext::Edit { state } if required_in_state(definition, field, state) => {
            format!(
                "{label} is required while this {} is {}.",
                process_noun(definition),
                definition.state_label(state)
            )
        }
        _ => format!("{label} is required."),
    }
}

/// Checks whether `state` requires `field`, by the field's `required_in` or the state's
/// `requires`.
fn required_in_state(definition: &Definition, field: &str, state: &str) -> bool {
    let by_field = definition
        .fields
        .get(field)
        .is_some_and(|declared| declared.required_in.iter().any(|s| s == state));
    let by_state = definition
        .states
        .get(state)
        .is_some_and(|declared| declared.requires.iter().any(|name| name == field));
    by_field || by_state
}

/// Builds the message that states what a field accepts. The form keeps what the person typed, so the message need
/// not repeat it. Text fields keep the engine's reason (too long, a line break).
fn invalid_value_message(definition: &Definition, field: &str, message: &str) -> String {
    let label = input_label(definition, field);
    let Some(declared) = definition.fields.get(field) else {
        return format!("{label}: {message}.");
    };
    match declared.kind {
        FieldType::Enum => {
            let values: Vec<String> = declared.values.iter().map(|v| humanise(v)).collect();
            format!("{label} must be one of {}.", values.join(", "))
        }
        FieldType::Integer => format!("{label} must be a whole number."),
        FieldType::Number => format!("{label} must be a number."),
        FieldType::Boolean => format!("{label} must be Yes or No."),
        FieldType::Date => format!("{label} must be a date written YYYY-MM-DD."),
        FieldType::Datetime => {
            format!("{label} must be a date and time written like 2026-02-03T09:15:00Z.")
        }
        _ => format!("{label}: {message}."),
    }
}

fn forbidden_message(definition: &Definition, context: FormContext<'_>, roles: &[Role]) -> String {
    let noun = process_noun(definition);
    let purpose = match context {
        FormContext::Transition(step) => action_phrase(definition, step),
        FormContext::Edit { .. } => format!("edit this {noun}"),
        FormContext::Comment => format!("comment on this {noun}"),
        // A person who may create records is rejected only when opening one for someone
        // else, which the engine allows only to staff.
        FormContext::Create if roles == definition.permissions.create.as_slice() => {
            format!("create a new {noun}")
        }
        FormContext::Create => "open a record for someone else".into(),
    };
    format!("You need {} to {purpose}.", roles_phrase(roles))
}

/// Names a transition by its label, or by its machine name when the definition no
/// longer has it.
fn named_transition(definition: &Definition, name: &str) -> String {
    definition
        .transition(name)
        .map_or_else(|| humanise(name), transition_label)
}

/// Turns a transition's label into the words after "to": `Resolve` becomes "resolve this
/// incident" and `Start work` becomes "start work". A one-word label is a bare verb, so it
/// gets the record as its object, while a longer label already reads as a phrase.
fn action_phrase(definition: &Definition, step: &TransitionDef) -> String {
    let phrase = lowercase_first(&transition_label(step));
    if phrase.split_whitespace().count() == 1 {
        format!("{phrase} this {}", process_noun(definition))
    } else {
        phrase
    }
}

fn roles_phrase(roles: &[Role]) -> String {
    let names: Vec<String> = roles.iter().map(|role| humanise(role.as_str())).collect();
    match names.as_slice() {
        // The engine reads an empty role list as "admins only".
        [] => "the Admin role".into(),
        [one] => format!("the {one} role"),
        _ => format!("one of the roles {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_phrase_lists_roles() {
        assert_eq!(roles_phrase(&[Role::Technician]), "the Technician role");
        assert_eq!(
            roles_phrase(&[Role::Requester, Role::ProcessOwner]),
            "one of the roles Requester, Process owner"
        );
        assert_eq!(roles_phrase(&[]), "the Admin role");
    }
}
