//! Cron schedules in the standard 5-field syntax (minute hour day-of-month month
//! day-of-week) or 6 fields with seconds first, evaluated in a named time zone.
//!
//! Daylight-saving rules, so that each due run is listed exactly once (the tests in
//! tests/cron.rs check both kinds of change night):
//! - a run whose wall time falls in the gap of a spring-forward change happens at the first
//!   instant after the gap (a 02:30 job runs at 03:00 that night);
//! - a run whose wall time occurs twice in an autumn change happens at its first occurrence,
//!   except when the hour field is `*`: an hourly (or more frequent) job runs in both
//!   copies of the repeated hour, because both are real hours.
//!
//! Day-of-week numbers follow cron, not Quartz: 0 and 7 are Sunday, 1 is Monday.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How many candidate wall times a search looks at before it reports no next run.
const MAX_CANDIDATES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression `{expression}`: {message}")]
pub struct CronError {
    pub expression: String,
    pub message: String,
}

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    schedule: cron::Schedule,
    /// Whether the hour field is `*`, so that both copies of a repeated hour run.
    every_hour: bool,
}

impl CronSchedule {
    pub fn parse(expression: &str) -> Result<CronSchedule, CronError> {
        let error = |message: String| CronError {
            expression: expression.to_owned(),
            message,
        };
        let text = expression.trim();
        let expanded = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(error(
                    "unknown macro: use @hourly, @daily, @weekly, @monthly or @yearly".into(),
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            count => {
                return Err(error(format!(
                    "it has {count} fields; write 5 (minute hour day-of-month month day-of-week) or 6 with seconds first"
                )));
            }
        };
        let [minute, hour, day, month, weekday] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
        for (name, field, max) in [
            ("second", seconds, 59),
            ("minute", minute, 59),
            ("hour", hour, 23),
            ("day of month", day, 31),
            ("month", month, 12),
        ] {
            check_numbers(field, max)
                .map_err(|message| error(format!("{name} field: {message}")))?;
        }
        let weekdays = weekday_names(weekday)
            .map_err(|message| error(format!("day-of-week field: {message}")))?;
        let quartz = format!("{seconds} {minute} {hour} {day} {month} {weekdays} *");
        let schedule = cron::Schedule::from_str(&quartz).map_err(|e| error(e.to_string()))?;
        if !can_match(&schedule) {
            return Err(error(
                "no month has that day, so it never runs: choose a day that exists in the month"
                    .into(),
            ));
        }
        Ok(CronSchedule {
            expression: expression.to_owned(),
            schedule,
            every_hour: hour == "*" || hour == "*/1",
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Returns up to `count` runs strictly after `after`, in order, under the daylight-saving
    /// rules of this module.
    pub fn next_runs(&self, tz: Tz, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut runs: Vec<DateTime<Utc>> = Vec::with_capacity(count);
        // Wall times repeat, and runs come out of order, only within three hours of an
        // offset change and by as much as the offset changes (the fold). Elsewhere the
        // walk starts at `after` and stops at the last run.
        let window = TimeDelta::hours(3);
        let fold = |at: DateTime<Utc>| {
            let offset = |instant: DateTime<Utc>| {
                i64::from(
                    tz.offset_from_utc_datetime(&instant.naive_utc())
                        .fix()
                        .local_minus_utc(),
                )
            };
            TimeDelta::seconds((offset(at - window) - offset(at + window)).abs())
        };
        // Walk the wall-clock times of the zone as if they were UTC, then place each in the
        // zone. Starting a fold early catches wall times that repeat after `after`.
        let local = after.with_timezone(&tz).naive_local() - fold(after);
        let start = Utc.from_utc_datetime(&local) - TimeDelta::seconds(1);
        for wall in self.schedule.after(&start).take(MAX_CANDIDATES) {
            let wall = wall.naive_utc();
            let instants: Vec<DateTime<Utc>> = match tz.from_local_datetime(&wall) {
                chrono::LocalResult::Single(at) => vec![at.with_timezone(&Utc)],
                chrono::LocalResult::Ambiguous(first, second) => {
                    if self.every_hour {
                        vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
                    } else {
                        vec![first.with_timezone(&Utc)]
                    }
                }
                chrono::LocalResult::None => {
                    // The gap ends at the first whole minute of wall time that exists.
                    let mut later = wall.with_second(0).unwrap_or(wall);
                    let mut end = None;
                    for _ in 0..(24 * 60) {
                        later += TimeDelta::minutes(1);
                        if let Some(at) = tz.from_local_datetime(&later).earliest() {
                            end = Some(at.with_timezone(&Utc));
                            break;
                        }
                    }
                    end.into_iter().collect()
                }
            };
            let Some(latest) = instants.iter().max().copied() else {
                continue;
            };
            for instant in instants.into_iter().filter(|instant| *instant > after) {
                // The second copy of a repeated hour comes after later wall times of the
                // first copy, so a run may land before those already found.
                if runs.last().is_some_and(|last| *last >= instant) {
                    runs.push(instant);
                    runs.sort();
                    runs.dedup();
                } else {
                    runs.push(instant);
                }
            }
            if runs.len() >= count {
                let last = runs[count - 1];
                let fold = fold(last);
                if fold.is_zero() || latest > last + fold {
                    break;
                }
            }
        }
        runs.truncate(count);
        runs
    }
}

/// Checks the numbers of a field against its range: values, ranges and steps.
fn check_numbers(field: &str, max: u32) -> Result<(), String> {
    if field.is_empty() {
        return Err("empty".into());
    }
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(0) => return Err(format!("step `{item}` is zero; use a step of 1 or more")),
                Ok(_) => {}
                Err(_) => return Err(format!("invalid step `{item}`")),
            }
        }
        if range == "*" {
            continue;
        }
        for bound in range.split('-') {
            // Names (JAN, MON) are checked by the cron parser.
            if let Ok(value) = bound.parse::<u32>()
                && value > max
            {
                return Err(format!(
                    "{value} is out of range; the largest value is {max}"
                ));
            }
        }
    }
    Ok(())
}

/// Turns a cron day-of-week field into day names, which mean the same in the cron crate's
/// Quartz dialect (where numbers start at 1 for Sunday).
fn weekday_names(field: &str) -> Result<String, String> {
    if field == "*" {
        return Ok("*".into());
    }
    let number = |text: &str| -> Result<usize, String> {
        if let Some(index) = DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(text)) {
            return Ok(index);
        }
        match text.parse::<usize>() {
            Ok(n @ 0..=7) => Ok(n % 7),
            Ok(n) => Err(format!(
                "{n} is out of range; use 0 to 7 (0 and 7 are Sunday) or a name"
            )),
            Err(_) => Err(format!("invalid day `{text}`: use 0 to 7 or MON to SUN")),
        }
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("invalid step in `{item}`: use a step of 1 or more"))?,
            ),
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => {
                    // `7` as the end of a range is Sunday at the end of the week.
                    let end = if b == "7" { 7 } else { number(b)? };
                    (number(a)?, end)
                }
                None => {
                    let day = number(range)?;
                    (day, if step > 1 { 6 } else { day })
                }
            },
        };
        if last < first {
            return Err(format!("range `{range}` ends before it starts"));
        }
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    Ok(DAY_NAMES
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(","))
}

/// Checks that some month has one of the schedule's days of the month (`30 2` never does).
fn can_match(schedule: &cron::Schedule) -> bool {
    use cron::TimeUnitSpec;
    schedule.months().iter().any(|month| {
        let days_in_month = (28..=31)
            .rev()
            .find(|d| NaiveDate::from_ymd_opt(2024, month, *d).is_some())
            .unwrap_or(28);
        schedule
            .days_of_month()
            .iter()
            .any(|day| day <= days_in_month)
    })
}
