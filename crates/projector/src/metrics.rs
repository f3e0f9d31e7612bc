//! Progress and lag of a projector, updated by the loop and read by the HTTP endpoint.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the events-per-second rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// A projector that has not completed a step for this long is reported unhealthy.
const STALL_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    events_total: u64,
    parked_total: u64,
    reapplied_total: u64,
    isolated_total: u64,
    checkpoint: u64,
    stream_last_sequence: u64,
    /// The log's last sequence the first time it was asked for: the head "as of start".
    head_at_start: Option<u64>,
    last_recorded_at_micros: Option<i64>,
    last_success: Option<Instant>,
    last_error: Option<String>,
    samples: VecDeque<(Instant, u64)>,
    phases: PhaseTimes,
}

/// Where a projector's time went, summed over every batch since start, in seconds. The live
/// projector folds a batch while the one before it is written, so a batch's `load` and `fold`
/// overlap the previous batch's `write` and `commit`, and the phases can sum to more than the wall
/// time; reading the log also runs ahead in the background, so `read` is only the time the loop
/// waited for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PhaseTimes {
    /// Waiting for the log: the first position of a batch, and the rest of it.
    pub read: f64,
    /// Locking the checkpoint, reading the stored state of sessions the batch continues, and
    /// provider data missing from the directory.
    pub load: f64,
    /// Folding the batch in memory (sessions, claims, unit totals).
    pub fold: f64,
    /// Writing the changed rows and the checkpoint.
    pub write: f64,
    /// Committing the transaction.
    pub commit: f64,
}

impl PhaseTimes {
    /// Adds `other` phase by phase.
    pub fn add(&mut self, other: &PhaseTimes) {
        self.read += other.read;
        self.load += other.load;
        self.fold += other.fold;
        self.write += other.write;
        self.commit += other.commit;
    }

    /// Every phase with its Prometheus label, in loop order.
    pub fn labelled(&self) -> [(&'static str, f64); 5] {
        [
            ("read", self.read),
            ("load", self.load),
            ("fold", self.fold),
            ("write", self.write),
            ("commit", self.commit),
        ]
    }
}

/// Shared, thread-safe projector metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// A consistent reading of the metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// Whether the last step succeeded, within the last 30 seconds (one of `/ready`'s checks).
    pub healthy: bool,
    /// Events folded since start.
    pub events_total: u64,
    /// Log positions parked since start.
    pub parked_total: u64,
    /// Batches applied a second time with upserts because their COPY met a row taken for new
    /// (a log that schedules a session twice); each is also logged as a warning.
    pub reapplied_total: u64,
    /// Batches applied again one commit per transaction because PostgreSQL refused one of their
    /// values (the commits refused on their own are parked and counted in `parked_total`).
    pub isolated_total: u64,
    /// Events folded per second over the last ten seconds.
    pub events_per_second: f64,
    /// The last log sequence whose effects are committed.
    pub checkpoint: u64,
    /// The log's last sequence when last asked.
    pub stream_last_sequence: u64,
    /// The log's last sequence when first asked after start (`None` until then): `/ready` waits for
    /// the checkpoint to reach it.
    pub head_at_start: Option<u64>,
    /// Positions not yet applied.
    pub lag_events: u64,
    /// Age of the last applied commit while positions are pending; 0 when caught up.
    pub lag_seconds: f64,
    /// The last step's error, while it is failing.
    pub last_error: Option<String>,
    /// Where the time of applied batches went.
    pub phases: PhaseTimes,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters, so a poisoned lock is used as is.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    pub(crate) fn record_success(&self) {
        self.with(|state| {
            state.last_success = Some(Instant::now());
            state.last_error = None;
        });
    }

    pub(crate) fn record_failure(&self, error: String) {
        self.with(|state| state.last_error = Some(error));
    }

    pub(crate) fn record_reapplied(&self) {
        self.with(|state| state.reapplied_total += 1);
    }

    pub(crate) fn record_isolated(&self) {
        self.with(|state| state.isolated_total += 1);
    }

    pub(crate) fn record_checkpoint(&self, checkpoint: u64) {
        self.with(|state| state.checkpoint = checkpoint);
    }

