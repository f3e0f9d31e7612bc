//! Version conflicts (`If-Match`, concurrent writers) and idempotent retries (`Idempotency-Key`).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, morning, spawn_app};

#[tokio::test]
async fn two_concurrent_commands_with_the_same_if_match_give_one_success_and_one_409() {
    let app = spawn_app().await;
    let world = app.world().await;
    let scheduled = app.schedule(&world, morning()).await;
    let session = scheduled.id();
    let checked_in = app
        .post(
            &format!("/v1/sessions/{session}/check-in"),
            &world.front_desk,
        )
        .send()
        .await;
    let version = checked_in.etag();
    let path = format!("/v1/sessions/{session}/services");
    let body =
        json!({"technique": "effleurage", "code": "97124", "minutes": 10, "body_region": "neck"});
    let first = app
        .post(&path, &world.front_desk)
        .header("if-match", &version)
        .json(&body);
    let second = app
        .post(&path, &world.front_desk)
        .header("if-match", &version)
        .json(&body);
    let (first, second) = tokio::join!(first.send(), second.send());
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    let conflict = if first.status == StatusCode::CONFLICT {
        &first
    } else {
        &second
    };
    conflict.assert_problem(StatusCode::CONFLICT, "If-Match");
    let winner = if first.status == StatusCode::OK {
        &first
    } else {
        &second
    };
    assert_eq!(conflict.body["current_version"], winner.body["version"]);
    // Schedule, check in, and exactly one of the two services.
    assert_eq!(app.commits_of(world.clinic, session).await, 3);
}

#[tokio::test]
async fn concurrent_commands_without_if_match_never_lose_an_update() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    let path = format!("/v1/sessions/{session}/services");
    let body =
        json!({"technique": "petrissage", "code": "97124", "minutes": 5, "body_region": "leg"});
    let calls = (0..4).map(|_| app.post(&path, &world.front_desk).json(&body).send());
    let replies = futures::future::join_all(calls).await;
    let succeeded = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    assert!(
        replies
            .iter()
            .all(|reply| reply.status == StatusCode::OK || reply.status == StatusCode::CONFLICT),
        "{replies:?}"
    );
    assert!(succeeded >= 1);
    let read = app
        .get(&format!("/v1/sessions/{session}"), &world.front_desk)
        .send()
        .await;
    assert_eq!(
        read.body["services"].as_array().map(Vec::len),
        Some(succeeded)
    );
    assert_eq!(app.commits_of(world.clinic, session).await, 2 + succeeded);
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_the_current_version_and_writes_nothing() {
    let app = spawn_app().await;
    let world = app.world().await;
    let scheduled = app.schedule(&world, morning()).await;
    let session = scheduled.id();
    let stale = scheduled.etag();
    let checked_in = app
        .post(
            &format!("/v1/sessions/{session}/check-in"),
            &world.front_desk,
        )
        .send()
        .await;
    let reply = app
        .post(&format!("/v1/sessions/{session}/cancel"), &world.front_desk)
        .header("if-match", &stale)
        .json(&json!({"reason": "stale view"}))
        .send()
        .await;
    reply.assert_problem(StatusCode::CONFLICT, "If-Match");
    assert_eq!(reply.body["current_version"], checked_in.body["version"]);
    assert_eq!(app.commits_of(world.clinic, session).await, 2);
    let fresh = app
        .post(&format!("/v1/sessions/{session}/cancel"), &world.front_desk)
        .header("if-match", &checked_in.etag())
        .json(&json!({"reason": "fresh view"}))
        .send()
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{fresh:?}");
}

#[tokio::test]
async fn a_retried_command_returns_the_first_answer_and_appends_once() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let path = format!("/v1/sessions/{session}/check-in");
    let first = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "check-in-1")
        .send()
        .await;
    let retry = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "check-in-1")
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.etag(), first.etag());
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(app.commits_of(world.clinic, session).await, 2);
    // Without the key, the same command is a new command, refused by the session's state.
    let again = app.post(&path, &world.front_desk).send().await;
    again.assert_problem(StatusCode::CONFLICT, "status");
}

#[tokio::test]
async fn a_retried_schedule_creates_one_session_one_slot_and_one_commit() {
    let app = spawn_app().await;
    let world = app.world().await;
    let reference_commits = app.total_commits().await;
    let body = TestApp::schedule_body(&world, morning(), 60);
    let send = || {
        app.post("/v1/sessions", &world.front_desk)
            .header("idempotency-key", "book-42")
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(send(), send());
    let third = send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");
    assert_eq!(third.body, first.body);
    assert_eq!(second.id(), first.id());
    assert_eq!(app.rows("session_slots").await, 1);
    assert_eq!(app.total_commits().await, reference_commits + 1);
    assert_eq!(app.rows("idempotency_records").await, 1);
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_is_deduplicated_by_the_log() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let path = format!("/v1/sessions/{session}/check-in");
    let first = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "lost-answer")
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK);
    // Simulate a crash between the append and storing the answer: the stored answer is gone, but
    // the log still knows the command id derived from the key.
    sqlx::query("DELETE FROM idempotency_records")
        .execute(&app.pool)
        .await
        .expect("delete");
    let retry = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "lost-answer")
        .send()
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    assert_eq!(retry.body["status"], "checked_in");
    assert_eq!(retry.body["version"], first.body["version"]);
    assert_eq!(app.commits_of(world.clinic, session).await, 2);
}

