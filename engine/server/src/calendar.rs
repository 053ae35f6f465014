//! `tend calendar due` and `tend calendar elapsed`: business-time arithmetic with the
//! calendars of a definitions directory, so process owners can check their files.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use tend_workflow::Span;

use crate::cli::{CalendarCommand, CalendarDueArgs, CalendarElapsedArgs, ScheduleCommand};

pub fn run(command: CalendarCommand) -> anyhow::Result<ExitCode> {
    match command {
        CalendarCommand::Due(args) => due(args),
        CalendarCommand::Elapsed(args) => elapsed(args),
    }
}

fn instant(text: &str, what: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc))
        .with_context(|| {
            format!("invalid {what} `{text}`: write an RFC 3339 instant such as 2026-12-04T16:00:00+01:00")
        })
}

fn calendar(
    definitions: &std::path::Path,
    name: &str,
) -> anyhow::Result<tend_sla::BusinessCalendar> {
    let (set, _) = crate::setup::load_definitions(definitions)?;
    tend_api::calendars::business_calendar(&set, name).map_err(anyhow::Error::msg)
}

fn due(args: CalendarDueArgs) -> anyhow::Result<ExitCode> {
    let calendar = calendar(&args.definitions.definitions, &args.calendar)?;
    let start = instant(&args.start, "--start")?;
    let duration = Span::parse(&args.duration).map_err(anyhow::Error::msg)?;
    let mut pauses = Vec::new();
    for pause in &args.pauses {
        let (from, to) = pause.split_once('/').with_context(|| {
            format!("invalid --pause `{pause}`: write START/END, two RFC 3339 instants joined by /")
        })?;
        let (from, to) = (instant(from, "pause start")?, instant(to, "pause end")?);
        anyhow::ensure!(
            to > from,
            "invalid --pause `{pause}`: the end must be later than the start"
        );
        pauses.push((from, to));
    }
    let due = calendar.add_skipping(start, duration.duration(), &pauses)?;
    println!("{}", due.with_timezone(&calendar.time_zone()).to_rfc3339());
    Ok(ExitCode::SUCCESS)
}

fn elapsed(args: CalendarElapsedArgs) -> anyhow::Result<ExitCode> {
    let calendar = calendar(&args.definitions.definitions, &args.calendar)?;
    let from = instant(&args.from, "--from")?;
    let to = instant(&args.to, "--to")?;
    println!("{}", words(calendar.elapsed(from, to)));
    Ok(ExitCode::SUCCESS)
}

/// Runs `tend schedule next`.
pub fn schedule(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let ScheduleCommand::Next(args) = command;
    let (set, _) = crate::setup::load_definitions(&args.definitions.definitions)?;
    let Some(job) = set.schedules.get(&args.name) else {
        let known: Vec<&str> = set.schedules.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown schedule `{}`: {}",
            args.name,
            if known.is_empty() {
                "no schedules are defined; add workflows/schedules/NAME.yaml".to_owned()
            } else {
                format!("use one of {}", known.join(", "))
            }
        );
    };
    let cron = tend_sla::CronSchedule::parse(&job.cron)?;
    let tz: chrono_tz::Tz = job
        .timezone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone `{}`", job.timezone))?;
    let after = match &args.after {
        Some(text) => instant(text, "--after")?,
        None => Utc::now(),
    };
    let runs = cron.next_runs(tz, after, args.count);
    if runs.is_empty() {
        anyhow::bail!("schedule `{}` has no run after {after}", args.name);
    }
    for run in runs {
        println!("{}", run.with_timezone(&tz).to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a duration as hours and minutes, e.g. `4h 30m`, or `0m`.
fn words(duration: TimeDelta) -> String {
    let minutes = duration.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}
