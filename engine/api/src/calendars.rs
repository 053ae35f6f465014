//! Turns the calendars of a definition set into calendars the SLA arithmetic runs on.

use chrono::Weekday;
use tend_sla::{BusinessCalendar, DayInterval};
use tend_workflow::DefinitionSet;
use tend_workflow::calendar::{Calendar, Holiday, Intervals};

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// Builds calendar `name` of `set`, with the holidays and exceptions of the calendars it
/// includes. Loading has validated the set, so the errors here name a calendar that does
/// not exist.
pub fn business_calendar(set: &DefinitionSet, name: &str) -> Result<BusinessCalendar, String> {
    let calendar = set.calendars.get(name).ok_or_else(|| {
        let known: Vec<&str> = set.calendars.keys().map(String::as_str).collect();
        if known.is_empty() {
            format!("unknown calendar `{name}`: no calendars are defined; add workflows/calendars/{name}.yaml")
        } else {
            format!("unknown calendar `{name}`: use one of {}", known.join(", "))
        }
    })?;
    let mut built = build(calendar)?;
    let mut seen = vec![name.to_owned()];
    let mut next: Vec<&String> = calendar.include.iter().collect();
    while let Some(included) = next.pop() {
        if seen.contains(included) {
            continue;
        }
        seen.push(included.clone());
        if let Some(other) = set.calendars.get(included) {
            built.include(&build(other)?);
            next.extend(other.include.iter());
        }
    }
    Ok(built)
}

fn intervals(hours: &Intervals) -> Result<Vec<DayInterval>, String> {
    hours
        .0
        .iter()
        .map(|day| {
            DayInterval::new(u32::from(day.start.minutes), u32::from(day.end.minutes))
                .map_err(|error| error.to_string())
        })
        .collect()
}

fn build(calendar: &Calendar) -> Result<BusinessCalendar, String> {
    let tz: chrono_tz::Tz = calendar.timezone.parse().map_err(|_| {
        format!(
            "calendar `{}` names unknown time zone `{}`",
            calendar.calendar, calendar.timezone
        )
    })?;
    let mut built = BusinessCalendar::new(tz);
    for (day, hours) in &calendar.hours {
        let days: Vec<Weekday> = if day == "every_day" {
            WEEKDAYS.iter().map(|(_, weekday)| *weekday).collect()
        } else {
            WEEKDAYS
                .iter()
                .filter(|(name, _)| name == day)
                .map(|(_, weekday)| *weekday)
                .collect()
        };
        for weekday in days {
            for interval in intervals(hours)? {
                built.work(weekday, interval);
            }
        }
    }
    for holiday in &calendar.holidays {
        match holiday {
            Holiday::Date(date) => {
                built.holiday(*date);
            }
            Holiday::Yearly { .. } => {
                if let Some(Ok((month, day))) = holiday.month_day() {
                    built.yearly_holiday(month, day);
                }
            }
        }
    }
    for exception in &calendar.exceptions {
        built.exception(exception.date, intervals(&exception.hours)?);
    }
    Ok(built)
}

/// Moves the due times of automatic transitions whose `after` counts working time of a
/// calendar: `after` is added in business time to the time the record entered its state.
/// A plan whose calendar cannot be built keeps its calendar-time due time, and the
/// problem is logged.
pub fn count_business_time(
    set: &DefinitionSet,
    definition: &tend_workflow::Definition,
    outcome: &mut tend_workflow::Outcome,
) {
    for plan in &mut outcome.timers {
        let Some(step) = definition.transition(&plan.transition) else {
            continue;
        };
        let (Some(name), Some(after)) = (&step.calendar, step.after) else {
            continue;
        };
        let due = business_calendar(set, name).and_then(|calendar| {
            calendar
                .add(outcome.record.state_changed_at, after.duration())
                .map_err(|error| error.to_string())
        });
        match due {
            Ok(due) => plan.due_at = due,
            Err(error) => tracing::warn!(
                transition = plan.transition,
                calendar = name,
                %error,
                "an automatic transition counts calendar time because its calendar failed"
            ),
        }
    }
}

/// Checks the cron expressions of the set's scheduled jobs, which the loader leaves to the
/// SLA crate; returns one message per invalid expression.
pub fn schedule_problems(set: &DefinitionSet) -> Vec<String> {
    set.schedules
        .iter()
        .filter_map(|(name, job)| {
            tend_sla::CronSchedule::parse(&job.cron)
                .err()
                .map(|error| format!("workflows/schedules: schedule `{name}`: {error}"))
        })
        .collect()
}
