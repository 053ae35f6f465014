use tend_domain::Role;

/// The reason the engine rejected a command. Nothing is written for a rejected command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("unknown process `{process}`: use one of {known}")]
    UnknownProcess { process: String, known: String },
    #[error("unknown field `{field}`: the {process} process declares {known}")]
    UnknownField {
        process: String,
        field: String,
        known: String,
    },
    #[error("invalid value for `{field}`: {message}")]
    InvalidValue { field: String, message: String },
    #[error("field `{field}` is set by rules and cannot be changed by hand")]
    ReadOnlyField { field: String },
    #[error("field `{field}` is required{context}")]
    RequiredFieldMissing { field: String, context: String },
    #[error("unknown transition `{name}`: the {process} process has {known}")]
    UnknownTransition {
        process: String,
        name: String,
        known: String,
    },
    #[error("transition `{name}` is not allowed from state `{state}`; allowed from {allowed}")]
    TransitionNotAllowed {
        name: String,
        state: String,
        allowed: String,
    },
    #[error("{what} needs the role {}", roles_text(.roles))]
    Forbidden { what: String, roles: Vec<Role> },
    #[error("setting field `{field}` needs the role {}", roles_text(.roles))]
    FieldForbidden { field: String, roles: Vec<Role> },
    #[error("{message}")]
    GuardFailed { transition: String, message: String },
    #[error("field `{field}` cannot be changed in state `{state}`")]
    FieldLockedInState { field: String, state: String },
    #[error("transition `{name}` needs a comment that says why")]
    CommentRequired { name: String },
    #[error("invalid {field}: {message}")]
    InvalidInput { field: String, message: String },
    #[error("transition `{transition}` needs approval, and {message}")]
    ApprovalUnavailable { transition: String, message: String },
    #[error("transition `{transition}` is refused because {}", .conflicts.join("; "))]
    ScheduleConflict {
        transition: String,
        conflicts: Vec<String>,
    },
}

fn roles_text(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [] => "admin".to_owned(),
        [one] => one.to_string(),
        _ => format!("one of {}", names.join(", ")),
    }
}

impl Rejection {
    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownProcess { .. } => "unknown_process",
            Rejection::UnknownField { .. } => "unknown_field",
            Rejection::InvalidValue { .. } => "invalid_value",
            Rejection::ReadOnlyField { .. } => "read_only_field",
            Rejection::RequiredFieldMissing { .. } => "required_field_missing",
            Rejection::UnknownTransition { .. } => "unknown_transition",
            Rejection::TransitionNotAllowed { .. } => "transition_not_allowed",
            Rejection::Forbidden { .. } | Rejection::FieldForbidden { .. } => "forbidden",
            Rejection::CommentRequired { .. } => "comment_required",
            Rejection::GuardFailed { .. } => "guard_failed",
            Rejection::FieldLockedInState { .. } => "read_only_field",
            Rejection::InvalidInput { .. } => "invalid_input",
            Rejection::ApprovalUnavailable { .. } => "approval_unavailable",
            Rejection::ScheduleConflict { .. } => "schedule_conflict",
        }
    }

    /// Returns the field the rejection is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Rejection::UnknownField { field, .. }
            | Rejection::InvalidValue { field, .. }
            | Rejection::ReadOnlyField { field }
            | Rejection::RequiredFieldMissing { field, .. }
            | Rejection::InvalidInput { field, .. }
            | Rejection::FieldForbidden { field, .. }
            | Rejection::FieldLockedInState { field, .. } => Some(field),
            Rejection::CommentRequired { .. } => Some("comment"),
            _ => None,
        }
    }
}
