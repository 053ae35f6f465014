//! Service levels in the console: the clocks section of the record page, and the staff
//! page `/reports/sla` with the compliance report and the records breaching soon. Both
//! show what the REST API returns (`clocks` of a record, `/api/v1/reports/sla` and
//! `/api/v1/reports/sla/breaching`), worded with the labels of the SLA policies.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use tend_store::clocks::{DueClock, ReportGroup, ReportRow};
use tend_workflow::DefinitionSet;
use tend_workflow::sla::SlaPolicy;

use super::display::humanise;
use super::{Viewer, format_time};
use crate::AppState;
use crate::clocks::ClockView;
use crate::error::ApiError;
use crate::reports::{BREACHING_LIMIT, ReportRequest, SlaQuery, window};

/// The window of the breaching list when the form leaves it empty.
const DEFAULT_WITHIN: &str = "1h";

/// The groups the report form offers, in the order of the form.
const GROUPS: [(&str, &str); 5] = [
    ("policy", "Policy"),
    ("target", "Target"),
    ("priority", "Priority"),
    ("group", "Assignment group"),
    ("month", "Month started"),
];

/// One clock in the "Service levels" section of the record page.
#[derive(Debug, Serialize)]
pub(super) struct ClockSection {
    /// The policy's label, or its name when it has none.
    policy: String,
    /// The kind of agreement: SLA, OLA or underpinning contract.
    kind: String,
    target: String,
    state: String,
    breached: bool,
    due: Option<String>,
    due_iso: Option<String>,
    stopped: Option<String>,
    /// "Outcome" for a stopped clock, "Time left" for one that still counts.
    left_label: &'static str,
    /// Working time left, or by how much the target was missed.
    left: String,
    /// Working time used out of the target, e.g. "1 h 10 min of 4 h".
    elapsed: String,
    thresholds_reached: Option<String>,
    next_threshold: Option<String>,
    /// Explanation of the due time: the start, the calendar and the periods not counted.
    computed: String,
}

/// Words the clocks of a record for its page, with the labels of the policies of `set`,
/// the set the record is pinned to.
pub(super) fn clock_sections(set: &DefinitionSet, clocks: &[ClockView]) -> Vec<ClockSection> {
    clocks
        .iter()
        .map(|clock| clock_section(set, clock))
        .collect()
}

fn clock_section(set: &DefinitionSet, clock: &ClockView) -> ClockSection {
    let policy = set.sla_policies.get(&clock.policy);
    let left = if clock.left_seconds < 0 {
        format!("Breached by {}", duration_text(-clock.left_seconds))
    } else if clock.breached {
        "Breached".to_owned()
    } else if clock.state == "stopped" {
        format!("Met with {} to spare", duration_text(clock.left_seconds))
    } else {
        duration_text(clock.left_seconds)
    };
    let thresholds_reached = (!clock.thresholds_reached.is_empty()).then(|| {
        let percents: Vec<String> = clock
            .thresholds_reached
            .iter()
            .map(|percent| format!("{percent} %"))
            .collect();
        percents.join(", ")
    });
    ClockSection {
        policy: policy_label(policy, &clock.policy),
        kind: kind_label(clock.kind),
        target: target_label(policy, &clock.target_name),
        state: humanise(clock.state),
        breached: clock.breached || clock.left_seconds < 0,
        left_label: if clock.state == "stopped" {
            "Outcome"
        } else {
            "Time left"
        },
        due: clock.due.map(format_time),
        due_iso: clock.due.map(|due| due.to_rfc3339()),
        stopped: clock.stopped_at.map(format_time),
        left,
        elapsed: format!(
            "{} of {}",
            duration_text(clock.elapsed_seconds),
            duration_text(clock.target_seconds)
        ),
        thresholds_reached,
        next_threshold: clock
            .next_threshold
            .as_ref()
            .map(|next| format!("{} % at {}", next.percent, format_time(next.at))),
        computed: computation(set, clock),
    }
}

