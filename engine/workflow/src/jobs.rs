//! Scheduled jobs (`workflows/schedules/*.yaml`): cron expressions in a time zone. Each run
//! does one thing. It opens a record (a monthly CMDB verification task), runs a rule over
//! the records of a process in some states (resolving incidents that waited too long for
//! their requester), or queues a run of a plugin action (a nightly disk report). The SLA
//! crate checks and evaluates the expressions.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tend_domain::Fields;

/// A file of `workflows/schedules/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    pub schedules: IndexMap<String, ScheduledJob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledJob {
    #[serde(default)]
    pub label: Option<String>,
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with
    /// seconds first, or a macro such as `@daily`.
    pub cron: String,
    /// IANA time zone the expression's wall times are in.
    pub timezone: String,
    /// Policy for runs missed while no server ran: `run_once` catches up with one run, and
    /// `skip` leaves them out.
    #[serde(default)]
    pub missed: MissedRuns,
    /// The record each run opens. A schedule has one of `open`, `run_rule` and
    /// `run_action`.
    #[serde(default)]
    pub open: Option<OpenRecord>,
    /// The rule each run applies to the records it selects.
    #[serde(default)]
    pub run_rule: Option<RuleRun>,
    /// The plugin action each run queues.
    #[serde(default)]
    pub run_action: Option<ActionRun>,
}

/// The action of a scheduled run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScheduleAction<'a> {
    Open(&'a OpenRecord),
    RunRule(&'a RuleRun),
    RunAction(&'a ActionRun),
}

impl ScheduledJob {
    /// Returns what a run does, or why the schedule cannot run: it names both actions or
    /// neither.
    pub fn action(&self) -> Result<ScheduleAction<'_>, &'static str> {
        match (&self.open, &self.run_rule, &self.run_action) {
            (Some(open), None, None) => Ok(ScheduleAction::Open(open)),
            (None, Some(run), None) => Ok(ScheduleAction::RunRule(run)),
            (None, None, Some(run)) => Ok(ScheduleAction::RunAction(run)),
            (None, None, None) => Err(
                "the schedule does nothing: add `open` (the record each run opens), `run_rule` (a rule each run applies to records) or `run_action` (a plugin action each run queues)",
            ),
            _ => Err(
                "a schedule does one thing per run: keep one of `open` (open a record), `run_rule` (run a rule over records) and `run_action` (queue a plugin action), and move the others to schedules of their own",
            ),
        }
    }
}

/// A plugin action that each run queues, without a record; the run's outcome is kept with
/// the action run. The plugin, action and parameters are checked against the plugins of
/// the server that runs the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRun {
    pub plugin: String,
    pub action: String,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// A rule that a scheduled run applies, with the `on_timer` hook, to every record of
/// `process` in one of `states`. Its effects apply to each record as the system actor
/// `scheduler`, at most once per record and due time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRun {
    /// Rule name, the path of its script under `rules/` without `.rhai`.
    pub rule: String,
    pub process: String,
    /// States of the records the rule looks at; empty means every state that is not final.
    #[serde(default)]
    pub states: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedRuns {
    #[default]
    RunOnce,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRecord {
    pub process: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub fields: Fields,
}
