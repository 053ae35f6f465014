//! Business-hours calendars (`workflows/calendars/*.yaml`). Only the model and its
//! validation live here; business-time arithmetic belongs to the SLA engine.
//!
//! ```yaml
//! calendar: business-hours
//! timezone: Europe/Berlin
//! hours:
//!   mon: "09:00-17:00"                  # one interval
//!   tue: ["08:00-12:00", "13:00-17:00"] # several
//!   fri: { start: "09:00", end: "13:00" }
//!   sat: "22:00-06:00"                  # ends the next morning
//! holidays: [2026-12-25, { every_year: "12-26" }]
//! exceptions: [{ date: 2026-12-24, hours: "09:00-12:00" }, { date: 2026-12-31, hours: [] }]
//! include: [public-holidays]            # holidays and exceptions of other calendars
//! ```

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
    /// Working hours per weekday (`mon` … `sun`, or `every_day`); a day not listed is not
    /// worked.
    #[serde(default)]
    pub hours: BTreeMap<String, Intervals>,
    /// Dates with no business hours: `YYYY-MM-DD`, or `{ every_year: "MM-DD" }`.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// Dates whose hours replace their weekday's (an empty list closes the date).
    #[serde(default)]
    pub exceptions: Vec<Exception>,
    /// Calendars whose holidays and exceptions this one adds to its own.
    #[serde(default)]
    pub include: Vec<String>,
}

/// A holiday: one date, or the same month and day every year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Holiday {
    Date(chrono::NaiveDate),
    Yearly { every_year: String },
}

impl Holiday {
    /// Month and day of a yearly holiday, from `MM-DD`.
    pub fn month_day(&self) -> Option<Result<(u32, u32), String>> {
        let Holiday::Yearly { every_year } = self else {
            return None;
        };
        let invalid = || {
            format!(
                "invalid yearly holiday `{every_year}`: write month and day as \"MM-DD\", e.g. \"12-26\""
            )
        };
        let parsed = every_year.split_once('-').and_then(|(m, d)| {
            let (m, d) = (m.parse::<u32>().ok()?, d.parse::<u32>().ok()?);
            // 2024 is a leap year, so 02-29 is a valid yearly holiday.
            chrono::NaiveDate::from_ymd_opt(2024, m, d).map(|_| (m, d))
        });
        Some(parsed.ok_or_else(invalid))
    }
}

/// Hours that replace a date's weekday hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub date: chrono::NaiveDate,
    pub hours: Intervals,
}

/// The working intervals of a day: one interval, or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Intervals(pub Vec<DayHours>);

impl<'de> Deserialize<'de> for Intervals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Intervals;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("hours written \"HH:MM-HH:MM\", a list of them, or { start, end }")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Intervals, E> {
                DayHours::parse(value)
                    .map(|day| Intervals(vec![day]))
                    .map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Intervals, A::Error> {
                let mut intervals = Vec::new();
                while let Some(text) = seq.next_element::<DayHoursText>()? {
                    intervals.push(text.0);
                }
                Ok(Intervals(intervals))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Intervals, A::Error> {
                let day = DayHours::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Intervals(vec![day]))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One interval written as text, `HH:MM-HH:MM`, or as `{ start, end }`.
struct DayHoursText(DayHours);

impl<'de> Deserialize<'de> for DayHoursText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let intervals = Intervals::deserialize(deserializer)?;
        match intervals.0.as_slice() {
            [one] => Ok(DayHoursText(*one)),
            _ => Err(serde::de::Error::custom(
                "invalid hours: a list of hours contains intervals such as \"09:00-12:00\", not lists",
            )),
        }
    }
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

impl DayHours {
    /// Parses `HH:MM-HH:MM`; an end at or before the start ends the next day.
    pub fn parse(text: &str) -> Result<DayHours, String> {
        let (start, end) = text.split_once('-').ok_or_else(|| {
            format!("invalid hours `{text}`: write them as \"HH:MM-HH:MM\", e.g. \"09:00-17:00\"")
        })?;
        Ok(DayHours {
            start: TimeOfDay::parse(start)?,
            end: TimeOfDay::parse(end)?,
        })
    }

    /// Checks whether the interval ends the next day (an end at or before its start).
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
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
        if self.timezone.parse::<chrono_tz::Tz>().is_err() && problems.is_empty() {
            problems.push((
                "timezone".to_owned(),
                format!(
                    "unknown time zone `{}`: use an IANA name such as Europe/Berlin or UTC",
                    self.timezone
                ),
            ));
        }
        for (day, hours) in &self.hours {
            if day != "every_day" && Weekday::parse(day).is_none() {
                problems.push((
                    format!("hours.{day}"),
                    format!("unknown weekday `{day}`: use mon, tue, wed, thu, fri, sat, sun or every_day"),
                ));
            }
            for interval in &hours.0 {
                if interval.start.minutes >= 24 * 60 {
                    problems.push((
                        format!("hours.{day}"),
                        format!("hours cannot start at 24:00: start `{day}` at 00:00 instead"),
                    ));
                }
                if interval.end == interval.start {
                    problems.push((
                        format!("hours.{day}"),
                        format!(
                            "the hours of `{day}` start and end at {}: give a later end, or 00:00-24:00 for the whole day",
                            interval.start
                        ),
                    ));
                }
            }
        }
        for (i, holiday) in self.holidays.iter().enumerate() {
            if let Some(Err(message)) = holiday.month_day() {
                problems.push((format!("holidays[{i}]"), message));
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
