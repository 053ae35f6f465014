//! Service level reports: compliance per policy, target, priority, group and month, and
//! the records breaching soon. Both read the `sla_clocks` index, never the open records.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tend_store::clocks::{DueClock, ReportGroup, ReportRow};
use tend_workflow::model::Span;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Most records the breaching-soon list returns.
pub const BREACHING_LIMIT: u64 = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachingQuery {
    /// How far ahead to look, e.g. `1h` (the default) or `30m`.
    pub within: Option<String>,
}

/// The report's period and groups, checked.
pub struct ReportRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: Vec<ReportGroup>,
}

impl ReportRequest {
    /// Reads `from` and `to` (RFC 3339 instants or `YYYY-MM-DD` dates, UTC; by default
    /// the current month) and `group_by` (a comma-separated list; `policy` by default).
    pub fn parse(query: &SlaQuery, now: DateTime<Utc>) -> Result<ReportRequest, ApiError> {
        let month_start = NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())
            .unwrap_or(now);
        let from = match &query.from {
            Some(text) => instant(text, "from")?,
            None => month_start,
        };
        let to = match &query.to {
            Some(text) => instant(text, "to")?,
            None => now + TimeDelta::seconds(1),
        };
        if to <= from {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`to` ({to}) is not after `from` ({from}): give a later `to`"),
                Some("to"),
            ));
        }
        let mut group_by = Vec::new();
        for name in query
            .group_by
            .as_deref()
            .unwrap_or("policy")
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let group = ReportGroup::parse(name).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "cannot group by `{name}`: use one or more of {}, separated by commas",
                        ReportGroup::NAMES
                    ),
                    Some("group_by"),
                )
            })?;
            if !group_by.contains(&group) {
                group_by.push(group);
            }
        }
        Ok(ReportRequest { from, to, group_by })
    }
}

fn instant(text: &str, name: &'static str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    Err(ApiError::bad_request(
        "invalid_query",
        format!(
            "`{name}` is `{text}`: give an RFC 3339 instant such as 2026-12-01T00:00:00Z or a date such as 2026-12-01"
        ),
        Some(name),
    ))
}

/// Parses the breaching-soon window; at most a week.
pub fn window(within: Option<&str>) -> Result<TimeDelta, ApiError> {
    let span = Span::parse(within.unwrap_or("1h"))
        .map_err(|message| ApiError::bad_request("invalid_query", message, Some("within")))?;
    if span.minutes > 7 * 24 * 60 {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "`within` is {} minutes: look at most a week (7d) ahead",
                span.minutes
            ),
            Some("within"),
        ));
    }
    Ok(TimeDelta::minutes(span.minutes))
}

fn staff_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.actor.is_staff() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "SLA reports are for technicians, process owners and administrators".into(),
        ))
    }
}

/// `GET /api/v1/reports/sla?from=&to=&group_by=`
pub async fn sla(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SlaQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    staff_only(&caller)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    let now = Utc::now();
    let request = ReportRequest::parse(&query, now)?;
    let rows = state
        .commands
        .store
        .sla_report(request.from, request.to, &request.group_by, now)
        .await?;
    Ok(Json(report_json(&request, &rows)))
}

pub fn report_json(request: &ReportRequest, rows: &[ReportRow]) -> Value {
    let (met, breached): (i64, i64) = rows
        .iter()
        .fold((0, 0), |(m, b), row| (m + row.met, b + row.breached));
    json!({
        "from": request.from,
        "to": request.to,
        "group_by": request.group_by.iter().map(|g| format!("{g:?}").to_lowercase()).collect::<Vec<_>>(),
        "rows": rows,
        "total": {
            "met": met,
            "breached": breached,
            "in_progress": rows.iter().map(|row| row.in_progress).sum::<i64>(),
            "compliance": (met + breached > 0).then(|| met as f64 * 100.0 / (met + breached) as f64),
        },
    })
}

/// `GET /api/v1/reports/sla/breaching?within=1h`: running clocks due within the window,
/// soonest first.
pub async fn breaching(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<BreachingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    staff_only(&caller)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text(), None))?;
    let within = window(query.within.as_deref())?;
    let now = Utc::now();
    let clocks: Vec<DueClock> = state
        .commands
        .store
        .clocks_due_between(now, now + within, BREACHING_LIMIT)
        .await?;
    Ok(Json(json!({
        "now": now,
        "until": now + within,
        "records": clocks,
    })))
}
