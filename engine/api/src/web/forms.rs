//! Form bodies (`application/x-www-form-urlencoded` and `multipart/form-data`), the
//! conversion of form text into typed field values, and the inputs that edit a field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use serde::Serialize;
use serde_json::Value;
use tend_domain::{Actor, Fields};
use tend_workflow::{Definition, FieldDef, FieldType};

use super::display::{field_label, humanise};
use super::{Viewer, Web};
use crate::AppState;

/// Longest accepted `form_token`, the idempotency key of a create form.
const MAX_FORM_TOKEN_LENGTH: usize = 200;

/// The name-value pairs of a submitted form, in the order they were sent. Line breaks are
/// normalised to `\n`, because browsers send textarea content with `\r\n`.
#[derive(Debug, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

/// A reason why a form body could not be read.
#[derive(Debug)]
pub enum FormError {
    UnsupportedType(String),
    Malformed(String),
    TooLarge,
    Duplicate(String),
    FileNotAccepted(String),
}

impl FormError {
    fn status(&self) -> StatusCode {
        match self {
            FormError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn message(&self) -> String {
        match self {
            FormError::UnsupportedType(kind) => format!(
                "The form was sent as `{kind}`; send it as application/x-www-form-urlencoded or multipart/form-data."
            ),
            FormError::Malformed(detail) => {
                format!("The form body is malformed, so nothing was saved: {detail}.")
            }
            FormError::TooLarge => format!(
                "The form is larger than {} bytes, so nothing was saved; shorten the text.",
                crate::MAX_BODY_BYTES
            ),
            FormError::Duplicate(name) => {
                format!("The form field `{name}` was sent more than once; send each field once.")
            }
            FormError::FileNotAccepted(name) => {
                format!("The form field `{name}` carries a file; this form takes text only.")
            }
        }
    }

    /// Renders the page that reports the error. Nothing was saved.
    pub fn page(&self, web: &Web, viewer: Option<&Viewer>) -> Response {
        tracing::info!(error = ?self, "rejected an unreadable form body");
        web.message(self.status(), viewer, "Form not accepted", &self.message())
    }
}

/// Handlers take `Result<FormData, FormError>` and render the page themselves; this plain
/// response only serves a handler that lets the extractor reject.
impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        (self.status(), self.message()).into_response()
    }
}

impl FormData {
    /// Returns the value of control `name`, when it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn push(&mut self, name: String, value: String) -> Result<(), FormError> {
        if self.get(&name).is_some() {
            return Err(FormError::Duplicate(name));
        }
        self.pairs.push((name, value.replace("\r\n", "\n")));
        Ok(())
    }

    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Result<FormData, FormError> {
        let mut form = FormData::default();
        for (name, value) in pairs {
            form.push(name, value)?;
        }
        Ok(form)
    }
}

impl FromRequest<AppState> for FormData {
    type Rejection = FormError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, FormError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-www-form-urlencoded" => {
                let body = Bytes::from_request(request, state)
                    .await
                    .map_err(|rejection| match rejection.status() {
                        StatusCode::PAYLOAD_TOO_LARGE => FormError::TooLarge,
                        _ => FormError::Malformed(rejection.body_text()),
                    })?;
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                    .map_err(|error| FormError::Malformed(error.to_string()))?;
                FormData::from_pairs(pairs)
            }
            "multipart/form-data" => read_multipart(request, state).await,
            "" => Err(FormError::UnsupportedType("no Content-Type".into())),
            _ => Err(FormError::UnsupportedType(essence)),
        }
    }
}

async fn read_multipart(request: Request, state: &AppState) -> Result<FormData, FormError> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| FormError::Malformed(rejection.body_text()))?;
    let mut form = FormData::default();
    // A cut or garbled body is the client's fault whatever the parser calls it, so every
    // parse failure but an oversized body is a 400.
    let failed = |error: axum::extract::multipart::MultipartError| match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => FormError::TooLarge,
        _ => FormError::Malformed(error.body_text()),
    };
    while let Some(field) = multipart.next_field().await.map_err(failed)? {
        let Some(name) = field.name().map(str::to_owned) else {
            return Err(FormError::Malformed(
                "a part has no name in its Content-Disposition header".into(),
            ));
        };
        if field.file_name().is_some() {
            return Err(FormError::FileNotAccepted(name));
        }
        let value = field.text().await.map_err(failed)?;
        form.push(name, value)?;
    }
    Ok(form)
}