/// Explains the due time: the start plus the target in working time of the calendar,
/// skipping the periods in which the clock was paused or stopped.
fn computation(set: &DefinitionSet, clock: &ClockView) -> String {
    let calendar = match set.calendars.get(&clock.calendar) {
        Some(calendar) => format!("calendar {} ({})", clock.calendar, calendar.timezone),
        None => format!("calendar {}", clock.calendar),
    };
    let mut text = format!(
        "Started {}; the target of {} counts working time of {calendar}",
        format_time(clock.started_at),
        duration_text(clock.target_seconds),
    );
    // The last period of a clock that does not run is the current pause or stop, which
    // ends at the reading's instant. A stop is shown on its own line, a pause here.
    let (closed, current) = match clock.paused.split_last() {
        Some((last, earlier)) if clock.state != "running" => (earlier, Some(last)),
        _ => (clock.paused.as_slice(), None),
    };
    let periods: Vec<String> = closed
        .iter()
        .map(|period| match period.to {
            Some(to) => format!("{} to {}", format_time(period.from), format_time(to)),
            None => format!("since {}", format_time(period.from)),
        })
        .collect();
    if !periods.is_empty() {
        text.push_str(&format!("; not counted: {}", periods.join(", ")));
    }
    if let Some(period) = current
        && clock.state == "paused"
    {
        text.push_str(&format!("; paused since {}", format_time(period.from)));
    }
    text.push('.');
    text
}

fn policy_label(policy: Option<&SlaPolicy>, name: &str) -> String {
    policy
        .and_then(|policy| policy.label.clone())
        .unwrap_or_else(|| humanise(name))
}

fn target_label(policy: Option<&SlaPolicy>, name: &str) -> String {
    policy
        .and_then(|policy| policy.targets.get(name))
        .and_then(|target| target.label.clone())
        .unwrap_or_else(|| humanise(name))
}

fn kind_label(kind: &str) -> String {
    match kind {
        "sla" => "SLA".to_owned(),
        "ola" => "OLA".to_owned(),
        other => humanise(other),
    }
}

/// Writes a duration in seconds as hours and minutes, such as "26 h 5 min". It has no
/// days, because a day of working time under a business-hours calendar is not 24 hours.
fn duration_text(seconds: i64) -> String {
    let seconds = seconds.abs();
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let minutes = seconds / 60;
    match (minutes / 60, minutes % 60) {
        (0, minutes) => format!("{minutes} min"),
        (hours, 0) => format!("{hours} h"),
        (hours, minutes) => format!("{hours} h {minutes} min"),
    }
}

/// The report form as sent, kept so that the page shows it again.
#[derive(Debug, Default, Serialize)]
struct ReportForm {
    from: String,
    to: String,
    within: String,
    groups: Vec<GroupOption>,
    /// The chosen groups as a comma-separated list, carried by the breaching form.
    group_by: String,
}

#[derive(Debug, Serialize)]
struct GroupOption {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Debug, Default, Serialize)]
struct ReportPage {
    form: ReportForm,
    /// The period the report covers, as text.
    period: String,
    columns: Vec<&'static str>,
    rows: Vec<ReportLine>,
    total: Option<ReportLine>,
    report_error: Option<String>,
    breaching: Vec<BreachingLine>,
    breaching_until: String,
    breaching_truncated: bool,
    breaching_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ReportLine {
    groups: Vec<String>,
    met: i64,
    breached: i64,
    in_progress: i64,
    compliance: String,
}

#[derive(Debug, Serialize)]
struct BreachingLine {
    href: String,
    number: String,
    title: String,
    policy: String,
    target: String,
    priority: String,
    assignment_group: String,
    due: String,
    due_iso: String,
    due_in: String,
}

/// Reads the query of the report form into the form to show again and the API's query.
/// `group_by` comes once per ticked box, and the form adds an empty `group_by` so that a
/// form with no box ticked groups by nothing. Without any `group_by` (a first visit) the
/// report groups by policy.
fn read_form(raw: Option<&str>) -> (ReportForm, Result<SlaQuery, ApiError>) {
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_str(raw.unwrap_or("")) {
        Ok(pairs) => pairs,
        Err(error) => {
            let error = ApiError::bad_request(
                "invalid_query",
                format!("the query of the report form is invalid: {error}"),
                None,
            );
            return (form_with_groups(ReportForm::default(), None), Err(error));
        }
    };
    let mut form = ReportForm::default();
    let mut group_by: Option<Vec<String>> = None;
    for (name, value) in pairs {
        let value = value.trim().to_owned();
        match name.as_str() {
            "from" => form.from = value,
            "to" => form.to = value,
            "within" => form.within = value,
            "group_by" => group_by.get_or_insert_with(Vec::new).extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    let form = form_with_groups(form, group_by);
    let query = inclusive_end(&form.from, &form.to).map(|to| SlaQuery {
        from: (!form.from.is_empty()).then(|| form.from.clone()),
        to,
        group_by: Some(form.group_by.clone()),
    });
    (form, query)
}

/// Sets the group boxes of `form` from the chosen group names, by default `policy`.
fn form_with_groups(mut form: ReportForm, chosen: Option<Vec<String>>) -> ReportForm {
    let chosen = chosen.unwrap_or_else(|| vec!["policy".to_owned()]);
    form.groups = GROUPS
        .iter()
        .map(|&(value, label)| GroupOption {
            value,
            label,
            checked: chosen
                .iter()
                .any(|name| ReportGroup::parse(name) == ReportGroup::parse(value)),
        })
        .collect();
    form.group_by = chosen.join(",");
    form
}

/// Turns the form's end date, which the report includes, into the API's `to`, which it
/// excludes: the day after. An RFC 3339 instant passes as it is.
fn inclusive_end(from: &str, to: &str) -> Result<Option<String>, ApiError> {
    if to.is_empty() {
        return Ok(None);
    }
    let Ok(end) = NaiveDate::parse_from_str(to, "%Y-%m-%d") else {
        return Ok(Some(to.to_owned()));
    };
    if let Ok(start) = NaiveDate::parse_from_str(from, "%Y-%m-%d")
        && end < start
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("the end date {end} is before the start date {start}: pick a later end date"),
            Some("to"),
        ));
    }
    let next = end.succ_opt().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!("the end date {end} is out of range: pick an earlier one"),
            Some("to"),
        )
    })?;
    Ok(Some(next.format("%Y-%m-%d").to_string()))
}

