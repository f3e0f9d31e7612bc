//! Every endpoint crossed with every role and every clinic scope: a key acts only within its role
//! and its clinics, and never creates a key that reaches further than itself.

use claimledger_sessions_api::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use claimledger_projector::Projector;

use crate::claims::{Billing, billing_world, drain, projector_config, visit};
use crate::helpers::{morning, plus_minutes, spawn_app};

/// Which clinics a key may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Chain,
    OwnClinic,
    OtherClinic,
}

/// How far an endpoint depends on the clinic scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Chain-wide data: any scope may.
    No,
    /// It concerns clinic A: keys limited to clinic B may not (403, or 404 when even the
    /// existence is not the key's to see).
    ClinicA(StatusCode),
    /// It hands out every clinic: only chain-wide keys may.
    WholeChain,
}

/// Codes to attach, one new one per attempt (attaching one twice is refused).
const DIAGNOSES: [&str; 12] = [
    "M54.50", "M54.2", "M62.830", "M79.18", "M54.6", "M25.511", "M25.512", "M54.16", "M53.3",
    "M79.601", "M79.602", "M54.9",
];

const EVERY_ROLE: &[Role] = &[Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst];
const ADMIN: &[Role] = &[Role::Admin];
const REGISTRARS: &[Role] = &[Role::Admin, Role::FrontDesk];
const RECORDERS: &[Role] = &[Role::FrontDesk];
const SESSION_READERS: &[Role] = &[Role::FrontDesk, Role::Billing, Role::Admin];
const PHI_READERS: &[Role] = &[Role::Admin, Role::FrontDesk, Role::Billing];
const CLAIM_WORKERS: &[Role] = &[Role::Billing, Role::Admin];

struct Endpoint {
    method: Method,
    path: String,
    body: Option<Value>,
    roles: &'static [Role],
    bound: Bound,
}

impl Endpoint {
    fn new(method: Method, path: String, roles: &'static [Role], bound: Bound) -> Endpoint {
        Endpoint {
            method,
            path,
            body: None,
            roles,
            bound,
        }
    }

    fn with(mut self, body: Value) -> Endpoint {
        self.body = Some(body);
        self
    }
}

/// Every route of the API, each concerning clinic A where it concerns a clinic.
struct Targets {
    clinic_a: Uuid,
    session: Uuid,
    claim: Uuid,
    key_in_a: Uuid,
    schedule: Value,
    world: Billing,
    forgettable: Vec<Uuid>,
}

