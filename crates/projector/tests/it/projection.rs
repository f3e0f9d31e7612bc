//! Folding the log into sessions, draft claims and unit totals; exactly-once re-application;
//! parking; the health and metrics endpoint.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use claimledger_events::session::{Coverage, ServiceRecorded, SessionScheduled, Technique};
use claimledger_events::{CptCode, Event};
use claimledger_projector::http::{Probes, router};
use claimledger_projector::{LIVE_SCHEMA, Outcome};
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::helpers::{drain, spawn_app, step_until_applied};
use crate::workload::payer_of;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_visits_become_draft_claims_with_units_and_totals() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let db = &app.env.db;
    app.workload.append_visits(&app.log, 0..40, 16).await?;
    // Visit 228 is on 2026-01-15: medicare-like's second rules version is in force then.
    app.workload.append_visits(&app.log, 228..229, 1).await?;
    let mut projector = app.projector()?;
    drain(&mut projector).await?;
    assert_eq!(
        projector.checkpoint().await?,
        app.log.last_sequence().await?
    );

    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM read_models.sessions GROUP BY status ORDER BY status",
    )
    .fetch_all(db)
    .await?;
    let cancelled = (0..40).filter(|index| index % 7 == 3).count() as i64;
    assert_eq!(
        statuses,
        vec![
            ("cancelled".to_owned(), cancelled),
            ("completed".to_owned(), 41 - cancelled)
        ]
    );

    // One claim per completed visit billed to a payer; none for self-pay or cancelled visits.
    let billable = (0..40)
        .chain(228..229)
        .filter(|index| index % 7 != 3 && index % 5 != 4)
        .count() as i64;
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.claims")
        .fetch_one(db)
        .await?;
    assert_eq!(claims, billable);
    let failed: Vec<String> = sqlx::query_scalar(
        "SELECT derivation_error FROM read_models.claims WHERE derivation_error IS NOT NULL",
    )
    .fetch_all(db)
    .await?;
    let parked: Vec<String> = sqlx::query_scalar("SELECT error FROM parked_events")
        .fetch_all(db)
        .await?;
    assert!(parked.is_empty(), "parked: {parked:?}");
    assert!(failed.is_empty(), "claims failed to derive: {failed:?}");

    // Visit 0: medicare-like, 2025-06-01, rules version 1, GP on every line (always-therapy codes).
    let session_0 = app.workload.session(0).id.as_uuid();
    let (payer_key, version, day, status): (String, i32, chrono::NaiveDate, String) =
        sqlx::query_as(
            "SELECT payer_key, rules_version, date_of_service, status \
             FROM read_models.claims WHERE session_id = $1",
        )
        .bind(session_0)
        .fetch_one(db)
        .await?;
    assert_eq!(payer_key, "medicare-like");
    assert_eq!(version, 1);
    assert_eq!(day, chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
    assert_eq!(status, "draft");
    let lines: Vec<(String, Vec<String>, i32, String)> = sqlx::query_as(
        "SELECT code, modifiers, units, diagnosis_pointers FROM read_models.claim_lines \
         WHERE session_id = $1 ORDER BY line_number",
    )
    .bind(session_0)
    .fetch_all(db)
    .await?;
    assert!(!lines.is_empty());
    for (code, modifiers, units, pointers) in &lines {
        assert!(
            modifiers.contains(&"GP".to_owned()),
            "{code}: {modifiers:?}"
        );
        assert!(*units > 0, "{code}");
        assert_eq!(pointers, "AB");
    }

    // Visit 228 is priced with version 2 of the same payer.
    let version_228: i32 =
        sqlx::query_scalar("SELECT rules_version FROM read_models.claims WHERE session_id = $1")
            .bind(app.workload.session(228).id.as_uuid())
            .fetch_one(db)
            .await?;
    assert_eq!(payer_of(228), payer_of(0));
    assert_eq!(version_228, 2);

    // Visit 16 (medicare-like) was amended after completion and gained 97110: its claim was
    // re-derived in place.
    let codes_16: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM read_models.claim_lines WHERE session_id = $1 ORDER BY line_number",
    )
    .bind(app.workload.session(16).id.as_uuid())
    .fetch_all(db)
    .await?;
    assert!(codes_16.contains(&"97110".to_owned()), "{codes_16:?}");

    // Every total agrees with the claim lines.
    let (lines_total, sessions_total, therapist_total, clinic_total): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT coalesce(sum(units), 0) FROM read_models.claim_lines), \
                    (SELECT coalesce(sum(total_units), 0) FROM read_models.sessions), \
                    (SELECT coalesce(sum(units), 0)::int8 FROM read_models.therapist_day_units), \
                    (SELECT coalesce(sum(units), 0)::int8 FROM read_models.clinic_code_day_units)",
        )
        .fetch_one(db)
        .await?;
    assert!(lines_total > 0);
    assert_eq!(sessions_total, lines_total);
    assert_eq!(therapist_total, lines_total);
    assert_eq!(clinic_total, lines_total);

    // Re-running finds nothing to do and changes nothing.
    let before = app.checksums().await?;
    assert_eq!(projector.process_next_batch().await?, Outcome::Idle);
    assert_eq!(app.checksums().await?, before);
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_projector_applies_each_position_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // About 700 commits, well over two batches of 200: when the first step returns, the batch
    // folded after it may still be committing in the background (the pipeline), so up to two
    // batches can be applied before the restart. With about 350 commits those two sometimes covered
    // the whole log and nothing was left to resume.
    app.workload.append_visits(&app.log, 0..120, 16).await?;
    let mut first = app.projector()?;
    // Apply part of the log, then continue with a new projector instance (a restart): delivery
    // restarts from the checkpoint, and positions at or below it are never applied twice.
    step_until_applied(&mut first).await?;
    let partial = app.live_checkpoint().await?;
    assert!(partial > 0 && partial < app.log.last_sequence().await?);
    drop(first);
    let mut second = app.projector()?;
    drain(&mut second).await?;
    let resumed = app.checksums().await?;
    let clean = app.rebuild_all().await?;
    assert_eq!(resumed, clean);
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_parked_and_the_projection_goes_on() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let db = &app.env.db;
    app.workload.append_visits(&app.log, 0..5, 4).await?;
    // Bytes that are not a commit envelope, on a session subject.
    let poison_subject = app
        .log
        .subject_of(&app.workload.session(900))
        .map_err(anyhow::Error::from)?;
    let jetstream = async_nats::jetstream::new(app.env.nats.clone());
    let poison_sequence = jetstream
        .publish(
            poison_subject.clone(),
            b"not an envelope at all".as_slice().into(),
        )
        .await?
        .await?
        .sequence;
    // A valid envelope the projection refuses: a code the billing catalogue does not know.
    let refused = app.workload.session(901);
    let scheduled = Event::SessionScheduled(SessionScheduled {
        therapist: app.workload.therapists[0],
        patient: Uuid::new_v4().into(),
        coverage: Coverage::Payer {
            payer: payer_of(0),
            coverage: Uuid::new_v4().into(),
        },
        referral: None,
        scheduled_start: crate::workload::now(),
        planned_minutes: 30,
    });
    let version = app
        .log
        .append(
            &refused,
            0,
            &integration_tests::commits::commit_for(&refused, vec![scheduled]),
        )
        .await?
        .sequence;
    let unknown_code = Event::ServiceRecorded(ServiceRecorded {
        technique: Technique::Swedish,
        cpt_code: CptCode::new("99999")?,
        minutes: 20,
        body_region: claimledger_events::session::BodyRegion::Neck,
        body_side: None,
        description: None,
    });
    let refused_sequence = app
        .log
        .append(
            &refused,
            version,
            &integration_tests::commits::commit_for(&refused, vec![unknown_code]),
        )
        .await?
        .sequence;
    app.workload.append_visits(&app.log, 5..10, 4).await?;

    let mut projector = app.projector()?;
    let metrics = projector.metrics();
    drain(&mut projector).await?;
    assert_eq!(
        projector.checkpoint().await?,
        app.log.last_sequence().await?
    );

    let parked: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT sequence, subject, error FROM parked_events WHERE projection = $1 \
         ORDER BY sequence",
    )
    .bind(LIVE_SCHEMA)
    .fetch_all(db)
    .await?;
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert_eq!(parked[0].0, poison_sequence as i64);
    assert_eq!(parked[0].1, poison_subject);
    assert!(
        parked[0].2.contains("not a valid commit envelope"),
        "{}",
        parked[0].2
    );
    assert_eq!(parked[1].0, refused_sequence as i64);
    assert!(parked[1].2.contains("99999"), "{}", parked[1].2);
    assert_eq!(metrics.snapshot().parked_total, 2);

    // Everything around the parked positions is projected; the refused session keeps its valid
    // first commit.
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.sessions")
        .fetch_one(db)
        .await?;
    assert_eq!(sessions, 11);
    let (status, services): (String, serde_json::Value) =
        sqlx::query_as("SELECT status, services FROM read_models.sessions WHERE session_id = $1")
            .bind(refused.id.as_uuid())
            .fetch_one(db)
            .await?;
    assert_eq!(status, "scheduled");
    assert_eq!(services["services"], serde_json::json!([]));
    app.env.cleanup().await
}

