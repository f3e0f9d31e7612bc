//! Sustained recording over HTTP on loopback: complete visits per second (six commands each:
//! schedule, check in, two services, diagnoses, complete) with p50/p99 latency per command, against
//! the log's raw append rate for the same number of commits, measured in the same run.
//!
//! Needs the local stack (DATABASE_URL, NATS_URL). Creates its own database and stream and removes
//! them afterwards. Scale with BENCH_VISITS (default 300) and BENCH_CONCURRENCY (default 8):
//! `cargo bench -p claimledger-sessions-api --bench recording`.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use claimledger_events::{
    Actor, ActorKind, AggregateKind, ClinicId, CommandId, Commit, CorrelationId, Event, EventId,
    EventRecord, SessionId,
};
use claimledger_log::{AggregateAddress, EventLog, LogConfig};
use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let visits = env_number("BENCH_VISITS", 300);
    let concurrency = env_number("BENCH_CONCURRENCY", 8).max(1);
    let settings = Settings::from_env()?;
    let maintenance = settings.database.connect_options()?;
    let database = format!("sessions_bench_{}", Uuid::new_v4().simple());
    let mut connection = PgConnection::connect_with(&maintenance).await?;
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut connection)
        .await?;
    let unique = Uuid::new_v4().simple().to_string();
    let config = LogConfig::new(format!("SESSIONS_BENCH_{unique}"), format!("b{unique}"));
    let streams = [config.stream_name.clone(), config.parked_stream_name()];
    let nats = async_nats::connect(&settings.nats_url).await?;

    let outcome = run(
        &settings,
        &maintenance,
        &database,
        config,
        nats.clone(),
        visits,
        concurrency,
    )
    .await;

    let context = async_nats::jetstream::new(nats);
    for stream in streams {
        let _ = context.delete_stream(&stream).await;
    }
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    ))
    .execute(&mut connection)
    .await?;
    outcome
}

async fn run(
    settings: &Settings,
    maintenance: &sqlx::postgres::PgConnectOptions,
    database: &str,
    config: LogConfig,
    nats: async_nats::Client,
    visits: usize,
    concurrency: usize,
) -> BenchResult<()> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(maintenance.clone().database(database))
        .await?;
    sqlx::migrate!("../../migrations").run(&pool).await?;
    let log = EventLog::connect(nats, config).await?;
    let mut app_settings = settings.clone();
    app_settings.http.port = 0;
    let application = Application::build_with(app_settings, pool.clone(), log.clone()).await?;
    let base = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));

    let (chain, admin) = bootstrap_chain(&pool, "Bench chain").await?;
    let client = reqwest::Client::new();
    let world = World::create(&client, &base, &admin.secret).await?;
    let front_desk = create_api_key(&pool, chain, Role::FrontDesk, None, "bench")
        .await?
        .secret;

    // Raw baseline: the same number of commits, appended straight through the log with the same
    // concurrency, one aggregate per visit, each commit chained on the previous version.
    let commits = visits * 6;
    let raw_started = Instant::now();
    let raw_workers = (0..concurrency).map(|worker| {
        let log = log.clone();
        async move {
            let clinic = ClinicId::from(Uuid::now_v7());
            for _ in (worker..visits).step_by(concurrency) {
                let address = AggregateAddress {
                    chain,
                    clinic: Some(clinic),
                    kind: AggregateKind::Session,
                    id: SessionId::from(Uuid::now_v7()).into(),
                };
                let mut version = 0;
                for _ in 0..6 {
                    version = log
                        .append(&address, version, &raw_commit(&address))
                        .await?
                        .sequence;
                }
            }
            BenchResult::Ok(())
        }
    });
    for result in join_all(raw_workers).await {
        result?;
    }
    let raw_elapsed = raw_started.elapsed();

    let api_started = Instant::now();
    let api_workers = (0..concurrency).map(|worker| {
        let (client, base, key, world) = (
            client.clone(),
            base.clone(),
            front_desk.clone(),
            world.clone(),
        );
        async move {
            let mut latencies = Latencies::default();
            for visit in (worker..visits).step_by(concurrency) {
                record_visit(&client, &base, &key, &world, visit, &mut latencies).await?;
            }
            BenchResult::Ok(latencies)
        }
    });
    let mut latencies = Latencies::default();
    for result in join_all(api_workers).await {
        let worker = result?;
        latencies.schedule.extend(worker.schedule);
        latencies.lifecycle.extend(worker.lifecycle);
    }
    let api_elapsed = api_started.elapsed();
    shutdown.cancel();
    server.await??;

    let mut all: Vec<Duration> = latencies
        .schedule
        .iter()
        .chain(&latencies.lifecycle)
        .copied()
        .collect();
    let commands_sent = all.len();
    let (all, schedule, lifecycle) = (
        Percentiles::of(&mut all),
        Percentiles::of(&mut latencies.schedule),
        Percentiles::of(&mut latencies.lifecycle),
    );
    let visits_per_second = visits as f64 / api_elapsed.as_secs_f64();
    let api_commands_per_second = commands_sent as f64 / api_elapsed.as_secs_f64();
    let raw_per_second = commits as f64 / raw_elapsed.as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "sessions API recording bench: {visits} visits x 6 commands, concurrency {concurrency}"
    )?;
    writeln!(
        out,
        "  raw log append (claimledger-log): {commits} commits in {:.2?} = {raw_per_second:.0} commits/s",
        raw_elapsed
    )?;
    writeln!(
        out,
        "  HTTP API: {} commands in {:.2?} = {api_commands_per_second:.0} commands/s = {visits_per_second:.1} complete visits/s",
        commands_sent, api_elapsed
    )?;
    writeln!(out, "  latency, every command: {all}")?;
    writeln!(
        out,
        "  latency, schedule (PostgreSQL slot booking + first append): {schedule}"
    )?;
    writeln!(out, "  latency, the five lifecycle commands: {lifecycle}")?;
    writeln!(
        out,
        "  ratio API commands/s to raw appends/s: {:.2}",
        api_commands_per_second / raw_per_second
    )?;
    Ok(())
}

