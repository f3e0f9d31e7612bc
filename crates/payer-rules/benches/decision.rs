//! Payer-rules decision latency, in-process and over NATS, each beside a raw baseline from the
//! same run.
//!
//! 1. In-process: p50/p99 of single `RuleBook::decide` calls over a mix of payers and outcomes
//!    (target p99 <= 1 us). Baseline: the cost of reading the clock twice, which every sample pays.
//! 2. Over NATS: p50/p99 of `decide` requests to the real service at a paced rate (default
//!    10,000 requests/s, evenly spaced, for 3 s; target p99 <= 1 ms), alternating in 250 ms
//!    phases with the same load against a bare NATS request/reply echo on the same server (the
//!    transport's own floor).
//!
//! Run: `cargo bench -p claimledger-payer-rules --bench decision`. Scale with
//! `BENCH_INPROC_ITERATIONS` (default 1,000,000), `BENCH_RATE` (requests/s, default 10,000) and
//! `BENCH_SECONDS` (default 3). Needs NATS at `NATS_URL` (default `nats://127.0.0.1:4222`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use claimledger_payer_rules::service::{EndpointKind, PayerRulesService, ServiceConfig};
use claimledger_payer_rules::{LineQuery, RuleBook, VisitContext, load_dir, proto};
use futures::StreamExt;
use prost::Message;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Summary {
    p50: Duration,
    p99: Duration,
    max: Duration,
    samples: usize,
}

fn summarise(mut samples: Vec<Duration>) -> Summary {
    samples.sort_unstable();
    Summary {
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
        max: samples.last().copied().unwrap_or_default(),
        samples: samples.len(),
    }
}

