//! Business-hours calendars (`workflows/calendars/*.yaml`). Only the model and its
//! validation live here; business-time arithmetic belongs to the SLA engine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Name that SLA policies refer to, e.g. `office-berlin`.
    pub calendar: String,
    /// IANA time zone of the wall-clock hours, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Working hours per weekday (`mon` … `sun`); a day not listed is not worked.
    pub hours: BTreeMap<String, DayHours>,
    /// Dates with no business hours, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub fn parse(name: &str) -> Option<Weekday> {
        Some(match name {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

/// A wall-clock time written `HH:MM` (or `H:MM`). `24:00` is accepted as an end of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay {
    /// Minutes since midnight, 0 ..= 1440.
    pub minutes: u16,
}

impl TimeOfDay {
    pub fn parse(text: &str) -> Result<TimeOfDay, String> {
        let invalid = || format!("invalid time `{text}`: write it as \"HH:MM\", e.g. \"08:30\"");
        let (hours, minutes) = text.trim().split_once(':').ok_or_else(invalid)?;
        if hours.is_empty() || hours.len() > 2 || minutes.len() != 2 {
            return Err(invalid());
        }
        let hours: u16 = hours.parse().map_err(|_| invalid())?;
        let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
        if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
            return Err(invalid());
        }
        Ok(TimeOfDay {
            minutes: hours * 60 + minutes,
        })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for TimeOfDay {
    /// Always written as a quoted string so that no YAML 1.1 reader takes it for a
    /// base-60 number.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeOfDay;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time written \"HH:MM\"")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<TimeOfDay, E> {
                TimeOfDay::parse(value).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<TimeOfDay, E> {
                Err(E::custom(format!(
                    "the time was read as the number {value}: write it in quotes, e.g. \"10:00\""
                )))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<TimeOfDay, E> {
                self.visit_u64(value.unsigned_abs())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Calendar {
    /// Checks the calendar's own consistency; returns (path, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.timezone.trim().is_empty() || !self.timezone.contains('/') && self.timezone != "UTC"
        {
            problems.push((
                "timezone".to_owned(),
                format!(
                    "invalid time zone `{}`: use an IANA name such as Europe/Berlin or UTC",
                    self.timezone
                ),
            ));
        }
        for (day, hours) in &self.hours {
            if Weekday::parse(day).is_none() {
                problems.push((
                    format!("hours.{day}"),
                    format!("unknown weekday `{day}`: use mon, tue, wed, thu, fri, sat or sun"),
                ));
            }
            if hours.end <= hours.start {
                problems.push((
                    format!("hours.{day}.end"),
                    format!(
                        "business hours end ({}) before they start ({}): make `end` later than `start`",
                        hours.end, hours.start
                    ),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_parses_short_hours() {
        assert_eq!(TimeOfDay::parse("9:00").unwrap().minutes, 540);
        assert_eq!(TimeOfDay::parse("17:30").unwrap().minutes, 1050);
        assert!(TimeOfDay::parse("25:00").is_err());
        assert!(TimeOfDay::parse("9").is_err());
    }

    #[test]
    fn time_of_day_serializes_quoted() {
        let day = DayHours {
            start: TimeOfDay::parse("8:30").unwrap(),
            end: TimeOfDay::parse("17:30").unwrap(),
        };
        let text = serde_norway::to_string(&day).unwrap();
        assert!(text.contains("start: 08:30") || text.contains("start: '08:30'"));
    }
}
