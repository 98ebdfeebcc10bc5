//! Business calendars: when the clock runs.
//!
//! A calendar is a time zone, opening intervals per weekday (several a day; an interval whose
//! end is not after its start runs past midnight), and holidays on which no interval starts —
//! or simply "always open". Everything is computed on the real timeline (UTC): local opening
//! times are converted with the zone's rules for that very date, so a day on which the clocks
//! change is 23 or 25 hours long, exactly as it was. A local time that does not exist (the hour
//! skipped in spring) moves to the first instant after the gap.
//!
//! Business time is counted in milliseconds, so no rounding accumulates across pauses.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::values::ValidationError;

/// How far ahead a deadline is searched for before the calendar is declared closed for good.
const HORIZON_DAYS: i64 = 3_700;

/// One opening interval of a weekday, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterval {
    pub start: NaiveTime,
    /// Not after `start`: the interval ends at this time on the next day.
    pub end: NaiveTime,
}

impl OpenInterval {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }

    fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusinessHours {
    /// Open every second of every day, holidays included.
    AlwaysOpen,
    /// Opening intervals per weekday, Monday first.
    Weekly { days: [Vec<OpenInterval>; 7] },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessCalendar {
    pub timezone: Tz,
    pub hours: BusinessHours,
    /// Local dates on which no interval starts.
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
}

/// An open period on the real timeline.
type Period = (DateTime<Utc>, DateTime<Utc>);

impl BusinessCalendar {
    /// Open around the clock, in UTC: the default policy's calendar.
    pub fn always_open() -> Self {
        Self {
            timezone: Tz::UTC,
            hours: BusinessHours::AlwaysOpen,
            holidays: BTreeSet::new(),
        }
    }

    /// A calendar with the same intervals on each of `weekdays` (0 = Monday).
    pub fn weekly(timezone: Tz, weekdays: &[usize], intervals: &[OpenInterval]) -> Self {
        let mut days: [Vec<OpenInterval>; 7] = Default::default();
        for day in weekdays {
            if let Some(slot) = days.get_mut(*day) {
                slot.extend_from_slice(intervals);
            }
        }
        Self {
            timezone,
            hours: BusinessHours::Weekly { days },
            holidays: BTreeSet::new(),
        }
    }

    pub fn with_holidays(mut self, holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        self.holidays.extend(holidays);
        self
    }

    /// A calendar that is never open cannot carry an SLA.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let BusinessHours::Weekly { days } = &self.hours
            && days.iter().all(Vec::is_empty)
        {
            return Err(ValidationError::new(
                "hours",
                "must open at least once a week",
            ));
        }
        Ok(())
    }

    /// The first instant at or after `naive` (local) that exists in the zone.
    fn instant(&self, naive: NaiveDateTime, latest: bool) -> DateTime<Utc> {
        let mut probe = naive;
        for _ in 0..(4 * 60) {
            match self.timezone.from_local_datetime(&probe) {
                LocalResult::Single(at) => return at.with_timezone(&Utc),
                LocalResult::Ambiguous(early, late) => {
                    return if latest { late } else { early }.with_timezone(&Utc);
                }
                // Skipped by a clock change: the first minute after the gap.
                LocalResult::None => probe += Duration::minutes(1),
            }
        }
        Utc.from_utc_datetime(&naive)
    }

    /// The open periods of the intervals that start on local `date`.
    fn periods_of(&self, date: NaiveDate, days: &[Vec<OpenInterval>; 7]) -> Vec<Period> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        days[weekday]
            .iter()
            .map(|interval| {
                let start = self.instant(date.and_time(interval.start), false);
                let end_date = if interval.overnight() {
                    date.succ_opt().unwrap_or(date)
                } else {
                    date
                };
                let end = self.instant(end_date.and_time(interval.end), true);
                (start, end)
            })
            .filter(|(start, end)| end > start)
            .collect()
    }

    /// Open periods that end after `from`, in order, merged where they touch or overlap, the
    /// first clipped to start no earlier than `from`.
    fn open_periods(&self, from: DateTime<Utc>) -> impl Iterator<Item = Period> + '_ {
        let days = match &self.hours {
            BusinessHours::AlwaysOpen => None,
            BusinessHours::Weekly { days } => Some(days),
        };
        // Start a day early: an overnight interval of yesterday may still be open.
        let first_date = from.with_timezone(&self.timezone).date_naive() - Duration::days(1);
        let mut date = first_date;
        let mut pending: Vec<Period> = Vec::new();
        let mut always = days.is_none().then_some(from);
        std::iter::from_fn(move || {
            if let Some(start) = always.take() {
                return Some((start, DateTime::<Utc>::MAX_UTC));
            }
            let days = days?;
            loop {
                // Generate a day ahead of what is emitted, so that periods spilling from the
                // next day can be merged before the current one is handed out.
                while pending.len() < 2 && (date - first_date).num_days() <= HORIZON_DAYS {
                    pending.extend(self.periods_of(date, days));
                    pending.sort();
                    merge(&mut pending);
                    date = date.succ_opt()?;
                }
                if pending.is_empty() {
                    return None;
                }
                let (start, end) = pending.remove(0);
                if end <= from {
                    continue;
                }
                return Some((start.max(from), end));
            }
        })
    }

    /// Business milliseconds in `[from, to)`.
    pub fn business_millis(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = 0;
        for (start, end) in self.open_periods(from) {
            if start >= to {
                break;
            }
            total += (end.min(to) - start).num_milliseconds();
        }
        total
    }

    /// The instant at which `millis` business milliseconds have passed since `from`; `None` if
    /// the calendar never opens long enough.
    pub fn add_business_millis(&self, from: DateTime<Utc>, millis: i64) -> Option<DateTime<Utc>> {
        if millis <= 0 {
            return Some(from);
        }
        let mut remaining = millis;
        for (start, end) in self.open_periods(from) {
            let length = (end - start).num_milliseconds();
            if remaining <= length {
                return Some(start + Duration::milliseconds(remaining));
            }
            remaining -= length;
        }
        None
    }
}

