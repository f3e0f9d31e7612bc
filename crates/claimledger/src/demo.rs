//! `claimledger demo`: the end-to-end run a new user starts with. It publishes the repository's
//! payer rules to the log, starts the sessions API in-process, records a synthetic chain's visits
//! through the public HTTP API, lets the projector catch up, and prints the draft claims' charges by
//! payer and code from the read models.
//!
//! The workload is seeded and deterministic: the same flags record the same visits (only the ids and
//! the dates, which are relative to today, differ between runs). Each run creates a new chain, so runs
//! never disturb each other.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use claimledger_events::UtcMicros;
use claimledger_log::EventLog;
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_projector::{Outcome, Projector, ProjectorConfig};
use claimledger_sessions_api::auth::bootstrap_chain;
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// Arguments of `claimledger demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Clinics in the synthetic chain.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub clinics: u32,
    /// Days of history to record, ending yesterday.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Booked visits per clinic per day (at most 8: two therapists, four two-hour slots each).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub visits_per_day: u32,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The payer rules to publish (one TOML file per payer).
    #[arg(long, env = "CLAIMLEDGER_RULES_DIR", default_value = "rules")]
    pub rules_dir: PathBuf,
    /// Keep the sessions API serving after the report, until Ctrl-C.
    #[arg(long)]
    pub keep_serving: bool,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let settings = Settings::from_env().context("reading the settings (NATS_URL, DATABASE_URL)")?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .connect_with(settings.database.connect_options()?)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::migrate!("../../migrations")
        .run(&pool)
        .await
        .context("migrating the database")?;
    let client = async_nats::connect(&settings.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.nats_url))?;
    let log = EventLog::connect(client, settings.log.clone())
        .await
        .context("opening the event log")?;

    let rules = load_dir(&args.rules_dir)
        .with_context(|| format!("loading the payer rules in {}", args.rules_dir.display()))?;
    let (chain, admin) = bootstrap_chain(&pool, &format!("Demo chain (seed {})", args.seed))
        .await
        .context("creating the demo chain")?;
    let published = publish(
        &log,
        chain,
        &rules,
        UtcMicros(Utc::now().timestamp_micros()),
    )
    .await
    .context("publishing the payer rules")?;
    writeln!(
        out,
        "chain {chain}: published {} payer rules versions to the log",
        published.appended.len()
    )?;

    let application = Application::build_with(settings.clone(), pool.clone(), log.clone())
        .await
        .context("starting the sessions API")?;
    let base_url = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let api = Api {
        http: reqwest::Client::new(),
        base_url: base_url.clone(),
        key: admin.secret,
    };

    // Reference data is an admin's job; visits are recorded by the front desk, with its own key.
    let front_desk_key = api
        .post(
            "/v1/api-keys",
            &json!({"role": "front_desk", "label": "demo front desk"}),
        )
        .await?["key"]
        .as_str()
        .context("the API returned no key")?
        .to_owned();
    let front_desk = Api {
        http: api.http.clone(),
        base_url: base_url.clone(),
        key: front_desk_key,
    };

    let payer_keys: Vec<String> = rules.payer_ids().into_iter().map(str::to_owned).collect();
    let started = Instant::now();
    let recorded = record_chain(&api, &front_desk, args, &payer_keys).await?;
    let recording = started.elapsed();
    writeln!(
        out,
        "recorded {} visits ({} completed, {} cancelled, {} no-shows) in {} HTTP requests, {:.1} s ({:.0} requests/s)",
        recorded.visits,
        recorded.completed,
        recorded.cancelled,
        recorded.no_shows,
        recorded.requests,
        recording.as_secs_f64(),
        recorded.requests as f64 / recording.as_secs_f64()
    )?;

    let started = Instant::now();
    let applied = catch_up(log.clone(), pool.clone(), &args.rules_dir).await?;
    writeln!(
        out,
        "projector caught up: {applied} log positions applied in {:.1} s",
        started.elapsed().as_secs_f64()
    )?;

    print_report(&mut out, &pool, chain.as_uuid()).await?;
    writeln!(out)?;
    writeln!(out, "Where to look:")?;
    writeln!(
        out,
        "  sessions API    {base_url}/openapi.json (stopped when the demo ends; --keep-serving keeps it)"
    )?;
    writeln!(
        out,
        "  read models     psql \"$DATABASE_URL\" -c 'SELECT * FROM read_models.claims WHERE chain_id = '\\''{chain}'\\'' LIMIT 5'"
    )?;
    writeln!(
        out,
        "  the projector   claimledger projector run  (health and metrics on 127.0.0.1:9464)"
    )?;
    drop(out);

    if args.keep_serving {
        crate::shutdown::signal().await;
    }
    shutdown.cancel();
    server.await??;
    Ok(())
}

