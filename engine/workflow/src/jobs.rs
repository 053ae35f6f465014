//! Scheduled jobs (`workflows/schedules/*.yaml`): cron expressions in a time zone that open
//! records, such as a monthly CMDB verification task. The expressions themselves are
//! checked by the SLA crate, which evaluates them.

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
    /// The record each run opens.
    pub open: OpenRecord,
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