    pub(crate) fn record_stream_last(&self, last: u64) {
        self.with(|state| {
            state.stream_last_sequence = state.stream_last_sequence.max(last);
            state.head_at_start.get_or_insert(last);
        });
    }

    pub(crate) fn record_batch(
        &self,
        events: u64,
        parked: u64,
        checkpoint: u64,
        last_recorded_at: Option<i64>,
        phases: &PhaseTimes,
    ) {
        self.with(|state| {
            let now = Instant::now();
            state.phases.add(phases);
            state.events_total += events;
            state.parked_total += parked;
            state.checkpoint = checkpoint;
            state.stream_last_sequence = state.stream_last_sequence.max(checkpoint);
            if last_recorded_at.is_some() {
                state.last_recorded_at_micros = last_recorded_at;
            }
            state.samples.push_back((now, state.events_total));
            while state
                .samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
            {
                state.samples.pop_front();
            }
        });
    }

    /// Reads every metric at once.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|state| {
            let now = Instant::now();
            let events_per_second = match (state.samples.front(), state.samples.back()) {
                (Some((first_at, first)), Some((_, last))) if last > first => {
                    let seconds = now.duration_since(*first_at).as_secs_f64();
                    if seconds > 0.0 {
                        (last - first) as f64 / seconds
                    } else {
                        0.0
                    }
                }
                _ => 0.0,
            };
            let lag_events = state.stream_last_sequence.saturating_sub(state.checkpoint);
            let lag_seconds = match state.last_recorded_at_micros {
                Some(recorded) if lag_events > 0 => {
                    let now_micros = chrono::Utc::now().timestamp_micros();
                    (now_micros.saturating_sub(recorded)).max(0) as f64 / 1e6
                }
                _ => 0.0,
            };
            let healthy = state.last_error.is_none()
                && state
                    .last_success
                    .is_some_and(|at| now.duration_since(at) < STALL_LIMIT);
            Snapshot {
                healthy,
                events_total: state.events_total,
                parked_total: state.parked_total,
                reapplied_total: state.reapplied_total,
                isolated_total: state.isolated_total,
                events_per_second,
                checkpoint: state.checkpoint,
                stream_last_sequence: state.stream_last_sequence,
                head_at_start: state.head_at_start,
                lag_events,
                lag_seconds,
                last_error: state.last_error.clone(),
                phases: state.phases,
            }
        })
    }
}

impl Snapshot {
    /// The metrics in the Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "claimledger_projector_events_total",
            "counter",
            "Events folded into the read models since start.",
            self.events_total.to_string(),
        );
        metric(
            "claimledger_projector_parked_total",
            "counter",
            "Log positions parked since start.",
            self.parked_total.to_string(),
        );
        metric(
            "claimledger_projector_reapplied_total",
            "counter",
            "Batches applied again with upserts because a row taken for new existed.",
            self.reapplied_total.to_string(),
        );
        metric(
            "claimledger_projector_isolated_total",
            "counter",
            "Batches applied again one commit per transaction because PostgreSQL refused a value.",
            self.isolated_total.to_string(),
        );
        metric(
            "claimledger_projector_events_per_second",
            "gauge",
            "Events folded per second over the last ten seconds.",
            format!("{:.1}", self.events_per_second),
        );
        metric(
            "claimledger_projector_checkpoint",
            "gauge",
            "The last log sequence whose effects are committed.",
            self.checkpoint.to_string(),
        );
        metric(
            "claimledger_projector_lag_events",
            "gauge",
            "Log positions not yet applied.",
            self.lag_events.to_string(),
        );
        metric(
            "claimledger_projector_lag_seconds",
            "gauge",
            "Age of the last applied commit while positions are pending.",
            format!("{:.3}", self.lag_seconds),
        );
        metric(
            "claimledger_projector_healthy",
            "gauge",
            "1 when the last step succeeded within 30 seconds.",
            u8::from(self.healthy).to_string(),
        );
        let name = "claimledger_projector_phase_seconds_total";
        text.push_str(&format!(
            "# HELP {name} Time spent in each phase of applied batches.\n# TYPE {name} counter\n"
        ));
        for (phase, seconds) in self.phases.labelled() {
            text.push_str(&format!("{name}{{phase=\"{phase}\"}} {seconds:.6}\n"));
        }
        text
    }
}