/// Generates a fresh random token for one render of a create form.
pub fn new_form_token() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Returns the `form_token` of a submitted form when it is usable as an idempotency key.
pub fn form_token(form: &FormData) -> Option<String> {
    form.get("form_token")
        .map(str::trim)
        .filter(|token| {
            !token.is_empty()
                && token.len() <= MAX_FORM_TOKEN_LENGTH
                && token.chars().all(|c| c.is_ascii_graphic())
        })
        .map(str::to_owned)
}

/// Turns the text of a form control into the JSON value of its field. Text that does not
/// parse stays text, so that the engine's check names the field and the value.
pub fn field_value(field: &FieldDef, text: &str) -> Value {
    let trimmed = text.trim();
    match field.kind {
        FieldType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        FieldType::Number => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_owned())),
        FieldType::Boolean => match trimmed {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        FieldType::Text => Value::String(text.to_owned()),
        _ => Value::String(trimmed.to_owned()),
    }
}

/// Collects the fields of a form: every control that is not in `controls`. Empty controls
/// are left out, so the definition's default or the current value stays. Names that the
/// definition does not declare are kept as text, so that the engine rejects them by name.
pub fn fields_from_form(definition: &Definition, form: &FormData, controls: &[&str]) -> Fields {
    let mut fields = Fields::new();
    for (name, text) in form.pairs() {
        if controls.contains(&name) || text.trim().is_empty() {
            continue;
        }
        let value = match definition.fields.get(name) {
            Some(field) => field_value(field, text),
            None => Value::String(text.to_owned()),
        };
        fields.insert(name.to_owned(), value);
    }
    fields
}

/// Formats a stored value as the text of a form control.
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Checks whether `actor` may set `field` on a record in `state`: the field is not set by
/// rules only, not locked in that state, and open to one of the actor's roles.
pub fn settable_in(field: &FieldDef, actor: &Actor, state: &str) -> bool {
    field.settable_by(actor) && !field.read_only_in.iter().any(|locked| locked == state)
}

