//! End to end: visits recorded through the sessions API go to the log; the projector derives the
//! claims; they are submitted and adjudicated through the API (one paid, one paid with a
//! contractual reduction, one denied CO-50); the projector keeps the outcomes and rollups; the
//! reporting API then reports them, and the rollups the projector kept agree with the line-level
//! GROUP BY over the same rows.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_events::{ClaimId, PayerId, SessionId, UtcMicros};
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_projector::{Outcome, Projector, ProjectorConfig};
use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
use claimledger_sessions_api::startup::Application as SessionsApi;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::spawn_app;

fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"))
}

/// Steps the projector until it is idle (bounded, never sleeping).
async fn drain(projector: &mut Projector) -> anyhow::Result<()> {
    let steps = async {
        loop {
            if let Outcome::Idle = projector.process_next_batch().await? {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), steps).await?
}

struct Sessions {
    address: String,
    client: reqwest::Client,
}

impl Sessions {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the sessions API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn created(&self, path: &str, key: &str, body: Value) -> Uuid {
        let (status, reply) = self
            .call(reqwest::Method::POST, path, key, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {reply}");
        reply["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .expect("an id")
    }

    async fn ok(&self, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, reply) = self.call(reqwest::Method::POST, path, key, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        reply
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_recorded_and_remitted_through_the_api_are_reported() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let pool = app.env.db.clone();
    let log = app.env.event_log().await?;
    let settings = claimledger_sessions_api::config::Settings::from_lookup(|name| match name {
        "CLAIMLEDGER_SESSIONS_PORT" => Some("0".to_owned()),
        "DATABASE_URL" => Some(app.env.endpoints().database_url.clone()),
        _ => None,
    })?;
    let api = SessionsApi::build_with(settings, pool.clone(), log.clone()).await?;
    let sessions = Sessions {
        address: format!("http://127.0.0.1:{}", api.port()),
        client: reqwest::Client::new(),
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(api.run_until_stopped(shutdown.clone()));

    let (chain, admin) = bootstrap_chain(&pool, "End to end").await?;
    let admin = admin.secret;
    publish(&log, chain, &load_dir(&rules_dir())?, UtcMicros(0)).await?;
    let clinic = sessions
        .created(
            "/v1/clinics",
            &admin,
            json!({
            "name": "Capitol Hill", "npi": "1234567893", "tax_id": "12-3456789",
            "address_line": "1 Pine St", "city": "Seattle", "state": "WA", "postal_code": "98101",
            "time_zone": "America/Los_Angeles", "place_of_service": "11"}),
        )
        .await;
    let therapist = sessions
        .created("/v1/therapists", &admin, json!({
            "name": "Alex Kim", "npi": "1558598797", "licence_number": "MT-1", "licence_state": "WA"}))
        .await;
    let payer = sessions
        .created(
            "/v1/payers",
            &admin,
            json!({"name": "Medicare-like", "rules_key": "medicare-like"}),
        )
        .await;
    let patient = sessions
        .created(
            "/v1/patients",
            &admin,
            json!({
            "given_name": "Jo", "family_name": "Doe", "date_of_birth": "1980-05-17"}),
        )
        .await;
    let coverage = sessions
        .created(
            "/v1/coverages",
            &admin,
            json!({
            "patient_id": patient, "payer_id": payer, "member_id": "W123456789",
            "valid_from": "2026-01-01", "valid_to": "2026-12-31"}),
        )
        .await;
    let front_desk = create_api_key(&pool, chain, Role::FrontDesk, None, "desk")
        .await?
        .secret;
    let billing = create_api_key(&pool, chain, Role::Billing, None, "billing")
        .await?
        .secret;

    // Three visits in March 2026: massage, manual therapy, manual therapy.
    let mut claims = Vec::new();
    for (day, technique, code) in [
        (0, "swedish_massage", "97124"),
        (1, "myofascial_release", "97140"),
        (2, "myofascial_release", "97140"),
    ] {
        let start: DateTime<Utc> =
            "2026-03-10T17:00:00Z".parse::<DateTime<Utc>>()? + chrono::Duration::days(day);
        let session = sessions
            .created(
                "/v1/sessions",
                &front_desk,
                json!({
                "clinic_id": clinic, "therapist_id": therapist, "patient_id": patient,
                "payment": {"kind": "payer", "payer_id": payer, "coverage_id": coverage},
                "scheduled_start": start, "planned_minutes": 60}),
            )
            .await;
        let base = format!("/v1/sessions/{session}");
        sessions
            .ok(&format!("{base}/check-in"), &front_desk, None)
            .await;
        sessions
            .ok(
                &format!("{base}/services"),
                &front_desk,
                Some(json!({
                "technique": technique, "code": code, "minutes": 30, "body_region": "lower_back"})),
            )
            .await;
        sessions
            .ok(
                &format!("{base}/diagnoses"),
                &front_desk,
                Some(json!({"codes": ["M54.50"]})),
            )
            .await;
        sessions
            .ok(&format!("{base}/complete"), &front_desk, None)
            .await;
        claims.push(
            ClaimId::for_session_and_payer(SessionId::from(session), PayerId::from(payer))
                .as_uuid(),
        );
    }
    let mut projector = Projector::build(log.clone(), pool.clone(), {
        let mut config = ProjectorConfig::live(rules_dir());
        config.idle_wait = Duration::from_millis(100);
        config
    })?;
    drain(&mut projector).await?;

    // Remittances: 97124 paid less a $10.00 contractual reduction, the first 97140 paid in full,
    // the second 97140 denied as not medically necessary.
    let today: NaiveDate = Utc::now()
        .with_timezone(&chrono_tz::America::Los_Angeles)
        .date_naive();
    let mut charges = Vec::new();
    for (index, claim) in claims.iter().enumerate() {
        let submitted = sessions
            .ok(&format!("/v1/claims/{claim}/submit"), &billing, None)
            .await;
        let line = &submitted["lines"][0];
        let (charge, units) = (
            line["charge_cents"].as_i64().expect("a charge"),
            line["units"].as_i64().expect("units"),
        );
        charges.push((charge, units));
        let remitted = match index {
            0 => {
                json!({"line_number": 1, "allowed_cents": charge - 1_000, "paid_cents": charge - 1_000,
                "patient_responsibility_cents": 0, "paid_units": units,
                "adjustments": [{"group": "CO", "reason_code": "45", "amount_cents": 1_000}]})
            }
            1 => json!({"line_number": 1, "allowed_cents": charge, "paid_cents": charge,
                "patient_responsibility_cents": 0, "paid_units": units, "adjustments": []}),
            _ => json!({"line_number": 1, "allowed_cents": 0, "paid_cents": 0,
                "patient_responsibility_cents": 0, "paid_units": 0,
                "adjustments": [{"group": "CO", "reason_code": "50", "amount_cents": charge}]}),
        };
        sessions
            .ok(
                &format!("/v1/claims/{claim}/adjudications"),
                &billing,
                Some(json!({
                "payer_claim_number": format!("PCN-{index}"), "adjudicated_on": today,
                "lines": [remitted]})),
            )
            .await;
    }
    drain(&mut projector).await?;

    let analyst = app.key(chain.as_uuid(), Role::Analyst, None).await?;
    let march = "from=2026-03-01&to=2026-03-31";
    let by_code = app
        .get(
            &format!("/v1/reports/reimbursement?{march}&group_by=code"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(by_code.status, StatusCode::OK, "{by_code:?}");
    let report = by_code.json();
    assert_eq!(report["source"], "rollups");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{report}");
    let (massage, manual) = (&rows[0], &rows[1]);
    assert_eq!(massage["code"], "97124");
    assert_eq!(massage["billed_cents"], charges[0].0);
    assert_eq!(massage["paid_cents"], charges[0].0 - 1_000);
    assert_eq!(massage["denial_rate"], 0.0);
    assert_eq!(manual["code"], "97140");
    assert_eq!(manual["billed_lines"], 2);
    assert_eq!(manual["billed_units"], charges[1].1 + charges[2].1);
    assert_eq!(manual["paid_cents"], charges[1].0);
    assert_eq!(
        (
            manual["adjudicated_lines"].clone(),
            manual["denied_lines"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(manual["denial_rate"], 0.5);
    let days = (today - NaiveDate::from_ymd_opt(2026, 3, 11).expect("a date")).num_days();
    assert_eq!(manual["average_days_to_payment"], days as f64);

    // The projector's rollups and the line-level GROUP BY agree, grouped every way.
    for group_by in [
        "",
        "code",
        "code,payer",
        "clinic,month",
        "code,payer,clinic,month",
    ] {
        for report in ["reimbursement", "denial-reasons"] {
            let path = format!("/v1/reports/{report}?{march}&group_by={group_by}");
            let rollups = app
                .get(&format!("{path}&source=rollups"), Some(&analyst), None)
                .await
                .json();
            let lines = app
                .get(&format!("{path}&source=lines"), Some(&analyst), None)
                .await
                .json();
            assert_eq!(rollups["rows"], lines["rows"], "{report} by {group_by:?}");
        }
    }
    let denials = app
        .get(
            &format!("/v1/reports/denial-reasons?{march}"),
            Some(&analyst),
            None,
        )
        .await
        .json();
    assert_eq!(denials["rows"][0]["group_code"], "CO");
    assert_eq!(denials["rows"][0]["reason_code"], "50");
    assert_eq!(denials["rows"][0]["amount_cents"], charges[2].0);

    shutdown.cancel();
    server.await??;
    app.stop().await
}
