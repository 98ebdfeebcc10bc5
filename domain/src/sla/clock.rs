//! One SLA clock: how much business time it has counted, whether it runs, and when it is due.
//!
//! A clock only records what its events say (start, pause, resume, retarget, stop, warning,
//! breach); what it shows at an instant is computed from that and the calendar, with no clock of
//! its own, so the same events always give the same answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SlaMetric;
use super::calendar::BusinessCalendar;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub metric: SlaMetric,
    /// 1 for the first run; a next-response clock counts up with each customer message that
    /// starts one. Warnings and breaches happen at most once per cycle.
    pub cycle: u32,
    pub target_seconds: u64,
    pub started_at: DateTime<Utc>,
    /// Business time counted before `running_since` (or in all, when not running).
    pub elapsed_ms: i64,
    /// Set while the clock runs.
    pub running_since: Option<DateTime<Utc>>,
    /// While running: when the target is reached, and when the clock becomes at risk.
    pub due_at: Option<DateTime<Utc>>,
    pub warn_at: Option<DateTime<Utc>>,
    pub warned: bool,
    pub breached: bool,
    /// Set once the clock has stopped for good (for this cycle): met or not.
    pub stopped_at: Option<DateTime<Utc>>,
    pub met: Option<bool>,
}

/// What a clock shows at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    Running,
    Paused,
    AtRisk,
    Breached,
    Met,
}

impl ClockState {
    pub const ALL: [ClockState; 5] = [
        ClockState::Running,
        ClockState::Paused,
        ClockState::AtRisk,
        ClockState::Breached,
        ClockState::Met,
    ];

    /// How bad it is, for showing a ticket's worst clock: breached, at risk, running, paused,
    /// met.
    pub fn severity(self) -> u8 {
        match self {
            ClockState::Breached => 5,
            ClockState::AtRisk => 4,
            ClockState::Running => 3,
            ClockState::Paused => 2,
            ClockState::Met => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Paused => "paused",
            ClockState::AtRisk => "at_risk",
            ClockState::Breached => "breached",
            ClockState::Met => "met",
        }
    }
}

impl std::fmt::Display for ClockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ClockState {
    type Err = crate::ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ClockState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                crate::ValidationError::new(
                    "sla_state",
                    format!(
                        "`{text}` is not one of {}",
                        ClockState::ALL.map(ClockState::as_str).join(", ")
                    ),
                )
            })
    }
}

impl TryFrom<String> for ClockState {
    type Error = crate::ValidationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockView {
    pub metric: SlaMetric,
    pub cycle: u32,
    pub target_seconds: u64,
    pub started_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub elapsed_business_seconds: i64,
    /// Negative once breached.
    pub remaining_seconds: i64,
    pub state: ClockState,
}

impl Clock {
    pub fn target_ms(&self) -> i64 {
        i64::try_from(self.target_seconds)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000)
    }

    pub fn threshold_ms(&self, at_risk_percent: u8) -> i64 {
        self.target_ms() / 100 * i64::from(at_risk_percent)
    }

    pub fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// Business time counted by `at`.
    pub fn elapsed_at(&self, calendar: &BusinessCalendar, at: DateTime<Utc>) -> i64 {
        self.elapsed_ms
            + self
                .running_since
                .map_or(0, |since| calendar.business_millis(since, at))
    }

    /// When a clock running from `since` with `elapsed_ms` already counted reaches `goal_ms`.
    pub fn instant_of(
        calendar: &BusinessCalendar,
        since: DateTime<Utc>,
        elapsed_ms: i64,
        goal_ms: i64,
    ) -> Option<DateTime<Utc>> {
        calendar.add_business_millis(since, goal_ms - elapsed_ms)
    }

