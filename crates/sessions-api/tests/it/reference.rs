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

/// Every row of the six projected reference tables, as text, in key order.
async fn reference_rows(app: &crate::helpers::TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "clinics",
        "therapists",
        "payers",
        "patients",
        "coverages",
        "referrals",
    ] {
        let table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM {table} t ORDER BY chain_id, id"
        ))
        .fetch_all(&app.pool)
        .await
        .expect("the table reads");
        assert!(!table_rows.is_empty(), "{table} is empty");
        rows.extend(table_rows.into_iter().map(|row| format!("{table}: {row}")));
    }
    rows
}

async fn empty_reference_tables(app: &crate::helpers::TestApp) {
    sqlx::raw_sql("DELETE FROM clinics; DELETE FROM therapists; DELETE FROM payers; DELETE FROM patients; DELETE FROM coverages; DELETE FROM referrals")
        .execute(&app.pool)
        .await
        .expect("the tables empty");
}

#[tokio::test]
async fn reference_tables_rebuilt_from_the_log_equal_the_originals() {
    let app = spawn_app().await;
    let world = app.world().await;
    let before_reference = app.total_commits().await;
    // Six registrations, one commit each, all on the log.
    assert_eq!(before_reference, 6);
    let original = reference_rows(&app).await;

    empty_reference_tables(&app).await;
    let caught_up = claimledger_sessions_api::projection::catch_up(&app.pool, &app.log)
        .await
        .expect("the catch-up runs");
    assert_eq!(caught_up.commits, 6);
    assert_eq!(reference_rows(&app).await, original);

    // Catching up again changes nothing; a new instance catches up at start-up.
    claimledger_sessions_api::projection::catch_up(&app.pool, &app.log)
        .await
        .expect("the catch-up runs");
    assert_eq!(reference_rows(&app).await, original);
    empty_reference_tables(&app).await;
    let second = app.second_instance().await;
    assert_eq!(reference_rows(&app).await, original);

    // The rebuilt tables serve: the second instance books a session against them.
    let reply = app
        .client
        .post(format!("{second}/v1/sessions"))
        .bearer_auth(&world.front_desk)
        .json(&crate::helpers::TestApp::schedule_body(
            &world,
            crate::helpers::morning(),
            60,
        ))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(reply.status(), StatusCode::CREATED);
    // PHI was never on the log and was not touched: the patient still reads back in full.
    let patient = app
        .get(
            &format!("/v1/patients/{}", world.patient),
            &world.front_desk,
        )
        .send()
        .await;
    assert_eq!(patient.body["family_name"], "Doe", "{patient:?}");
}

#[tokio::test]
async fn every_reference_create_appends_one_commit_and_a_refused_one_none() {
    let app = spawn_app().await;
    let world = app.world().await;
    let before = app.total_commits().await;
    let refused = app
        .post("/v1/coverages", &app.admin_key)
        .json(
            &json!({"patient_id": world.patient, "payer_id": world.payer, "member_id": " ",
            "valid_from": "2026-01-01"}),
        )
        .send()
        .await;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "member_id");
    let unknown_patient = app
        .post("/v1/referrals", &app.admin_key)
        .json(&json!({"patient_id": uuid::Uuid::now_v7(), "referring_npi": NPI, "diagnoses": ["M54.50"],
            "authorised_visits": 2, "issued_on": "2026-03-01", "expires_on": "2026-05-31"}))
        .send()
        .await;
    unknown_patient.assert_problem(StatusCode::NOT_FOUND, "patient_id");
    assert_eq!(app.total_commits().await, before);
    assert_eq!(app.rows("coverage_phi").await, 1);

    // Registering a payer's rules key again names the same payer and appends nothing.
    let again = app
        .post("/v1/payers", &app.admin_key)
        .json(&json!({"name": "Acme Health", "rules_key": "acme-health"}))
        .send()
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert_eq!(again.id(), world.payer);
    assert_eq!(app.total_commits().await, before);

    let therapist = app.therapist().await;
    assert_eq!(app.total_commits().await, before + 1);
    let sequence: i64 = sqlx::query_scalar("SELECT last_sequence FROM therapists WHERE id = $1")
        .bind(therapist)
        .fetch_one(&app.pool)
        .await
        .expect("the row");
    assert_eq!(u64::try_from(sequence).ok(), Some(before + 1));
}

#[tokio::test]
async fn forgetting_a_patient_deletes_their_phi_and_keeps_them_pseudonymous() {
    let app = spawn_app().await;
    let world = app.world().await;
    let path = format!("/v1/patients/{}/phi", world.patient);
    let delete = |key: &str, body: serde_json::Value| {
        app.client
            .delete(format!("{}{path}", app.address))
            .bearer_auth(key.to_owned())
            .json(&body)
            .send()
    };
    let before = app.total_commits().await;

    let front_desk = delete(&world.front_desk, json!({"reason": "patient request"}))
        .await
        .expect("answers");
    assert_eq!(front_desk.status(), StatusCode::FORBIDDEN);
    let no_reason = delete(&app.admin_key, json!({"reason": "  "}))
        .await
        .expect("answers");
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app
        .client
        .delete(format!(
            "{}/v1/patients/{}/phi",
            app.address,
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(&app.admin_key)
        .json(&json!({"reason": "patient request"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.total_commits().await, before);
    assert_eq!(app.rows("patient_phi").await, 1);

    let forgotten = delete(&app.admin_key, json!({"reason": "patient request"}))
        .await
        .expect("answers");
    assert_eq!(forgotten.status(), StatusCode::OK);
    assert_eq!(app.total_commits().await, before + 1);
    assert_eq!(app.rows("patient_phi").await, 0);
    assert_eq!(app.rows("coverage_phi").await, 0);
    let flag: bool = sqlx::query_scalar("SELECT forgotten FROM patients WHERE id = $1")
        .bind(world.patient)
        .fetch_one(&app.pool)
        .await
        .expect("the patient stays");
    assert!(flag);
    app.get(&format!("/v1/patients/{}", world.patient), &app.admin_key)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "id");

    // Forgetting again writes nothing; the forgotten patient survives a rebuild from the log.
    let again = delete(&app.admin_key, json!({"reason": "patient request"}))
        .await
        .expect("answers");
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(app.total_commits().await, before + 1);
    empty_reference_tables(&app).await;
    claimledger_sessions_api::projection::catch_up(&app.pool, &app.log)
        .await
        .expect("the catch-up runs");
    let flag: bool = sqlx::query_scalar("SELECT forgotten FROM patients WHERE id = $1")
        .bind(world.patient)
        .fetch_one(&app.pool)
        .await
        .expect("the patient is rebuilt");
    assert!(flag);
    // Sessions of the patient still read: the id is all the log ever had.
    let session = app.checked_in_session(&world).await;
    let read = app
        .get(&format!("/v1/sessions/{session}"), &world.front_desk)
        .send()
        .await;
    assert_eq!(read.body["patient_id"], json!(world.patient));
}
