//! The workload forecast: how many tickets each coming hour is expected to bring, and how many
//! agents it takes to hold them.
//!
//! Each hour is forecast as the mean count of tickets created in the same weekday and hour over
//! the previous [`WEEKS`] weeks (a seasonal average), and agents needed by Little's law: tickets
//! held at once = arrivals per hour × hours each is held, divided by what one agent holds. When
//! more than [`WEEKS`] weeks of history exist, the last week is forecast from the weeks before
//! it and compared with what happened, so the forecast comes with its own error.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

/// Weeks of history each hour's forecast averages.
pub const WEEKS: i64 = 4;
/// Hours in the hold-out week.
const HOLDOUT_HOURS: i64 = 168;

/// What the forecast is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastInputs {
    /// Tickets created per UTC hour (keyed by the hour's start); hours absent had none.
    pub arrivals: HashMap<DateTime<Utc>, i64>,
    /// The start of the current hour: the first hour forecast.
    pub this_hour: DateTime<Utc>,
    /// How many hours to forecast.
    pub hours: i64,
    /// Whole weeks since the oldest ticket.
    pub weeks_of_history: i64,
    /// Mean business hours a resolved ticket stayed open, if any were resolved.
    pub mean_resolution_hours: Option<f64>,
    /// Mean tickets an agent holds at once.
    pub mean_capacity: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HourForecast {
    pub hour_start: DateTime<Utc>,
    /// Rounded to two decimals.
    pub expected_tickets: f64,
    pub agents_needed: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub hours: Vec<HourForecast>,
    /// Mean absolute error per hour over the hold-out week (three decimals), when there is
    /// history enough to hold a week out.
    pub holdout_mean_absolute_error: Option<f64>,
    /// The hold-out week's actual mean tickets per hour (three decimals), to read the error
    /// against.
    pub holdout_mean_actual: Option<f64>,
}

/// The mean count of the same weekday-and-hour over the `WEEKS` weeks before `hour`.
fn seasonal(arrivals: &HashMap<DateTime<Utc>, i64>, hour: DateTime<Utc>) -> f64 {
    let total: i64 = (1..=WEEKS)
        .map(|w| {
            arrivals
                .get(&(hour - Duration::weeks(w)))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    total as f64 / WEEKS as f64
}

fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The forecast for `inputs.hours` hours from `inputs.this_hour`.
pub fn forecast(inputs: &ForecastInputs) -> Forecast {
    let (holdout_mean_absolute_error, holdout_mean_actual) = if inputs.weeks_of_history > WEEKS {
        let past: Vec<DateTime<Utc>> = (1..=HOLDOUT_HOURS)
            .map(|h| inputs.this_hour - Duration::hours(h))
            .collect();
        let actual = |hour: &DateTime<Utc>| inputs.arrivals.get(hour).copied().unwrap_or(0);
        let errors: f64 = past
            .iter()
            .map(|hour| (seasonal(&inputs.arrivals, *hour) - actual(hour) as f64).abs())
            .sum();
        let total: i64 = past.iter().map(actual).sum();
        (
            Some(rounded(errors / HOLDOUT_HOURS as f64, 3)),
            Some(rounded(total as f64 / HOLDOUT_HOURS as f64, 3)),
        )
    } else {
        (None, None)
    };
    let hours = (0..inputs.hours)
        .map(|h| {
            let hour_start = inputs.this_hour + Duration::hours(h);
            let expected = seasonal(&inputs.arrivals, hour_start);
            let held = expected * inputs.mean_resolution_hours.unwrap_or(0.0);
            let agents_needed = if inputs.mean_capacity > 0.0 {
                (held / inputs.mean_capacity).ceil() as i64
            } else {
                0
            };
            HourForecast {
                hour_start,
                expected_tickets: rounded(expected, 2),
                agents_needed,
            }
        })
        .collect();
    Forecast {
        hours,
        holdout_mean_absolute_error,
        holdout_mean_actual,
    }
}

/// How the forecast is made, in words, for the people reading it.
pub fn method() -> String {
    format!(
        "seasonal average: each hour forecast as the mean count of tickets created in the same \
         weekday and UTC hour over the previous {WEEKS} weeks; agents needed by Little's law \
         (expected arrivals per hour × mean business hours to resolution ÷ mean agent capacity)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn monday_nine() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn inputs(arrivals: HashMap<DateTime<Utc>, i64>, weeks: i64) -> ForecastInputs {
        ForecastInputs {
            arrivals,
            this_hour: monday_nine(),
            hours: 2,
            weeks_of_history: weeks,
            mean_resolution_hours: Some(3.0),
            mean_capacity: 2.0,
        }
    }

    #[test]
    fn an_hour_is_forecast_as_the_mean_of_the_same_hour_in_the_weeks_before() {
        // Given 4, 8, 0 and 4 tickets on the four previous Mondays at nine
        let now = monday_nine();
        let arrivals: HashMap<_, _> = [(1, 4), (2, 8), (3, 0), (4, 4)]
            .into_iter()
            .map(|(w, n)| (now - Duration::weeks(w), n))
            .collect();
        // When the next two hours are forecast
        let forecast = forecast(&inputs(arrivals, 4));
        // Then nine o'clock expects 4 tickets, ten o'clock none
        assert_eq!(forecast.hours.len(), 2);
        assert_eq!(forecast.hours[0].hour_start, now);
        assert_eq!(forecast.hours[0].expected_tickets, 4.0);
        assert_eq!(forecast.hours[1].expected_tickets, 0.0);
        // And holding 4 tickets an hour for 3 hours takes 12 / 2 = 6 agents
        assert_eq!(forecast.hours[0].agents_needed, 6);
        assert_eq!(forecast.hours[1].agents_needed, 0);
    }

    #[test]
    fn agents_needed_round_up_and_need_a_capacity() {
        let now = monday_nine();
        let arrivals: HashMap<_, _> = [(now - Duration::weeks(1), 1)].into_iter().collect();
        let mut given = inputs(arrivals, 4);
        // 0.25 tickets an hour × 3 hours / 2 = 0.375 → 1 agent
        assert_eq!(forecast(&given).hours[0].agents_needed, 1);
        given.mean_capacity = 0.0;
        assert_eq!(forecast(&given).hours[0].agents_needed, 0);
        given.mean_capacity = 2.0;
        given.mean_resolution_hours = None;
        assert_eq!(forecast(&given).hours[0].agents_needed, 0);
    }

    #[test]
    fn the_holdout_week_needs_more_than_the_weeks_averaged() {
        let forecast_now = forecast(&inputs(HashMap::new(), WEEKS));
        assert_eq!(forecast_now.holdout_mean_absolute_error, None);
        assert_eq!(forecast_now.holdout_mean_actual, None);
    }

    #[test]
    fn the_holdout_error_compares_last_weeks_hours_with_their_forecast() {
        // Given one ticket an hour ago, and none in the same hour of the weeks before it
        let now = monday_nine();
        let arrivals: HashMap<_, _> = [(now - Duration::hours(1), 1)].into_iter().collect();
        // When there are five weeks of history
        let forecast = forecast(&inputs(arrivals, 5));
        // Then that hour was forecast 0 and had 1: the mean error is 1/168
        assert_eq!(
            forecast.holdout_mean_absolute_error,
            Some(rounded(1.0 / 168.0, 3))
        );
        assert_eq!(forecast.holdout_mean_actual, Some(rounded(1.0 / 168.0, 3)));
    }
}
