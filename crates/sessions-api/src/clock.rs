//! The API's clock. Handlers read the current instant through [`AppState::clock`] rather than
//! `Utc::now()`, so a test can put the service at a chosen instant: what a handler decides about
//! "today" depends on the hour in the clinic's time zone, and a test of that must not depend on the
//! hour it happens to run at.
//!
//! [`AppState::clock`]: crate::startup::AppState::clock

use chrono::{DateTime, Utc};

/// Where the current instant comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system's clock (production).
    #[default]
    System,
    /// Always the given instant (tests).
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current instant at the log's precision (microseconds), so that an answer built from the
    /// decided events equals the one rebuilt from the log later.
    pub fn now_micros(self) -> DateTime<Utc> {
        let now = match self {
            Clock::System => Utc::now(),
            Clock::Fixed(instant) => instant,
        };
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_fixed_clock_answers_its_instant_truncated_to_microseconds() {
        let instant = Utc
            .timestamp_opt(1_767_225_600, 123_456_789)
            .single()
            .expect("a valid instant");
        let now = Clock::Fixed(instant).now_micros();
        assert_eq!(now.timestamp(), 1_767_225_600);
        assert_eq!(now.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn the_system_clock_moves() {
        let before = Utc::now();
        let now = Clock::System.now_micros();
        assert!(
            now >= before - chrono::Duration::microseconds(1),
            "{now} < {before}"
        );
    }
}
