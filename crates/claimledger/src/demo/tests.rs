//! The demo's recording and billing against a real sessions API (its own database and log stream,
//! removed afterwards): recording with one request in flight and with several records the same
//! visits; billing settles every claim whatever the hour of the day in UTC.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use claimledger_events::{ChainId, UtcMicros};
use claimledger_log::{EventLog, LogStorage};
use claimledger_payer_rules::publish::publish;
use claimledger_payer_rules::rulebook::RuleBook;
use claimledger_sessions_api::auth::{CreatedKey, Role, bootstrap_chain, create_api_key};
use claimledger_sessions_api::clock::Clock;
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use integration_tests::TestEnv;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::api::Api;
use super::billing::{bill_chain, billable_drafts};
use super::workload::{Recorded, record_chain};
use super::{DemoArgs, catch_up};

/// A sessions API on its own database and stream (the workspace harness's `TestEnv`); both are
/// removed on drop, also when a test fails.
struct Stack {
    pool: PgPool,
    log: EventLog,
    base_url: String,
    shutdown: CancellationToken,
    /// Declared last: fields drop in order, so the API has been told to stop first.
    _env: TestEnv,
}

impl Stack {
    /// A stack on the system's clock.
    async fn start() -> Stack {
        Stack::start_at(Clock::System).await
    }

    /// A stack whose API reads the current instant from `clock`.
    async fn start_at(clock: Clock) -> Stack {
        let mut settings = Settings::from_env().expect("settings from the environment");
        let env = TestEnv::start_with_pool(10)
            .await
            .expect("the test's database and stream");
        let pool = env.db.clone();
        let mut log_config = env.log_config();
        log_config.storage = LogStorage::Memory;
        let log = env.event_log_with(log_config).await.expect("the log opens");
        settings.http.port = 0;
        let application = Application::build_with_clock(settings, pool.clone(), log.clone(), clock)
            .await
            .expect("the API builds");
        let base_url = format!("http://127.0.0.1:{}", application.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run_until_stopped(shutdown.clone()));
        Stack {
            pool,
            log,
            base_url,
            shutdown,
            _env: env,
        }
    }

    fn api(&self, key: String) -> Api {
        Api {
            http: reqwest::Client::new(),
            base_url: self.base_url.clone(),
            key,
        }
    }

    /// Records a new chain with `concurrency` requests in flight; returns the chain, its admin
    /// and what was recorded.
    async fn record(&self, concurrency: u32, today: NaiveDate) -> (Uuid, Api, Recorded) {
        let (chain, admin) = self.new_chain().await;
        let recorded = self.record_into(chain, &admin, concurrency, today).await;
        (chain.as_uuid(), self.api(admin.secret), recorded)
    }

    async fn new_chain(&self) -> (ChainId, CreatedKey) {
        bootstrap_chain(&self.pool, "Demo test chain")
            .await
            .expect("a chain")
    }

    /// Records the demo's visits for 3 clinics over the 3 days before `today` into `chain`.
    async fn record_into(
        &self,
        chain: ChainId,
        admin: &CreatedKey,
        concurrency: u32,
        today: NaiveDate,
    ) -> Recorded {
        let front_desk = create_api_key(&self.pool, chain, Role::FrontDesk, None, "front desk")
            .await
            .expect("a key");
        let rules = repository_rules();
        let payer_keys: Vec<String> = rules.payer_ids().into_iter().map(str::to_owned).collect();
        let args = DemoArgs {
            clinics: 3,
            days: 3,
            visits_per_day: 6,
            seed: 7,
            rules_dir: rules_dir(),
            concurrency,
            keep_serving: false,
        };
        record_chain(
            &self.api(admin.secret.clone()),
            &self.api(front_desk.secret),
            &args,
            &payer_keys,
            today,
        )
        .await
        .expect("the chain is recorded")
    }

    /// Lets the projector catch up with the log, then counts `chain`'s claims billing would settle.
    async fn drafts_once_projected(&self, chain: ChainId) -> i64 {
        catch_up(self.log.clone(), self.pool.clone(), &rules_dir())
            .await
            .expect("the projector catches up");
        billable_drafts(&self.pool, chain.as_uuid())
            .await
            .expect("the draft claims count")
    }