impl Targets {
    fn endpoints(&self, attempt: usize) -> Vec<Endpoint> {
        use Method as M;
        let (clinic_a, session, claim) = (self.clinic_a, self.session, self.claim);
        let world = &self.world;
        let forced = Bound::ClinicA(StatusCode::FORBIDDEN);
        let mut schedule = self.schedule.clone();
        schedule["scheduled_start"] = json!(plus_minutes(
            morning() + chrono::Duration::days(3),
            90 * attempt as i64
        ));
        let session_path = |tail: &str| format!("/v1/sessions/{session}{tail}");
        let claim_path = |tail: &str| format!("/v1/claims/{claim}{tail}");
        vec![
            Endpoint::new(M::POST, "/v1/api-keys".into(), ADMIN, forced)
                .with(json!({"role": "analyst", "label": "scoped", "clinic_ids": [clinic_a]})),
            Endpoint::new(M::POST, "/v1/api-keys".into(), ADMIN, Bound::WholeChain)
                .with(json!({"role": "analyst", "label": "chain-wide"})),
            Endpoint::new(M::GET, "/v1/api-keys".into(), ADMIN, Bound::No),
            Endpoint::new(
                M::DELETE,
                format!("/v1/api-keys/{}", self.key_in_a),
                ADMIN,
                Bound::ClinicA(StatusCode::NOT_FOUND),
            ),
            Endpoint::new(M::POST, "/v1/clinics".into(), ADMIN, Bound::No).with(json!({
                "name": "Annex", "npi": "1234567893", "tax_id": "12-3456789",
                "address_line": "9 Side St", "city": "Springfield", "state": "NY",
                "postal_code": "10001", "time_zone": "America/New_York", "place_of_service": "11"})),
            Endpoint::new(M::GET, format!("/v1/clinics/{clinic_a}"), EVERY_ROLE, forced),
            Endpoint::new(M::POST, "/v1/therapists".into(), ADMIN, Bound::No).with(json!({
                "name": "Sam Lee", "npi": "1558598797", "licence_number": "MT-9",
                "licence_state": "NY"})),
            Endpoint::new(M::POST, "/v1/payers".into(), ADMIN, Bound::No)
                .with(json!({"name": "Medicare-like", "rules_key": "medicare-like"})),
            Endpoint::new(M::POST, "/v1/patients".into(), REGISTRARS, Bound::No).with(
                json!({"given_name": "Kim", "family_name": "Lu", "date_of_birth": "1990-02-03"}),
            ),
            Endpoint::new(
                M::GET,
                format!("/v1/patients/{}", world.patient),
                PHI_READERS,
                Bound::No,
            ),
            Endpoint::new(
                M::DELETE,
                format!("/v1/patients/{}/phi", self.forgettable[attempt]),
                ADMIN,
                Bound::No,
            )
            .with(json!({"reason": "asked to be forgotten"})),
            Endpoint::new(M::POST, "/v1/coverages".into(), REGISTRARS, Bound::No).with(json!({
                "patient_id": world.patient, "payer_id": world.payer, "member_id": "W2",
                "valid_from": "2026-01-01"})),
            Endpoint::new(M::POST, "/v1/referrals".into(), REGISTRARS, Bound::No).with(json!({
                "patient_id": world.patient, "referring_npi": "1234567893",
                "diagnoses": ["M54.50"], "authorised_visits": 4, "issued_on": "2026-03-01",
                "expires_on": "2026-05-31"})),
            Endpoint::new(M::POST, "/v1/sessions".into(), RECORDERS, forced).with(schedule),
            Endpoint::new(M::GET, session_path(""), SESSION_READERS, forced),
            Endpoint::new(M::POST, session_path("/check-in"), RECORDERS, forced),
            Endpoint::new(M::POST, session_path("/services"), RECORDERS, forced).with(json!({
                "technique": "swedish_massage", "code": "97124", "minutes": 8,
                "body_region": "lower_back"})),
            Endpoint::new(M::POST, session_path("/modalities"), RECORDERS, forced)
                .with(json!({"code": "97010", "minutes": 5})),
            Endpoint::new(M::POST, session_path("/diagnoses"), RECORDERS, forced)
                .with(json!({"codes": [DIAGNOSES[attempt % DIAGNOSES.len()]]})),
            Endpoint::new(
                M::POST,
                session_path(&format!("/services/{}/void", Uuid::now_v7())),
                RECORDERS,
                forced,
            )
            .with(json!({"reason": "entered twice"})),
            Endpoint::new(M::POST, session_path("/complete"), RECORDERS, forced),
            Endpoint::new(M::POST, session_path("/amend"), RECORDERS, forced)
                .with(json!({"reason": "late note"})),
            Endpoint::new(M::POST, session_path("/no-show"), RECORDERS, forced),
            Endpoint::new(M::POST, session_path("/cancel"), RECORDERS, forced)
                .with(json!({"reason": "patient ill"})),
            Endpoint::new(M::GET, claim_path(""), CLAIM_WORKERS, forced),
            Endpoint::new(M::POST, claim_path("/submit"), CLAIM_WORKERS, forced),
            Endpoint::new(M::POST, claim_path("/adjudications"), CLAIM_WORKERS, forced).with(
                json!({"payer_claim_number": "P-1", "adjudicated_on": "2026-03-20", "lines": []}),
            ),
            Endpoint::new(M::POST, claim_path("/resubmit"), CLAIM_WORKERS, forced)
                .with(json!({"reason": "other code", "lines": []})),
            Endpoint::new(M::POST, claim_path("/write-off"), CLAIM_WORKERS, forced)
                .with(json!({"reason": "small balance", "amount_cents": 1})),
        ]
    }
}

