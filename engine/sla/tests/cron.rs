//! Cron schedules through daylight-saving changes, leap days and numeric weekdays, and the
//! expressions that must be rejected.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tend_sla::CronSchedule;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

fn runs(expression: &str, tz: Tz, after: &str, count: usize) -> Vec<String> {
    CronSchedule::parse(expression)
        .unwrap()
        .next_runs(tz, at(after), count)
        .into_iter()
        .map(|run| run.with_timezone(&tz).to_rfc3339())
        .collect()
}

#[test]
fn weekly_job_in_spring_forward_week() {
    assert_eq!(
        runs(
            "0 12 * * 0",
            Tz::Europe__Berlin,
            "2022-03-24T12:00:00+01:00",
            1
        ),
        ["2022-03-27T12:00:00+02:00"]
    );
    assert_eq!(
        runs(
            "0 12 * * 0",
            Tz::America__New_York,
            "2022-03-10T12:00:00-05:00",
            1
        ),
        ["2022-03-13T12:00:00-04:00"]
    );
}

#[test]
fn daily_job_in_gap_and_repeated_hour() {
    assert_eq!(
        runs(
            "0 2 * * *",
            Tz::America__New_York,
            "2025-03-09T01:30:00-05:00",
            2
        ),
        ["2025-03-09T03:00:00-04:00", "2025-03-10T02:00:00-04:00"]
    );
    assert_eq!(
        runs(
            "0 1 * * *",
            Tz::America__Los_Angeles,
            "2014-11-02T00:30:00-07:00",
            2
        ),
        ["2014-11-02T01:00:00-07:00", "2014-11-03T01:00:00-08:00"]
    );
}

#[test]
fn daily_job_once_per_change_night() {
    assert_eq!(
        runs(
            "30 2 * * *",
            Tz::Europe__Berlin,
            "2026-03-28T12:00:00+01:00",
            2
        ),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    );
    assert_eq!(
        runs(
            "30 2 * * *",
            Tz::Europe__Berlin,
            "2026-10-24T12:00:00+02:00",
            2
        ),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
}

#[test]
fn hourly_job_runs_in_both_repeated_hours() {
    assert_eq!(
        runs(
            "0 * * * *",
            Tz::America__Los_Angeles,
            "2025-11-02T00:30:00-07:00",
            3
        ),
        [
            "2025-11-02T01:00:00-07:00",
            "2025-11-02T01:00:00-08:00",
            "2025-11-02T02:00:00-08:00"
        ]
    );
    assert_eq!(
        runs(
            "0 * * * * *",
            Tz::Europe__London,
            "2019-10-27T01:03:29+01:00",
            1
        ),
        ["2019-10-27T01:04:00+01:00"]
    );
    assert_eq!(
        runs(
            "0 * * * * *",
            Tz::Europe__London,
            "2019-10-27T01:03:29+00:00",
            1
        ),
        ["2019-10-27T01:04:00+00:00"]
    );
}

#[test]
fn numeric_weekdays_count_from_monday() {
    let numbers = runs("0 17 * * 1-6", Tz::UTC, "2026-02-01T00:00:00Z", 12);
    let names = runs("0 17 * * Mon-Sat", Tz::UTC, "2026-02-01T00:00:00Z", 12);
    assert_eq!(numbers, names);
    assert_eq!(numbers[0], "2026-02-02T17:00:00+00:00");
    assert_eq!(numbers[5], "2026-02-07T17:00:00+00:00");
    assert_eq!(numbers[6], "2026-02-09T17:00:00+00:00");
    assert_eq!(numbers[11], "2026-02-14T17:00:00+00:00");
    assert_eq!(
        runs("0 9 * * 0", Tz::UTC, "2026-02-01T00:00:00Z", 1),
        runs("0 9 * * 7", Tz::UTC, "2026-02-01T00:00:00Z", 1)
    );
}

#[test]
fn leap_day_schedules() {
    assert_eq!(
        runs("0 9 29 2 *", Tz::UTC, "2024-02-29T09:00:00Z", 2),
        ["2028-02-29T09:00:00+00:00", "2032-02-29T09:00:00+00:00"]
    );
    assert_eq!(
        runs("0 9 29 2 *", Tz::UTC, "2024-03-01T00:00:00Z", 1),
        ["2028-02-29T09:00:00+00:00"]
    );
    assert_eq!(
        runs("0 0 * * *", Tz::UTC, "2024-02-29T12:00:00Z", 1),
        ["2024-03-01T00:00:00+00:00"]
    );
    let never = CronSchedule::parse("0 0 30 2 *").unwrap_err();
    assert!(never.message.contains("never runs"), "{never}");
}

#[test]
fn malformed_expressions_are_rejected() {
    for bad in [
        "@dailyBla",
        " @dailyBla ",
        "0/0 * * * *",
        "*/0 * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "",
        "* * * *",
    ] {
        let error = CronSchedule::parse(bad).expect_err(bad);
        assert!(!error.message.is_empty(), "{bad}");
    }
    for good in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"] {
        assert!(CronSchedule::parse(good).is_ok(), "{good}");
    }
}

#[test]
fn every_second_schedule_runs() {
    // Far from a change, the walk starts at `after` and stops at the last run.
    assert_eq!(
        runs("* * * * * *", Tz::Europe__Berlin, "2027-01-10T12:00:00Z", 3),
        [
            "2027-01-10T13:00:01+01:00",
            "2027-01-10T13:00:02+01:00",
            "2027-01-10T13:00:03+01:00",
        ]
    );
    // Near the autumn change, every second of both repeated hours runs once, in order.
    let near = runs("* * * * * *", Tz::Europe__Berlin, "2027-10-31T00:59:58Z", 3);
    assert_eq!(
        near,
        [
            "2027-10-31T02:59:59+02:00",
            "2027-10-31T02:00:00+01:00",
            "2027-10-31T02:00:01+01:00",
        ]
    );
}
