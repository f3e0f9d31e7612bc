//! Tenancy, roles and authentication: another chain's ids answer 404, a role without the right
//! answers 403, and no (or an unknown) key answers 401.

use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, morning, spawn_app};

#[tokio::test]
async fn another_chains_ids_answer_404_and_nothing_is_written() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let (other_chain, _) = bootstrap_chain(&app.pool, "Rival chain")
        .await
        .expect("bootstrap");
    let intruder = create_api_key(&app.pool, other_chain, Role::FrontDesk, None, "intruder")
        .await
        .expect("key")
        .secret;
    let before = app.total_commits().await;

    app.get(&format!("/v1/sessions/{session}"), &intruder)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "id");
    app.post(&format!("/v1/sessions/{session}/check-in"), &intruder)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "session_id");
    app.post(&format!("/v1/sessions/{session}/cancel"), &intruder)
        .json(&json!({"reason": "sabotage"}))
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "session_id");
    let scheduled = app
        .post("/v1/sessions", &intruder)
        .json(&TestApp::schedule_body(&world, morning(), 60))
        .send()
        .await;
    scheduled.assert_problem(StatusCode::NOT_FOUND, "clinic_id");
    let intruder_admin =
        create_api_key(&app.pool, other_chain, Role::Admin, None, "intruder admin")
            .await
            .expect("key")
            .secret;
    app.get(&format!("/v1/patients/{}", world.patient), &intruder_admin)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "id");
    app.get(&format!("/v1/clinics/{}", world.clinic), &intruder_admin)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "id");
    let coverage = app
        .post("/v1/coverages", &intruder_admin)
        .json(&json!({"patient_id": world.patient, "payer_id": world.payer, "member_id": "X", "valid_from": "2026-01-01"}))
        .send()
        .await;
    coverage.assert_problem(StatusCode::NOT_FOUND, "patient_id");
    assert_eq!(app.total_commits().await, before);
    assert_eq!(
        app.get(&format!("/v1/sessions/{session}"), &world.front_desk)
            .send()
            .await
            .body["status"],
        "scheduled"
    );
}

#[tokio::test]
async fn roles_are_enforced_with_403() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let analyst = app.key(Role::Analyst, None).await;
    let billing = app.key(Role::Billing, None).await;

    app.post("/v1/sessions", &analyst)
        .json(&TestApp::schedule_body(&world, morning(), 60))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.post(&format!("/v1/sessions/{session}/check-in"), &billing)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.post(&format!("/v1/sessions/{session}/check-in"), &app.admin_key)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.get(&format!("/v1/sessions/{session}"), &analyst)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.get(&format!("/v1/patients/{}", world.patient), &analyst)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.post("/v1/clinics", &world.front_desk)
        .json(&json!({}))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    app.post("/v1/api-keys", &world.front_desk)
        .json(&json!({"role": "admin", "label": "escalation"}))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    assert_eq!(
        app.get(&format!("/v1/sessions/{session}"), &billing)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.commits_of(world.clinic, session).await, 1);
}

#[tokio::test]
async fn a_clinic_scoped_key_only_works_in_its_clinics() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let other_clinic = app.clinic("America/Denver").await;
    let created = app
        .post("/v1/api-keys", &app.admin_key)
        .json(&json!({"role": "front_desk", "clinic_ids": [other_clinic], "label": "Denver desk"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let scoped = created.body["key"]
        .as_str()
        .expect("the key is shown once")
        .to_owned();
    app.post(&format!("/v1/sessions/{session}/check-in"), &scoped)
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "clinic_id");
    app.post("/v1/sessions", &scoped)
        .json(&TestApp::schedule_body(&world, morning(), 60))
        .send()
        .await
        .assert_problem(StatusCode::FORBIDDEN, "clinic_id");
    let mut body = TestApp::schedule_body(&world, crate::helpers::plus_minutes(morning(), 120), 60);
    body["clinic_id"] = json!(other_clinic);
    assert_eq!(
        app.post("/v1/sessions", &scoped)
            .json(&body)
            .send()
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn missing_unknown_and_malformed_keys_answer_401() {
    let app = spawn_app().await;
    let path = format!("{}/v1/sessions/{}", app.address, uuid::Uuid::now_v7());
    let missing = app.client.get(&path).send().await.expect("answers");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let unknown = app
        .get(
            &path.replace(&app.address, ""),
            &format!("clk_{}", "0".repeat(64)),
        )
        .send()
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let malformed = app
        .client
        .get(&path)
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect("answers");
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_created_key_is_stored_only_as_its_hash() {
    let app = spawn_app().await;
    let created = app
        .post("/v1/api-keys", &app.admin_key)
        .json(&json!({"role": "analyst", "label": "reports"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let key = created.body["key"].as_str().expect("a key").to_owned();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_sha256 FROM api_keys")
        .fetch_all(&app.pool)
        .await
        .expect("keys");
    assert!(stored.contains(&claimledger_sessions_api::auth::hash_key(&key).to_vec()));
    let as_text: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE encode(key_sha256, 'escape') LIKE '%' || $1 || '%'",
    )
    .bind(&key[4..20])
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(as_text, 0);
}
