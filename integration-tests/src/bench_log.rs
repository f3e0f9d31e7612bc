//! The generated log the projector's and the replay's benches measure: one chain, its rules and
//! directory, then N visits, built once and reused across runs (and across the two benches) when
//! `BENCH_REUSE` asks for it.

use std::time::{Duration, Instant};

use claimledger_log::{EventLog, LogConfig, ReplayFilter};
use futures::StreamExt as _;
use uuid::Uuid;

use crate::TestEnv;
use crate::workload::{VisitDays, Workload};

/// The bench log's duplicate window: long enough for the generator's own retries, short enough
/// that the server keeps only a few seconds of message ids while the log is built.
const BENCH_DUPLICATE_WINDOW: Duration = Duration::from_secs(5);

/// The benches' chain and clinic, with visits spread over the days as `days` says.
pub fn workload(days: VisitDays) -> Workload {
    Workload {
        chain: Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0001).into(),
        clinic: Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0002).into(),
        therapists: (3..6)
            .map(|n| Uuid::from_u128(0x0b3c_0000_0000_4000_8000_0000_0000_0000 + n).into())
            .collect(),
        days,
    }
}

/// The log's settings for `visits` visits spread as `days` says; each shape has a stream of its
/// own, so that a reused log is always the one asked for.
pub fn config(visits: u64, days: VisitDays) -> LogConfig {
    let (stream, subject) = match days {
        VisitDays::RoundRobin => ("BENCH_REPLAY", "bench.replay"),
        VisitDays::Dated { .. } => ("BENCH_REPLAY_DATED", "bench.replaydated"),
    };
    let mut config = LogConfig::new(format!("{stream}_{visits}"), format!("{subject}{visits}"));
    config.duplicate_window = BENCH_DUPLICATE_WINDOW;
    config
}

/// Deletes the log and its parked stream, if they exist.
pub async fn delete(nats: &async_nats::Client, config: &LogConfig) {
    let jetstream = async_nats::jetstream::new(nats.clone());
    for stream in [config.stream_name.clone(), config.parked_stream_name()] {
        // A missing stream is what we want; any other failure shows when the log is reopened.
        let _ = jetstream.delete_stream(&stream).await;
    }
}

/// Opens the log of `visits` visits of `workload`, building it unless `reuse` finds it complete
/// (its chain-wide commits, then exactly the visits' commits).
pub async fn open(
    env: &TestEnv,
    workload: &Workload,
    visits: u64,
    reuse: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<EventLog> {
    let config = config(visits, workload.days);
    let visit_commits: u64 = (0..visits)
        .map(|index| workload.visit_commits(index).len() as u64)
        .sum();
    if reuse {
        let log = EventLog::connect(env.nats.clone(), config.clone()).await?;
        let last = log.last_sequence().await?;
        let mut chain_wide = 0;
        let mut reader = log
            .replay(1, ReplayFilter::ChainWide(Some(workload.chain)))
            .await?;
        while let Some(item) = reader.next().await {
            item?;
            chain_wide += 1;
        }
        if chain_wide > 0 && last == chain_wide + visit_commits {
            writeln!(
                out,
                "reusing {} ({visits} visits, {last} commits)",
                config.stream_name
            )?;
            return Ok(log);
        }
        writeln!(
            out,
            "{} holds {last} commits, not the expected {chain_wide} + {visit_commits}; rebuilding it",
            config.stream_name
        )?;
    }
    delete(&env.nats, &config).await;
    let log = EventLog::connect(env.nats.clone(), config).await?;
    workload.publish_rules(&log).await?;
    workload.record_directory(&log).await?;
    let started = Instant::now();
    workload.append_visits(&log, 0..visits, 512).await?;
    writeln!(
        out,
        "generated {visits} visits ({visit_commits} commits) in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(log)
}
