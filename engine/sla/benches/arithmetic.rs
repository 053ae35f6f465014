//! Cost of one business-time computation on typical calendars: an office calendar with
//! holidays, a night shift across midnight, and 24x7, over targets from an hour to a week.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use tend_sla::{BusinessCalendar, DayInterval};

fn office() -> BusinessCalendar {
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
    for (month, day) in [(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)] {
        calendar.yearly_holiday(month, day);
    }
    calendar.holiday(NaiveDate::from_ymd_opt(2027, 3, 26).unwrap());
    calendar
}

fn night_shift() -> BusinessCalendar {
    let mut calendar = BusinessCalendar::new(Tz::America__New_York);
    for day in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ] {
        calendar.work(day, DayInterval::new(22 * 60, 6 * 60).unwrap());
    }
    calendar
}

fn arithmetic(c: &mut Criterion) {
    let friday: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-04T16:00:00+01:00")
        .unwrap()
        .with_timezone(&Utc);
    let cases = [
        ("office", office()),
        ("night_shift", night_shift()),
        ("24x7", BusinessCalendar::always(Tz::Europe__Berlin)),
    ];
    for (name, calendar) in &cases {
        for hours in [1, 4, 40] {
            let duration = TimeDelta::hours(hours);
            c.bench_function(&format!("add {name} {hours}h"), |b| {
                b.iter(|| {
                    calendar
                        .add(black_box(friday), black_box(duration))
                        .unwrap()
                })
            });
        }
        let due = calendar.add(friday, TimeDelta::hours(40)).unwrap();
        c.bench_function(&format!("elapsed {name} 40h"), |b| {
            b.iter(|| calendar.elapsed(black_box(friday), black_box(due)))
        });
    }
}

criterion_group!(benches, arithmetic);
criterion_main!(benches);
