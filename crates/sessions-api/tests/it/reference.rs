//! Reference data: validation of what admins register, PHI kept out of the log, idempotent creates.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{NPI, spawn_app};

#[tokio::test]
async fn clinic_fields_are_validated_by_name() {
    let app = spawn_app().await;
    let valid = json!({
        "name": "Uptown", "npi": NPI, "tax_id": "12-3456789", "address_line": "2 High St", "city": "Albany",
        "state": "NY", "postal_code": "12207", "time_zone": "America/New_York", "place_of_service": "11"
    });
    let cases = [
        ("npi", json!("1234567890")),
        ("tax_id", json!("12-34")),
        ("state", json!("New York")),
        ("time_zone", json!("Mars/Olympus")),
        ("place_of_service", json!("office")),
        ("name", json!(" ")),
    ];
    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value;
        app.post("/v1/clinics", &app.admin_key)
            .json(&body)
            .send()
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    assert_eq!(app.rows("clinics").await, 0);
    let created = app
        .post("/v1/clinics", &app.admin_key)
        .json(&valid)
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let read = app
        .get(&format!("/v1/clinics/{}", created.id()), &app.admin_key)
        .send()
        .await;
    assert_eq!(read.body, created.body);
}

#[tokio::test]
async fn referral_and_coverage_fields_are_validated_by_name() {
    let app = spawn_app().await;
    let world = app.world().await;
    let referral = json!({"patient_id": world.patient, "referring_npi": NPI, "diagnoses": ["M54.50", "X"],
        "authorised_visits": 4, "issued_on": "2026-03-01", "expires_on": "2026-05-31"});
    app.post("/v1/referrals", &app.admin_key)
        .json(&referral)
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "diagnoses[1]");
    let mut backwards = referral.clone();
    backwards["diagnoses"] = json!(["M54.50"]);
    backwards["expires_on"] = json!("2026-02-01");
    app.post("/v1/referrals", &app.admin_key)
        .json(&backwards)
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "expires_on");
    let coverage = json!({"patient_id": world.patient, "payer_id": world.payer, "member_id": "M-1",
        "valid_from": "2026-06-01", "valid_to": "2026-01-01"});
    app.post("/v1/coverages", &app.admin_key)
        .json(&coverage)
        .send()
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "valid_to");
}

#[tokio::test]
async fn phi_never_reaches_the_log() {
    let app = spawn_app().await;
    let world = app.world().await;
    app.checked_in_session(&world).await;
    let patient = app
        .get(
            &format!("/v1/patients/{}", world.patient),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(patient.body["family_name"], "Doe");
    let stream = app.log.config().stream_name.clone();
    let context =
        async_nats::jetstream::new(async_nats::connect(&app.nats_url).await.expect("NATS"));
    let stream = context.get_stream(&stream).await.expect("the stream");
    for sequence in 1..=app.total_commits().await {
        let message = stream.get_raw_message(sequence).await.expect("a message");
        let payload = message.payload.to_vec();
        for phi in [&b"Doe"[..], b"W123456789", b"1980-05-17"] {
            assert!(
                !payload.windows(phi.len()).any(|window| window == phi),
                "PHI {:?} on the log",
                String::from_utf8_lossy(phi)
            );
        }
    }
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_creates_one_row() {
    let app = spawn_app().await;
    let body = json!({"given_name": "Lee", "family_name": "Park", "date_of_birth": "1975-07-07"});
    let first = app
        .post("/v1/patients", &app.admin_key)
        .header("idempotency-key", "intake-7")
        .json(&body)
        .send()
        .await;
    let second = app
        .post("/v1/patients", &app.admin_key)
        .header("idempotency-key", "intake-7")
        .json(&body)
        .send()
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.body, first.body);
    assert_eq!(app.rows("patients").await, 1);
}
