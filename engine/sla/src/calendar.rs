use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// How far ahead (or back) arithmetic looks for working time before it gives up.
const HORIZON_DAYS: u64 = 5 * 366;

/// Minutes in a day; an interval may end at this minute (24:00).
const DAY_MINUTES: u32 = 24 * 60;

/// A working interval of one local day, in minutes since local midnight. An end at or
/// before the start crosses midnight and ends on the next day (22:00-06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayInterval {
    pub start: u32,
    pub end: u32,
}

impl DayInterval {
    pub fn new(start: u32, end: u32) -> Result<DayInterval, CalendarError> {
        if start >= DAY_MINUTES || end > DAY_MINUTES {
            return Err(CalendarError::InvalidInterval { start, end });
        }
        Ok(DayInterval { start, end })
    }

    /// Length in minutes, with an end at or before the start counted into the next day.
    fn minutes(self) -> u32 {
        if self.end > self.start {
            self.end - self.start
        } else {
            DAY_MINUTES - self.start + self.end
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "invalid working interval {start}-{end} (minutes since midnight): use 0 to 1439 for the start and up to 1440 for the end"
    )]
    InvalidInterval { start: u32, end: u32 },
    #[error(
        "the calendar does not hold {duration} of working time within {HORIZON_DAYS} days of {from}: add working hours, remove holidays and closures, or shorten the target"
    )]
    NoWorkingTime {
        from: DateTime<Utc>,
        duration: TimeDelta,
    },
    #[error("the duration {0} is negative: give a duration of zero or more")]
    NegativeDuration(TimeDelta),
}

/// A calendar ready for arithmetic.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    tz: Tz,
    /// Working intervals per weekday, Monday first.
    week: [Vec<DayInterval>; 7],
    holidays: BTreeSet<NaiveDate>,
    /// Holidays on the same month and day every year.
    yearly: BTreeSet<(u32, u32)>,
    /// Dates whose working intervals replace the weekday's (empty: closed).
    exceptions: BTreeMap<NaiveDate, Vec<DayInterval>>,
}

impl BusinessCalendar {
    pub fn new(tz: Tz) -> BusinessCalendar {
        BusinessCalendar {
            tz,
            week: Default::default(),
            holidays: BTreeSet::new(),
            yearly: BTreeSet::new(),
            exceptions: BTreeMap::new(),
        }
    }

