//! Clocks read from the phases of a record's history: pauses move the due time, a
//! stopped clock keeps its figures, and a changed target is recomputed from the same
//! history.

use chrono::{DateTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use tend_sla::{BusinessCalendar, DayInterval, Phase, read_clock};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

fn berlin_office() -> BusinessCalendar {
    let mut calendar = BusinessCalendar::new(Tz::Europe__Berlin);
    for day in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ] {
        calendar.work(day, DayInterval::new(9 * 60, 17 * 60).unwrap());
    }
    calendar
}

#[test]
fn pause_over_the_weekend_moves_the_due_time() {
    // Friday 2026-03-06 16:00 Berlin (15:00Z), pending from 16:30 to Monday 10:00.
    let changes = [
        (at("2026-03-06T16:00:00+01:00"), Phase::Running),
        (at("2026-03-06T16:30:00+01:00"), Phase::Paused),
        (at("2026-03-09T10:00:00+01:00"), Phase::Running),
    ];
    let reading = read_clock(
        &berlin_office(),
        TimeDelta::hours(4),
        &changes,
        at("2026-03-09T11:00:00+01:00"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(reading.due_at, Some(at("2026-03-09T13:30:00+01:00")));
    assert_eq!(reading.elapsed, TimeDelta::minutes(90));
    assert_eq!(reading.left(), TimeDelta::minutes(150));
    assert_eq!(reading.phase, Phase::Running);
    assert!(!reading.breached);
}

#[test]
fn paused_clock_has_no_due_time() {
    let changes = [
        (at("2026-03-06T16:00:00+01:00"), Phase::Running),
        (at("2026-03-06T16:30:00+01:00"), Phase::Paused),
    ];
    let reading = read_clock(
        &berlin_office(),
        TimeDelta::hours(4),
        &changes,
        at("2026-03-09T12:00:00+01:00"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(reading.phase, Phase::Paused);
    assert_eq!(reading.due_at, None);
    assert_eq!(reading.elapsed, TimeDelta::minutes(30));
    assert_eq!(
        reading.pauses,
        vec![(
            at("2026-03-06T16:30:00+01:00"),
            at("2026-03-09T12:00:00+01:00")
        )]
    );
}

#[test]
fn stopped_clock_met_or_breached() {
    let calendar = BusinessCalendar::always(Tz::UTC);
    let changes = [
        (at("2026-01-05T09:00:00Z"), Phase::Running),
        (at("2026-01-05T12:00:00Z"), Phase::Stopped),
    ];
    let met = read_clock(
        &calendar,
        TimeDelta::hours(4),
        &changes,
        at("2026-01-06T00:00:00Z"),
    )
    .unwrap()
    .unwrap();
    assert!(!met.breached);
    assert_eq!(met.elapsed, TimeDelta::hours(3));
    assert_eq!(met.stopped_at, Some(at("2026-01-05T12:00:00Z")));
    let breached = read_clock(
        &calendar,
        TimeDelta::hours(2),
        &changes,
        at("2026-01-06T00:00:00Z"),
    )
    .unwrap()
    .unwrap();
    assert!(breached.breached);
}

#[test]
fn reopened_clock_resumes_with_its_elapsed_time() {
    let calendar = BusinessCalendar::always(Tz::UTC);
    let changes = [
        (at("2026-01-05T09:00:00Z"), Phase::Running),
        (at("2026-01-05T10:00:00Z"), Phase::Stopped),
        (at("2026-01-05T14:00:00Z"), Phase::Running),
    ];
    let reading = read_clock(
        &calendar,
        TimeDelta::hours(4),
        &changes,
        at("2026-01-05T15:00:00Z"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(reading.elapsed, TimeDelta::hours(2));
    assert_eq!(reading.due_at, Some(at("2026-01-05T17:00:00Z")));
    assert_eq!(reading.stopped_at, None);
}

/// Case C34: a policy replaced while the record is pending counts from the record's
/// creation, with the pending time added, and is not breached before its due time.
#[test]
fn replaced_target_counts_from_creation_with_pauses() {
    let calendar = BusinessCalendar::always(Tz::UTC);
    let changes = [
        (at("2026-01-05T09:00:00Z"), Phase::Running),
        (at("2026-01-05T10:00:00Z"), Phase::Paused),
        (at("2026-01-05T12:00:00Z"), Phase::Running),
    ];
    let reading = read_clock(
        &calendar,
        TimeDelta::hours(4),
        &changes,
        at("2026-01-05T14:59:00Z"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(reading.due_at, Some(at("2026-01-05T15:00:00Z")));
    assert!(!reading.breached);
}

#[test]
fn thresholds_fall_between_start_and_due() {
    let calendar = berlin_office();
    let changes = [(at("2026-03-06T16:00:00+01:00"), Phase::Running)];
    let reading = read_clock(
        &calendar,
        TimeDelta::hours(4),
        &changes,
        at("2026-03-06T16:10:00+01:00"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        reading.threshold_at(&calendar, 50).unwrap(),
        Some(at("2026-03-09T10:00:00+01:00"))
    );
    assert_eq!(
        reading.threshold_at(&calendar, 150).unwrap(),
        Some(at("2026-03-09T14:00:00+01:00"))
    );
}

#[test]
fn clock_that_never_ran_reads_as_none() {
    let calendar = BusinessCalendar::always(Tz::UTC);
    let changes = [(at("2026-01-05T09:00:00Z"), Phase::Paused)];
    assert_eq!(
        read_clock(
            &calendar,
            TimeDelta::hours(1),
            &changes,
            at("2026-01-05T10:00:00Z")
        )
        .unwrap(),
        None
    );
}
