//! Every endpoint crossed with every role and every clinic scope: a key acts only within its role
//! and its clinics, and never creates a key that reaches further than itself.

use claimledger_sessions_api::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, morning, plus_minutes, spawn_app};

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

struct Endpoint {
    method: Method,
    path: String,
    body: Option<Value>,
    roles: &'static [Role],
    bound: Bound,
}

#[tokio::test]
async fn every_endpoint_honours_every_role_and_clinic_scope() {
    let app = spawn_app().await;
    let world = app.world().await;
    let clinic_a = world.clinic;
    let clinic_b = app.clinic("America/Chicago").await;
    let session = app.checked_in_session(&world).await;
    app.key(Role::Analyst, Some(&[clinic_a])).await;
    let key_in_a_id: Uuid =
        sqlx::query_scalar("SELECT id FROM api_keys ORDER BY created_at DESC, id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .expect("the key's id");
    let all = &[Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst];
    let mut start_offset = 0_i64;
    let endpoints = |start_offset: i64| {
        vec![
            Endpoint {
                method: Method::GET,
                path: format!("/v1/clinics/{clinic_a}"),
                body: None,
                roles: all,
                bound: Bound::ClinicA(StatusCode::FORBIDDEN),
            },
            Endpoint {
                method: Method::GET,
                path: format!("/v1/sessions/{session}"),
                body: None,
                roles: &[Role::FrontDesk, Role::Billing, Role::Admin],
                bound: Bound::ClinicA(StatusCode::FORBIDDEN),
            },
            Endpoint {
                method: Method::POST,
                path: "/v1/sessions".to_owned(),
                body: Some(TestApp::schedule_body(
                    &world,
                    plus_minutes(morning(), 90 * (start_offset + 1)),
                    30,
                )),
                roles: &[Role::FrontDesk],
                bound: Bound::ClinicA(StatusCode::FORBIDDEN),
            },
            Endpoint {
                method: Method::POST,
                path: format!("/v1/sessions/{session}/diagnoses"),
                body: Some(json!({"codes": [DIAGNOSES[start_offset as usize % DIAGNOSES.len()]]})),
                roles: &[Role::FrontDesk],
                bound: Bound::ClinicA(StatusCode::FORBIDDEN),
            },
            Endpoint {
                method: Method::POST,
                path: "/v1/api-keys".to_owned(),
                body: Some(json!({"role": "analyst", "label": "scoped", "clinic_ids": [clinic_a]})),
                roles: &[Role::Admin],
                bound: Bound::ClinicA(StatusCode::FORBIDDEN),
            },
            Endpoint {
                method: Method::POST,
                path: "/v1/api-keys".to_owned(),
                body: Some(json!({"role": "analyst", "label": "chain-wide"})),
                roles: &[Role::Admin],
                bound: Bound::WholeChain,
            },
            Endpoint {
                method: Method::GET,
                path: "/v1/api-keys".to_owned(),
                body: None,
                roles: &[Role::Admin],
                bound: Bound::No,
            },
            Endpoint {
                method: Method::DELETE,
                path: format!("/v1/api-keys/{key_in_a_id}"),
                body: None,
                roles: &[Role::Admin],
                bound: Bound::ClinicA(StatusCode::NOT_FOUND),
            },
            Endpoint {
                method: Method::POST,
                path: "/v1/patients".to_owned(),
                body: Some(
                    json!({"given_name": "Kim", "family_name": "Lu", "date_of_birth": "1990-02-03"}),
                ),
                roles: &[Role::Admin, Role::FrontDesk],
                bound: Bound::No,
            },
            Endpoint {
                method: Method::GET,
                path: format!("/v1/patients/{}", world.patient),
                body: None,
                roles: &[Role::Admin, Role::FrontDesk, Role::Billing],
                bound: Bound::No,
            },
            Endpoint {
                method: Method::POST,
                path: "/v1/payers".to_owned(),
                body: Some(json!({"name": "Acme Health", "rules_key": "acme-health"})),
                roles: &[Role::Admin],
                bound: Bound::No,
            },
        ]
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for role in [Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst] {
        for scope in [Scope::Chain, Scope::OwnClinic, Scope::OtherClinic] {
            let clinics = match scope {
                Scope::Chain => None,
                Scope::OwnClinic => Some(vec![clinic_a]),
                Scope::OtherClinic => Some(vec![clinic_b]),
            };
            let key = app.key(role, clinics.as_deref()).await;
            start_offset += 1;
            for endpoint in endpoints(start_offset) {
                let expected = if !endpoint.roles.contains(&role) {
                    StatusCode::FORBIDDEN
                } else {
                    match (endpoint.bound, scope) {
                        (Bound::ClinicA(status), Scope::OtherClinic) => status,
                        (Bound::WholeChain, Scope::OwnClinic | Scope::OtherClinic) => {
                            StatusCode::FORBIDDEN
                        }
                        _ => StatusCode::OK,
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
                let fits = if expected == StatusCode::OK {
                    status.is_success()
                } else {
                    status == expected
                };
                if !fits {
                    failures.push(format!(
                        "{role:?} {scope:?} {} {}: expected {expected}, got {status} {body}",
                        endpoint.method, endpoint.path
                    ));
                }
                // A clinic-limited admin lists only keys within its clinics.
                if endpoint.method == Method::GET
                    && endpoint.path == "/v1/api-keys"
                    && status.is_success()
                {
                    let own: Option<&[Uuid]> = clinics.as_deref();
                    for listed in body["keys"].as_array().into_iter().flatten() {
                        let listed_clinics: Option<Vec<Uuid>> =
                            serde_json::from_value(listed["clinic_ids"].clone()).unwrap_or(None);
                        let within = match (own, listed_clinics) {
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
        }
    }
    println!("scopes: {checked} requests over every role and clinic scope");
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