fn compliance_text(met: i64, breached: i64) -> String {
    if met + breached == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", met as f64 * 100.0 / (met + breached) as f64)
    }
}

/// Shows one report row: the values of its groups, then the counts.
fn report_line(set: &DefinitionSet, groups: &[ReportGroup], row: &ReportRow) -> ReportLine {
    let or_none = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".to_owned());
    let policy = row
        .policy
        .as_deref()
        .and_then(|name| set.sla_policies.get(name));
    let mut cells = Vec::new();
    for group in groups {
        match group {
            ReportGroup::Policy => {
                cells.push(
                    row.policy
                        .as_deref()
                        .map_or_else(|| "(none)".to_owned(), |name| policy_label(policy, name)),
                );
                cells.push(row.kind.as_deref().map_or_else(String::new, kind_label));
            }
            ReportGroup::Target => cells.push(
                row.target
                    .as_deref()
                    .map_or_else(|| "(none)".to_owned(), |name| target_label(policy, name)),
            ),
            ReportGroup::Priority => cells.push(or_none(&row.priority)),
            ReportGroup::Group => cells.push(or_none(&row.assignment_group)),
            ReportGroup::Month => cells.push(or_none(&row.month)),
        }
    }
    ReportLine {
        groups: cells,
        met: row.met,
        breached: row.breached,
        in_progress: row.in_progress,
        compliance: compliance_text(row.met, row.breached),
    }
}

fn columns(groups: &[ReportGroup]) -> Vec<&'static str> {
    let mut columns = Vec::new();
    for group in groups {
        match group {
            ReportGroup::Policy => columns.extend(["Policy", "Kind"]),
            ReportGroup::Target => columns.push("Target"),
            ReportGroup::Priority => columns.push("Priority"),
            ReportGroup::Group => columns.push("Assignment group"),
            ReportGroup::Month => columns.push("Month started"),
        }
    }
    columns
}

fn breaching_line(set: &DefinitionSet, clock: DueClock, now: DateTime<Utc>) -> BreachingLine {
    let policy = set.sla_policies.get(&clock.policy);
    let wait = (clock.due_at - now).max(TimeDelta::zero());
    BreachingLine {
        href: format!("/records/{}", clock.number),
        policy: policy_label(policy, &clock.policy),
        target: target_label(policy, &clock.target),
        priority: clock.priority.unwrap_or_default(),
        assignment_group: clock.assignment_group.unwrap_or_default(),
        due: format_time(clock.due_at),
        due_iso: clock.due_at.to_rfc3339(),
        due_in: format!("in {}", duration_text(wait.num_seconds())),
        number: clock.number,
        title: clock.title,
    }
}