/// Merges touching or overlapping periods of a sorted list in place.
fn merge(periods: &mut Vec<Period>) {
    let mut merged: Vec<Period> = Vec::with_capacity(periods.len());
    for &(start, end) in periods.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *periods = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn hours(h: i64) -> i64 {
        h * 3_600_000
    }

    fn office(tz: Tz) -> BusinessCalendar {
        BusinessCalendar::weekly(
            tz,
            &[0, 1, 2, 3, 4],
            &[OpenInterval::new(time(9, 0), time(17, 0))],
        )
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    struct Case {
        name: &'static str,
        calendar: BusinessCalendar,
        from: DateTime<Utc>,
        business_hours: i64,
        due: DateTime<Utc>,
    }

    fn cases() -> Vec<Case> {
        let friday = |h, m| local(BERLIN, 2026, 11, 20, h, m);
        vec![
            Case {
                name: "inside one day",
                calendar: office(BERLIN),
                from: friday(10, 0),
                business_hours: 3,
                due: friday(13, 0),
            },
            Case {
                name: "over the weekend",
                calendar: office(BERLIN),
                from: friday(16, 0),
                business_hours: 2,
                due: local(BERLIN, 2026, 11, 23, 10, 0),
            },
            Case {
                name: "starting while closed",
                calendar: office(BERLIN),
                from: local(BERLIN, 2026, 11, 21, 12, 0),
                business_hours: 1,
                due: local(BERLIN, 2026, 11, 23, 10, 0),
            },
            Case {
                name: "over a holiday Monday",
                calendar: office(BERLIN)
                    .with_holidays([NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default()]),
                from: friday(16, 0),
                business_hours: 2,
                due: local(BERLIN, 2026, 11, 24, 10, 0),
            },
            Case {
                name: "two intervals a day",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4],
                    &[
                        OpenInterval::new(time(8, 0), time(12, 0)),
                        OpenInterval::new(time(13, 0), time(17, 0)),
                    ],
                ),
                from: friday(11, 0),
                business_hours: 2,
                due: friday(14, 0),
            },
            Case {
                name: "overnight interval",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4],
                    &[OpenInterval::new(time(22, 0), time(6, 0))],
                ),
                from: local(BERLIN, 2026, 11, 23, 23, 0),
                business_hours: 4,
                due: local(BERLIN, 2026, 11, 24, 3, 0),
            },
            Case {
                name: "overnight interval continuing from yesterday",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4],
                    &[OpenInterval::new(time(22, 0), time(6, 0))],
                ),
                from: local(BERLIN, 2026, 11, 24, 5, 0),
                business_hours: 2,
                due: local(BERLIN, 2026, 11, 24, 23, 0),
            },
            Case {
                name: "Berlin spring forward: the office opens at 08:00 summer time",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4, 5, 6],
                    &[OpenInterval::new(time(8, 0), time(18, 0))],
                ),
                from: local(BERLIN, 2026, 3, 28, 17, 0),
                business_hours: 2,
                due: local(BERLIN, 2026, 3, 29, 9, 0),
            },
            Case {
                name: "Berlin spring forward: a day open around the clock has 23 hours",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4, 5, 6],
                    &[OpenInterval::new(time(0, 0), time(0, 0))],
                ),
                from: local(BERLIN, 2026, 3, 29, 0, 0),
                business_hours: 23,
                due: local(BERLIN, 2026, 3, 30, 0, 0),
            },
            Case {
                name: "Berlin fall back: a day open around the clock has 25 hours",
                calendar: BusinessCalendar::weekly(
                    BERLIN,
                    &[0, 1, 2, 3, 4, 5, 6],
                    &[OpenInterval::new(time(0, 0), time(0, 0))],
                ),
                from: local(BERLIN, 2026, 10, 25, 0, 0),
                business_hours: 25,
                due: local(BERLIN, 2026, 10, 26, 0, 0),
            },
            Case {
                name: "New York spring forward: an interval starting in the skipped hour starts after it",
                calendar: BusinessCalendar::weekly(
                    NEW_YORK,
                    &[6],
                    &[OpenInterval::new(time(2, 30), time(4, 0))],
                ),
                from: local(NEW_YORK, 2026, 3, 8, 0, 0),
                business_hours: 1,
                due: local(NEW_YORK, 2026, 3, 8, 4, 0),
            },
            Case {
                name: "New York fall back: the repeated hour counts twice",
                calendar: BusinessCalendar::weekly(
                    NEW_YORK,
                    &[6],
                    &[OpenInterval::new(time(0, 0), time(3, 0))],
                ),
                from: local(NEW_YORK, 2026, 11, 1, 0, 0),
                business_hours: 4,
                due: local(NEW_YORK, 2026, 11, 1, 3, 0),
            },
            Case {
                name: "always open ignores weekends and holidays",
                calendar: BusinessCalendar::always_open()
                    .with_holidays([NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default()]),
                from: friday(16, 0),
                business_hours: 48,
                due: local(BERLIN, 2026, 11, 22, 16, 0),
            },
        ]
    }

    #[test]
    fn deadlines_and_durations_agree_with_the_table() {
        for case in cases() {
            let due = case
                .calendar
                .add_business_millis(case.from, hours(case.business_hours));
            assert_eq!(due, Some(case.due), "{}", case.name);
            assert_eq!(
                case.calendar.business_millis(case.from, case.due),
                hours(case.business_hours),
                "{} (duration)",
                case.name
            );
        }
    }

    #[test]
    fn a_pause_spanning_closed_hours_counts_only_the_open_part() {
        let calendar = office(BERLIN);
        // Paused Friday 16:00, resumed Monday 10:00: two business hours passed while paused.
        let paused = calendar.business_millis(
            local(BERLIN, 2026, 11, 20, 16, 0),
            local(BERLIN, 2026, 11, 23, 10, 0),
        );
        assert_eq!(paused, hours(2));
    }

    #[test]
    fn a_calendar_without_hours_is_refused_and_never_finds_a_deadline() {
        let closed = BusinessCalendar::weekly(BERLIN, &[], &[]);
        assert!(closed.validate().is_err());
        assert_eq!(
            closed.add_business_millis(local(BERLIN, 2026, 1, 1, 0, 0), 1_000),
            None
        );
        assert!(office(BERLIN).validate().is_ok());
    }

    fn calendars() -> impl Strategy<Value = BusinessCalendar> {
        let interval = (0u32..24, 0u32..4, 1u32..16).prop_map(|(h, q, len)| {
            let start = time(h, q * 15);
            let end = start + Duration::minutes(i64::from(len) * 30);
            OpenInterval::new(start, end)
        });
        let zone = prop_oneof![
            Just(BERLIN),
            Just(NEW_YORK),
            Just(Tz::UTC),
            Just(chrono_tz::Australia::Sydney)
        ];
        (
            zone,
            proptest::collection::vec(proptest::collection::vec(interval, 0..3), 7),
            any::<bool>(),
        )
            .prop_map(|(tz, per_day, always)| {
                if always {
                    return BusinessCalendar::always_open();
                }
                let mut days: [Vec<OpenInterval>; 7] = Default::default();
                for (slot, intervals) in days.iter_mut().zip(per_day) {
                    *slot = intervals;
                }
                days[2].push(OpenInterval::new(time(9, 0), time(17, 0)));
                BusinessCalendar {
                    timezone: tz,
                    hours: BusinessHours::Weekly { days },
                    holidays: BTreeSet::new(),
                }
            })
    }

    fn instants() -> impl Strategy<Value = DateTime<Utc>> {
        // 2025-2027, which includes several clock changes in every zone above.
        (1_735_689_600i64..1_830_297_600)
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn remaining_time_never_grows_while_a_clock_runs(
            calendar in calendars(), start in instants(), a in 0i64..2_000_000, b in 0i64..2_000_000,
            target_hours in 1i64..200,
        ) {
            let target = hours(target_hours);
            let (early, late) = (start + Duration::seconds(a.min(b)), start + Duration::seconds(a.max(b)));
            let remaining = |t| target - calendar.business_millis(start, t);
            prop_assert!(remaining(late) <= remaining(early));
        }

        #[test]
        fn pausing_never_shortens_a_deadline(
            calendar in calendars(), start in instants(), run in 0i64..500_000, pause in 0i64..500_000,
            target_hours in 1i64..200,
        ) {
            let target = hours(target_hours);
            let unpaused = calendar.add_business_millis(start, target);
            let paused_at = start + Duration::seconds(run);
            let done = calendar.business_millis(start, paused_at).min(target);
            let resumed_at = paused_at + Duration::seconds(pause);
            let resumed = calendar.add_business_millis(resumed_at, target - done);
            if let (Some(unpaused), Some(resumed)) = (unpaused, resumed) {
                prop_assert!(resumed >= unpaused);
            }
        }

        #[test]
        fn the_deadline_is_exactly_the_target_of_business_time_away(
            calendar in calendars(), start in instants(), target_minutes in 1i64..20_000,
        ) {
            let target = target_minutes * 60_000;
            if let Some(due) = calendar.add_business_millis(start, target) {
                prop_assert_eq!(calendar.business_millis(start, due), target);
                prop_assert!(calendar.business_millis(start, due - Duration::milliseconds(1)) < target);
            }
        }
    }
}
