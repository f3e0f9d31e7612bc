//! Commits whose values PostgreSQL refuses (a NUL character in a text) are parked, and every other
//! commit and every other chain goes on, live and in a rebuild alike.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use claimledger_events::session::{BodyRegion, ServiceRecorded, Technique};
use claimledger_events::{AggregateKind, CptCode, Event};
use claimledger_projector::LIVE_SCHEMA;
use claimledger_projector::http::router;
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::claim_workload::clinic_registration;
use crate::helpers::{drain, spawn_app};
use crate::workload::Workload;

/// A `parked_events` row: sequence, chain, reason and the commit's payload.
type ParkedEvent = (i64, Option<Uuid>, String, Option<Vec<u8>>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_holding_values_postgres_refuses_are_parked_and_everything_else_is_applied()
-> anyhow::Result<()> {
    // Chain B is the test world's own chain; chain A is a second one on the same log.
    let app = spawn_app().await?;
    let db = &app.env.db;
    let chain_b = &app.workload;
    let chain_a = Workload::new();
    chain_a.seed_directory(db).await?;
    chain_a.publish_rules(&app.log).await?;
    chain_a.record_directory(&app.log).await?;
    chain_b.append_visits(&app.log, 0..5, 4).await?;

    // A clinic of chain A whose name holds a NUL: a text column refuses it (SQLSTATE 22021).
    let bad_clinic = Uuid::new_v4();
    let bad_clinic_sequence = {
        chain_a
            .register(
                &app.log,
                AggregateKind::Clinic,
                bad_clinic.into(),
                Event::ClinicRegistered(clinic_registration("North\u{0}side".to_owned())),
            )
            .await?;
        app.log.last_sequence().await?
    };

    // A visit of chain A with one service whose description holds a NUL (the session's services
    // document refuses it, SQLSTATE 22P05), recorded right after the check-in.
    let visit = 100;
    let session = chain_a.session(visit);
    let mut commits = chain_a.visit_commits(visit);
    let bad_service = integration_tests::commits::commit_for(
        &session,
        vec![Event::ServiceRecorded(ServiceRecorded {
            technique: Technique::Swedish,
            cpt_code: CptCode::new("97124")?,
            minutes: 10,
            body_region: BodyRegion::Neck,
            body_side: None,
            description: Some("upper\u{0}back".to_owned()),
        })],
    );
    commits.insert(2, bad_service);
    let mut version = 0;
    let mut bad_service_sequence = 0;
    for (position, commit) in commits.iter().enumerate() {
        version = app.log.append(&session, version, commit).await?.sequence;
        if position == 2 {
            bad_service_sequence = version;
        }
    }

    // Then more of both chains, so that the bad commits sit in the middle of batches.
    chain_b.append_visits(&app.log, 5..10, 4).await?;
    chain_a.append_visits(&app.log, 0..5, 4).await?;

    let mut projector = app.projector()?;
    let metrics = projector.metrics();
    drain(&mut projector).await?;
    assert_eq!(
        projector.checkpoint().await?,
        app.log.last_sequence().await?,
        "the projector reached the head of the log"
    );

    let parked: Vec<ParkedEvent> = sqlx::query_as(
        "SELECT sequence, chain_id, error, payload FROM parked_events WHERE projection = $1 \
         ORDER BY sequence",
    )
    .bind(LIVE_SCHEMA)
    .fetch_all(db)
    .await?;
    assert_eq!(
        parked
            .iter()
            .map(|(sequence, chain, ..)| (*sequence, *chain))
            .collect::<Vec<_>>(),
        vec![
            (bad_clinic_sequence as i64, Some(chain_a.chain.as_uuid())),
            (bad_service_sequence as i64, Some(chain_a.chain.as_uuid())),
        ],
        "{parked:?}"
    );
    assert!(parked[0].2.contains("SQLSTATE 22021"), "{}", parked[0].2);
    assert!(parked[1].2.contains("SQLSTATE 22P05"), "{}", parked[1].2);
    assert!(
        parked.iter().all(|(.., payload)| payload.is_some()),
        "the commits are kept for re-applying"
    );
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.parked_total, 2, "{snapshot:?}");
    assert!(snapshot.isolated_total >= 1, "{snapshot:?}");
    assert!(snapshot.healthy, "{snapshot:?}");
    let health = router(projector.probes())
        .oneshot(Request::get("/health").body(Body::empty())?)
        .await?;
    assert_eq!(health.status(), StatusCode::OK);
    let health: serde_json::Value =
        serde_json::from_slice(&axum::body::to_bytes(health.into_body(), 1 << 20).await?)?;
    assert_eq!(health["parked_total"], 2, "{health}");

    // Chain B is complete: every visit's session, and a claim for every completed one.
    let count = |sql: &'static str, chain: Uuid| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(chain)
            .fetch_one(db)
            .await
    };
    let sessions_sql = "SELECT count(*) FROM read_models.sessions WHERE chain_id = $1";
    let claims_sql = "SELECT count(*) FROM read_models.claims WHERE chain_id = $1";
    assert_eq!(count(sessions_sql, chain_b.chain.as_uuid()).await?, 10);
    assert_eq!(
        count(claims_sql, chain_b.chain.as_uuid()).await?,
        claimed_visits(0..10)
    );

    // Chain A: its good commits are applied, the visit with the refused service included (its
    // other services, its completion and its claim); the refused clinic is not.
    assert_eq!(count(sessions_sql, chain_a.chain.as_uuid()).await?, 6);
    assert_eq!(
        count(claims_sql, chain_a.chain.as_uuid()).await?,
        claimed_visits((0..5).chain([visit]))
    );
    let (status, services): (String, serde_json::Value) =
        sqlx::query_as("SELECT status, services FROM read_models.sessions WHERE session_id = $1")
            .bind(session.id.as_uuid())
            .fetch_one(db)
            .await?;
    assert_eq!(status, "completed");
    let recorded = services["services"].as_array().map_or(0, Vec::len);
    assert_eq!(recorded, 2, "the refused service is left out: {services}");
    let clinics: Vec<Uuid> =
        sqlx::query_scalar("SELECT clinic_id FROM read_models.clinics WHERE chain_id = $1")
            .bind(chain_a.chain.as_uuid())
            .fetch_all(db)
            .await?;
    assert_eq!(clinics, vec![chain_a.clinic.as_uuid()]);

    // A rebuild meets the same commits in other batches and arrives at the same tables.
    let live = app.checksums().await?;
    let rebuilt = app.rebuild_all().await?;
    assert_eq!(live, rebuilt);
    app.env.cleanup().await
}

/// How many of the workload's visits `indices` end with a claim: completed (not cancelled) and
/// billed to a payer (not self-pay), as `Workload::visit_commits` lays them out.
fn claimed_visits(indices: impl Iterator<Item = u64>) -> i64 {
    indices
        .filter(|index| index % 7 != 3 && index % 5 != 4)
        .count() as i64
}