    /// The deadline and warning instants for a clock running from `since`.
    pub fn schedule(
        &self,
        calendar: &BusinessCalendar,
        since: DateTime<Utc>,
        elapsed_ms: i64,
        at_risk_percent: u8,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (
            Self::instant_of(calendar, since, elapsed_ms, self.target_ms()),
            Self::instant_of(
                calendar,
                since,
                elapsed_ms,
                self.threshold_ms(at_risk_percent),
            ),
        )
    }

    /// What the clock's events alone say it shows: a warning or breach is an event, so a running
    /// clock turns at risk and breached the moment the scheduler records it. (`view` also
    /// judges by the time elapsed at an instant.)
    pub fn recorded_state(&self) -> ClockState {
        match (self.met, self.is_running()) {
            (Some(true), _) => ClockState::Met,
            (Some(false), _) => ClockState::Breached,
            _ if self.breached => ClockState::Breached,
            (None, true) if self.warned => ClockState::AtRisk,
            (None, true) => ClockState::Running,
            (None, false) => ClockState::Paused,
        }
    }

    /// What the clock shows at `now`.
    pub fn view(
        &self,
        calendar: &BusinessCalendar,
        at_risk_percent: u8,
        now: DateTime<Utc>,
    ) -> ClockView {
        let elapsed = match self.stopped_at {
            Some(_) => self.elapsed_ms,
            None => self.elapsed_at(calendar, now),
        };
        let target = self.target_ms();
        let state = match (self.met, self.is_running()) {
            (Some(true), _) => ClockState::Met,
            (Some(false), _) => ClockState::Breached,
            _ if self.breached || elapsed >= target => ClockState::Breached,
            (None, false) => ClockState::Paused,
            (None, true) if self.warned || elapsed >= self.threshold_ms(at_risk_percent) => {
                ClockState::AtRisk
            }
            (None, true) => ClockState::Running,
        };
        ClockView {
            metric: self.metric,
            cycle: self.cycle,
            target_seconds: self.target_seconds,
            started_at: self.started_at,
            due_at: self.due_at,
            elapsed_business_seconds: elapsed / 1000,
            remaining_seconds: (target - elapsed).div_euclid(1000),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn clock() -> Clock {
        let calendar = BusinessCalendar::always_open();
        let mut clock = Clock {
            metric: SlaMetric::Resolution,
            cycle: 1,
            target_seconds: 3600,
            started_at: at(0),
            elapsed_ms: 0,
            running_since: Some(at(0)),
            due_at: None,
            warn_at: None,
            warned: false,
            breached: false,
            stopped_at: None,
            met: None,
        };
        let (due, warn) = clock.schedule(&calendar, at(0), 0, 75);
        clock.due_at = due;
        clock.warn_at = warn;
        clock
    }

    #[test]
    fn a_running_clock_moves_from_running_to_at_risk_to_breached() {
        let calendar = BusinessCalendar::always_open();
        let clock = clock();
        assert_eq!(clock.due_at, Some(at(60)));
        assert_eq!(clock.warn_at, Some(at(45)));
        let states: Vec<(ClockState, i64)> = [10, 50, 70]
            .iter()
            .map(|m| {
                let view = clock.view(&calendar, 75, at(*m));
                (view.state, view.remaining_seconds)
            })
            .collect();
        assert_eq!(
            states,
            vec![
                (ClockState::Running, 3000),
                (ClockState::AtRisk, 600),
                (ClockState::Breached, -600)
            ]
        );
    }

    #[test]
    fn a_paused_clock_keeps_its_count_and_a_stopped_one_its_verdict() {
        let calendar = BusinessCalendar::always_open();
        let mut paused = clock();
        paused.elapsed_ms = 20 * 60_000;
        paused.running_since = None;
        let view = paused.view(&calendar, 75, at(500));
        assert_eq!(
            (view.state, view.elapsed_business_seconds),
            (ClockState::Paused, 1200)
        );
        let mut met = paused.clone();
        met.stopped_at = Some(at(20));
        met.met = Some(true);
        assert_eq!(met.view(&calendar, 75, at(900)).state, ClockState::Met);
    }
}
