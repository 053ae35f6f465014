//! The one place where failures become HTTP responses. API clients get
//! `{"error": {"code", "message", "field"}}`; the full cause of a server error is logged,
//! and the client gets a short reason.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tend_workflow::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("{what} `{key}` was not found")]
    NotFound { what: &'static str, key: String },
    #[error("authentication required: send `Authorization: Bearer TOKEN` or log in")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("record {0} was changed by someone else at the same time; reload it and try again")]
    Conflict(String),
    /// The request was based on a version of the resource that is no longer current, such
    /// as a CI update carrying an old `version`.
    #[error("{0}")]
    Stale(String),
    /// The request would add something that exists already, such as a second identical link.
    #[error("{0}")]
    Duplicate(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Rejected(rejection) => match rejection {
                Rejection::UnknownProcess { .. } => StatusCode::NOT_FOUND,
                Rejection::UnknownTransition { .. } => StatusCode::NOT_FOUND,
                Rejection::TransitionNotAllowed { .. } | Rejection::ScheduleConflict { .. } => {
                    StatusCode::CONFLICT
                }
                Rejection::Forbidden { .. } | Rejection::FieldForbidden { .. } => {
                    StatusCode::FORBIDDEN
                }
                Rejection::UnknownField { .. }
                | Rejection::InvalidValue { .. }
                | Rejection::ReadOnlyField { .. }
                | Rejection::InvalidInput { .. } => StatusCode::BAD_REQUEST,
                Rejection::FieldLockedInState { .. } => StatusCode::BAD_REQUEST,
                Rejection::RequiredFieldMissing { .. }
                | Rejection::CommentRequired { .. }
                | Rejection::GuardFailed { .. }
                | Rejection::ApprovalUnavailable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) | ApiError::Stale(_) | ApiError::Duplicate(_) => {
                StatusCode::CONFLICT
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Rejected(rejection) => rejection.code(),
            ApiError::NotFound { .. } => "not_found",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Conflict(_) | ApiError::Stale(_) => "conflict",
            ApiError::Duplicate(_) => "duplicate",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Rejected(rejection) => rejection.field(),
            ApiError::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// Returns the message shown to the client. Server errors stay generic.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "the server failed to handle the request; the cause is in the server log".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<tend_store::Error> for ApiError {
    fn from(error: tend_store::Error) -> Self {
        match error {
            tend_store::Error::NotFound { what, key } => ApiError::NotFound { what, key },
            tend_store::Error::Conflict { number, .. } => ApiError::Conflict(number),
            tend_store::Error::Rejected(inner) => match inner.downcast::<ApiError>() {
                Ok(api) => *api,
                Err(other) => match other.downcast::<Rejection>() {
                    Ok(rejection) => ApiError::Rejected(*rejection),
                    Err(other) => ApiError::Internal(other.to_string()),
                },
            },
            tend_store::Error::Duplicate { what, key } => {
                ApiError::bad_request("duplicate", format!("{what} `{key}` already exists"), None)
            }
            tend_store::Error::Invalid(message) => {
                ApiError::bad_request("invalid_input", message, None)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
                "field": self.field(),
            }
        });
        (status, Json(body)).into_response()
    }
}
