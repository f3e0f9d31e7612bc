//! Every lifecycle path of a session, checked over HTTP and on the log.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, World, morning, spawn_app};

async fn checked_in(app: &TestApp, world: &World) -> uuid::Uuid {
    let session = app.schedule(world, morning()).await.id();
    let reply = app
        .post(
            &format!("/v1/sessions/{session}/check-in"),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    session
}

async fn record_visit(app: &TestApp, world: &World, session: uuid::Uuid) {
    let key = &world.front_desk;
    let service = json!({"technique": "swedish_massage", "code": "97124", "minutes": 30, "body_region": "lower_back", "body_side": "bilateral"});
    assert_eq!(
        app.post(&format!("/v1/sessions/{session}/services"), key)
            .json(&service)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let manual = json!({"technique": "myofascial_release", "code": "97140", "minutes": 15, "body_region": "neck"});
    assert_eq!(
        app.post(&format!("/v1/sessions/{session}/services"), key)
            .json(&manual)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let modality = json!({"code": "97010", "minutes": 10});
    assert_eq!(
        app.post(&format!("/v1/sessions/{session}/modalities"), key)
            .json(&modality)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let diagnoses = json!({"codes": ["M54.50", "M62.830"]});
    assert_eq!(
        app.post(&format!("/v1/sessions/{session}/diagnoses"), key)
            .json(&diagnoses)
            .send()
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_scheduled_session_is_created_with_location_etag_and_one_commit() {
    let app = spawn_app().await;
    let world = app.world().await;
    let reply = app.schedule(&world, morning()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let session = reply.id();
    assert_eq!(
        reply.headers["location"],
        format!("/v1/sessions/{session}").as_str()
    );
    assert_eq!(reply.etag(), format!("\"{}\"", reply.body["version"]));
    assert_eq!(reply.body["status"], "scheduled");
    assert_eq!(reply.body["date_of_service"], "2026-03-10");
    assert_eq!(
        reply.body["payment"]["coverage_id"],
        world.coverage.to_string()
    );
    assert_eq!(app.commits_of(world.clinic, session).await, 1);
    let read = app
        .get(&format!("/v1/sessions/{session}"), &world.front_desk)
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, reply.body);
}

#[tokio::test]
async fn a_full_visit_is_recorded_completed_and_read_back() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = checked_in(&app, &world).await;
    record_visit(&app, &world, session).await;
    let reply = app
        .post(
            &format!("/v1/sessions/{session}/complete"),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["status"], "completed");
    assert_eq!(reply.body["recorded_service_minutes"], 45);
    assert_eq!(reply.body["services"][0]["technique"], "swedish_massage");
    assert_eq!(reply.body["services"][0]["body_side"], "bilateral");
    assert_eq!(reply.body["modalities"][0]["code"], "97010");
    assert_eq!(reply.body["diagnoses"], json!(["M54.50", "M62.830"]));
    assert!(reply.body["completed_at"].is_string());
    // Schedule, check in, two services, a modality, diagnoses, complete: one commit per command.
    assert_eq!(app.commits_of(world.clinic, session).await, 7);
    let billing = app
        .key(claimledger_sessions_api::auth::Role::Billing, None)
        .await;
    let read = app
        .get(&format!("/v1/sessions/{session}"), &billing)
        .send()
        .await;
    assert_eq!(read.body, reply.body);
}

#[tokio::test]
async fn a_completed_session_is_closed_until_amended_then_completes_again() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = checked_in(&app, &world).await;
    record_visit(&app, &world, session).await;
    app.post(
        &format!("/v1/sessions/{session}/complete"),
        &world.front_desk,
    )
    .send()
    .await;
    let late =
        json!({"technique": "effleurage", "code": "97124", "minutes": 5, "body_region": "arm"});
    let refused = app
        .post(
            &format!("/v1/sessions/{session}/services"),
            &world.front_desk,
        )
        .json(&late)
        .send()
        .await;
    refused.assert_problem(StatusCode::CONFLICT, "status");
    let before = app.commits_of(world.clinic, session).await;

    let amended = app
        .post(&format!("/v1/sessions/{session}/amend"), &world.front_desk)
        .json(&json!({"reason": "forgot the arm work"}))
        .send()
        .await;
    assert_eq!(amended.body["status"], "amending", "{amended:?}");
    let added = app
        .post(
            &format!("/v1/sessions/{session}/services"),
            &world.front_desk,
        )
        .json(&late)
        .send()
        .await;
    assert_eq!(added.status, StatusCode::OK, "{added:?}");
    let completed = app
        .post(
            &format!("/v1/sessions/{session}/complete"),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(completed.body["status"], "completed");
    assert_eq!(
        completed.body["amendment_reasons"],
        json!(["forgot the arm work"])
    );
    assert_eq!(completed.body["recorded_service_minutes"], 50);
    assert_eq!(app.commits_of(world.clinic, session).await, before + 3);
}

#[tokio::test]
async fn a_cancelled_session_frees_the_therapists_slot() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let cancelled = app
        .post(&format!("/v1/sessions/{session}/cancel"), &world.front_desk)
        .json(&json!({"reason": "patient called in sick"}))
        .send()
        .await;
    assert_eq!(cancelled.body["status"], "cancelled", "{cancelled:?}");
    assert_eq!(
        cancelled.body["cancellation_reason"],
        "patient called in sick"
    );
    let rebooked = app.schedule(&world, morning()).await;
    assert_eq!(rebooked.status, StatusCode::CREATED, "{rebooked:?}");
    let check_in = app
        .post(
            &format!("/v1/sessions/{session}/check-in"),
            &world.front_desk,
        )
        .send()
        .await;
    check_in.assert_problem(StatusCode::CONFLICT, "status");
}

#[tokio::test]
async fn a_no_show_ends_a_past_session_and_frees_the_slot() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let reply = app
        .post(
            &format!("/v1/sessions/{session}/no-show"),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(reply.body["status"], "no_show", "{reply:?}");
    assert_eq!(
        app.schedule(&world, morning()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.commits_of(world.clinic, session).await, 2);
}

#[tokio::test]
async fn a_self_pay_session_under_a_referral_is_scheduled() {
    let app = spawn_app().await;
    let world = app.world().await;
    let body = json!({
        "clinic_id": world.clinic, "therapist_id": world.therapist, "patient_id": world.patient,
        "payment": {"kind": "self_pay"}, "referral_id": world.referral,
        "scheduled_start": morning(), "planned_minutes": 30
    });
    let reply = app
        .post("/v1/sessions", &world.front_desk)
        .json(&body)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["payment"], json!({"kind": "self_pay"}));
    assert_eq!(reply.body["referral_id"], world.referral.to_string());
}

#[tokio::test]
async fn a_wrongly_recorded_service_is_voided_and_stops_counting() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = checked_in(&app, &world).await;
    let key = &world.front_desk;
    let long = json!({"technique": "swedish_massage", "code": "97124", "minutes": 50, "body_region": "lower_back"});
    let recorded = app
        .post(&format!("/v1/sessions/{session}/services"), key)
        .json(&long)
        .send()
        .await;
    assert_eq!(recorded.status, StatusCode::OK, "{recorded:?}");
    let service = recorded.body["services"][0]["event_id"]
        .as_str()
        .expect("the service's event id")
        .to_owned();
    // 50 of the visit's 60 minutes are taken: another 30 do not fit.
    let thirty = json!({"technique": "myofascial_release", "code": "97140", "minutes": 30, "body_region": "neck"});
    app.post(&format!("/v1/sessions/{session}/services"), key)
        .json(&thirty)
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "minutes");

    let void_path = format!("/v1/sessions/{session}/services/{service}/void");
    let commits = app.commits_of(world.clinic, session).await;
    app.post(&void_path, key)
        .json(&json!({"reason": ""}))
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "reason");
    app.post(
        &format!(
            "/v1/sessions/{session}/services/{}/void",
            uuid::Uuid::now_v7()
        ),
        key,
    )
    .json(&json!({"reason": "wrong patient"}))
    .send()
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "event_id");
    assert_eq!(app.commits_of(world.clinic, session).await, commits);

    let voided = app
        .post(&void_path, key)
        .json(&json!({"reason": "recorded on the wrong session"}))
        .send()
        .await;
    assert_eq!(voided.status, StatusCode::OK, "{voided:?}");
    assert_eq!(voided.body["services"], json!([]));
    assert_eq!(voided.body["recorded_service_minutes"], 0);
    assert_eq!(app.commits_of(world.clinic, session).await, commits + 1);
    app.post(&void_path, key)
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "event_id");
    // The freed minutes count again, and the void survives a read from the log.
    let reply = app
        .post(&format!("/v1/sessions/{session}/services"), key)
        .json(&thirty)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let read = app
        .get(&format!("/v1/sessions/{session}"), key)
        .send()
        .await;
    assert_eq!(read.body["services"].as_array().map(Vec::len), Some(1));
    assert_eq!(read.body["services"][0]["code"], "97140");
}
