//! Replay benchmark: N visits (about six events each) projected from the log into empty read
//! models, in events per second, against two raw baselines measured in the same run:
//!
//! - reading (and decoding) the same stream without applying it;
//! - COPYing the same final rows (every read-model table) into fresh tables of the same shape.
//!
//! Also the projector's peak memory (VmHWM, reset just before the projection starts).
//!
//! `BENCH_VISITS` sets N (default 3000, well under a minute); `BENCH_VISITS=1000000` is the full
//! run. `BENCH_BATCH` sets the projector's batch size (default 10000 commits). Uses the local NATS and
//! PostgreSQL like the integration tests, with its own stream and database, removed at the end.

// The workload is shared with the integration tests, which use parts the benchmark does not.
#[allow(dead_code)]
#[path = "../tests/it/workload.rs"]
mod workload;

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use claimledger_log::{ReplayFilter, ReplayItem};
use claimledger_projector::checksum::READ_MODEL_TABLES;
use claimledger_projector::{LIVE_SCHEMA, Outcome, Projector, ProjectorConfig};
use futures::StreamExt as _;
use integration_tests::TestEnv;
use sqlx::postgres::PgPoolCopyExt as _;

use crate::workload::{Workload, rules_dir};

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name} must be a whole number, got {value:?}")),
        Err(_) => Ok(default),
    }
}

/// Peak resident memory of this process, in MiB.
fn peak_memory_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM has no value")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// Resets the peak-memory mark, so the figure covers only what follows (Linux 4.0+).
fn reset_peak_memory() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let visits = env_number("BENCH_VISITS", 3000)?;
    let batch = env_number("BENCH_BATCH", 10_000)?;
    let mut out = std::io::stdout().lock();
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let workload = Workload::new();
    workload.seed_directory(&env.db).await?;
    workload.publish_rules(&log).await?;
    workload.record_directory(&log).await?;

    let started = Instant::now();
    workload.append_visits(&log, 0..visits, 512).await?;
    let commits = log.last_sequence().await?;
    writeln!(
        out,
        "generated {visits} visits ({commits} commits) in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;

    // Baseline 1: read and decode the stream, apply nothing.
    let started = Instant::now();
    let mut replay = log.replay(1, ReplayFilter::All).await?;
    let mut events: u64 = 0;
    while let Some(item) = replay.next().await {
        if let ReplayItem::Commit(recorded) = item? {
            events += recorded.commit.events.len() as u64;
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let read_rate = events as f64 / read_seconds;

    // The projector, from empty read models to the end of the log.
    let mut config = ProjectorConfig::live(rules_dir());
    config.max_batch_commits = usize::try_from(batch)?;
    config.idle_wait = Duration::from_millis(20);
    let mut projector = Projector::build(log.clone(), env.db.clone(), config)?;
    reset_peak_memory()?;
    let started = Instant::now();
    while projector.process_next_batch().await? != Outcome::Idle {}
    let project_seconds = started.elapsed().as_secs_f64();
    let peak_mib = peak_memory_mib()?;
    anyhow::ensure!(
        projector.checkpoint().await? == commits,
        "the projector stopped before the end of the log"
    );
    let project_rate = events as f64 / project_seconds;

    // Baseline 2: COPY the final rows into fresh tables of the same shape, streamed from the
    // projected tables (binary COPY out, straight into binary COPY in).
    sqlx::query("SELECT claimledger_create_read_models('bench_copy')")
        .execute(&env.db)
        .await?;
    let mut rows: u64 = 0;
    let started = Instant::now();
    for (table, _) in READ_MODEL_TABLES {
        let mut source = env
            .db
            .copy_out_raw(&format!(
                "COPY {LIVE_SCHEMA}.{table} TO STDOUT (FORMAT binary)"
            ))
            .await?;
        let mut sink = env
            .db
            .copy_in_raw(&format!(
                "COPY bench_copy.{table} FROM STDIN (FORMAT binary)"
            ))
            .await?;
        while let Some(chunk) = source.next().await {
            sink.send(chunk?).await?;
        }
        rows += sink.finish().await?;
    }
    let copy_seconds = started.elapsed().as_secs_f64();
    let copy_rate = events as f64 / copy_seconds;

    let slower = read_rate.min(copy_rate);
    writeln!(out, "events: {events} in {commits} commits")?;
    writeln!(
        out,
        "baseline read (decode, no apply): {read_seconds:.2} s, {read_rate:.0} events/s"
    )?;
    writeln!(
        out,
        "baseline COPY of the {rows} final rows: {copy_seconds:.2} s, {copy_rate:.0} events/s equivalent"
    )?;
    writeln!(
        out,
        "projector: {project_seconds:.2} s, {project_rate:.0} events/s (target >= 100000), \
         {:.2}x the slower baseline (target >= 0.5)",
        project_rate / slower
    )?;
    writeln!(
        out,
        "projector peak memory (VmHWM): {peak_mib:.0} MiB (target <= 256)"
    )?;
    env.cleanup().await
}
