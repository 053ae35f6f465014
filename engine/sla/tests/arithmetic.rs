//! Business-time arithmetic on the cases service desks get wrong: weekends and holidays,
//! pauses, night shifts across midnight, daylight-saving changes, closing times, and
//! calendars with a single working day.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use tend_sla::{BusinessCalendar, DayInterval};

const WORKDAYS: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

fn interval(from: &str, to: &str) -> DayInterval {
    let minutes = |text: &str| {
        let (h, m) = text.split_once(':').unwrap();
        h.parse::<u32>().unwrap() * 60 + m.parse::<u32>().unwrap()
    };
    DayInterval::new(minutes(from), minutes(to)).unwrap()
}

fn office(tz: Tz, from: &str, to: &str, days: &[Weekday]) -> BusinessCalendar {
    let mut calendar = BusinessCalendar::new(tz);
    for day in days {
        calendar.work(*day, interval(from, to));
    }
    calendar
}

fn local(calendar: &BusinessCalendar, instant: DateTime<Utc>) -> String {
    instant.with_timezone(&calendar.time_zone()).to_rfc3339()
}

#[test]
fn friday_afternoon_is_due_monday() {
    let mut berlin = office(Tz::Europe__Berlin, "09:00", "17:00", &WORKDAYS);
    let opened = at("2026-12-04T16:00:00+01:00");
    let due = berlin.add(opened, hours(4)).unwrap();
    assert_eq!(local(&berlin, due), "2026-12-07T12:00:00+01:00");

    berlin.holiday(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
    let due = berlin.add(opened, hours(4)).unwrap();
    assert_eq!(local(&berlin, due), "2026-12-08T12:00:00+01:00");
}

#[test]
fn paused_business_time_is_not_counted() {
    let berlin = office(Tz::Europe__Berlin, "09:00", "17:00", &WORKDAYS);
    let pause = (
        at("2026-12-04T16:30:00+01:00"),
        at("2026-12-07T10:00:00+01:00"),
    );
    let due = berlin
        .add_skipping(at("2026-12-04T16:00:00+01:00"), hours(4), &[pause])
        .unwrap();
    assert_eq!(local(&berlin, due), "2026-12-07T13:30:00+01:00");
}

#[test]
fn night_shift_crosses_midnight() {
    let every_day = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let night = office(Tz::Europe__Berlin, "22:00", "06:00", &every_day);
    let due = night
        .add(at("2026-12-09T05:30:00+01:00"), hours(2))
        .unwrap();
    assert_eq!(local(&night, due), "2026-12-09T23:30:00+01:00");
}

#[test]
fn spring_forward_counts_real_hours() {
    let always = BusinessCalendar::always(Tz::Europe__Berlin);
    // 2026-03-29: clocks go from 02:00 to 03:00 in Europe/Berlin.
    let due = always
        .add(at("2026-03-29T01:30:00+01:00"), hours(2))
        .unwrap();
    assert_eq!(local(&always, due), "2026-03-29T04:30:00+02:00");
}

#[test]
fn fall_back_repeats_the_hour() {
    let always = BusinessCalendar::always(Tz::Europe__Berlin);
    // 2026-10-25: clocks go from 03:00 back to 02:00; 02:30 happens twice.
    let due = always
        .add(at("2026-10-25T02:30:00+02:00"), hours(1))
        .unwrap();
    assert_eq!(local(&always, due), "2026-10-25T02:30:00+01:00");
    assert_eq!(
        always.elapsed(
            at("2026-10-25T00:00:00+02:00"),
            at("2026-10-26T00:00:00+01:00")
        ),
        hours(25)
    );
}

/// Escalation one business hour before the deadline, and deadlines across the night.
#[test]
fn escalation_before_deadline_stays_in_hours() {
    let paris = office(Tz::Europe__Paris, "08:00", "18:00", &WORKDAYS);
    let due = paris
        .add(at("2026-01-12T10:00:00+01:00"), hours(4))
        .unwrap();
    assert_eq!(local(&paris, due), "2026-01-12T14:00:00+01:00");
    let warn = paris.subtract(due, hours(1)).unwrap();
    assert_eq!(local(&paris, warn), "2026-01-12T13:00:00+01:00");

    let due = paris
        .add(at("2026-01-12T17:00:00+01:00"), hours(4))
        .unwrap();
    assert_eq!(local(&paris, due), "2026-01-13T11:00:00+01:00");
    let warn = paris.subtract(due, hours(1)).unwrap();
    assert_eq!(local(&paris, warn), "2026-01-13T10:00:00+01:00");

    let warn = paris
        .subtract(at("2026-01-13T08:30:00+01:00"), hours(1))
        .unwrap();
    assert_eq!(local(&paris, warn), "2026-01-12T17:30:00+01:00");
}

/// Holidays, a ticket after closing time, and a deadline exactly at closing time.
#[test]
fn deadline_at_closing_time_stays_that_day() {
    let every_day = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let mut berlin = office(Tz::Europe__Berlin, "09:00", "21:00", &every_day);
    berlin
        .holiday(NaiveDate::from_ymd_opt(2016, 11, 11).unwrap())
        .holiday(NaiveDate::from_ymd_opt(2016, 11, 13).unwrap());
    let due = berlin
        .add(at("2016-11-09T23:00:00+01:00"), hours(48))
        .unwrap();
    assert_eq!(local(&berlin, due), "2016-11-15T21:00:00+01:00");
}

/// A 24/7 calendar written with an end of 24:00 has 168 hours a week, and a deadline across
/// midnight gets no extra minute.
#[test]
fn all_day_calendar_has_168_hours() {
    let always = BusinessCalendar::always(Tz::UTC);
    assert_eq!(always.weekly_minutes(), 168 * 60);
    let due = always.add(at("2020-09-04T23:30:00Z"), hours(1)).unwrap();
    assert_eq!(due, at("2020-09-05T00:30:00Z"));
}

/// A calendar with one working weekday behaves the same whichever day it is.
#[test]
fn single_weekday_calendar() {
    let days = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    for (offset, day) in days.iter().enumerate() {
        let calendar = office(Tz::UTC, "08:00", "17:00", &[*day]);
        // 2024-08-05 is a Monday; open on the day after the working day, at 10:00.
        let working =
            NaiveDate::from_ymd_opt(2024, 8, 5).unwrap() + chrono::Days::new(offset as u64);
        let opened = (working + chrono::Days::new(1))
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_utc();
        let due = calendar.add(opened, hours(4)).unwrap();
        let expected = (working + chrono::Days::new(7))
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(due, expected, "working day {day}");
        let before = (working + chrono::Days::new(6))
            .and_hms_opt(23, 59, 0)
            .unwrap()
            .and_utc();
        assert_eq!(calendar.elapsed(opened, before), TimeDelta::zero(), "{day}");
    }
}

#[test]
fn exceptions_and_yearly_holidays() {
    let mut berlin = office(Tz::Europe__Berlin, "09:00", "17:00", &WORKDAYS);
    berlin.yearly_holiday(12, 25);
    // Saturday 2026-12-19 is an extra working day from 10:00 to 14:00.
    berlin.exception(
        NaiveDate::from_ymd_opt(2026, 12, 19).unwrap(),
        vec![interval("10:00", "14:00")],
    );
    let due = berlin
        .add(at("2026-12-18T16:00:00+01:00"), hours(2))
        .unwrap();
    assert_eq!(local(&berlin, due), "2026-12-19T11:00:00+01:00");
    // Friday 2027-12-24 is open, 2027-12-25 falls on a Saturday anyway; 2026-12-25 is a
    // Friday holiday.
    let due = berlin
        .add(at("2026-12-24T16:00:00+01:00"), hours(2))
        .unwrap();
    assert_eq!(local(&berlin, due), "2026-12-28T10:00:00+01:00");
}

#[test]
fn calendar_without_working_time_is_an_error() {
    let empty = BusinessCalendar::new(Tz::UTC);
    assert!(empty.add(at("2026-01-01T00:00:00Z"), hours(1)).is_err());
    assert!(
        BusinessCalendar::always(Tz::UTC)
            .add(at("2026-01-01T00:00:00Z"), hours(-1))
            .is_err()
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ZONES: [Tz; 5] = [
        Tz::UTC,
        Tz::Europe__Berlin,
        Tz::America__New_York,
        Tz::Australia__Sydney,
        Tz::Asia__Kolkata,
    ];

    fn calendar() -> impl Strategy<Value = BusinessCalendar> {
        let day = proptest::collection::vec((0u32..1440, 1u32..1440), 0..3);
        (
            0usize..ZONES.len(),
            proptest::collection::vec(day, 7),
            0u32..3,
        )
            .prop_filter_map("a calendar needs working time", |(zone, week, holidays)| {
                let mut calendar = BusinessCalendar::new(ZONES[zone]);
                let days = [
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ];
                for (day, intervals) in days.iter().zip(week) {
                    for (start, length) in intervals {
                        // Ends past midnight wrap, which makes night shifts too.
                        let end = (start + length) % 1440;
                        let end = if end == 0 { 1440 } else { end };
                        calendar.work(*day, DayInterval::new(start, end).ok()?);
                    }
                }
                for month in 1..=holidays {
                    calendar.yearly_holiday(month * 3, 1);
                }
                (calendar.weekly_minutes() > 0).then_some(calendar)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Measuring from t to add(t, d) gives d, and subtracting d again lands at or
        /// before t with the same working time between.
        #[test]
        fn add_and_elapsed_agree(
            calendar in calendar(),
            // 2020-01-01 to 2030-01-01, across leap days, year ends and DST changes.
            start in 1_577_836_800i64..1_893_456_000i64,
            minutes in 0i64..(21 * 24 * 60),
        ) {
            let start = DateTime::from_timestamp(start, 0).unwrap();
            // At most a year of the calendar's working time, so that a calendar with a
            // few minutes a week stays within the search horizon.
            let year = i64::from(calendar.weekly_minutes()) * 52;
            let duration = TimeDelta::minutes(minutes % year.max(1));
            let due = calendar.add(start, duration).unwrap();
            prop_assert!(due >= start);
            prop_assert_eq!(calendar.elapsed(start, due), duration);
            let back = calendar.subtract(due, duration).unwrap();
            prop_assert!(back <= due);
            prop_assert_eq!(calendar.elapsed(back, due), duration);
        }
    }
}