/// `GET /reports/sla`: the compliance report for a period and the records whose running
/// clocks fall due within a window. Staff only, like the API's reports.
pub async fn report(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Response {
    if !viewer.actor().is_staff() {
        let error = ApiError::Forbidden(
            "SLA reports are for technicians, process owners and administrators".into(),
        );
        return state.web.error(Some(&viewer), &error);
    }
    let set = state.commands.engine.definitions();
    let now = Utc::now();
    let mut page = ReportPage::default();
    let mut status = StatusCode::OK;

    let (form, query) = read_form(raw.as_deref());
    page.form = form;
    let request = query.and_then(|query| ReportRequest::parse(&query, now));
    match request {
        Ok(request) => {
            if page.form.from.is_empty() {
                page.form.from = request.from.date_naive().to_string();
            }
            if page.form.to.is_empty() {
                page.form.to = (request.to - TimeDelta::seconds(1))
                    .date_naive()
                    .to_string();
            }
            page.period = format!(
                "Clocks started from {} up to {}",
                format_time(request.from),
                format_time(request.to)
            );
            match state
                .commands
                .store
                .sla_report(request.from, request.to, &request.group_by, now)
                .await
            {
                Ok(rows) => {
                    page.columns = columns(&request.group_by);
                    page.rows = rows
                        .iter()
                        .map(|row| report_line(&set, &request.group_by, row))
                        .collect();
                    let (met, breached, in_progress) =
                        rows.iter().fold((0, 0, 0), |(m, b, p), row| {
                            (m + row.met, b + row.breached, p + row.in_progress)
                        });
                    page.total = Some(ReportLine {
                        groups: Vec::new(),
                        met,
                        breached,
                        in_progress,
                        compliance: compliance_text(met, breached),
                    });
                }
                Err(error) => return state.web.error(Some(&viewer), &error.into()),
            }
        }
        Err(error) => {
            status = error.status();
            page.report_error = Some(error.public_message());
        }
    }

    if page.form.within.is_empty() {
        page.form.within = DEFAULT_WITHIN.to_owned();
    }
    match window(Some(&page.form.within)) {
        Ok(within) => {
            let until = now + within;
            page.breaching_until = format_time(until);
            match state
                .commands
                .store
                .clocks_due_between(now, until, BREACHING_LIMIT)
                .await
            {
                Ok(clocks) => {
                    page.breaching_truncated = clocks.len() as u64 >= BREACHING_LIMIT;
                    page.breaching = clocks
                        .into_iter()
                        .map(|clock| breaching_line(&set, clock, now))
                        .collect();
                }
                Err(error) => return state.web.error(Some(&viewer), &error.into()),
            }
        }
        Err(error) => {
            status = error.status();
            page.breaching_error = Some(error.public_message());
        }
    }
    state
        .web
        .page(status, "sla_report", Some(&viewer), "Service levels", &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_hours_and_minutes() {
        assert_eq!(duration_text(0), "0 s");
        assert_eq!(duration_text(59), "59 s");
        assert_eq!(duration_text(45 * 60), "45 min");
        assert_eq!(duration_text(4 * 3600), "4 h");
        assert_eq!(duration_text(26 * 3600 + 5 * 60 + 30), "26 h 5 min");
        assert_eq!(duration_text(-90 * 60), "1 h 30 min");
    }

    #[test]
    fn form_without_groups_defaults_to_policy() {
        let (form, query) = read_form(None);
        let query = query.unwrap();
        assert_eq!(query.group_by.as_deref(), Some("policy"));
        let checked: Vec<&str> = form
            .groups
            .iter()
            .filter(|group| group.checked)
            .map(|group| group.value)
            .collect();
        assert_eq!(checked, ["policy"]);
    }

    #[test]
    fn form_with_no_box_ticked_groups_by_nothing() {
        let query = read_form(Some("from=2026-12-01&group_by=")).1.unwrap();
        assert_eq!(query.group_by.as_deref(), Some(""));
        let request = ReportRequest::parse(&query, Utc::now()).unwrap();
        assert!(request.group_by.is_empty());
    }

    #[test]
    fn form_collects_repeated_groups() {
        let (form, query) = read_form(Some("group_by=&group_by=month&group_by=priority"));
        let query = query.unwrap();
        assert_eq!(query.group_by.as_deref(), Some("month,priority"));
        assert_eq!(form.group_by, "month,priority");
    }

    #[test]
    fn end_date_is_included() {
        let query = read_form(Some("from=2026-12-01&to=2026-12-31")).1.unwrap();
        assert_eq!(query.to.as_deref(), Some("2027-01-01"));
        let query = read_form(Some("to=2026-12-31T12:00:00Z")).1.unwrap();
        assert_eq!(query.to.as_deref(), Some("2026-12-31T12:00:00Z"));
    }

    #[test]
    fn end_date_before_start_is_rejected() {
        let (form, query) = read_form(Some("from=2026-12-10&to=2026-12-09"));
        assert_eq!(form.to, "2026-12-09");
        let error = query.unwrap_err();
        assert_eq!(error.field(), Some("to"));
        assert!(
            error
                .public_message()
                .contains("2026-12-09 is before the start date 2026-12-10"),
            "{}",
            error.public_message()
        );
    }

    #[test]
    fn compliance_is_met_share_of_decided() {
        assert_eq!(compliance_text(3, 1), "75.0 %");
        assert_eq!(compliance_text(0, 0), "–");
    }
}
