//! Every validation error answers 4xx problem+json naming the field and the reason, and writes
//! nothing: the log and the tables are unchanged.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, World, morning, plus_minutes, spawn_app};

/// What a refused command must leave unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Written {
    commits: u64,
    slots: i64,
}

async fn written(app: &TestApp) -> Written {
    Written {
        commits: app.total_commits().await,
        slots: app.rows("session_slots").await,
    }
}

/// Sends `body` to `path`, asserts the problem, and asserts that nothing was written.
async fn refused(
    app: &TestApp,
    world: &World,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    field: &str,
) -> Reply {
    let before = written(app).await;
    let call = app.post(path, &world.front_desk);
    let reply = match body {
        Some(body) => call.json(&body).send().await,
        None => call.send().await,
    };
    reply.assert_problem(status, field);
    assert_eq!(
        written(app).await,
        before,
        "a refused command wrote something: {reply:?}"
    );
    reply
}

fn schedule_with(world: &World, change: impl FnOnce(&mut Value)) -> Value {
    let mut body = TestApp::schedule_body(world, morning(), 60);
    change(&mut body);
    body
}

#[tokio::test]
async fn schedule_refusals_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let world = app.world().await;
    let unknown = Uuid::now_v7().to_string();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            schedule_with(&world, |body| body["clinic_id"] = json!(unknown)),
            StatusCode::NOT_FOUND,
            "clinic_id",
        ),
        (
            schedule_with(&world, |body| body["therapist_id"] = json!(unknown)),
            StatusCode::NOT_FOUND,
            "therapist_id",
        ),
        (
            schedule_with(&world, |body| body["patient_id"] = json!(unknown)),
            StatusCode::NOT_FOUND,
            "patient_id",
        ),
        (
            schedule_with(&world, |body| body["payment"]["payer_id"] = json!(unknown)),
            StatusCode::NOT_FOUND,
            "payment.payer_id",
        ),
        (
            schedule_with(&world, |body| {
                body["payment"]["coverage_id"] = json!(unknown)
            }),
            StatusCode::NOT_FOUND,
            "payment.coverage_id",
        ),
        (
            schedule_with(&world, |body| body["referral_id"] = json!(unknown)),
            StatusCode::NOT_FOUND,
            "referral_id",
        ),
        (
            schedule_with(&world, |body| body["planned_minutes"] = json!(300)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "planned_minutes",
        ),
        (
            schedule_with(&world, |body| body["planned_minutes"] = json!(5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "planned_minutes",
        ),
        (
            schedule_with(&world, |body| {
                body["scheduled_start"] = json!("2027-02-01T15:00:00Z")
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment.coverage_id",
        ),
        (
            schedule_with(&world, |body| {
                body["referral_id"] = json!(world.referral);
                body["scheduled_start"] = json!("2026-06-02T15:00:00Z");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "referral_id",
        ),
        (
            schedule_with(&world, |body| body["planned_minutes"] = json!(-1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "planned_minutes",
        ),
        (
            schedule_with(&world, |body| body["scheduled_start"] = json!("tomorrow")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "scheduled_start",
        ),
        (
            schedule_with(&world, |body| body["payment"] = json!({"kind": "barter"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment.kind",
        ),
        (
            schedule_with(&world, |body| body["room"] = json!("3")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "room",
        ),
    ];
    for (body, status, field) in cases {
        refused(&app, &world, "/v1/sessions", Some(body), status, field).await;
    }
}

#[tokio::test]
async fn another_patients_coverage_is_refused() {
    let app = spawn_app().await;
    let world = app.world().await;
    let other = app
        .post("/v1/patients", &app.admin_key)
        .json(&json!({"given_name": "Sam", "family_name": "Roe", "date_of_birth": "1990-01-01"}))
        .send()
        .await
        .id();
    let body = schedule_with(&world, |body| body["patient_id"] = json!(other));
    let reply = refused(
        &app,
        &world,
        "/v1/sessions",
        Some(body),
        StatusCode::UNPROCESSABLE_ENTITY,
        "payment.coverage_id",
    )
    .await;
    assert!(
        reply.body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("another patient"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_referral_refuses_visits_beyond_those_it_authorises() {
    let app = spawn_app().await;
    let world = app.world().await;
    for hour in 0..2 {
        let body = schedule_with(&world, |body| {
            body["referral_id"] = json!(world.referral);
            body["scheduled_start"] = json!(plus_minutes(morning(), 120 * hour));
        });
        let reply = app
            .post("/v1/sessions", &world.front_desk)
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    let third = schedule_with(&world, |body| {
        body["referral_id"] = json!(world.referral);
        body["scheduled_start"] = json!(plus_minutes(morning(), 600));
    });
    let reply = refused(
        &app,
        &world,
        "/v1/sessions",
        Some(third),
        StatusCode::UNPROCESSABLE_ENTITY,
        "referral_id",
    )
    .await;
    assert!(
        reply.body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("authorises 2 visits"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_therapist_cannot_be_in_two_overlapping_sessions_even_across_clinics() {
    let app = spawn_app().await;
    let world = app.world().await;
    assert_eq!(
        app.schedule(&world, morning()).await.status,
        StatusCode::CREATED
    );
    let other_clinic = app.clinic("America/Chicago").await;
    let overlapping = schedule_with(&world, |body| {
        body["clinic_id"] = json!(other_clinic);
        body["scheduled_start"] = json!(plus_minutes(morning(), 59));
    });
    refused(
        &app,
        &world,
        "/v1/sessions",
        Some(overlapping),
        StatusCode::CONFLICT,
        "therapist_id",
    )
    .await;
    // Back to back is fine: the booked interval is half-open.
    let adjacent = app.schedule(&world, plus_minutes(morning(), 60)).await;
    assert_eq!(adjacent.status, StatusCode::CREATED, "{adjacent:?}");
    let other_therapist = app.therapist().await;
    let parallel = schedule_with(&world, |body| body["therapist_id"] = json!(other_therapist));
    assert_eq!(
        app.post("/v1/sessions", &world.front_desk)
            .json(&parallel)
            .send()
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn service_modality_and_diagnosis_refusals_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let services = format!("/v1/sessions/{session}/services");
    let massage = json!({"technique": "swedish_massage", "code": "97124", "minutes": 30, "body_region": "lower_back"});
    refused(
        &app,
        &world,
        &services,
        Some(massage.clone()),
        StatusCode::CONFLICT,
        "status",
    )
    .await;
    app.post(
        &format!("/v1/sessions/{session}/check-in"),
        &world.front_desk,
    )
    .send()
    .await;

    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = massage.clone();
        change(&mut body);
        body
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            with(&|body| body["technique"] = json!("shiatsu")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "technique",
        ),
        (
            with(&|body| body["code"] = json!("97999")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
        ),
        (
            with(&|body| body["code"] = json!("97140")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
        ),
        (
            with(&|body| body["code"] = json!("97010")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
        ),
        (
            with(&|body| body["minutes"] = json!(61)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "minutes",
        ),
        (
            with(&|body| body["minutes"] = json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "minutes",
        ),
        (
            with(&|body| body["body_region"] = json!("elbow")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body_region",
        ),
        (
            with(&|body| body["body_side"] = json!("up")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body_side",
        ),
        (
            with(&|body| {
                body["technique"] = json!("cupping");
                body["code"] = json!("97139");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
    ];
    for (body, status, field) in cases {
        refused(&app, &world, &services, Some(body), status, field).await;
    }
    // Filling the visit, then one minute more.
    let filled = with(&|body| body["minutes"] = json!(50));
    assert_eq!(
        app.post(&services, &world.front_desk)
            .json(&filled)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let reply = refused(
        &app,
        &world,
        &services,
        Some(with(&|body| body["minutes"] = json!(11))),
        StatusCode::UNPROCESSABLE_ENTITY,
        "minutes",
    )
    .await;
    assert!(
        reply.body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("beyond the visit's 60 minutes"),
        "{reply:?}"
    );

    let modalities = format!("/v1/sessions/{session}/modalities");
    refused(
        &app,
        &world,
        &modalities,
        Some(json!({"code": "97140", "minutes": 10})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "code",
    )
    .await;
    refused(
        &app,
        &world,
        &modalities,
        Some(json!({"code": "97010", "minutes": 90})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "minutes",
    )
    .await;

    let complete = format!("/v1/sessions/{session}/complete");
    refused(
        &app,
        &world,
        &complete,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "diagnoses",
    )
    .await;

    let diagnoses = format!("/v1/sessions/{session}/diagnoses");
    refused(
        &app,
        &world,
        &diagnoses,
        Some(json!({"codes": []})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "codes",
    )
    .await;
    refused(
        &app,
        &world,
        &diagnoses,
        Some(json!({"codes": ["M54.50", "m54"]})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "codes[1]",
    )
    .await;
    refused(
        &app,
        &world,
        &diagnoses,
        Some(json!({"codes": ["M54.50", "M54.50"]})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "codes[1]",
    )
    .await;

    let amend = format!("/v1/sessions/{session}/amend");
    refused(
        &app,
        &world,
        &amend,
        Some(json!({"reason": "x"})),
        StatusCode::CONFLICT,
        "status",
    )
    .await;
    let cancel = format!("/v1/sessions/{session}/cancel");
    refused(
        &app,
        &world,
        &cancel,
        Some(json!({"reason": "   "})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason",
    )
    .await;
}

#[tokio::test]
async fn completing_without_services_and_unknown_sessions_are_refused() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    app.post(
        &format!("/v1/sessions/{session}/diagnoses"),
        &world.front_desk,
    )
    .json(&json!({"codes": ["M54.50"]}))
    .send()
    .await;
    refused(
        &app,
        &world,
        &format!("/v1/sessions/{session}/complete"),
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "services",
    )
    .await;
    let unknown = Uuid::now_v7();
    refused(
        &app,
        &world,
        &format!("/v1/sessions/{unknown}/check-in"),
        None,
        StatusCode::NOT_FOUND,
        "session_id",
    )
    .await;
}

#[tokio::test]
async fn a_no_show_before_the_start_is_refused() {
    let app = spawn_app().await;
    let world = app.world().await;
    let future = chrono::Utc::now() + chrono::Duration::days(3);
    let body = TestApp::schedule_body(&world, future, 60);
    let mut body = body;
    body["payment"] = json!({"kind": "self_pay"});
    let session = app
        .post("/v1/sessions", &world.front_desk)
        .json(&body)
        .send()
        .await
        .id();
    refused(
        &app,
        &world,
        &format!("/v1/sessions/{session}/no-show"),
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "status",
    )
    .await;
}