/// Per-command latencies of one worker, or of all.
#[derive(Debug, Default)]
struct Latencies {
    schedule: Vec<Duration>,
    lifecycle: Vec<Duration>,
}

/// p50, p99 and max of a set of latencies.
#[derive(Debug)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort();
        let at = |fraction: f64| {
            let index = ((samples.len().saturating_sub(1)) as f64 * fraction).round() as usize;
            samples.get(index).copied().unwrap_or_default()
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            self.p50, self.p99, self.max
        )
    }
}

fn raw_commit(address: &AggregateAddress) -> Commit {
    let now = claimledger_events::UtcMicros(Utc::now().timestamp_micros());
    Commit {
        command_id: CommandId::from(Uuid::now_v7()),
        chain: address.chain,
        clinic: address.clinic,
        aggregate_kind: address.kind,
        aggregate_id: address.id,
        recorded_at: now,
        actor: Actor {
            kind: ActorKind::Staff,
            id: "bench".to_owned(),
        },
        correlation_id: CorrelationId::from(Uuid::now_v7()),
        causation_id: None,
        events: vec![EventRecord {
            event_id: EventId::from(Uuid::now_v7()),
            occurred_at: now,
            event: Event::CheckedIn,
        }],
    }
}

/// The reference data every visit uses.
#[derive(Debug, Clone)]
struct World {
    clinic: String,
    therapists: Vec<String>,
    payer: String,
    patient: String,
    coverage: String,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Option<&Value>,
) -> BenchResult<Value> {
    let request = client.post(url).bearer_auth(key);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {body}").into());
    }
    Ok(body)
}

impl World {
    async fn create(client: &reqwest::Client, base: &str, admin: &str) -> BenchResult<World> {
        let id = |value: Value| value["id"].as_str().unwrap_or_default().to_owned();
        let clinic = id(post(client, &format!("{base}/v1/clinics"), admin, Some(&json!({
            "name": "Bench", "npi": "1234567893", "tax_id": "12-3456789", "address_line": "1 Main St", "city": "Albany",
            "state": "NY", "postal_code": "12207", "time_zone": "America/New_York", "place_of_service": "11"
        }))).await?);
        let mut therapists = Vec::new();
        for index in 0..4 {
            let body = json!({"name": format!("Therapist {index}"), "npi": "1558598797", "licence_number": format!("MT-{index}"), "licence_state": "NY"});
            therapists.push(id(post(
                client,
                &format!("{base}/v1/therapists"),
                admin,
                Some(&body),
            )
            .await?));
        }
        let payer = id(post(
            client,
            &format!("{base}/v1/payers"),
            admin,
            Some(&json!({"name": "Acme", "rules_key": "acme"})),
        )
        .await?);
        let patient = id(post(
            client,
            &format!("{base}/v1/patients"),
            admin,
            Some(&json!({
                "given_name": "Jo", "family_name": "Doe", "date_of_birth": "1980-05-17"
            })),
        )
        .await?);
        let coverage = id(post(client, &format!("{base}/v1/coverages"), admin, Some(&json!({
            "patient_id": patient, "payer_id": payer, "member_id": "W1", "valid_from": "2020-01-01"
        }))).await?);
        Ok(World {
            clinic,
            therapists,
            payer,
            patient,
            coverage,
        })
    }
}

async fn record_visit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    world: &World,
    visit: usize,
    latencies: &mut Latencies,
) -> BenchResult<()> {
    // Visits rotate over the therapists, each in its own hour, so none overlap.
    let therapist = &world.therapists[visit % world.therapists.len()];
    let hour = i64::try_from(visit / world.therapists.len())?;
    let start: DateTime<Utc> =
        "2026-01-05T14:00:00Z".parse::<DateTime<Utc>>()? + chrono::Duration::hours(hour);
    let schedule = json!({
        "clinic_id": world.clinic, "therapist_id": therapist, "patient_id": world.patient,
        "payment": {"kind": "payer", "payer_id": world.payer, "coverage_id": world.coverage},
        "scheduled_start": start, "planned_minutes": 60
    });
    let timed = Instant::now();
    let session = post(client, &format!("{base}/v1/sessions"), key, Some(&schedule)).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    latencies.schedule.push(timed.elapsed());
    let path = format!("{base}/v1/sessions/{session}");
    let steps: [(&str, Option<Value>); 5] = [
        ("check-in", None),
        (
            "services",
            Some(
                json!({"technique": "swedish_massage", "code": "97124", "minutes": 30, "body_region": "lower_back"}),
            ),
        ),
        (
            "services",
            Some(
                json!({"technique": "myofascial_release", "code": "97140", "minutes": 15, "body_region": "neck"}),
            ),
        ),
        ("diagnoses", Some(json!({"codes": ["M54.50"]}))),
        ("complete", None),
    ];
    for (step, body) in steps {
        let timed = Instant::now();
        post(client, &format!("{path}/{step}"), key, body.as_ref()).await?;
        latencies.lifecycle.push(timed.elapsed());
    }
    Ok(())
}