#[tokio::test]
async fn reusing_a_key_for_a_different_request_is_refused() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    let path = format!("/v1/sessions/{session}/services");
    let body = json!({"technique": "tapotement", "code": "97124", "minutes": 10, "body_region": "upper_back"});
    let first = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "svc-1")
        .json(&body)
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let mut changed = body.clone();
    changed["minutes"] = json!(20);
    let reused = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "svc-1")
        .json(&changed)
        .send()
        .await;
    reused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "Idempotency-Key");
    assert_eq!(app.commits_of(world.clinic, session).await, 3);
}

#[tokio::test]
async fn a_refusal_is_also_the_first_answer_of_its_key() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    let path = format!("/v1/sessions/{session}/diagnoses");
    let body = json!({"codes": ["M54"]});
    let first = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "dx-1")
        .json(&json!({"codes": ["bad"]}))
        .send()
        .await;
    first.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "codes[0]");
    let retry = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "dx-1")
        .json(&json!({"codes": ["bad"]}))
        .send()
        .await;
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let good = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "dx-2")
        .json(&body)
        .send()
        .await;
    assert_eq!(good.status, StatusCode::OK, "{good:?}");
}

#[tokio::test]
async fn two_concurrent_overlapping_bookings_give_one_session() {
    let app = spawn_app().await;
    let world = app.world().await;
    let reference_commits = app.total_commits().await;
    let first = TestApp::schedule_body(&world, morning(), 60);
    let second = TestApp::schedule_body(&world, crate::helpers::plus_minutes(morning(), 30), 60);
    let (first, second) = tokio::join!(
        app.post("/v1/sessions", &world.front_desk)
            .json(&first)
            .send(),
        app.post("/v1/sessions", &world.front_desk)
            .json(&second)
            .send()
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    assert_eq!(app.total_commits().await, reference_commits + 1);
    assert_eq!(app.rows("session_slots").await, 1);
}

#[tokio::test]
async fn a_commit_written_by_another_process_is_seen_by_the_next_command() {
    use claimledger_events::session::SessionCancelled;
    use claimledger_events::{
        Actor, ActorKind, AggregateKind, ClinicId, CommandId, Commit, CorrelationId, Event,
        EventId, EventRecord, SessionId, UtcMicros,
    };
    use claimledger_log::AggregateAddress;
    use uuid::Uuid;

    let app = spawn_app().await;
    let world = app.world().await;
    let scheduled = app.schedule(&world, morning()).await;
    let session = scheduled.id();
    // Another writer (another API instance, say) cancels the session behind this process's back.
    let address = AggregateAddress {
        chain: app.chain,
        clinic: Some(ClinicId::from(world.clinic)),
        kind: AggregateKind::Session,
        id: SessionId::from(session).into(),
    };
    let now = UtcMicros(chrono::Utc::now().timestamp_micros());
    let commit = Commit {
        command_id: CommandId::from(Uuid::now_v7()),
        chain: app.chain,
        clinic: address.clinic,
        aggregate_kind: address.kind,
        aggregate_id: address.id,
        recorded_at: now,
        actor: Actor {
            kind: ActorKind::Staff,
            id: "other-instance".to_owned(),
        },
        correlation_id: CorrelationId::from(Uuid::now_v7()),
        causation_id: None,
        events: vec![EventRecord {
            event_id: EventId::from(Uuid::now_v7()),
            occurred_at: now,
            event: Event::SessionCancelled(SessionCancelled {
                reason: "cancelled elsewhere".to_owned(),
            }),
        }],
    };
    let version: u64 = scheduled.body["version"].as_u64().expect("a version");
    app.log
        .append(&address, version, &commit)
        .await
        .expect("the other writer appends");
    let reply = app
        .post(
            &format!("/v1/sessions/{session}/check-in"),
            &world.front_desk,
        )
        .send()
        .await;
    reply.assert_problem(StatusCode::CONFLICT, "status");
    assert!(
        reply.body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("cancelled"),
        "{reply:?}"
    );
    let read = app
        .get(&format!("/v1/sessions/{session}"), &world.front_desk)
        .send()
        .await;
    assert_eq!(read.body["cancellation_reason"], "cancelled elsewhere");
}

#[tokio::test]
async fn a_retry_that_reaches_another_instance_is_deduplicated_through_the_log() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let path = format!("/v1/sessions/{session}/check-in");
    let first = app
        .post(&path, &world.front_desk)
        .header("idempotency-key", "lost-on-a")
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK);
    // The answer was never stored, and the retry reaches a replica that never saw the session.
    sqlx::query("DELETE FROM idempotency_records")
        .execute(&app.pool)
        .await
        .expect("delete");
    let other = app.second_instance().await;
    let retry = app
        .client
        .post(format!("{other}{path}"))
        .bearer_auth(&world.front_desk)
        .header("idempotency-key", "lost-on-a")
        .send()
        .await
        .expect("the replica answers");
    assert_eq!(retry.status(), StatusCode::OK);
    let body: serde_json::Value = retry.json().await.expect("JSON");
    assert_eq!(body["version"], first.body["version"]);
    assert_eq!(app.commits_of(world.clinic, session).await, 2);
    // And a command on the replica sees what the first instance wrote, and vice versa.
    let service =
        json!({"technique": "effleurage", "code": "97124", "minutes": 10, "body_region": "arm"});
    let on_replica = app
        .client
        .post(format!("{other}/v1/sessions/{session}/services"))
        .bearer_auth(&world.front_desk)
        .json(&service)
        .send()
        .await
        .expect("the replica answers");
    assert_eq!(on_replica.status(), StatusCode::OK);
    let on_first = app
        .post(
            &format!("/v1/sessions/{session}/services"),
            &world.front_desk,
        )
        .json(&service)
        .send()
        .await;
    assert_eq!(on_first.status, StatusCode::OK, "{on_first:?}");
    assert_eq!(on_first.body["services"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.commits_of(world.clinic, session).await, 4);
}
