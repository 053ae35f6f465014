//! The viewer's approval queue: the requests waiting for their decision.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::format_time;
use super::session::Viewer;
use crate::AppState;

#[derive(Debug, Serialize)]
struct QueueRow {
    href: String,
    number: String,
    title: String,
    transition: String,
    approver: String,
    due: Option<String>,
}

pub async fn queue(State(state): State<AppState>, viewer: Viewer) -> Response {
    let pending = match state
        .commands
        .store
        .pending_approvals(&viewer.actor().name)
        .await
    {
        Ok(pending) => pending,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let definitions = state.commands.engine.definitions();
    let rows: Vec<QueueRow> = pending
        .into_iter()
        .map(|item| {
            let transition = definitions
                .get(&item.process)
                .and_then(|d| d.transition(&item.transition))
                .map_or_else(
                    || super::display::humanise(&item.transition),
                    super::display::transition_label,
                );
            QueueRow {
                href: format!("/records/{}#approvals-heading", item.number),
                number: item.number,
                title: item.title,
                transition,
                approver: item.request.approver,
                due: item.due_at.map(format_time),
            }
        })
        .collect();
    state.web.page(
        StatusCode::OK,
        "approvals",
        Some(&viewer),
        "My approvals",
        &serde_json::json!({ "rows": rows }),
    )
}
