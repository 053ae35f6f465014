//! The self-service catalog: requesters browse the items they may order and order one with
//! its form. The order goes through the same path as `POST /api/v1/catalog/{item}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tend_domain::Fields;
use tend_workflow::catalog::CatalogItem;

use super::forms::{FieldInput, FormData, FormError, attach_error, field_input, field_value};
use super::session::Viewer;
use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Serialize)]
struct ItemCard {
    href: String,
    title: String,
    description: String,
    category: Option<String>,
    needs_approval: bool,
}

#[derive(Debug, Serialize)]
struct OrderPage {
    title: String,
    description: String,
    action: String,
    needs_approval: bool,
    fields: Vec<FieldInput>,
    error: Option<String>,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Response {
    let items: Vec<ItemCard> = state
        .commands
        .catalog(viewer.actor())
        .into_iter()
        .map(|item| ItemCard {
            href: format!("/catalog/{}", item.name),
            title: item.title,
            description: item.description,
            category: item.category,
            needs_approval: item.needs_approval,
        })
        .collect();
    state.web.page(
        StatusCode::OK,
        "catalog",
        Some(&viewer),
        "Service catalog",
        &serde_json::json!({ "items": items }),
    )
}

/// Finds an item the viewer may order.
fn orderable(state: &AppState, viewer: &Viewer, name: &str) -> Result<CatalogItem, ApiError> {
    let set = state.commands.engine.definitions();
    let offered = state
        .commands
        .catalog(viewer.actor())
        .iter()
        .any(|item| item.name == name);
    match set.catalog.get(name) {
        Some(item) if offered => Ok(item.clone()),
        _ => Err(ApiError::NotFound {
            what: "catalog item",
            key: name.to_owned(),
        }),
    }
}

fn order_page(name: &str, item: &CatalogItem, form: Option<&FormData>) -> OrderPage {
    OrderPage {
        title: item.title.clone(),
        description: item.description.clone(),
        action: format!("/catalog/{name}"),
        needs_approval: !item.approvers.is_empty(),
        fields: item
            .form
            .iter()
            .map(|(question, field)| {
                let value = form
                    .and_then(|form| form.get(question))
                    .map(str::to_owned)
                    .or_else(|| {
                        field
                            .default
                            .as_ref()
                            .map(|v| super::forms::value_text(Some(v)))
                    })
                    .unwrap_or_default();
                let mut input = field_input(question, field, &value, "order", field.required);
                // A required choice offers no "(none)", which the order would reject.
                if field.required {
                    input.drop_empty_option();
                }
                input
            })
            .collect(),
        error: None,
    }
}

pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    match orderable(&state, &viewer, &name) {
        Ok(item) => {
            let page = order_page(&name, &item, None);
            let title = format!("Order: {}", item.title);
            state
                .web
                .page(StatusCode::OK, "order", Some(&viewer), &title, &page)
        }
        Err(error) => state.web.error(Some(&viewer), &error),
    }
}

pub async fn order(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    let item = match orderable(&state, &viewer, &name) {
        Ok(item) => item,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let mut answers = Fields::new();
    for (question, field) in &item.form {
        if let Some(text) = form.get(question).filter(|t| !t.trim().is_empty()) {
            answers.insert(question.clone(), field_value(field, text));
        }
    }
    match state
        .commands
        .order(viewer.actor(), &name, None, &answers)
        .await
    {
        Ok(record) => Redirect::to(&format!("/records/{}", record.number)).into_response(),
        Err(error) if error.status().is_server_error() => state.web.error(Some(&viewer), &error),
        Err(error) => {
            let mut page = order_page(&name, &item, Some(&form));
            let message = error.public_message();
            let question = error.field().and_then(|f| f.strip_prefix("answers."));
            attach_error(&mut page.fields, question, &message);
            page.error = Some(message);
            let title = format!("Order: {}", item.title);
            state
                .web
                .page(error.status(), "order", Some(&viewer), &title, &page)
        }
    }
}
