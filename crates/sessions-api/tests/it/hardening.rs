//! What a hostile or broken request, or a broken dependency, meets at the edge: bad events on the
//! log never lock a session or stop the API from starting, an outage answers 503 with
//! `Retry-After`, and the answers axum would give bare (405, 414, 404) are problem documents.

use chrono::Utc;
use claimledger_events::reference::ClinicRegistered;
use claimledger_events::{
    Actor, ActorKind, AggregateId, AggregateKind, ClinicId, CommandId, Commit, CorrelationId,
    Event, EventId, EventRecord, SessionId,
};
use claimledger_log::AggregateAddress;
use claimledger_sessions::schema::to_micros;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn garbage_on_a_sessions_subject_leaves_the_session_readable_and_writable() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    let address = AggregateAddress {
        chain: app.chain,
        clinic: Some(ClinicId::from(world.clinic)),
        kind: AggregateKind::Session,
        id: SessionId::from(session).into(),
    };
    let subject = app.log.subject_of(&address).expect("a subject");
    let client = async_nats::connect(&app.nats_url).await.expect("NATS");
    async_nats::jetstream::new(client)
        .publish(subject, b"\x00\xffnot a commit".as_slice().into())
        .await
        .expect("published")
        .await
        .expect("stored");

    let read = app
        .get(&format!("/v1/sessions/{session}"), &world.front_desk)
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK, "{read:?}");
    assert_eq!(read.body["status"], "checked_in");
    let diagnosed = app
        .post(
            &format!("/v1/sessions/{session}/diagnoses"),
            &world.front_desk,
        )
        .json(&json!({"codes": ["M54.50"]}))
        .send()
        .await;
    assert!(diagnosed.status.is_success(), "{diagnosed:?}");
    let history = app.log.read(&address).await.expect("the log reads");
    assert_eq!(history.skipped.len(), 1, "{history:?}");
}

/// A reference commit appended straight to the log, as a buggy or older writer could.
fn clinic_commit(chain: claimledger_events::ChainId, id: Uuid, name: &str) -> Commit {
    let now = to_micros(Utc::now());
    Commit {
        command_id: CommandId::from(Uuid::now_v7()),
        chain,
        clinic: None,
        aggregate_kind: AggregateKind::Clinic,
        aggregate_id: AggregateId::from(id),
        recorded_at: now,
        actor: Actor {
            kind: ActorKind::Staff,
            id: "test".to_owned(),
        },
        correlation_id: CorrelationId::from(Uuid::now_v7()),
        causation_id: None,
        events: vec![EventRecord {
            event_id: EventId::from(Uuid::now_v7()),
            occurred_at: now,
            event: Event::ClinicRegistered(ClinicRegistered {
                name: name.to_owned(),
                npi: "1234567893".to_owned(),
                tax_id: "123456789".to_owned(),
                address_line: "1 Main St".to_owned(),
                city: "Springfield".to_owned(),
                state: "NY".to_owned(),
                postal_code: "10001".to_owned(),
                time_zone: "America/New_York".to_owned(),
                place_of_service: "11".to_owned(),
            }),
        }],
    }
}

#[tokio::test]
async fn a_reference_commit_the_tables_refuse_is_parked_and_the_api_still_starts() {
    let app = spawn_app().await;
    let (bad, good) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, name) in [(bad, "Null\u{0}Clinic"), (good, "Fine Clinic")] {
        let address = AggregateAddress {
            chain: app.chain,
            clinic: None,
            kind: AggregateKind::Clinic,
            id: AggregateId::from(id),
        };
        app.log
            .append(&address, 0, &clinic_commit(app.chain, id, name))
            .await
            .expect("appended");
    }

    // Another instance starts on the same log and database: its catch-up meets the NUL.
    let second = app.second_instance().await;
    let health: Value = app
        .client
        .get(format!("{second}/health"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["parked"], 1, "{health}");
    let parked: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, error FROM parked_events WHERE projection = 'sessions-api.reference'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("parked rows");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(parked[0].1.contains("0x00"), "{parked:?}");
    let fine = app
        .client
        .get(format!("{second}/v1/clinics/{good}"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        fine.status(),
        StatusCode::OK,
        "the good clinic was caught up"
    );
    let ready = app
        .client
        .get(format!("{second}/ready"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn bare_errors_answer_problem_documents() {
    let app = spawn_app().await;
    let put = app
        .client
        .put(format!("{}/v1/clinics", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("answers");
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        put.headers()
            .get("allow")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|allow| allow.contains("POST")),
        "{:?}",
        put.headers()
    );
    assert_eq!(put.headers()["content-type"], "application/problem+json");
    let problem: Value = put.json().await.expect("JSON");
    assert_eq!(problem["field"], "method");

    let long = app
        .get(
            &format!("/v1/sessions/{}", "a".repeat(9_000)),
            &app.admin_key,
        )
        .send()
        .await;
    long.assert_problem(StatusCode::URI_TOO_LONG, "path");
    let unknown = app.get("/v2/nothing", &app.admin_key).send().await;
    unknown.assert_problem(StatusCode::NOT_FOUND, "path");
    let bad_id = app.get("/v1/sessions/12", &app.admin_key).send().await;
    bad_id.assert_problem(StatusCode::BAD_REQUEST, "id");
    let too_large = app
        .post("/v1/patients", &app.admin_key)
        .raw_json(vec![b' '; 70_000])
        .send()
        .await;
    too_large.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "body");
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_and_ready_says_why() {
    let app = spawn_app().await;
    let ready = app.get("/ready", "").send().await;
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
    assert_eq!(ready.body["checks"]["database"], "ok");
    assert_eq!(ready.body["checks"]["nats"], "ok");

    // The service's pool is the test's: closing it is the database going away for the service.
    app.pool.close().await;
    let refused = app.get("/v1/api-keys", &app.admin_key).send().await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refused:?}"
    );
    assert_eq!(refused.content_type(), "application/problem+json");
    assert_eq!(refused.headers["retry-after"], "2");
    assert_eq!(
        refused.body["type"],
        "urn:claimledger:problem:database-unavailable"
    );
    let not_ready = app.get("/ready", "").send().await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(not_ready.body["checks"]["database"], "ok");
    assert_eq!(not_ready.body["checks"]["nats"], "ok");
    let alive = app.get("/health", "").send().await;
    assert_eq!(
        alive.status,
        StatusCode::OK,
        "liveness ignores the database"
    );
}
