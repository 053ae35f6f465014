//! SLA clocks: how much of a target a record has used, from the phases its history went
//! through. A clock is a pure function of those phases, the target and the calendar, so a
//! changed calendar or target recomputes it from the same history without losing paused
//! time.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{BusinessCalendar, CalendarError};

/// Phase of a clock from an instant on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Counting working time.
    Running,
    /// Not counting; the time is added to the due time when the clock runs again.
    Paused,
    /// Not counting, and the target was met or breached at the stop. A stopped clock may
    /// run again (a reopened record resumes its resolution clock).
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Stopped => "stopped",
        }
    }
}

/// A clock's state at one instant, with the figures behind its due time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockReading {
    pub phase: Phase,
    /// When the clock first ran.
    pub started_at: DateTime<Utc>,
    pub target: TimeDelta,
    /// Working time counted so far.
    pub elapsed: TimeDelta,
    /// When the target is used up if the clock keeps running: the start plus the target in
    /// working time, skipping the closed pauses. `None` while paused, when the due time is
    /// not known until the clock runs again.
    pub due_at: Option<DateTime<Utc>>,
    /// When the clock last stopped, if it is stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// The periods in which the clock did not count, oldest first; the last one may end at
    /// the reading's instant.
    pub pauses: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub breached: bool,
}

impl ClockReading {
    /// Working time left before the target is used up; negative once breached.
    pub fn left(&self) -> TimeDelta {
        self.target - self.elapsed
    }

    /// Returns the instant at which `percent` of the target is used, while the clock runs.
    pub fn threshold_at(
        &self,
        calendar: &BusinessCalendar,
        percent: u32,
    ) -> Result<Option<DateTime<Utc>>, CalendarError> {
        if self.phase != Phase::Running {
            return Ok(None);
        }
        let share = self.target * i32::try_from(percent).unwrap_or(i32::MAX) / 100;
        calendar
            .add_skipping(self.started_at, share, &self.pauses)
            .map(Some)
    }
}

/// Reads a clock at `now` from its phase changes: `(instant, phase)` in time order, the
/// first being when the clock first applied. Changes after `now` are ignored. Returns
/// `None` when the clock never ran.
pub fn read_clock(
    calendar: &BusinessCalendar,
    target: TimeDelta,
    changes: &[(DateTime<Utc>, Phase)],
    now: DateTime<Utc>,
) -> Result<Option<ClockReading>, CalendarError> {
    let changes: Vec<(DateTime<Utc>, Phase)> = changes
        .iter()
        .copied()
        .filter(|(at, _)| *at <= now)
        .collect();
    let Some(first_run) = changes
        .iter()
        .position(|(_, phase)| *phase == Phase::Running)
    else {
        return Ok(None);
    };
    let started_at = changes[first_run].0;
    let mut pauses: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut phase = Phase::Running;
    let mut since = started_at;
    let mut stopped_at = None;
    for &(at, next) in &changes[first_run + 1..] {
        if next == phase {
            continue;
        }
        if phase != Phase::Running && at > since {
            pauses.push((since, at));
        }
        if next == Phase::Stopped {
            stopped_at = Some(at);
        }
        phase = next;
        since = at;
    }
    // The closed pauses fix the due time; the open one, up to now, only the elapsed time.
    let closed = pauses.clone();
    if phase != Phase::Running && now > since {
        pauses.push((since, now));
    }
    let elapsed = calendar.elapsed_skipping(started_at, now, &pauses);
    let due_at = match phase {
        Phase::Paused => None,
        Phase::Running | Phase::Stopped => {
            Some(calendar.add_skipping(started_at, target, &closed)?)
        }
    };
    let breached = match (phase, due_at) {
        (Phase::Running, Some(due)) => now >= due && !target.is_zero(),
        (Phase::Stopped, Some(due)) => since > due,
        _ => elapsed > target,
    };
    Ok(Some(ClockReading {
        phase,
        started_at,
        target,
        elapsed,
        due_at,
        stopped_at: if phase == Phase::Stopped {
            stopped_at
        } else {
            None
        },
        pauses,
        breached,
    }))
}