    /// Works around the clock every day.
    pub fn always(tz: Tz) -> BusinessCalendar {
        let mut calendar = BusinessCalendar::new(tz);
        for day in &mut calendar.week {
            day.push(DayInterval {
                start: 0,
                end: DAY_MINUTES,
            });
        }
        calendar
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Adds a working interval to a weekday.
    pub fn work(&mut self, day: Weekday, interval: DayInterval) -> &mut Self {
        self.week[day.num_days_from_monday() as usize].push(interval);
        self
    }

    pub fn holiday(&mut self, date: NaiveDate) -> &mut Self {
        self.holidays.insert(date);
        self
    }

    /// Adds a holiday on `month`/`day` every year. A date that does not exist in a year,
    /// such as 29 February in a common year, is skipped that year.
    pub fn yearly_holiday(&mut self, month: u32, day: u32) -> &mut Self {
        self.yearly.insert((month, day));
        self
    }

    /// Replaces the working intervals of one date: extra working time, shorter hours, or a
    /// closure when `intervals` is empty. An exception wins over a holiday.
    pub fn exception(&mut self, date: NaiveDate, intervals: Vec<DayInterval>) -> &mut Self {
        self.exceptions.insert(date, intervals);
        self
    }

    /// Adds the holidays and exceptions of `other`, as a calendar that includes it does.
    /// This calendar's own exceptions win.
    pub fn include(&mut self, other: &BusinessCalendar) -> &mut Self {
        self.holidays.extend(other.holidays.iter().copied());
        self.yearly.extend(other.yearly.iter().copied());
        for (date, intervals) in &other.exceptions {
            self.exceptions
                .entry(*date)
                .or_insert_with(|| intervals.clone());
        }
        self
    }

    /// Working minutes in a week without holidays, e.g. 2,400 for Monday to Friday 8 hours.
    pub fn weekly_minutes(&self) -> u32 {
        self.week
            .iter()
            .flatten()
            .map(|interval| interval.minutes())
            .sum()
    }

    fn intervals_of_date(&self, date: NaiveDate) -> &[DayInterval] {
        if let Some(intervals) = self.exceptions.get(&date) {
            return intervals;
        }
        if self.holidays.contains(&date) || self.yearly.contains(&(date.month(), date.day())) {
            return &[];
        }
        &self.week[date.weekday().num_days_from_monday() as usize]
    }

    /// Turns a local date and minute into an instant. A time in the gap of a spring-forward
    /// change becomes the first instant after the gap. A time that occurs twice becomes
    /// its first occurrence for a start and its second for an end.
    fn instant(&self, date: NaiveDate, minute: u32, end: bool) -> DateTime<Utc> {
        let (date, minute) = if minute >= DAY_MINUTES {
            (date + Days::new(1), minute - DAY_MINUTES)
        } else {
            (date, minute)
        };
        let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).expect("minute < 1440");
        let mut local = NaiveDateTime::new(date, time);
        // Gaps are at most a few hours; step forward until the local time exists.
        for _ in 0..(4 * 60) {
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(at) => return at.with_timezone(&Utc),
                LocalResult::Ambiguous(first, second) => {
                    return if end { second } else { first }.with_timezone(&Utc);
                }
                LocalResult::None => local += TimeDelta::minutes(1),
            }
        }
        Utc.from_utc_datetime(&local)
    }

    /// Working intervals (real time) of the intervals that start on local `date`, sorted.
    fn day_intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)> = self
            .intervals_of_date(date)
            .iter()
            .map(|interval| {
                let end = if interval.end > interval.start {
                    interval.end
                } else {
                    interval.end + DAY_MINUTES
                };
                (
                    self.instant(date, interval.start, false),
                    self.instant(date, end, true),
                )
            })
            .filter(|(start, end)| end > start)
            .collect();
        intervals.sort();
        intervals
    }

    /// Working intervals of the local dates `first` to `last`, with overlapping ones merged.
    fn merged(&self, first: NaiveDate, last: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut all = Vec::new();
        let mut date = first;
        while date <= last {
            all.extend(self.day_intervals(date));
            date = date + Days::new(1);
        }
        all.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(all.len());
        for (from, to) in all {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        merged
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Adds `duration` of business time to `start`: the instant at which that much working
    /// time has passed since `start`. Zero returns `start` itself. A result that falls
    /// exactly at the end of an interval is that end, not the start of the next one.
    pub fn add(
        &self,
        start: DateTime<Utc>,
        duration: TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        self.add_skipping(start, duration, &[])
    }

    /// Like [`BusinessCalendar::add`], with the `pauses` (start, end) taken out of working
    /// time, as a clock that was paused in them.
    pub fn add_skipping(
        &self,
        start: DateTime<Utc>,
        duration: TimeDelta,
        pauses: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<DateTime<Utc>, CalendarError> {
        if duration < TimeDelta::zero() {
            return Err(CalendarError::NegativeDuration(duration));
        }
        if duration.is_zero() {
            return Ok(start);
        }
        let mut left = duration;
        let mut cursor = start;
        // The day before may hold an interval that crosses into the start's date.
        let mut date = self.local_date(start) - Days::new(1);
        for _ in 0..HORIZON_DAYS {
            for (from, to) in self.day_intervals(date) {
                for (from, to) in without(from.max(cursor), to, pauses) {
                    if to <= cursor {
                        continue;
                    }
                    let from = from.max(cursor);
                    let available = to - from;
                    if left <= available {
                        return Ok(from + left);
                    }
                    left -= available;
                    cursor = to;
                }
            }
            date = date + Days::new(1);
        }
        Err(CalendarError::NoWorkingTime {
            from: start,
            duration,
        })
    }

    /// Subtracts `duration` of business time from `end`: the instant from which that much
    /// working time leads up to `end`, e.g. an escalation one business hour before a due
    /// time.
    pub fn subtract(
        &self,
        end: DateTime<Utc>,
        duration: TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        if duration < TimeDelta::zero() {
            return Err(CalendarError::NegativeDuration(duration));
        }
        if duration.is_zero() {
            return Ok(end);
        }
        let mut left = duration;
        let mut cursor = end;
        // Blocks of a week, merged so that an interval that crosses midnight and one of the
        // next day that overlaps it count once, latest first.
        let mut last = self.local_date(end) + Days::new(1);
        for _ in 0..HORIZON_DAYS / 7 + 1 {
            let first = last - Days::new(7);
            // Only working time from the block's first midnight on is complete here: the
            // day before the block is merged in for its intervals that cross into the
            // block, and the time before that midnight waits for the next block.
            let boundary = self.instant(first, 0, false);
            for (from, to) in self.merged(first - Days::new(1), last).into_iter().rev() {
                let from = from.max(boundary);
                let to = to.min(cursor);
                if from >= to {
                    continue;
                }
                let available = to - from;
                if left <= available {
                    return Ok(to - left);
                }
                left -= available;
                cursor = from;
            }
            cursor = cursor.min(boundary);
            last = first - Days::new(1);
        }
        Err(CalendarError::NoWorkingTime {
            from: end,
            duration,
        })
    }

    /// Measures the business time between `from` and `to` (zero when `to` is not later).
    pub fn elapsed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        self.elapsed_skipping(from, to, &[])
    }

    /// Like [`BusinessCalendar::elapsed`], without the time inside `pauses`.
    pub fn elapsed_skipping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        pauses: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> TimeDelta {
        let mut total = TimeDelta::zero();
        if to <= from {
            return total;
        }
        let mut cursor = from;
        let mut date = self.local_date(from) - Days::new(1);
        let last = self.local_date(to);
        while date <= last {
            for (start, end) in self.day_intervals(date) {
                for (start, end) in without(start.max(cursor), end.min(to), pauses) {
                    if end > start {
                        total += end - start;
                        cursor = cursor.max(end);
                    }
                }
            }
            date = date + Days::new(1);
        }
        total
    }
}

/// Splits `[from, to)` around the `pauses`, in order.
fn without(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pauses: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut pieces = vec![(from, to)];
    for &(pause_from, pause_to) in pauses {
        pieces = pieces
            .into_iter()
            .flat_map(|(a, b)| {
                let mut kept = Vec::new();
                if pause_to <= a || pause_from >= b {
                    kept.push((a, b));
                } else {
                    if pause_from > a {
                        kept.push((a, pause_from));
                    }
                    if pause_to < b {
                        kept.push((pause_to, b));
                    }
                }
                kept
            })
            .collect();
    }
    pieces.retain(|(a, b)| b > a);
    pieces.sort();
    pieces
}
