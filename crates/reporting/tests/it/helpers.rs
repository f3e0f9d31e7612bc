//! `spawn_app()`: one reporting service per test on port 0, over the test's own freshly created
//! and migrated database (the harness's `TestEnv`), with a chain registered for API keys.

use std::sync::Once;

use claimledger_events::ChainId;
use claimledger_reporting::config::Settings;
use claimledger_reporting::startup::Application;
use claimledger_sessions_api::auth::{Role, create_api_key};
use integration_tests::TestEnv;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

static TRACING: Once = Once::new();

/// Test logs are silent unless `TEST_LOG` is set.
pub fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .init();
        }
    });
}

/// A running reporting service over a test database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: reqwest::Client,
    pub env: TestEnv,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a problem answer with `status` naming `field`.
    pub fn assert_problem(&self, status: StatusCode, field: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type(), "application/problem+json", "{self:?}");
        let body = self.json();
        assert_eq!(body["field"], field, "{self:?}");
        assert!(
            body["reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{self:?}"
        );
    }
}

/// Starts the service on port 0 over a fresh database.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    init_tracing();
    let env = TestEnv::start().await?;
    let settings = Settings::from_lookup(|name| match name {
        "CLAIMLEDGER_REPORTING_PORT" => Some("0".to_owned()),
        "DATABASE_URL" => Some(env.endpoints().database_url.clone()),
        _ => None,
    })?;
    let application = Application::build_with(settings, env.db.clone()).await?;
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            application
                .run_until_stopped(shutdown)
                .await
                .expect("the service runs");
        }
    });
    Ok(TestApp {
        address,
        client: reqwest::Client::new(),
        env,
        shutdown,
        server: Some(server),
    })
}

impl TestApp {
    /// Registers `chain` in the sessions API's `chains` table and creates a key with `role`
    /// (limited to `clinics` when given).
    pub async fn key(
        &self,
        chain: Uuid,
        role: Role,
        clinics: Option<&[Uuid]>,
    ) -> anyhow::Result<String> {
        sqlx::query("INSERT INTO chains (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(chain)
            .bind(format!("chain {chain}"))
            .execute(&self.env.db)
            .await?;
        let clinics: Option<Vec<claimledger_events::ClinicId>> = clinics.map(|clinics| {
            clinics
                .iter()
                .map(|clinic| claimledger_events::ClinicId::from(*clinic))
                .collect()
        });
        let key = create_api_key(
            &self.env.db,
            ChainId::from(chain),
            role,
            clinics.as_deref(),
            "reporting test",
        )
        .await?;
        Ok(key.secret)
    }

    /// `GET path_and_query` with `key` (if any) and extra headers.
    pub async fn get(
        &self,
        path_and_query: &str,
        key: Option<&str>,
        accept: Option<&str>,
    ) -> Reply {
        let mut request = self.client.get(format!("{}{path_and_query}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("the service answers");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a body"),
        }
    }

    /// Stops the service and removes the test's database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await?;
        }
        self.env.cleanup().await
    }
}