/// One control that edits a field, as `templates/field.hbs` renders it.
#[derive(Debug, Clone, Serialize)]
pub struct FieldInput {
    /// Form control name: the field's name.
    pub name: String,
    /// Element id, unique on the page.
    pub id: String,
    pub label: String,
    /// `select`, `textarea` or `input`.
    pub control: &'static str,
    /// The `type` attribute of an `input`.
    pub input_type: &'static str,
    pub step: Option<&'static str>,
    pub max_length: Option<usize>,
    pub value: String,
    pub options: Vec<SelectOption>,
    pub required: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Builds the control for field `name` showing `value`. `id_prefix` keeps ids unique when
/// one page has several forms.
pub fn field_input(
    name: &str,
    field: &FieldDef,
    value: &str,
    id_prefix: &str,
    required: bool,
) -> FieldInput {
    let (control, input_type, step) = match field.kind {
        FieldType::Enum => ("select", "", None),
        FieldType::Text => ("textarea", "", None),
        // A select rather than a checkbox, so that "not set" stays apart from "no" and an
        // absent control never reads as false.
        FieldType::Boolean => ("select", "", None),
        FieldType::Integer => ("input", "number", Some("1")),
        FieldType::Number => ("input", "number", Some("any")),
        FieldType::Date => ("input", "date", None),
        _ => ("input", "text", None),
    };
    let allowed: Vec<(String, String)> = match field.kind {
        FieldType::Enum => field
            .values
            .iter()
            .map(|v| (v.clone(), humanise(v)))
            .collect(),
        FieldType::Boolean => vec![("true".into(), "Yes".into()), ("false".into(), "No".into())],
        _ => Vec::new(),
    };
    let options = if control == "select" {
        let mut options = vec![SelectOption {
            value: String::new(),
            label: "(none)".into(),
            selected: value.is_empty(),
        }];
        options.extend(allowed.iter().map(|(option, label)| SelectOption {
            value: option.clone(),
            label: label.clone(),
            selected: option == value,
        }));
        // A value that is no longer allowed stays visible, so that saving the form
        // unchanged keeps it rather than silently clearing it.
        if !value.is_empty() && !allowed.iter().any(|(option, _)| option == value) {
            let label = match field.kind {
                FieldType::Enum => humanise(value),
                _ => value.to_owned(),
            };
            options.push(SelectOption {
                value: value.to_owned(),
                label,
                selected: true,
            });
        }
        options
    } else {
        Vec::new()
    };
    FieldInput {
        name: name.to_owned(),
        id: format!("{id_prefix}-{name}"),
        label: field_label(name, field),
        control,
        input_type,
        step,
        max_length: field.max_length,
        value: value.to_owned(),
        options,
        required,
        error: None,
    }
}

impl FieldInput {
    /// Removes the empty "(none)" choice of a select, for a field that always has a value.
    /// Does nothing when no other choice is selected, because the browser would then
    /// submit the first choice without the person having picked it.
    pub fn drop_empty_option(&mut self) {
        if self
            .options
            .iter()
            .any(|o| o.selected && !o.value.is_empty())
        {
            self.options.retain(|option| !option.value.is_empty());
        }
    }
}

/// Attaches `message` to the input of `field`. Returns false when the form has no such
/// input, so that the caller shows the message elsewhere.
pub fn attach_error(inputs: &mut [FieldInput], field: Option<&str>, message: &str) -> bool {
    let Some(field) = field else {
        return false;
    };
    match inputs.iter_mut().find(|input| input.name == field) {
        Some(input) => {
            input.error = Some(message.to_owned());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldType) -> FieldDef {
        FieldDef {
            kind,
            label: None,
            values: vec!["low".into(), "high".into()],
            default: None,
            required: false,
            required_in: Vec::new(),
            read_only: false,
            read_only_in: Vec::new(),
            max_length: None,
            set_by: Vec::new(),
        }
    }

    #[test]
    fn field_value_parses_by_type() {
        assert_eq!(
            field_value(&field(FieldType::Integer), " 42 "),
            Value::from(42)
        );
        assert_eq!(
            field_value(&field(FieldType::Integer), "4x"),
            Value::from("4x")
        );
        assert_eq!(
            field_value(&field(FieldType::Number), "1.5"),
            Value::from(1.5)
        );
        assert_eq!(
            field_value(&field(FieldType::Boolean), "true"),
            Value::Bool(true)
        );
        assert_eq!(
            field_value(&field(FieldType::Boolean), "yes"),
            Value::from("yes")
        );
        assert_eq!(
            field_value(&field(FieldType::String), " a "),
            Value::from("a")
        );
        assert_eq!(
            field_value(&field(FieldType::Text), " a\n"),
            Value::from(" a\n")
        );
    }

    #[test]
    fn duplicate_controls_are_rejected() {
        let pairs = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(matches!(
            FormData::from_pairs(pairs),
            Err(FormError::Duplicate(name)) if name == "a"
        ));
    }

    #[test]
    fn enum_input_keeps_an_unknown_current_value() {
        let input = field_input("impact", &field(FieldType::Enum), "retired", "new", false);
        let selected: Vec<&str> = input
            .options
            .iter()
            .filter(|option| option.selected)
            .map(|option| option.value.as_str())
            .collect();
        assert_eq!(selected, ["retired"]);
    }

    #[test]
    fn enum_options_show_humanised_labels() {
        let mut contact = field(FieldType::Enum);
        contact.values = vec!["self_service".into(), "walk_in".into()];
        let input = field_input("contact_type", &contact, "walk_in", "new", false);
        let options: Vec<(&str, &str, bool)> = input
            .options
            .iter()
            .map(|o| (o.value.as_str(), o.label.as_str(), o.selected))
            .collect();
        assert_eq!(
            options,
            [
                ("", "(none)", false),
                ("self_service", "Self service", false),
                ("walk_in", "Walk in", true),
            ]
        );
    }

    #[test]
    fn empty_option_stays_while_nothing_is_selected() {
        let mut input = field_input("impact", &field(FieldType::Enum), "", "new", false);
        input.drop_empty_option();
        assert_eq!(input.options.len(), 3, "(none), low and high");

        let mut input = field_input("impact", &field(FieldType::Enum), "high", "new", false);
        input.drop_empty_option();
        let values: Vec<&str> = input.options.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(values, ["low", "high"]);
    }

    #[test]
    fn form_token_must_be_visible_ascii() {
        let mut form = FormData::default();
        form.push("form_token".into(), "abc DEF".into()).unwrap();
        assert_eq!(form_token(&form), None);
        let mut form = FormData::default();
        form.push("form_token".into(), "abcDEF123".into()).unwrap();
        assert_eq!(form_token(&form).as_deref(), Some("abcDEF123"));
    }
}
