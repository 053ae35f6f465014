//! The record list: filters as a GET form, pages through the store's cursor.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tend_store::RecordFilter;

use super::forms::SelectOption;
use super::{Viewer, format_time};
use crate::AppState;
use crate::error::ApiError;

/// Records per page.
const PAGE_SIZE: u32 = 50;

/// The filters of the list, as the GET form sends them; empty controls mean "any".
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ListQuery {
    process: String,
    state: String,
    assignment_group: String,
    assignee: String,
    priority: String,
    requester: String,
    q: String,
    open: String,
    cursor: String,
}

#[derive(Debug, Serialize)]
struct Row {
    number: String,
    link: String,
    title: String,
    state: String,
    priority: String,
    assignment_group: String,
    assignee: String,
    updated: String,
    updated_iso: String,
}

#[derive(Debug, Serialize)]
struct ListPage {
    filters: ListQuery,
    staff: bool,
    processes: Vec<SelectOption>,
    open_options: Vec<SelectOption>,
    rows: Vec<Row>,
    next_link: Option<String>,
    first_link: Option<String>,
    new_links: Vec<NewLink>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct NewLink {
    href: String,
    label: String,
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn parse_open(text: &str) -> Result<Option<bool>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        other => Err(ApiError::bad_request(
            "invalid_query",
            format!("invalid value `{other}` for open: use true, false or leave it empty"),
            Some("open"),
        )),
    }
}

/// Builds the list URL for `filters` at `cursor`, leaving out empty filters.
fn list_link(filters: &ListQuery, cursor: Option<&str>) -> String {
    let pairs = [
        ("process", filters.process.as_str()),
        ("state", &filters.state),
        ("assignment_group", &filters.assignment_group),
        ("assignee", &filters.assignee),
        ("priority", &filters.priority),
        ("requester", &filters.requester),
        ("q", &filters.q),
        ("open", &filters.open),
        ("cursor", cursor.unwrap_or("")),
    ];
    let present: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let query = serde_urlencoded::to_string(present).unwrap_or_default();
    if query.is_empty() {
        "/records".into()
    } else {
        format!("/records?{query}")
    }
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let filters = match query {
        Ok(Query(filters)) => filters,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text(), None);
            return state.web.error(Some(&viewer), &error);
        }
    };
    let actor = viewer.actor();
    let definitions = state.commands.engine.definitions();

    let mut page = ListPage {
        staff: actor.is_staff(),
        processes: definitions
            .definitions
            .values()
            .map(|definition| SelectOption {
                value: definition.process.clone(),
                label: definition.title.clone(),
                selected: definition.process == filters.process,
            })
            .collect(),
        open_options: [("", "Any"), ("true", "Open"), ("false", "Not open")]
            .into_iter()
            .map(|(value, label)| SelectOption {
                value: value.into(),
                label: label.into(),
                selected: filters.open == value,
            })
            .collect(),
        rows: Vec::new(),
        next_link: None,
        first_link: optional(&filters.cursor).map(|_| list_link(&filters, None)),
        new_links: definitions
            .definitions
            .values()
            .filter(|definition| actor.may(&definition.permissions.create))
            .map(|definition| NewLink {
                href: format!("/records/new?process={}", definition.process),
                label: format!("New {}", definition.title.to_lowercase()),
            })
            .collect(),
        error: None,
        filters: filters.clone(),
    };

    let open = match parse_open(&filters.open) {
        Ok(open) => open,
        Err(error) => return render(&state, &viewer, page, Some(error)),
    };
    if let Some(process) = optional(&filters.process)
        && let Err(error) = state.commands.engine.definition(&process)
    {
        return render(&state, &viewer, page, Some(error));
    }
    // Requesters list only their own records, whatever the filter form sends.
    let requester = if actor.is_staff() {
        optional(&filters.requester)
    } else {
        Some(actor.name.clone())
    };
    let filter = RecordFilter {
        process: optional(&filters.process),
        state: optional(&filters.state),
        assignee: optional(&filters.assignee),
        assignment_group: optional(&filters.assignment_group),
        requester,
        priority: optional(&filters.priority),
        open,
        q: optional(&filters.q),
        limit: PAGE_SIZE,
        cursor: optional(&filters.cursor),
    };
    let records = match state.commands.store.list_records(&filter).await {
        Ok(records) => records,
        // The store rejects a garbled cursor this way; the person can start over.
        Err(tend_store::Error::Invalid(message)) => {
            let error = ApiError::bad_request("invalid_query", message, Some("cursor"));
            return render(&state, &viewer, page, Some(error));
        }
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };

    page.rows = records
        .records
        .iter()
        .map(|record| {
            let state_label = definitions
                .get(&record.process)
                .map_or(record.state.as_str(), |d| d.state_label(&record.state));
            Row {
                number: record.number.clone(),
                link: format!("/records/{}", record.number),
                title: record.title.clone(),
                state: state_label.to_owned(),
                priority: record.field_str("priority").unwrap_or("").to_owned(),
                assignment_group: record
                    .field_str("assignment_group")
                    .unwrap_or("")
                    .to_owned(),
                assignee: record.field_str("assignee").unwrap_or("").to_owned(),
                updated: format_time(record.updated_at),
                updated_iso: record.updated_at.to_rfc3339(),
            }
        })
        .collect();
    page.next_link = records
        .next_cursor
        .as_deref()
        .map(|cursor| list_link(&filters, Some(cursor)));
    render(&state, &viewer, page, None)
}

fn render(
    state: &AppState,
    viewer: &Viewer,
    mut page: ListPage,
    error: Option<ApiError>,
) -> Response {
    let status = match &error {
        Some(error) => {
            page.error = Some(error.public_message());
            error.status()
        }
        None => StatusCode::OK,
    };
    state
        .web
        .page(status, "records", Some(viewer), "Records", &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_link_keeps_set_filters_only() {
        let filters = ListQuery {
            q: "vpn & mail".into(),
            open: "true".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            list_link(&filters, Some("abc")),
            "/records?q=vpn+%26+mail&open=true&cursor=abc"
        );
        assert_eq!(list_link(&ListQuery::default(), None), "/records");
    }
}
