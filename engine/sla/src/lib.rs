//! Business-time arithmetic over calendars: working intervals per weekday in an IANA time
//! zone, holidays and one-off exceptions. Pure: no IO, no clock.
//!
//! A calendar is turned into working intervals of real time (UTC instants) one local date
//! at a time, so daylight-saving changes need no special case. An interval from 01:00 to
//! 05:00 local on the night clocks go forward lasts three real hours. Every business
//! duration here is real time inside those intervals.

mod calendar;
mod clock;
mod cron;

pub use calendar::{BusinessCalendar, CalendarError, DayInterval};
pub use clock::{ClockReading, Phase, read_clock};
pub use cron::{CronError, CronSchedule};
