//! Change schedules: the planned window of a record, conflicts with other records on the
//! same configuration items, and freeze windows (`workflows/freeze/*.yaml`).

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tend_domain::Record;

/// The `schedule` block of a definition: which fields hold a record's planned window and
/// its configuration items, and when conflicts are checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    /// Datetime field of the planned start.
    pub start: String,
    /// Datetime field of the planned end.
    pub end: String,
    /// Fields that name the configuration items (one field or a list, e.g. `[ci, cis]`),
    /// each holding one name or several separated by commas, semicolons, spaces or lines.
    #[serde(default, deserialize_with = "crate::model::one_or_many")]
    pub cis: Vec<String>,
    /// Transitions that are refused while the record's window conflicts.
    pub check_on: Vec<String>,
    /// States of other records whose windows block this one.
    pub blocking_states: Vec<String>,
    /// Records exempt from freeze windows (not from conflicts), e.g. emergency changes.
    #[serde(default)]
    pub freeze_exempt: Option<Exemption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub field: String,
    pub values: Vec<String>,
}

/// A file of `workflows/freeze/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeFile {
    pub freeze_windows: IndexMap<String, FreezeWindow>,
}

/// A period in which no planned work may happen, e.g. the year-end closing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    #[serde(default)]
    pub label: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Processes the window applies to; empty means every process with a schedule.
    #[serde(default)]
    pub processes: Vec<String>,
}

/// The planned window of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Checks whether two half-open windows `[start, end)` share an instant.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl ScheduleDef {
    /// Reads the record's planned window; `None` while either end is missing or invalid.
    pub fn window(&self, record: &Record) -> Option<Window> {
        let read = |field: &str| {
            record
                .field_str(field)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|time| time.with_timezone(&Utc))
        };
        Some(Window {
            start: read(&self.start)?,
            end: read(&self.end)?,
        })
    }

    /// Lists the configuration items the record names, lower-cased and without repeats.
    pub fn cis(&self, record: &Record) -> Vec<String> {
        let mut names: Vec<String> = self
            .cis
            .iter()
            .filter_map(|field| record.field_str(field))
            .flat_map(|text| text.split(|c: char| c == ',' || c == ';' || c.is_whitespace()))
            .filter(|name| !name.is_empty())
            .map(str::to_lowercase)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn exempt_from_freeze(&self, record: &Record) -> bool {
        self.freeze_exempt.as_ref().is_some_and(|exemption| {
            record
                .field_str(&exemption.field)
                .is_some_and(|value| exemption.values.iter().any(|v| v == value))
        })
    }

    /// Lists why the record's window may not be used: other records in a blocking state
    /// whose windows overlap on a shared configuration item, and freeze windows it
    /// overlaps. Empty when the record has no complete window.
    pub fn conflicts(
        &self,
        record: &Record,
        others: &[Record],
        freezes: &IndexMap<String, FreezeWindow>,
    ) -> Vec<String> {
        let Some(window) = self.window(record) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if window.end <= window.start {
            problems.push(format!(
                "the planned end {} is not after the planned start {}: correct `{}` or `{}`",
                window.end.to_rfc3339(),
                window.start.to_rfc3339(),
                self.start,
                self.end
            ));
            return problems;
        }
        let cis = self.cis(record);
        for other in others {
            if other.id == record.id || !self.blocking_states.contains(&other.state) {
                continue;
            }
            let Some(theirs) = self.window(other) else {
                continue;
            };
            if !window.overlaps(&theirs) {
                continue;
            }
            let shared: Vec<String> = self
                .cis(other)
                .into_iter()
                .filter(|ci| cis.contains(ci))
                .collect();
            if shared.is_empty() {
                continue;
            }
            problems.push(format!(
                "{} ({}) works on {} from {} to {}, which overlaps this window: move the window or coordinate with its owner",
                other.number,
                other.state,
                shared.join(", "),
                theirs.start.format("%Y-%m-%d %H:%M UTC"),
                theirs.end.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if !self.exempt_from_freeze(record) {
            for (name, freeze) in freezes {
                if !freeze.processes.is_empty() && !freeze.processes.contains(&record.process) {
                    continue;
                }
                let frozen = Window {
                    start: freeze.start,
                    end: freeze.end,
                };
                if window.overlaps(&frozen) {
                    problems.push(format!(
                        "the window overlaps the freeze window `{}` ({} to {}): plan it outside the freeze{}",
                        freeze.label.as_deref().unwrap_or(name),
                        freeze.start.format("%Y-%m-%d %H:%M UTC"),
                        freeze.end.format("%Y-%m-%d %H:%M UTC"),
                        self.freeze_exempt
                            .as_ref()
                            .map(|e| format!(", or set `{}` to {}", e.field, e.values.join(" or ")))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        problems
    }
}
