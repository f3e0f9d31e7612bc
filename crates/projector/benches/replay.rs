//! Replay benchmark: N visits (about six events each) projected from the log into empty read
//! models, in events per second, against two raw baselines measured in the same run:
//!
//! - reading (and decoding) the same stream without applying it;
//! - COPYing the same final rows (every read-model table) into fresh tables of the same shape.
//!
//! Also the projector's peak memory (VmHWM, reset just before the projection starts), where its
//! time went (waiting for the log, loading stored state, folding, writing, committing), and the CPU
//! seconds the projector process, NATS and PostgreSQL each used meanwhile (the machine's cores are
//! shared by all three, so the projector's own CPU time is the figure its code changes move), and
//! PostgreSQL's CPU during the COPY baseline.
//!
//! The measurement runs in rounds (`BENCH_ROUNDS`, default 3): each round reads the log, projects
//! it into a fresh database and COPYs the result, back to back, so that its ratio compares runs made
//! under the same conditions. The summary gives the median round's rate and ratio, with the range,
//! and the highest peak memory of any round: one phase slowed by something else on the machine
//! (a build's writeback, another job) shows in its round's line without deciding the figure.
//!
//! - `BENCH_VISITS` sets N (default 3000, well under a minute); `BENCH_VISITS=1000000` is the full
//!   run (about 6M events).
//! - `BENCH_BATCH` sets the projector's batch size (default: the live projector's).
//! - `BENCH_DAYS=round-robin` deals the visits out over the 400 days (visit i on day i mod 400)
//!   instead of recording them in date order (N/400 visits a day, the default, as a chain's log
//!   grows). In date order a batch touches the unit totals of a day or two; dealt out, every batch
//!   touches all 400 days' totals, the worst case for the projector. Each shape has its own log.
//! - `BENCH_REUSE=1` keeps the generated log after the run and reuses it when a later run asks for
//!   the same N (it is checked to hold exactly the expected commits); without it the log is built
//!   and deleted in the run.
//!
//! The log has its own stream with a short duplicate window: the window's message ids are kept in
//! the server's memory, and at the generator's append rate the default two minutes would hold
//! millions of them. Everything else uses the local NATS and PostgreSQL like the integration
//! tests, with a database of its own, dropped at the end.

use integration_tests::{bench_log, workload};

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use claimledger_log::{EventLog, ReplayFilter, ReplayItem};
use claimledger_projector::checksum::READ_MODEL_TABLES;
use claimledger_projector::metrics::PhaseTimes;
use claimledger_projector::{LIVE_SCHEMA, Outcome, Projector, ProjectorConfig};
use futures::StreamExt as _;
use integration_tests::TestEnv;
use sqlx::postgres::PgPoolCopyExt as _;

use crate::workload::{VISIT_DAYS, VisitDays, rules_dir};

// The allocator of the `claimledger` binary that runs the projector in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// CPU seconds (user + system) used so far by this process and by every running `nats-server` and
/// `postgres` process, read from `/proc/<pid>/stat`. A PostgreSQL backend that exits between two
/// readings drops out of the difference; the bench's pool keeps its connections for the run. Wall-clock time on a shared machine moves
/// with whatever else runs; CPU time per part says where the work went.
#[derive(Debug, Default, Clone, Copy)]
struct CpuSeconds {
    /// This process: the direct reader alone during the read baseline, the projector during its run.
    bench_process: f64,
    nats: f64,
    postgres: f64,
    /// Core-seconds the whole machine spent idle (or waiting for I/O), from `/proc/stat`.
    machine_idle: f64,
}

