//! `spawn_app()`: one isolated sessions API per test, on port 0, on the workspace harness's
//! `TestEnv` (its own freshly created and migrated PostgreSQL database and its own JetStream stream
//! and subject prefix, with the harness's container fallback), all removed again when the `TestApp`
//! is dropped (even when the test fails).

use std::sync::Once;

use chrono::{DateTime, Duration, Utc};
use claimledger_events::{AggregateKind, ChainId, ClinicId, SessionId};
use claimledger_log::{AggregateAddress, EventLog, LogStorage};
use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use integration_tests::TestEnv;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

static TRACING: Once = Once::new();

/// Test logs are silent unless `TEST_LOG` is set.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .init();
        }
    });
}

/// A running API with its own database and stream.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The test database.
    pub pool: PgPool,
    /// The test's log.
    pub log: EventLog,
    /// The bootstrapped chain.
    pub chain: ChainId,
    /// Its admin key.
    pub admin_key: String,
    /// The NATS server.
    pub nats_url: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
    /// The test's database and streams, removed when the app is dropped (declared last: fields
    /// drop in order, so the server has stopped first).
    _env: TestEnv,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// The `field` of a problem body.
    pub fn field(&self) -> &str {
        self.body["field"].as_str().unwrap_or_default()
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The `ETag` header.
    pub fn etag(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The `id` of the body, as a UUID.
    pub fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .unwrap_or_else(|| panic!("no id in {self:?}"))
    }

    /// Asserts a problem answer with `status` naming `field`.
    pub fn assert_problem(&self, status: StatusCode, field: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type(), "application/problem+json", "{self:?}");
        assert_eq!(self.field(), field, "{self:?}");
        assert!(
            self.body["reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{self:?}"
        );
    }
}

/// A request under construction.
pub struct Call<'a> {
    app: &'a TestApp,
    request: reqwest::RequestBuilder,
}