/// Answers `GET path` from the projector's routes: the status and the JSON body.
async fn get_json(probes: Probes, path: &str) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let response = router(probes)
        .oneshot(Request::get(path).body(Body::empty())?)
        .await?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    Ok((status, serde_json::from_slice(&body)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_progress_and_lag() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.workload.append_visits(&app.log, 0..120, 16).await?;
    // About 700 positions behind at start, more than the lag `/ready` tolerates here.
    let mut config = crate::helpers::test_config();
    config.ready_max_lag = 100;
    let mut projector =
        claimledger_projector::Projector::build(app.log.clone(), app.env.db.clone(), config)?;
    let metrics = projector.metrics();

    // Not yet stepped: alive, but not ready (no step yet, and the log's head is far ahead).
    let (status, health) = get_json(projector.probes(), "/health").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["parked_total"], 0);
    let (status, ready) = get_json(projector.probes(), "/ready").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(
        ready["failing"],
        serde_json::json!(["caught_up", "stepping"])
    );
    assert_eq!(ready["database"]["ok"], true);
    assert_eq!(ready["nats"]["ok"], true);
    assert!(
        ready["caught_up"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("head as of start")),
        "{ready}"
    );

    // One batch of at most 200 commits out of about 700: lag is visible.
    step_until_applied(&mut projector).await?;
    let behind = metrics.snapshot();
    assert!(behind.lag_events > 0, "{behind:?}");
    assert!(behind.lag_seconds > 0.0, "{behind:?}");
    assert!(behind.events_total > 0, "{behind:?}");

    drain(&mut projector).await?;
    let last = app.log.last_sequence().await?;
    let (status, health) = get_json(projector.probes(), "/health").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["checkpoint"], last);
    assert_eq!(health["lag_events"], 0);
    assert_eq!(health["lag_seconds"], 0.0);
    let (status, ready) = get_json(projector.probes(), "/ready").await?;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["failing"], serde_json::json!([]));
    assert_eq!(ready["checkpoint"], last);

    let response = router(projector.probes())
        .oneshot(Request::get("/metrics").body(Body::empty())?)
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await?
            .to_vec(),
    )?;
    assert!(
        text.contains(&format!("claimledger_projector_checkpoint {last}\n")),
        "{text}"
    );
    assert!(
        text.contains("claimledger_projector_lag_events 0\n"),
        "{text}"
    );
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voided_service_never_reaches_the_claim() -> anyhow::Result<()> {
    use claimledger_events::session::{BodyRegion, DiagnosesAttached, ServiceVoided};
    use claimledger_events::{Icd10Code, UtcMicros};
    use integration_tests::commits::commit_for;

    let app = spawn_app().await?;
    let address = app.workload.session(5_000);
    let service = |technique, code: &str, minutes| {
        Event::ServiceRecorded(ServiceRecorded {
            technique,
            cpt_code: CptCode::new(code).expect("a valid code"),
            minutes,
            body_region: BodyRegion::LowerBack,
            body_side: None,
            description: None,
        })
    };
    let booked = commit_for(
        &address,
        vec![
            Event::SessionScheduled(SessionScheduled {
                therapist: app.workload.therapists[0],
                patient: Uuid::new_v4().into(),
                coverage: Coverage::Payer {
                    payer: payer_of(0),
                    coverage: Uuid::new_v4().into(),
                },
                referral: None,
                // 2025-06-16 17:00 UTC, when medicare-like's first rules version is in force.
                scheduled_start: UtcMicros(1_750_093_200_000_000),
                planned_minutes: 60,
            }),
            Event::CheckedIn,
        ],
    );
    let recorded = commit_for(
        &address,
        vec![
            service(Technique::Swedish, "97124", 30),
            service(Technique::MyofascialRelease, "97140", 15),
        ],
    );
    let wrong = recorded.events[0].event_id;
    let corrected = commit_for(
        &address,
        vec![
            Event::ServiceVoided(ServiceVoided {
                service_event: wrong,
                reason: "recorded on the wrong session".to_owned(),
            }),
            Event::DiagnosesAttached(DiagnosesAttached {
                icd10_codes: vec![Icd10Code::new("M54.50")?],
            }),
            Event::SessionCompleted,
        ],
    );
    let mut version = 0;
    for commit in [booked, recorded, corrected] {
        version = app.log.append(&address, version, &commit).await?.sequence;
    }
    let mut projector = app.projector()?;
    drain(&mut projector).await?;

    let session = address.id.as_uuid();
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM read_models.claim_lines WHERE session_id = $1 ORDER BY line_number",
    )
    .bind(session)
    .fetch_all(&app.env.db)
    .await?;
    assert_eq!(codes, ["97140"]);
    let (status, minutes, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT s.status, s.service_minutes, c.derivation_error FROM read_models.sessions s \
         JOIN read_models.claims c USING (chain_id, session_id) WHERE s.session_id = $1",
    )
    .bind(session)
    .fetch_one(&app.env.db)
    .await?;
    assert_eq!(status, "completed");
    assert_eq!(minutes, 15);
    assert_eq!(error, None);
    app.env.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_database_and_the_log_when_they_do_not_answer() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // Nothing listens on port 1: the pool never connects.
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://claimledger@127.0.0.1:1/claimledger")?;
    let projector = claimledger_projector::Projector::build(
        app.log.clone(),
        unreachable,
        crate::helpers::test_config(),
    )?;
    let (status, ready) = get_json(projector.probes(), "/ready").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["database"]["ok"], false);
    assert!(ready["database"]["reason"].is_string(), "{ready}");
    assert_eq!(ready["nats"]["ok"], true);

    // The log's stream gone: the log check fails and says so, and liveness still answers.
    let jetstream = async_nats::jetstream::new(app.env.nats.clone());
    jetstream
        .delete_stream(&app.env.log_config().stream_name)
        .await?;
    let projector = app.projector()?;
    let (status, ready) = get_json(projector.probes(), "/ready").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["nats"]["ok"], false, "{ready}");
    assert!(
        ready["failing"]
            .as_array()
            .is_some_and(|failing| failing.contains(&serde_json::json!("nats"))),
        "{ready}"
    );
    assert_eq!(ready["database"]["ok"], true);
    let (status, _) = get_json(projector.probes(), "/health").await?;
    assert_eq!(status, StatusCode::OK);
    app.env.cleanup().await
}