impl CpuSeconds {
    fn read() -> anyhow::Result<Self> {
        // USER_HZ: the unit of /proc's CPU times, 100 on every Linux architecture we run on.
        const TICKS_PER_SECOND: f64 = 100.0;
        let own = std::process::id();
        let mut totals = Self::default();
        // `cpu  user nice system idle iowait ...`: the machine-wide line, in USER_HZ.
        let machine = std::fs::read_to_string("/proc/stat")?;
        let fields: Vec<&str> = machine
            .lines()
            .next()
            .context("/proc/stat is empty")?
            .split_whitespace()
            .collect();
        let (Some(idle), Some(iowait)) = (fields.get(4), fields.get(5)) else {
            anyhow::bail!("/proc/stat has no idle and iowait times");
        };
        totals.machine_idle = (idle.parse::<f64>()? + iowait.parse::<f64>()?) / TICKS_PER_SECOND;
        for entry in std::fs::read_dir("/proc")? {
            let entry = entry?;
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may exit between listing and reading; it simply is not counted.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ...`: the command may hold spaces, so split after its last ')'.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let command = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // Fields 14 and 15 of the stat line (utime, stime) are 12 and 13 after the command.
            let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
                continue;
            };
            let seconds = (user.parse::<f64>()? + system.parse::<f64>()?) / TICKS_PER_SECOND;
            if pid == own {
                totals.bench_process += seconds;
            } else if command == "nats-server" {
                totals.nats += seconds;
            } else if command == "postgres" {
                totals.postgres += seconds;
            }
        }
        Ok(totals)
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            bench_process: self.bench_process - earlier.bench_process,
            nats: self.nats - earlier.nats,
            postgres: self.postgres - earlier.postgres,
            machine_idle: self.machine_idle - earlier.machine_idle,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// How the bench spreads `visits` visits over the days, from `BENCH_DAYS`.
fn bench_days(visits: u64) -> anyhow::Result<VisitDays> {
    match std::env::var("BENCH_DAYS").as_deref() {
        Err(_) | Ok("dated") => Ok(VisitDays::Dated {
            visits_per_day: visits.div_ceil(VISIT_DAYS),
        }),
        Ok("round-robin") => Ok(VisitDays::RoundRobin),
        Ok(other) => {
            anyhow::bail!("BENCH_DAYS must be \"dated\" or \"round-robin\", got {other:?}")
        }
    }
}

/// Reads and decodes the whole log without applying it: events seen and seconds taken.
async fn read_baseline(log: &EventLog) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut replay = log.replay(1, ReplayFilter::All).await?;
    let mut events: u64 = 0;
    while let Some(item) = replay.next().await {
        if let ReplayItem::Commit(recorded) = item? {
            events += recorded.commit.events.len() as u64;
        }
    }
    Ok((events, started.elapsed().as_secs_f64()))
}

/// What one round measured: the direct read, the projector run and the COPY baseline, back to back.
#[derive(Debug)]
struct Round {
    read_seconds: f64,
    read_cpu: CpuSeconds,
    projector: ProjectorRun,
    copy_seconds: f64,
    copied_rows: u64,
    /// CPU during the COPY baseline (PostgreSQL copying the projected tables out and into fresh
    /// ones), to set beside PostgreSQL's CPU during the projector run.
    copy_cpu: CpuSeconds,
}

impl Round {
    /// The projector's rate over the slower baseline's, both in events per second over the same
    /// events: the slower baseline's seconds over the projector's.
    fn ratio(&self) -> f64 {
        self.read_seconds.max(self.copy_seconds) / self.projector.seconds
    }
}

/// The lowest, median (the lower middle one for an even count) and highest of some figures.
struct Spread {
    low: f64,
    median: f64,
    high: f64,
}

impl Spread {
    /// The spread of `values`, which must not be empty (the bench runs at least one round).
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.collect();
        sorted.sort_by(f64::total_cmp);
        Self {
            low: sorted[0],
            median: sorted[(sorted.len() - 1) / 2],
            high: sorted[sorted.len() - 1],
        }
    }
}

/// Flushes the machine's dirty pages before a round, so that writeback left by whatever ran
/// before (a release build, the demo, the previous round's dropped database) is not charged to
/// the first phase that touches the disk. Best effort: without `sync` the round simply runs.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// Reads and decodes the whole log (as [`read_baseline`]): events, seconds and CPU.
async fn measured_read(log: &EventLog) -> anyhow::Result<(u64, f64, CpuSeconds)> {
    let cpu_before = CpuSeconds::read()?;
    let (events, seconds) = read_baseline(log).await?;
    Ok((events, seconds, CpuSeconds::read()?.since(cpu_before)))
}

/// One projector run from empty read models to the end of the log.
#[derive(Debug)]
struct ProjectorRun {
    seconds: f64,
    cpu: CpuSeconds,
    peak_mib: f64,
    phases: PhaseTimes,
}

/// Projects `log` into `env`'s empty read models with the live settings (the batch size from
/// `BENCH_BATCH` if set).
async fn project(
    env: &TestEnv,
    log: &EventLog,
    batch: Option<usize>,
    commits: u64,
) -> anyhow::Result<ProjectorRun> {
    let mut config = ProjectorConfig::live(rules_dir());
    if let Some(batch) = batch {
        config.max_batch_commits = batch;
    }
    config.idle_wait = Duration::from_millis(20);
    let mut projector = Projector::build(log.clone(), env.db.clone(), config)?;
    let metrics = projector.metrics();
    reset_peak_memory()?;
    let cpu_before = CpuSeconds::read()?;
    let started = Instant::now();
    while projector.process_next_batch().await? != Outcome::Idle {}
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSeconds::read()?.since(cpu_before);
    let peak_mib = peak_memory_mib()?;
    anyhow::ensure!(
        projector.checkpoint().await? == commits,
        "the projector stopped before the end of the log"
    );
    Ok(ProjectorRun {
        seconds,
        cpu,
        peak_mib,
        phases: metrics.snapshot().phases,
    })
}

/// Baseline 2: COPYs the projected rows into fresh tables of the same shape, streamed from the
/// projected tables (binary COPY out, straight into binary COPY in). Rows copied, seconds taken and
/// CPU used (as [`measured_read`] gives for the read baseline).
async fn copy_baseline(env: &TestEnv) -> anyhow::Result<(u64, f64, CpuSeconds)> {
    sqlx::query("SELECT claimledger_create_read_models('bench_copy')")
        .execute(&env.db)
        .await?;
    let mut rows: u64 = 0;
    let cpu_before = CpuSeconds::read()?;
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
    let seconds = started.elapsed().as_secs_f64();
    Ok((rows, seconds, CpuSeconds::read()?.since(cpu_before)))
}

async fn run() -> anyhow::Result<()> {
    let visits = env_number("BENCH_VISITS", 3000)?;
    let reuse = env_number("BENCH_REUSE", 0)? == 1;
    let rounds = env_number("BENCH_ROUNDS", 3)?;
    anyhow::ensure!(rounds >= 1, "BENCH_ROUNDS must be at least 1");
    let batch = match std::env::var("BENCH_BATCH") {
        Ok(batch) => Some(
            batch
                .parse::<usize>()
                .with_context(|| format!("BENCH_BATCH must be a whole number, got {batch:?}"))?,
        ),
        Err(_) => None,
    };
    let mut out = std::io::stdout().lock();
    let days = bench_days(visits)?;
    let first_env = TestEnv::start().await?;
    let nats = first_env.nats.clone();
    let workload = bench_log::workload(days);
    workload.seed_directory(&first_env.db).await?;
    let log = bench_log::open(&first_env, &workload, visits, reuse, &mut out).await?;
    let commits = log.last_sequence().await?;
    anyhow::ensure!(
        log.reads_directly(),
        "the bench expects a local NATS server that the log can read directly"
    );
    writeln!(
        out,
        "{commits} commits ({visits} visits, {}), batches of up to {} commits, {rounds} round(s)",
        match workload.days {
            VisitDays::RoundRobin => format!("dealt out over {VISIT_DAYS} days"),
            VisitDays::Dated { visits_per_day } => format!("in date order, {visits_per_day} a day"),
        },
        batch.unwrap_or(ProjectorConfig::live(rules_dir()).max_batch_commits),
    )?;

    // Each round measures the two baselines and the projector back to back, so that its ratio
    // compares runs made under the same conditions; the summary takes the median round, so that
    // one phase slowed by something else on the machine does not decide the figure.
    let mut events = 0;
    let mut measured: Vec<Round> = Vec::new();
    let mut env = Some(first_env);
    for round in 1..=rounds {
        settle();
        // Baseline 1: read and decode the stream through the direct connection the projector
        // reads with, apply nothing.
        let (read_events, read_seconds, read_cpu) = measured_read(&log).await?;
        if round == 1 {
            events = read_events;
            // Once, for comparison: the same read through async-nats, the fallback path (an
            // ordered push consumer).
            let (fallback_events, fallback_seconds, fallback_cpu) =
                measured_read(&log.without_direct_reads()).await?;
            anyhow::ensure!(
                fallback_events == events,
                "the two readers saw {events} and {fallback_events} events"
            );
            writeln!(
                out,
                "(reading through async-nats, the fallback path: {fallback_seconds:.2} s, {:.0} events/s; \
                 CPU: bench process {:.1} s, nats-server {:.1} s)",
                events as f64 / fallback_seconds,
                fallback_cpu.bench_process,
                fallback_cpu.nats,
            )?;
        }
        anyhow::ensure!(
            read_events == events,
            "round {round} read {read_events} events, round 1 read {events}"
        );
        // Every round projects into a database of its own, from empty read models.
        let round_env = match env.take() {
            Some(env) => env,
            None => {
                let env = TestEnv::start().await?;
                workload.seed_directory(&env.db).await?;
                env
            }
        };
        let projector = project(&round_env, &log, batch, commits).await?;
        let (copied_rows, copy_seconds, copy_cpu) = copy_baseline(&round_env).await?;
        round_env.cleanup().await?;
        let measured_round = Round {
            read_seconds,
            read_cpu,
            projector,
            copy_seconds,
            copied_rows,
            copy_cpu,
        };
        write_round(&mut out, round, events, &measured_round)?;
        out.flush()?;
        measured.push(measured_round);
    }

    let rates = Spread::of(
        measured
            .iter()
            .map(|round| events as f64 / round.projector.seconds),
    );
    let ratios = Spread::of(measured.iter().map(Round::ratio));
    let peak_mib = Spread::of(measured.iter().map(|round| round.projector.peak_mib)).high;
    writeln!(
        out,
        "projector, median of {rounds} round(s): {:.0} events/s (target >= 100000; rounds {:.0}-{:.0})",
        rates.median, rates.low, rates.high
    )?;
    writeln!(
        out,
        "projector against the slower baseline of its round, median: {:.2}x (target >= 0.5; rounds {:.2}-{:.2})",
        ratios.median, ratios.low, ratios.high
    )?;
    writeln!(
        out,
        "projector peak memory (VmHWM), highest round: {peak_mib:.0} MiB (target <= 256)"
    )?;
    if !reuse {
        bench_log::delete(&nats, log.config()).await;
    }
    Ok(())
}

/// Prints one round's figures.
fn write_round(
    out: &mut impl std::io::Write,
    round: u64,
    events: u64,
    measured: &Round,
) -> anyhow::Result<()> {
    let per_second = |seconds: f64| events as f64 / seconds;
    writeln!(out, "round {round}:")?;
    writeln!(
        out,
        "  baseline read (decode, no apply), direct connection: {:.2} s, {:.0} events/s",
        measured.read_seconds,
        per_second(measured.read_seconds)
    )?;
    writeln!(
        out,
        "  baseline COPY of the {} final rows: {:.2} s, {:.0} events/s equivalent",
        measured.copied_rows,
        measured.copy_seconds,
        per_second(measured.copy_seconds)
    )?;
    writeln!(
        out,
        "  projector: {:.2} s, {:.0} events/s, {:.2}x the slower baseline, peak memory {:.0} MiB",
        measured.projector.seconds,
        per_second(measured.projector.seconds),
        measured.ratio(),
        measured.projector.peak_mib
    )?;
    let phase_text: Vec<String> = measured
        .projector
        .phases
        .labelled()
        .iter()
        .map(|(phase, seconds)| format!("{phase} {seconds:.2} s"))
        .collect();
    writeln!(
        out,
        "  projector phases, summed over batches (a batch folds while the one before it writes, so they overlap): {}",
        phase_text.join(", ")
    )?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    writeln!(
        out,
        "  CPU during the direct read: bench process {:.1} s, nats-server {:.1} s; during the projector run: \
         projector process {:.1} s, nats-server {:.1} s, postgres {:.1} s, machine idle {:.1} s (of {:.1} s on {cores} cores); \
         during the COPY baseline: bench process {:.1} s, postgres {:.1} s",
        measured.read_cpu.bench_process,
        measured.read_cpu.nats,
        measured.projector.cpu.bench_process,
        measured.projector.cpu.nats,
        measured.projector.cpu.postgres,
        measured.projector.cpu.machine_idle,
        measured.projector.seconds * cores as f64,
        measured.copy_cpu.bench_process,
        measured.copy_cpu.postgres,
    )?;
    Ok(())
}