impl Call<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// Sends a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.request = self.request.json(body);
        self
    }

    /// Sends raw bytes as `application/json`.
    pub fn raw_json(mut self, body: Vec<u8>) -> Self {
        self.request = self
            .request
            .header("content-type", "application/json")
            .body(body);
        self
    }

    /// Sends raw bytes as they are (the caller sets the content type).
    pub fn raw_body(mut self, body: Vec<u8>) -> Self {
        self.request = self.request.body(body);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Reply {
        let _ = self.app;
        let response = self.request.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

/// The reference data most tests need, and a front-desk key.
pub struct World {
    /// A clinic in New York.
    pub clinic: Uuid,
    /// A therapist.
    pub therapist: Uuid,
    /// A payer.
    pub payer: Uuid,
    /// A patient.
    pub patient: Uuid,
    /// The patient's coverage at the payer for 2026.
    pub coverage: Uuid,
    /// A referral for the patient, March to May 2026, 2 visits.
    pub referral: Uuid,
    /// A front-desk key of the chain.
    pub front_desk: String,
}

/// A valid NPI (the CMS example).
pub const NPI: &str = "1234567893";

/// A weekday morning in March 2026, 14:00 UTC (09:00 in New York).
pub fn morning() -> DateTime<Utc> {
    "2026-03-10T14:00:00Z".parse().expect("a valid instant")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `configure` (port, database and log are the test's).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_tracing();
    let base = Settings::from_env().expect("settings from the environment");
    // The API serves many requests at once (and a second instance shares the pool).
    let env = TestEnv::start_with_pool(10)
        .await
        .expect("the test's database and stream");
    let pool = env.db.clone();
    let mut log_config = env.log_config();
    log_config.storage = LogStorage::Memory;
    let log = env.event_log_with(log_config).await.expect("the log opens");

    let mut settings = base.clone();
    configure(&mut settings);
    settings.http.port = 0;
    let application = Application::build_with(settings, pool.clone(), log.clone())
        .await
        .expect("the API builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            application
                .run_until_stopped(shutdown)
                .await
                .expect("the API serves")
        }
    });
    let (chain, admin) = bootstrap_chain(&pool, "Test chain")
        .await
        .expect("bootstrap");
    TestApp {
        address,
        client: reqwest::Client::new(),
        pool,
        log,
        chain,
        admin_key: admin.secret,
        nats_url: env.endpoints().nats_url.clone(),
        shutdown,
        server: Some(server),
        _env: env,
    }
}

impl TestApp {
    /// A POST to `path` with `key`.
    pub fn post(&self, path: &str, key: &str) -> Call<'_> {
        Call {
            app: self,
            request: self
                .client
                .post(format!("{}{path}", self.address))
                .bearer_auth(key),
        }
    }

    /// A GET of `path` with `key`.
    pub fn get(&self, path: &str, key: &str) -> Call<'_> {
        Call {
            app: self,
            request: self
                .client
                .get(format!("{}{path}", self.address))
                .bearer_auth(key),
        }
    }

    /// Cancels the shutdown token and waits (bounded) for the server to finish; `true` when it
    /// stopped in time.
    pub async fn stop(&mut self) -> bool {
        self.shutdown.cancel();
        let Some(server) = self.server.take() else {
            return true;
        };
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(10), server).await,
            Ok(Ok(()))
        )
    }

    /// Starts a second API instance on the same database and log (its own, empty, session cache),
    /// as another replica behind a load balancer would be, and returns its base address.
    pub async fn second_instance(&self) -> String {
        let mut settings = Settings::from_env().expect("settings from the environment");
        settings.http.port = 0;
        let application = Application::build_with(settings, self.pool.clone(), self.log.clone())
            .await
            .expect("the API builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            application
                .run_until_stopped(shutdown)
                .await
                .expect("the API serves")
        });
        address
    }

    /// Creates a key of this chain with `role`.
    pub async fn key(&self, role: Role, clinics: Option<&[Uuid]>) -> String {
        let clinics: Option<Vec<ClinicId>> =
            clinics.map(|ids| ids.iter().copied().map(ClinicId::from).collect());
        create_api_key(&self.pool, self.chain, role, clinics.as_deref(), "test")
            .await
            .expect("a key")
            .secret
    }

    /// Registers a clinic and returns its id.
    pub async fn clinic(&self, time_zone: &str) -> Uuid {
        let reply = self
            .post("/v1/clinics", &self.admin_key)
            .json(&json!({
                "name": "Downtown", "npi": NPI, "tax_id": "12-3456789", "address_line": "1 Main St",
                "city": "Springfield", "state": "NY", "postal_code": "10001", "time_zone": time_zone,
                "place_of_service": "11"
            }))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.id()
    }

    /// Registers a therapist and returns its id.
    pub async fn therapist(&self) -> Uuid {
        let body = json!({"name": "Alex Kim", "npi": "1558598797", "licence_number": "MT-1", "licence_state": "NY"});
        let reply = self
            .post("/v1/therapists", &self.admin_key)
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.id()
    }

    /// Builds the usual reference data.
    pub async fn world(&self) -> World {
        self.world_paid_by("Acme Health", "acme-health").await
    }

    /// Builds the usual reference data, with the payer registered by `rules_key`.
    pub async fn world_paid_by(&self, name: &str, rules_key: &str) -> World {
        let clinic = self.clinic("America/New_York").await;
        let therapist = self.therapist().await;
        let payer = self
            .post("/v1/payers", &self.admin_key)
            .json(&json!({"name": name, "rules_key": rules_key}))
            .send()
            .await
            .id();
        let patient = self
            .post("/v1/patients", &self.admin_key)
            .json(&json!({"given_name": "Jo", "family_name": "Doe", "date_of_birth": "1980-05-17"}))
            .send()
            .await
            .id();
        let coverage = self
            .post("/v1/coverages", &self.admin_key)
            .json(
                &json!({"patient_id": patient, "payer_id": payer, "member_id": "W123456789",
                "valid_from": "2026-01-01", "valid_to": "2026-12-31"}),
            )
            .send()
            .await
            .id();
        let referral = self
            .post("/v1/referrals", &self.admin_key)
            .json(
                &json!({"patient_id": patient, "referring_npi": NPI, "diagnoses": ["M54.50"],
                "authorised_visits": 2, "issued_on": "2026-03-01", "expires_on": "2026-05-31"}),
            )
            .send()
            .await
            .id();
        let front_desk = self.key(Role::FrontDesk, None).await;
        World {
            clinic,
            therapist,
            payer,
            patient,
            coverage,
            referral,
            front_desk,
        }
    }

    /// A schedule request body for `world` at `start` for `minutes`.
    pub fn schedule_body(world: &World, start: DateTime<Utc>, minutes: u16) -> Value {
        json!({
            "clinic_id": world.clinic, "therapist_id": world.therapist, "patient_id": world.patient,
            "payment": {"kind": "payer", "payer_id": world.payer, "coverage_id": world.coverage},
            "scheduled_start": start, "planned_minutes": minutes
        })
    }

    /// Schedules a 60-minute session at `start` and returns its reply.
    pub async fn schedule(&self, world: &World, start: DateTime<Utc>) -> Reply {
        self.post("/v1/sessions", &world.front_desk)
            .json(&Self::schedule_body(world, start, 60))
            .send()
            .await
    }

    /// Schedules a session at `morning()` and checks it in; returns its id.
    pub async fn checked_in_session(&self, world: &World) -> Uuid {
        let session = self.schedule(world, morning()).await.id();
        let reply = self
            .post(
                &format!("/v1/sessions/{session}/check-in"),
                &world.front_desk,
            )
            .send()
            .await;
        assert!(reply.status.is_success(), "{reply:?}");
        session
    }

    /// The number of commits on a session's subject.
    pub async fn commits_of(&self, clinic: Uuid, session: Uuid) -> usize {
        let address = AggregateAddress {
            chain: self.chain,
            clinic: Some(ClinicId::from(clinic)),
            kind: AggregateKind::Session,
            id: SessionId::from(session).into(),
        };
        self.log
            .read(&address)
            .await
            .expect("the log reads")
            .commits
            .len()
    }

    /// The number of commits in the whole test stream.
    pub async fn total_commits(&self) -> u64 {
        self.log.last_sequence().await.expect("the stream answers")
    }

    /// The number of rows of `table`.
    pub async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// `start` plus `minutes`.
pub fn plus_minutes(start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    start + Duration::minutes(minutes)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