    /// Every visit of `chain` as the API reads it back, with the ids that differ between chains
    /// replaced by the names of what they point at, sorted.
    async fn visits(&self, chain: Uuid, admin: &Api) -> Vec<String> {
        let sessions: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(
            "SELECT s.session_id, c.name, t.name, p.given_name || ' ' || p.family_name || ' ' || p.date_of_birth, y.name \
             FROM session_slots s \
             JOIN clinics c ON c.chain_id = s.chain_id AND c.id = s.clinic_id \
             JOIN therapists t ON t.chain_id = s.chain_id AND t.id = s.therapist_id \
             JOIN patient_phi p ON p.chain_id = s.chain_id AND p.patient_id = s.patient_id \
             JOIN coverages v ON v.chain_id = s.chain_id AND v.id = s.coverage_id \
             JOIN payers y ON y.chain_id = s.chain_id AND y.id = v.payer_id \
             WHERE s.chain_id = $1",
        )
        .bind(chain)
        .fetch_all(&self.pool)
        .await
        .expect("the chain's sessions");
        let mut visits = Vec::new();
        for (session, clinic, therapist, patient, payer) in sessions {
            let mut view = admin
                .get(&format!("/v1/sessions/{session}"))
                .await
                .expect("the session reads back");
            let fields = view.as_object_mut().expect("a session view");
            for id in [
                "id",
                "version",
                "clinic_id",
                "therapist_id",
                "patient_id",
                "payment",
                "referral_id",
                "checked_in_at",
                "completed_at",
            ] {
                fields.remove(id);
            }
            for list in ["services", "modalities"] {
                for item in fields[list].as_array_mut().expect("a list") {
                    item.as_object_mut().expect("an item").remove("event_id");
                }
            }
            visits.push(format!(
                "{clinic} | {therapist} | {patient} | {payer} | {view}"
            ));
        }
        visits.sort();
        visits
    }
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn repository_rules() -> Arc<RuleBook> {
    Arc::new(claimledger_payer_rules::load_dir(&rules_dir()).expect("the repository's rules"))
}

impl Api {
    /// GETs `path` and returns the JSON answer; anything but 2xx is an error.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.key)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_one_or_many_days_at_once_records_the_same_visits() {
    let stack = Stack::start().await;
    // One day for both recordings, so a run across midnight compares like with like.
    let today = Utc::now().date_naive();
    let (sequential_chain, sequential_admin, sequential) = stack.record(1, today).await;
    let (concurrent_chain, concurrent_admin, concurrent) = stack.record(5, today).await;

    let counts = |recorded: &Recorded| {
        [
            recorded.visits,
            recorded.completed,
            recorded.cancelled,
            recorded.no_shows,
            recorded.amended,
            recorded.late_notes,
            recorded.requests,
        ]
    };
    assert_eq!(counts(&sequential), counts(&concurrent));
    assert_eq!(sequential.visits, 3 * 3 * 6);
    let visits = stack.visits(sequential_chain, &sequential_admin).await;
    assert_eq!(visits.len(), 3 * 3 * 6);
    assert_eq!(
        visits,
        stack.visits(concurrent_chain, &concurrent_admin).await
    );
    // The comparison sees what was recorded: completed visits with their services are among them.
    assert!(
        visits
            .iter()
            .any(|visit| visit.contains("\"status\":\"completed\"") && visit.contains("97")),
        "{visits:?}"
    );
}

/// The payers adjudicate on the day the claims API dated the submission. At 03:00 UTC the UTC date
/// is already tomorrow in the chain's US clinics, and the API refuses an adjudication dated after
/// the clinic's today: a payer that dated its remittances by the UTC date failed every demo started
/// between 00:00 and 08:00 UTC. The API's clock is fixed at that hour, on a day long past, so this
/// test does not depend on when it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_at_three_in_the_morning_utc_settles_every_claim() {
    let three_am_utc = Utc
        .with_ymd_and_hms(2026, 3, 10, 3, 0, 0)
        .single()
        .expect("a valid instant");
    let stack = Stack::start_at(Clock::Fixed(three_am_utc)).await;
    let (chain, admin) = stack.new_chain().await;
    let rules = repository_rules();
    // The projector derives claims under the rules the log holds, so they go first, as in the demo.
    publish(
        &stack.log,
        chain,
        &rules,
        UtcMicros(three_am_utc.timestamp_micros()),
    )
    .await
    .expect("the rules are published");
    let clinic_today = NaiveDate::from_ymd_opt(2026, 3, 9).expect("a date");
    let recorded = stack.record_into(chain, &admin, 4, clinic_today).await;
    assert!(recorded.completed > 0, "{recorded:?}");
    let drafts = stack.drafts_once_projected(chain).await;
    assert!(drafts > 14, "too few claims to cross two pages: {drafts}");

    let billing = create_api_key(&stack.pool, chain, Role::Billing, None, "billing")
        .await
        .expect("a key");
    // Pages of 7 claims, so that billing crosses several page boundaries: a claim missed or
    // submitted twice at a boundary fails the counts below (a second submit is refused).
    let billed = bill_chain(
        stack.api(billing.secret),
        &stack.pool,
        chain.as_uuid(),
        Arc::clone(&rules),
        7,
        4,
        7,
    )
    .await
    .expect("every claim is settled");
    assert_eq!(billed.submitted, u64::try_from(drafts).expect("a count"));
    assert!(billed.paid > 0, "{billed:?}");

    // Every remittance is on the log, dated the clinic's today, and the projection shows no draft.
    let still_draft = stack.drafts_once_projected(chain).await;
    assert_eq!(still_draft, 0);
}