/// Owned inputs of one line query.
struct Case {
    payer: &'static str,
    date_of_service: NaiveDate,
    code: CptCode,
    units: u32,
    modifiers: Vec<Modifier>,
    other_codes: Vec<CptCode>,
    alternatives: Vec<CptCode>,
    context: VisitContext,
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// A mix that exercises every path: accepted, GP added, NCCI pair with and without modifier,
/// substitution, unit caps, bundled, visit cap, both sides of a rules change.
fn cases() -> Vec<Case> {
    let referral = VisitContext {
        referral_date: Some(date(2025, 11, 1)),
        visit_number_in_year: Some(3),
        submission_date: Some(date(2026, 1, 20)),
    };
    let case =
        |payer, dos, code, units, modifiers: &[Modifier], other: &[CptCode], alt: &[CptCode]| {
            Case {
                payer,
                date_of_service: dos,
                code,
                units,
                modifiers: modifiers.to_vec(),
                other_codes: other.to_vec(),
                alternatives: alt.to_vec(),
                context: referral,
            }
        };
    let gp = [Modifier::PhysicalTherapyPlan];
    let gp_xs = [Modifier::PhysicalTherapyPlan, Modifier::SeparateStructure];
    vec![
        case(
            "medicare-like",
            date(2025, 12, 31),
            CptCode::ManualTherapy,
            2,
            &gp,
            &[],
            &[],
        ),
        case(
            "medicare-like",
            date(2026, 1, 1),
            CptCode::Massage,
            2,
            &[],
            &[CptCode::ManualTherapy],
            &[],
        ),
        case(
            "medicare-like",
            date(2026, 1, 2),
            CptCode::Massage,
            2,
            &gp_xs,
            &[CptCode::ManualTherapy],
            &[],
        ),
        case(
            "medicare-like",
            date(2026, 1, 5),
            CptCode::TherapeuticExercise,
            8,
            &gp,
            &[],
            &[],
        ),
        case(
            "medicare-like",
            date(2026, 1, 5),
            CptCode::HotColdPacks,
            1,
            &[],
            &[],
            &[],
        ),
        case(
            "evergreen-massage-ppo",
            date(2026, 1, 5),
            CptCode::ManualTherapy,
            3,
            &[],
            &[],
            &[CptCode::Massage],
        ),
        case(
            "lakeshore-mutual",
            date(2026, 1, 5),
            CptCode::Massage,
            2,
            &[Modifier::SeparateEncounter],
            &[CptCode::ManualTherapy],
            &[],
        ),
        case(
            "keystone-auto-pip",
            date(2026, 1, 5),
            CptCode::Massage,
            2,
            &[],
            &[CptCode::ManualTherapy],
            &[],
        ),
        case(
            "summit-workers-comp",
            date(2026, 1, 5),
            CptCode::ManualTherapy,
            6,
            &gp,
            &[],
            &[],
        ),
    ]
}

fn in_process(book: &RuleBook, iterations: u64, out: &mut impl Write) -> std::io::Result<()> {
    let cases = cases();
    let diagnoses =
        [Icd10Code::parse("diagnoses[0]", "M54.50").unwrap_or_else(|error| panic!("{error}"))];
    let queries: Vec<(&str, LineQuery<'_>)> = cases
        .iter()
        .map(|case| {
            (
                case.payer,
                LineQuery {
                    date_of_service: case.date_of_service,
                    code: case.code,
                    units: case.units,
                    modifiers: &case.modifiers,
                    diagnoses: &diagnoses,
                    other_codes_on_visit: &case.other_codes,
                    supported_alternatives: &case.alternatives,
                    context: case.context,
                },
            )
        })
        .collect();
    // Warm up caches and the branch predictor on the same mix.
    for (payer, query) in queries.iter().cycle().take(100_000) {
        std::hint::black_box(book.decide(payer, query).ok());
    }
    let mut decisions = Vec::with_capacity(iterations as usize);
    let mut clock = Vec::with_capacity(iterations as usize);
    for (payer, query) in queries.iter().cycle().take(iterations as usize) {
        let started = Instant::now();
        let decision = book.decide(std::hint::black_box(payer), std::hint::black_box(query));
        let elapsed = started.elapsed();
        std::hint::black_box(decision.ok());
        decisions.push(elapsed);

        let started = Instant::now();
        let elapsed = std::hint::black_box(started).elapsed();
        clock.push(elapsed);
    }
    let decision = summarise(decisions);
    let baseline = summarise(clock);
    writeln!(
        out,
        "in-process decision ({} samples, {} query shapes):",
        decision.samples,
        queries.len()
    )?;
    writeln!(
        out,
        "  decide:         p50 {:>8.0?}  p99 {:>8.0?}  max {:>8.0?}   (target p99 <= 1us: {})",
        decision.p50,
        decision.p99,
        decision.max,
        if decision.p99 <= Duration::from_micros(1) {
            "met"
        } else {
            "MISSED"
        }
    )?;
    writeln!(
        out,
        "  baseline clock: p50 {:>8.0?}  p99 {:>8.0?}   (two Instant reads, included in every sample)",
        baseline.p50, baseline.p99
    )?;
    writeln!(
        out,
        "  ratio decide/baseline: p50 {:.1}x  p99 {:.1}x",
        decision.p50.as_secs_f64() / baseline.p50.as_secs_f64().max(1e-12),
        decision.p99.as_secs_f64() / baseline.p99.as_secs_f64().max(1e-12)
    )
}

/// Sends `rate` requests per second for `length` to `subject`, evenly spaced by a pacing thread
/// (tokio's timer ticks only every millisecond, which would send bursts), each request its own
/// task, and returns each request's latency from send to reply plus the number that failed.
async fn paced_requests(
    client: &async_nats::Client,
    subject: &str,
    body: Bytes,
    rate: u64,
    length: Duration,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    let total = (rate as f64 * length.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let runtime = tokio::runtime::Handle::current();
    let client = client.clone();
    let subject = subject.to_owned();
    let pacer = std::thread::spawn(move || {
        let started = Instant::now();
        let mut handles = Vec::with_capacity(total as usize);
        for index in 0..total {
            let due = started + period.mul_f64(index as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let client = client.clone();
            let subject = subject.clone();
            let body = body.clone();
            handles.push(runtime.spawn(async move {
                let sent = Instant::now();
                let reply =
                    tokio::time::timeout(Duration::from_secs(5), client.request(subject, body))
                        .await;
                match reply {
                    Ok(Ok(_)) => Some(sent.elapsed()),
                    _ => None,
                }
            }));
        }
        handles
    });
    let handles = tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    let mut latencies = Vec::with_capacity(handles.len());
    let mut failures = 0;
    for handle in handles {
        match handle.await? {
            Some(latency) => latencies.push(latency),
            None => failures += 1,
        }
    }
    Ok((latencies, failures))
}

async fn over_nats(
    book: RuleBook,
    rate: u64,
    seconds: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let server_client = async_nats::connect(&url).await?;
    let request_client = async_nats::connect(&url).await?;
    let prefix = format!("bench.payer_rules.{}", uuid::Uuid::new_v4().simple());

    // The raw baseline: a bare request/reply echo on the same server and connections.
    let echo_subject = format!("{prefix}.echo");
    let mut echo = server_client.subscribe(echo_subject.clone()).await?;
    let echo_client = server_client.clone();
    let echo_task = tokio::spawn(async move {
        while let Some(message) = echo.next().await {
            if let Some(reply) = message.reply {
                let _ = echo_client.publish(reply, message.payload).await;
            }
        }
    });

    let service = PayerRulesService::start(
        &server_client,
        Arc::new(book),
        &ServiceConfig::new(prefix.clone()),
    )
    .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service_task = tokio::spawn(service.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    server_client.flush().await?;

    let body = Bytes::from(
        proto::DecideRequest {
            payer: "medicare-like".to_owned(),
            date_of_service: "2026-01-05".to_owned(),
            code: "97124".to_owned(),
            units: 2,
            modifiers: vec!["GP".to_owned(), "XS".to_owned()],
            diagnoses: vec!["M54.50".to_owned()],
            other_codes_on_visit: vec!["97140".to_owned()],
            supported_alternatives: Vec::new(),
            context: Some(proto::VisitContext {
                referral_date: "2025-12-01".to_owned(),
                visit_number_in_year: 2,
                submission_date: String::new(),
            }),
        }
        .encode_to_vec(),
    );
    let body_len = body.len();
    // Warm up both paths.
    for _ in 0..200 {
        request_client
            .request(echo_subject.clone(), body.clone())
            .await?;
        request_client
            .request(EndpointKind::Decide.subject(&prefix), body.clone())
            .await?;
    }

    // Echo and service take turns in 250 ms phases, so that both see the same background load
    // (the machine may be busy with other work) instead of one getting a quiet second.
    let phase = Duration::from_millis(250);
    let mut echo_latencies = Vec::new();
    let mut service_latencies = Vec::new();
    let (mut echo_failures, mut service_failures) = (0, 0);
    for _ in 0..seconds * 4 {
        let (latencies, failures) =
            paced_requests(&request_client, &echo_subject, body.clone(), rate, phase).await?;
        echo_latencies.extend(latencies);
        echo_failures += failures;
        let (latencies, failures) = paced_requests(
            &request_client,
            &EndpointKind::Decide.subject(&prefix),
            body.clone(),
            rate,
            phase,
        )
        .await?;
        service_latencies.extend(latencies);
        service_failures += failures;
    }
    let echo = summarise(echo_latencies);
    let service = summarise(service_latencies);
    writeln!(
        out,
        "over NATS at {rate} requests/s, {seconds} s each, in alternating 250 ms phases ({body_len} B DecideRequest):"
    )?;
    writeln!(
        out,
        "  decide service: p50 {:>8.0?}  p99 {:>8.0?}  max {:>8.0?}  ({} replies, {} failed)  (target p99 <= 1ms: {})",
        service.p50,
        service.p99,
        service.max,
        service.samples,
        service_failures,
        if service.p99 <= Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    )?;
    writeln!(
        out,
        "  raw echo:       p50 {:>8.0?}  p99 {:>8.0?}  max {:>8.0?}  ({} replies, {} failed)",
        echo.p50, echo.p99, echo.max, echo.samples, echo_failures
    )?;
    writeln!(
        out,
        "  ratio service/echo: p50 {:.2}x  p99 {:.2}x",
        service.p50.as_secs_f64() / echo.p50.as_secs_f64().max(1e-12),
        service.p99.as_secs_f64() / echo.p99.as_secs_f64().max(1e-12)
    )?;

    let _ = stop.send(());
    service_task.await??;
    echo_task.abort();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let book = load_dir(&rules)?;
    let iterations = env_number("BENCH_INPROC_ITERATIONS", 1_000_000);
    let rate = env_number("BENCH_RATE", 10_000);
    let seconds = env_number("BENCH_SECONDS", 3);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    in_process(&book, iterations, &mut out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(over_nats(book, rate, seconds, &mut out))?;
    Ok(())
}
