//! The alerts page of the console: the alerts that monitoring sent, newest first, with
//! the record each one opened or updated, for staff.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Viewer, format_time};
use crate::AppState;
use crate::error::ApiError;

/// Alerts listed on one page.
const PAGE_SIZE: u64 = 200;
/// Statuses the page filters by.
const STATUSES: [&str; 2] = ["firing", "resolved"];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AlertQuery {
    status: String,
}

#[derive(Debug, Serialize)]
struct AlertRow {
    id: i64,
    source: String,
    alertname: String,
    status: String,
    firing: bool,
    labels: String,
    summary: String,
    count: i64,
    episode: i64,
    first_seen: String,
    last_seen: String,
    last_seen_iso: String,
    record: Option<String>,
    record_href: Option<String>,
    effect: String,
}

#[derive(Debug, Serialize)]
struct StatusOption {
    value: &'static str,
    selected: bool,
}

#[derive(Debug, Serialize)]
struct AlertsPage {
    rows: Vec<AlertRow>,
    statuses: Vec<StatusOption>,
    filtered: bool,
}

/// Joins an alert's labels as `name=value`, sorted by name.
fn labels_text(payload: &Value) -> String {
    let Some(labels) = payload.get("labels").and_then(Value::as_object) else {
        return String::new();
    };
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| match value {
            Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect();
    pairs.sort();
    pairs.join(", ")
}

/// `GET /alerts`: the alerts last seen most recently first, optionally by status.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AlertQuery>,
) -> Response {
    if !viewer.actor().is_staff() {
        let error = ApiError::Forbidden(
            "the alerts page is for staff: log in as a technician, process owner or admin".into(),
        );
        return state.web.error(Some(&viewer), &error);
    }
    let status = STATUSES
        .iter()
        .find(|known| **known == query.status)
        .copied();
    let alerts = match state.commands.store.list_alerts(PAGE_SIZE).await {
        Ok(alerts) => alerts,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let rows = alerts
        .into_iter()
        .filter(|alert| status.is_none_or(|wanted| alert.status == wanted))
        .map(|alert| {
            let summary = alert
                .last_payload
                .pointer("/annotations/summary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            AlertRow {
                id: alert.id,
                labels: labels_text(&alert.last_payload),
                firing: alert.status == "firing",
                source: alert.source,
                alertname: alert.alertname,
                status: alert.status,
                summary,
                count: alert.count,
                episode: alert.episode,
                first_seen: format_time(alert.first_seen),
                last_seen: format_time(alert.last_seen),
                last_seen_iso: alert.last_seen.to_rfc3339(),
                record_href: alert
                    .record_number
                    .as_ref()
                    .map(|number| format!("/records/{number}")),
                record: alert.record_number,
                effect: alert.effect.unwrap_or_default(),
            }
        })
        .collect();
    let page = AlertsPage {
        rows,
        statuses: STATUSES
            .iter()
            .map(|value| StatusOption {
                value,
                selected: status == Some(*value),
            })
            .collect(),
        filtered: status.is_some(),
    };
    state
        .web
        .page(StatusCode::OK, "alerts", Some(&viewer), "Alerts", &page)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::labels_text;

    #[test]
    fn labels_sorted_by_name() {
        let payload = json!({ "labels": { "severity": "critical", "alertname": "InstanceDown", "port": 9100 } });
        assert_eq!(
            labels_text(&payload),
            "alertname=InstanceDown, port=9100, severity=critical"
        );
        assert_eq!(labels_text(&json!({})), "");
    }
}