// Its figures are printed for the record (`--nocapture`): they go into the closing notes.
#[allow(clippy::print_stdout)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_honours_every_role_and_clinic_scope() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let clinic_a = world.clinic;
    let clinic_b = app.clinic("America/Chicago").await;
    let claim = visit(&app, &world, 1, &[("swedish_massage", "97124", 30)]).await;
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    drain(&mut projector).await;
    let schedule = json!({
        "clinic_id": clinic_a, "therapist_id": world.therapist, "patient_id": world.patient,
        "payment": {"kind": "payer", "payer_id": world.payer, "coverage_id": world.coverage},
        "scheduled_start": morning(), "planned_minutes": 60
    });
    let session = app
        .post("/v1/sessions", &world.front_desk)
        .json(&schedule)
        .send()
        .await
        .id();
    app.key(Role::Analyst, Some(&[clinic_a])).await;
    let key_in_a: Uuid =
        sqlx::query_scalar("SELECT id FROM api_keys ORDER BY created_at DESC, id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .expect("the key's id");
    let mut forgettable = Vec::new();
    for _ in 0..12 {
        forgettable.push(
            app.post("/v1/patients", &app.admin_key)
                .json(&json!({"given_name": "Ex", "family_name": "Patient", "date_of_birth": "1970-01-01"}))
                .send()
                .await
                .id(),
        );
    }
    let targets = Targets {
        clinic_a,
        session,
        claim,
        key_in_a,
        schedule,
        world,
        forgettable,
    };

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut attempt = 0;
    for role in [Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst] {
        for scope in [Scope::Chain, Scope::OwnClinic, Scope::OtherClinic] {
            let clinics = match scope {
                Scope::Chain => None,
                Scope::OwnClinic => Some(vec![clinic_a]),
                Scope::OtherClinic => Some(vec![clinic_b]),
            };
            let key = app.key(role, clinics.as_deref()).await;
            for endpoint in targets.endpoints(attempt) {
                // `None`: the key may act, so the answer is anything but a refusal of the key.
                let refused_with = if !endpoint.roles.contains(&role) {
                    Some(StatusCode::FORBIDDEN)
                } else {
                    match (endpoint.bound, scope) {
                        (Bound::ClinicA(status), Scope::OtherClinic) => Some(status),
                        (Bound::WholeChain, Scope::OwnClinic | Scope::OtherClinic) => {
                            Some(StatusCode::FORBIDDEN)
                        }
                        _ => None,
                    }
                };
                let mut request = app
                    .client
                    .request(
                        endpoint.method.clone(),
                        format!("{}{}", app.address, endpoint.path),
                    )
                    .bearer_auth(&key);
                if let Some(body) = &endpoint.body {
                    request = request.json(body);
                }
                let response = request.send().await.expect("the API answers");
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                checked += 1;
                let fits = match refused_with {
                    Some(expected) => status == expected,
                    None => ![
                        StatusCode::UNAUTHORIZED,
                        StatusCode::FORBIDDEN,
                        StatusCode::NOT_FOUND,
                    ]
                    .contains(&status),
                };
                if !fits {
                    failures.push(format!(
                        "{role:?} {scope:?} {} {}: expected {}, got {status} {body}",
                        endpoint.method,
                        endpoint.path,
                        refused_with.map_or("to be let through".to_owned(), |s| s.to_string())
                    ));
                }
                // A clinic-limited admin lists only keys within its clinics.
                if endpoint.method == Method::GET
                    && endpoint.path == "/v1/api-keys"
                    && status.is_success()
                {
                    for listed in body["keys"].as_array().into_iter().flatten() {
                        let listed_clinics: Option<Vec<Uuid>> =
                            serde_json::from_value(listed["clinic_ids"].clone()).unwrap_or(None);
                        let within = match (clinics.as_deref(), listed_clinics) {
                            (None, _) => true,
                            (Some(_), None) => false,
                            (Some(own), Some(listed)) => {
                                listed.iter().all(|clinic| own.contains(clinic))
                            }
                        };
                        if !within {
                            failures.push(format!(
                                "{role:?} {scope:?} lists a key beyond its scope: {listed}"
                            ));
                        }
                    }
                }
            }
            attempt += 1;
        }
    }
    let routes = targets.endpoints(0).len();
    println!("scopes: {checked} requests: {routes} routes x 4 roles x 3 clinic scopes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_revoked_or_expired_key_answers_401_at_once() {
    let app = spawn_app().await;
    let created = app
        .post("/v1/api-keys", &app.admin_key)
        .json(&json!({"role": "analyst", "label": "temp",
            "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339()}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let secret = created.body["key"].as_str().expect("the secret").to_owned();
    let listed = app.get("/v1/api-keys", &secret).send().await;
    listed.assert_problem(StatusCode::FORBIDDEN, "role");
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let expired = app.get("/v1/api-keys", &secret).send().await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{expired:?}");

    let admin = app
        .post("/v1/api-keys", &app.admin_key)
        .json(&json!({"role": "admin", "label": "second admin"}))
        .send()
        .await;
    let (admin_id, admin_secret) = (
        admin.id(),
        admin.body["key"].as_str().expect("secret").to_owned(),
    );
    assert!(
        app.get("/v1/api-keys", &admin_secret)
            .send()
            .await
            .status
            .is_success()
    );
    let revoked = app
        .client
        .delete(format!("{}/v1/api-keys/{admin_id}", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("answers");
    assert_eq!(revoked.status(), StatusCode::OK);
    let view: Value = revoked.json().await.expect("JSON");
    assert_eq!(view["active"], false);
    assert!(view["revoked_at"].is_string());
    let after = app.get("/v1/api-keys", &admin_secret).send().await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{after:?}");

    let past = app
        .post("/v1/api-keys", &app.admin_key)
        .json(&json!({"role": "analyst", "label": "late", "expires_at": "2020-01-01T00:00:00Z"}))
        .send()
        .await;
    past.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "expires_at");
}
