//! The demo's recording against a real sessions API (its own database and log stream, removed
//! afterwards): recording with one request in flight and with several records the same visits.

use std::path::Path;

use chrono::{NaiveDate, Utc};
use claimledger_log::{EventLog, LogConfig, LogStorage};
use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::DemoArgs;
use super::api::Api;
use super::workload::{Recorded, record_chain};

/// A sessions API on its own database and stream; both are removed on drop, also when a test fails.
struct Stack {
    pool: PgPool,
    base_url: String,
    shutdown: CancellationToken,
    database_name: String,
    maintenance: PgConnectOptions,
    nats_url: String,
    streams: Vec<String>,
}

impl Stack {
    async fn start() -> Stack {
        let mut settings = Settings::from_env().expect("settings from the environment");
        let maintenance = settings.database.connect_options().expect("DATABASE_URL");
        let database_name = format!("demo_test_{}", Uuid::new_v4().simple());
        let mut connection = PgConnection::connect_with(&maintenance)
            .await
            .expect("PostgreSQL answers");
        sqlx::query(&format!("CREATE DATABASE \"{database_name}\""))
            .execute(&mut connection)
            .await
            .expect("create the test database");
        connection.close().await.expect("close");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(maintenance.clone().database(&database_name))
            .await
            .expect("connect to the test database");
        sqlx::migrate!("../../migrations")
            .run(&pool)
            .await
            .expect("migrations run");
        let unique = Uuid::new_v4().simple().to_string();
        let mut log_config = LogConfig::new(format!("DEMO_TEST_{unique}"), format!("d{unique}"));
        log_config.storage = LogStorage::Memory;
        let streams = vec![
            log_config.stream_name.clone(),
            log_config.parked_stream_name(),
        ];
        let client = async_nats::connect(&settings.nats_url)
            .await
            .expect("NATS answers");
        let log = EventLog::connect(client, log_config)
            .await
            .expect("the log opens");
        settings.http.port = 0;
        let nats_url = settings.nats_url.clone();
        let application = Application::build_with(settings, pool.clone(), log)
            .await
            .expect("the API builds");
        let base_url = format!("http://127.0.0.1:{}", application.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run_until_stopped(shutdown.clone()));
        Stack {
            pool,
            base_url,
            shutdown,
            database_name,
            maintenance,
            nats_url,
            streams,
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
        let (chain, admin) = bootstrap_chain(&self.pool, "Demo test chain")
            .await
            .expect("a chain");
        let front_desk = create_api_key(&self.pool, chain, Role::FrontDesk, None, "front desk")
            .await
            .expect("a key");
        let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let rules = claimledger_payer_rules::load_dir(&rules_dir).expect("the repository's rules");
        let payer_keys: Vec<String> = rules.payer_ids().into_iter().map(str::to_owned).collect();
        let args = DemoArgs {
            clinics: 3,
            days: 3,
            visits_per_day: 6,
            seed: 7,
            rules_dir,
            concurrency,
            keep_serving: false,
        };
        let admin = self.api(admin.secret);
        let recorded = record_chain(
            &admin,
            &self.api(front_desk.secret),
            &args,
            &payer_keys,
            today,
        )
        .await
        .expect("the chain is recorded");
        (chain.as_uuid(), admin, recorded)
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
        let database_name = self.database_name.clone();
        let options = self.maintenance.clone().disable_statement_logging();
        let nats_url = self.nats_url.clone();
        let streams = self.streams.clone();
        // Cleanup runs on its own runtime in its own thread, so it also runs when a test panics.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect_with(&options).await {
                    let _ = sqlx::query(&format!(
                        "DROP DATABASE IF EXISTS \"{database_name}\" WITH (FORCE)"
                    ))
                    .execute(&mut connection)
                    .await;
                }
                if let Ok(client) = async_nats::connect(&nats_url).await {
                    let context = async_nats::jetstream::new(client);
                    for stream in streams {
                        let _ = context.delete_stream(&stream).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
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