/// The public HTTP API, called as a clinic's software would.
struct Api {
    http: reqwest::Client,
    base_url: String,
    key: String,
}

impl Api {
    /// POSTs `body` to `path` and returns the JSON answer; anything but 2xx is an error that quotes
    /// the API's problem document.
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// POSTs and returns the `id` of what was created.
    async fn create(&self, path: &str, body: &Value) -> anyhow::Result<String> {
        let answer = self.post(path, body).await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST {path} answered without an id: {answer}"))
    }
}

/// SplitMix64: a tiny, well-known generator, so the workload is the same on every machine and
/// every version of every dependency.
struct Workload(u64);

impl Workload {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Cities the synthetic chain has clinics in, across time zones.
const CITIES: [(&str, &str, &str, &str); 8] = [
    ("Brooklyn", "NY", "11201", "America/New_York"),
    ("Chicago", "IL", "60601", "America/Chicago"),
    ("Denver", "CO", "80202", "America/Denver"),
    ("Phoenix", "AZ", "85004", "America/Phoenix"),
    ("Seattle", "WA", "98101", "America/Los_Angeles"),
    ("Miami", "FL", "33130", "America/New_York"),
    ("Austin", "TX", "78701", "America/Chicago"),
    ("Portland", "OR", "97204", "America/Los_Angeles"),
];

/// Diagnoses that support massage and manual therapy (domain.md section 8).
const DIAGNOSES: [&str; 6] = [
    "M54.50", "M62.830", "M54.2", "G44.209", "M79.18", "S13.4XXA",
];

/// What a therapist does in one service: technique, the code that covers it, minutes range, region.
const SERVICES: [(&str, &str, u16, u16, &str); 6] = [
    ("swedish_massage", "97124", 30, 60, "upper_back"),
    ("deep_tissue_massage", "97124", 23, 45, "neck"),
    ("myofascial_release", "97140", 15, 40, "lower_back"),
    ("joint_mobilisation", "97140", 8, 25, "neck"),
    ("strength_exercise", "97110", 8, 20, "lower_back"),
    (
        "proprioceptive_neuromuscular_facilitation",
        "97112",
        8,
        15,
        "shoulder",
    ),
];

/// Counts of what was recorded.
#[derive(Debug, Default)]
struct Recorded {
    visits: u64,
    completed: u64,
    cancelled: u64,
    no_shows: u64,
    requests: u64,
}

/// An NPI (ten digits, Luhn check over the 80840 prefix) for a synthetic provider.
fn synthetic_npi(serial: u32) -> String {
    let base = format!("1{:08}", serial % 100_000_000);
    let digits: [u8; 9] = std::array::from_fn(|index| base.as_bytes()[index] - b'0');
    format!(
        "{base}{}",
        claimledger_billing::validation::npi_check_digit(&digits)
    )
}

async fn record_chain(
    api: &Api,
    front_desk: &Api,
    args: &DemoArgs,
    payer_keys: &[String],
) -> anyhow::Result<Recorded> {
    let mut rng = Workload(args.seed);
    let mut recorded = Recorded::default();
    let today = Utc::now().date_naive();
    let first_day = today - Days::new(u64::from(args.days));

    let mut payers = Vec::new();
    for key in payer_keys {
        payers.push(
            api.create("/v1/payers", &json!({"name": key, "rules_key": key}))
                .await?,
        );
        recorded.requests += 1;
    }

    let progress = ProgressBar::new(u64::from(args.clinics * args.days * args.visits_per_day))
        .with_style(ProgressStyle::with_template(
            "recording visits {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
        )?);
    for clinic_number in 0..args.clinics {
        let (city, state, postal_code, time_zone) = CITIES[clinic_number as usize % CITIES.len()];
        let clinic = api
            .create(
                "/v1/clinics",
                &json!({
                    "name": format!("{city} #{}", clinic_number + 1), "npi": synthetic_npi(clinic_number * 10),
                    "tax_id": format!("{:02}-{:07}", 10 + clinic_number % 80, 1_000_000 + clinic_number),
                    "address_line": format!("{} Main St", 100 + clinic_number), "city": city, "state": state,
                    "postal_code": postal_code, "time_zone": time_zone, "place_of_service": "11"
                }),
            )
            .await?;
        let tz: chrono_tz::Tz = time_zone.parse().map_err(anyhow::Error::msg)?;
        let mut therapists = Vec::new();
        for therapist_number in 0..2 {
            therapists.push(
                api.create(
                    "/v1/therapists",
                    &json!({
                        "name": format!("Therapist {}-{}", clinic_number + 1, therapist_number + 1),
                        "npi": synthetic_npi(clinic_number * 10 + therapist_number + 1),
                        "licence_number": format!("MT-{clinic_number}-{therapist_number}"),
                        "licence_state": state
                    }),
                )
                .await?,
            );
        }
        // Each patient has one coverage and a referral valid for the whole period.
        let mut patients = Vec::new();
        for patient_number in 0..12 {
            let patient = api
                .create(
                    "/v1/patients",
                    &json!({"given_name": format!("Patient{patient_number}"), "family_name": city,
                            "date_of_birth": format!("19{}-0{}-1{}", 50 + rng.below(45), 1 + rng.below(9), rng.below(10))}),
                )
                .await?;
            let payer = rng.pick(&payers).clone();
            let coverage = api
                .create(
                    "/v1/coverages",
                    &json!({"patient_id": patient, "payer_id": payer,
                            "member_id": format!("M{:09}", rng.below(1_000_000_000)),
                            "valid_from": first_day - Days::new(30), "valid_to": today + Days::new(365)}),
                )
                .await?;
            let diagnosis = *rng.pick(&DIAGNOSES);
            let referral = api
                .create(
                    "/v1/referrals",
                    &json!({"patient_id": patient, "referring_npi": synthetic_npi(9_000_000 + clinic_number),
                            "diagnoses": [diagnosis], "authorised_visits": 200,
                            "issued_on": first_day - Days::new(7), "expires_on": today + Days::new(180)}),
                )
                .await?;
            recorded.requests += 3;
            patients.push((patient, payer, coverage, referral, diagnosis));
        }
        recorded.requests += 3;

        for day_offset in 0..args.days {
            let day = first_day + Days::new(u64::from(day_offset));
            for slot in 0..args.visits_per_day {
                let therapist = &therapists[(slot % 2) as usize];
                let (patient, payer, coverage, referral, diagnosis) = rng.pick(&patients).clone();
                // Two therapists alternate; each starts a visit every two hours from 08:00, so even a
                // 90-minute visit ends before the therapist's next one.
                let start = local_start(tz, day, 8 + (slot / 2) * 2)?;
                let visit = VisitPlan {
                    clinic: &clinic,
                    therapist,
                    patient: &patient,
                    payer: &payer,
                    coverage: &coverage,
                    referral: &referral,
                    diagnosis,
                    start,
                };
                record_visit(front_desk, &mut rng, &visit, &mut recorded).await?;
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    Ok(recorded)
}

/// The UTC instant of `hour`:00 on `day` in the clinic's time zone.
fn local_start(tz: chrono_tz::Tz, day: NaiveDate, hour: u32) -> anyhow::Result<DateTime<Utc>> {
    let local = day
        .and_hms_opt(hour, 0, 0)
        .context("a valid hour of the day")?;
    Ok(tz
        .from_local_datetime(&local)
        .earliest()
        .context("a local time that exists in the clinic's time zone")?
        .with_timezone(&Utc))
}

/// One booked visit.
struct VisitPlan<'a> {
    clinic: &'a str,
    therapist: &'a str,
    patient: &'a str,
    payer: &'a str,
    coverage: &'a str,
    referral: &'a str,
    diagnosis: &'a str,
    start: DateTime<Utc>,
}

/// Books the visit and records what happened: a no-show, a cancellation, or the services,
/// modalities and diagnoses of a completed visit.
async fn record_visit(
    api: &Api,
    rng: &mut Workload,
    visit: &VisitPlan<'_>,
    recorded: &mut Recorded,
) -> anyhow::Result<()> {
    let planned_minutes: u16 = *rng.pick(&[30, 45, 60, 60, 90]);
    let session = api
        .create(
            "/v1/sessions",
            &json!({
                "clinic_id": visit.clinic, "therapist_id": visit.therapist, "patient_id": visit.patient,
                "payment": {"kind": "payer", "payer_id": visit.payer, "coverage_id": visit.coverage},
                "referral_id": visit.referral, "scheduled_start": visit.start, "planned_minutes": planned_minutes
            }),
        )
        .await?;
    recorded.visits += 1;
    recorded.requests += 1;
    let path = |action: &str| format!("/v1/sessions/{session}/{action}");
    let outcome = rng.below(100);
    if outcome < 6 {
        api.post(&path("no-show"), &json!({})).await?;
        recorded.no_shows += 1;
        recorded.requests += 1;
        return Ok(());
    }
    if outcome < 11 {
        api.post(
            &path("cancel"),
            &json!({"reason": "patient called to cancel"}),
        )
        .await?;
        recorded.cancelled += 1;
        recorded.requests += 1;
        return Ok(());
    }
    api.post(&path("check-in"), &json!({})).await?;
    recorded.requests += 1;

    // One to three services that fit in the booked time, most visits led by massage or manual
    // therapy, as in a massage clinic.
    let mut minutes_left = planned_minutes;
    for _ in 0..1 + rng.below(3) {
        let (technique, code, low, high, region) = *rng.pick(&SERVICES);
        let minutes = (low + rng.below(u64::from(high - low + 1)) as u16).min(minutes_left);
        if minutes < 8 {
            break;
        }
        api.post(
            &path("services"),
            &json!({"technique": technique, "code": code, "minutes": minutes, "body_region": region}),
        )
        .await?;
        recorded.requests += 1;
        minutes_left -= minutes;
    }
    if rng.chance(30) {
        api.post(
            &path("modalities"),
            &json!({"code": "97010", "minutes": 10}),
        )
        .await?;
        recorded.requests += 1;
    }
    api.post(&path("diagnoses"), &json!({"codes": [visit.diagnosis]}))
        .await?;
    api.post(&path("complete"), &json!({})).await?;
    recorded.requests += 2;
    recorded.completed += 1;
    Ok(())
}

/// Drives the projector step by step until it has applied everything on the log.
async fn catch_up(log: EventLog, pool: PgPool, rules_dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut projector = Projector::build(log, pool, ProjectorConfig::live(rules_dir.to_owned()))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut applied = 0;
    loop {
        match projector.process_next_batch().await? {
            Outcome::Applied(count) => applied += count,
            Outcome::Idle => return Ok(applied),
        }
        if Instant::now() > deadline {
            bail!("the projector did not catch up within 10 minutes ({applied} positions applied)");
        }
    }
}

/// Prints the draft claims' charges by payer and code for the chain, from the read models.
async fn print_report(
    out: &mut impl Write,
    pool: &PgPool,
    chain: uuid::Uuid,
) -> anyhow::Result<()> {
    let rows: Vec<(Option<String>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.payer_key, l.code, count(DISTINCT l.session_id), sum(l.units)::bigint, sum(l.charge_cents)::bigint
         FROM read_models.claims c
         JOIN read_models.claim_lines l USING (chain_id, session_id, payer_id)
         WHERE c.chain_id = $1
         GROUP BY c.payer_key, l.code
         ORDER BY c.payer_key, l.code",
    )
    .bind(chain)
    .fetch_all(pool)
    .await
    .context("reading the claims")?;
    let (claims, not_derived): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE derivation_error IS NOT NULL)
         FROM read_models.claims WHERE chain_id = $1",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;

    writeln!(out)?;
    writeln!(
        out,
        "Draft claims: {claims} ({not_derived} could not be derived). Charges by payer and code (at the payer's\nfee schedule; a code the payer does not list is charged at a stand-in price and flagged by the scrubber):"
    )?;
    writeln!(
        out,
        "{:<24} {:<6} {:>7} {:>7} {:>14} {:>12}",
        "payer", "code", "claims", "units", "charged", "per unit"
    )?;
    for (payer, code, sessions, units, cents) in rows {
        let per_unit = if units > 0 { cents / units } else { 0 };
        writeln!(
            out,
            "{:<24} {:<6} {:>7} {:>7} {:>14} {:>12}",
            payer.unwrap_or_else(|| "(no rules)".to_owned()),
            code,
            sessions,
            units,
            dollars(cents),
            dollars(per_unit)
        )?;
    }
    Ok(())
}

/// Cents as dollars for display, e.g. `$1,234.56`.
fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_npis_pass_the_billing_core_check() {
        for serial in [0, 1, 10, 99_999_999] {
            let npi = synthetic_npi(serial);
            assert!(
                claimledger_billing::validation::Npi::parse("npi", &npi).is_ok(),
                "{npi}"
            );
        }
    }

    #[test]
    fn dollars_group_thousands_and_keep_cents() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(2_976), "$29.76");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
    }

    #[test]
    fn the_workload_is_deterministic_for_a_seed() {
        let first: Vec<u64> = (0..5)
            .map({
                let mut rng = Workload(7);
                move |_| rng.next()
            })
            .collect();
        let again: Vec<u64> = (0..5)
            .map({
                let mut rng = Workload(7);
                move |_| rng.next()
            })
            .collect();
        assert_eq!(first, again);
        assert_ne!(first[0], Workload(8).next());
    }
}
