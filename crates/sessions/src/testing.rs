//! A given/when/then harness for session decisions: no infrastructure, no clock, no runtime.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::command::{DecisionContext, SessionCommand};
use crate::error::SessionError;
use crate::event::SessionEvent;
use crate::session::Session;

/// The instant every scenario is decided at unless it says otherwise: 2026-03-02 15:00 UTC.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0)
        .single()
        .expect("a valid instant")
}

/// The time zone the scenarios' clinic is in.
pub const CLINIC_TIME_ZONE: Tz = chrono_tz::America::New_York;

/// A scenario: the session's history.
pub fn given(history: impl IntoIterator<Item = SessionEvent>) -> Given {
    Given {
        history: history.into_iter().collect(),
        context: DecisionContext::at(fixed_now(), CLINIC_TIME_ZONE),
    }
}

/// A scenario's history and the context its command will be decided in.
pub struct Given {
    history: Vec<SessionEvent>,
    context: DecisionContext,
}

impl Given {
    /// Replaces the decision context.
    pub fn with_context(mut self, context: DecisionContext) -> Given {
        self.context = context;
        self
    }

    /// Decides `command` against the history.
    pub fn when(self, command: SessionCommand) -> Outcome {
        let session = Session::from_events(&self.history);
        let result = session.decide(&command, &self.context);
        Outcome { session, result }
    }
}

/// The outcome of a decision, to assert on.
pub struct Outcome {
    session: Session,
    result: Result<Vec<SessionEvent>, SessionError>,
}

impl Outcome {
    /// Asserts the decision produced exactly `expected` and returns the state after applying them.
    pub fn then(self, expected: impl IntoIterator<Item = SessionEvent>) -> Session {
        let expected: Vec<SessionEvent> = expected.into_iter().collect();
        let events = self
            .result
            .unwrap_or_else(|error| panic!("expected events, got the refusal {error}"));
        assert_eq!(events, expected);
        let mut session = self.session;
        for event in &events {
            session.apply(event);
        }
        session
    }

    /// Asserts the decision was refused and returns the refusal.
    pub fn then_refused(self) -> SessionError {
        match self.result {
            Ok(events) => panic!("expected a refusal, got {events:?}"),
            Err(error) => error,
        }
    }
}
