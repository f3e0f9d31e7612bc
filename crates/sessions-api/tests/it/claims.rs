//! The claim lifecycle end to end: visits recorded through the API, claims derived by the
//! projector, submitted, adjudicated (paid with CO-45, deductible PR-1, bundled CO-97, denied
//! CO-50), resubmitted with the other code, written off; then the projector's claim outcomes and
//! monthly rollups checked row by row, and a rebuild from the log compared checksum by checksum.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use claimledger_events::claim::ClaimAdjudicated;
use claimledger_events::{
    Actor, ActorKind, AggregateKind, ClaimId, ClinicId, CommandId, Commit, CorrelationId, EpochDay,
    Event, EventId, EventRecord, PayerId, SessionId, UtcMicros,
};
use claimledger_log::AggregateAddress;
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_projector::checksum::read_model_checksums;
use claimledger_projector::rebuild::rebuild;
use claimledger_projector::{LIVE_SCHEMA, Outcome, Projector, ProjectorConfig};
use claimledger_sessions_api::auth::{Role, bootstrap_chain};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, morning, spawn_app};

fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"))
}

pub(crate) fn projector_config() -> ProjectorConfig {
    let mut config = ProjectorConfig::live(rules_dir());
    config.idle_wait = Duration::from_millis(100);
    config
}

/// Steps the projector until it is idle (bounded).
pub(crate) async fn drain(projector: &mut Projector) {
    let steps = async {
        loop {
            match projector
                .process_next_batch()
                .await
                .expect("a batch applies")
            {
                Outcome::Applied(_) => {}
                Outcome::Idle => return,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), steps)
        .await
        .expect("the projector became idle within 120 seconds");
}

/// A chain billing `medicare-like` (whose rules are published on the log), and the keys to work it.
pub(crate) struct Billing {
    pub(crate) clinic: Uuid,
    pub(crate) therapist: Uuid,
    pub(crate) patient: Uuid,
    pub(crate) payer: Uuid,
    pub(crate) coverage: Uuid,
    /// A referral for the patient, March to May 2026, 2 visits, for M54.50.
    pub(crate) referral: Uuid,
    pub(crate) front_desk: String,
    pub(crate) billing: String,
}

pub(crate) async fn billing_world(app: &TestApp) -> Billing {
    let book = load_dir(&rules_dir()).expect("the repository's rules load");
    publish(&app.log, app.chain, &book, UtcMicros(0))
        .await
        .expect("the rules publish");
    let world = app.world_paid_by("Medicare-like", "medicare-like").await;
    Billing {
        clinic: world.clinic,
        therapist: world.therapist,
        patient: world.patient,
        payer: world.payer,
        coverage: world.coverage,
        referral: world.referral,
        front_desk: world.front_desk,
        billing: app.key(Role::Billing, None).await,
    }
}

/// Records a completed visit `days` after `morning()` with `services` (technique, code, minutes)
/// and returns the id of its claim.
pub(crate) async fn visit(
    app: &TestApp,
    world: &Billing,
    days: i64,
    services: &[(&str, &str, u16)],
) -> Uuid {
    visit_under(app, world, days, services, None).await
}

/// Like [`visit`], booked under `referral`.
pub(crate) async fn visit_under(
    app: &TestApp,
    world: &Billing,
    days: i64,
    services: &[(&str, &str, u16)],
    referral: Option<Uuid>,
) -> Uuid {
    let start: DateTime<Utc> = morning() + chrono::Duration::days(days);
    let key = &world.front_desk;
    let reply = app
        .post("/v1/sessions", key)
        .json(&json!({
            "clinic_id": world.clinic, "therapist_id": world.therapist, "patient_id": world.patient,
            "payment": {"kind": "payer", "payer_id": world.payer, "coverage_id": world.coverage},
            "referral_id": referral, "scheduled_start": start, "planned_minutes": 60
        }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let session = reply.id();
    let check_in = app
        .post(&format!("/v1/sessions/{session}/check-in"), key)
        .send()
        .await;
    assert_eq!(check_in.status, StatusCode::OK, "{check_in:?}");
    for (technique, code, minutes) in services {
        let reply = app
            .post(&format!("/v1/sessions/{session}/services"), key)
            .json(&json!({"technique": technique, "code": code, "minutes": minutes, "body_region": "lower_back"}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let reply = app
        .post(&format!("/v1/sessions/{session}/diagnoses"), key)
        .json(&json!({"codes": ["M54.50"]}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = app
        .post(&format!("/v1/sessions/{session}/complete"), key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    ClaimId::for_session_and_payer(SessionId::from(session), PayerId::from(world.payer)).as_uuid()
}

/// Today in the clinic (New York): remittances are dated between submission and today.
fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive()
}

/// The (code, charge) of each line of a claim's view.
fn lines_of(reply: &Reply) -> Vec<(String, i64)> {
    reply.body["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            (
                line["code"].as_str().expect("a code").to_owned(),
                line["charge_cents"].as_i64().expect("a charge"),
            )
        })
        .collect()
}

/// The (code, charge) of a claim's only line.
fn one_line(reply: &Reply) -> (String, i64) {
    let mut lines = lines_of(reply);
    assert_eq!(lines.len(), 1, "{reply:?}");
    lines.remove(0)
}

/// A remittance line: (allowed, paid, patient, paid units, adjustments).
fn remitted(
    line_number: usize,
    allowed: i64,
    paid: i64,
    patient: i64,
    paid_units: u16,
    adjustments: Value,
) -> Value {
    json!({"line_number": line_number, "allowed_cents": allowed, "paid_cents": paid,
        "patient_responsibility_cents": patient, "paid_units": paid_units, "adjustments": adjustments})
}

async fn post(app: &TestApp, key: &str, path: String, body: Option<Value>) -> Reply {
    let call = app.post(&path, key);
    let call = match body {
        Some(body) => call.json(&body),
        None => call,
    };
    call.send().await
}

async fn submit(app: &TestApp, key: &str, claim: Uuid) -> Reply {
    let reply = post(app, key, format!("/v1/claims/{claim}/submit"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["status"], "submitted");
    reply
}

async fn adjudicate(app: &TestApp, key: &str, claim: Uuid, lines: Vec<Value>) -> Reply {
    let body = json!({"payer_claim_number": format!("PCN-{claim}"), "adjudicated_on": today(), "lines": lines});
    let reply = post(
        app,
        key,
        format!("/v1/claims/{claim}/adjudications"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply
}

/// month, code, billed, adjudicated, denied, paid cents, patient cents, paid lines, paid units,
/// days to payment.
type RollupRow = (NaiveDate, String, i64, i64, i64, i64, i64, i64, i64, i64);

type ClaimRow = (String, i64, i64, i64, i64, i64, i32, Option<NaiveDate>);

async fn claim_row(app: &TestApp, session_of: &Reply) -> ClaimRow {
    sqlx::query_as(
        "SELECT status, billed_cents, allowed_cents, paid_cents, patient_responsibility_cents, \
                written_off_cents, resubmissions, adjudicated_on \
         FROM read_models.claims WHERE session_id = $1",
    )
    .bind(
        session_of.body["session_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .expect("a session id"),
    )
    .fetch_one(&app.pool)
    .await
    .expect("the claim row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_go_from_the_api_through_the_log_to_outcomes_and_rollups_and_rebuild_identically() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let key = world.billing.clone();
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");

    let contractual = visit(&app, &world, 0, &[("swedish_massage", "97124", 30)]).await;
    let deductible = visit(&app, &world, 1, &[("swedish_massage", "97124", 30)]).await;
    let bundled = visit(
        &app,
        &world,
        2,
        &[
            ("swedish_massage", "97124", 30),
            ("strength_exercise", "97110", 15),
        ],
    )
    .await;
    let written_off = visit(&app, &world, 3, &[("myofascial_release", "97140", 15)]).await;
    let resubmitted = visit(&app, &world, 4, &[("myofascial_release", "97140", 30)]).await;
    // Before the projector derived it, a claim does not exist for the API.
    let early = post(&app, &key, format!("/v1/claims/{contractual}/submit"), None).await;
    early.assert_problem(StatusCode::NOT_FOUND, "claim_id");
    drain(&mut projector).await;

    let draft = app
        .get(&format!("/v1/claims/{contractual}"), &key)
        .send()
        .await;
    assert_eq!(draft.status, StatusCode::OK, "{draft:?}");
    assert_eq!(draft.body["status"], "draft");
    assert_eq!(draft.body["version"], 0);

    // Paid with a contractual reduction (CO-45).
    let (code, charge) = one_line(&submit(&app, &key, contractual).await);
    assert_eq!(code, "97124");
    let allowed = charge - 1146;
    let paid = adjudicate(
        &app,
        &key,
        contractual,
        vec![remitted(
            1,
            allowed,
            allowed,
            0,
            2,
            json!([{"group": "CO", "reason_code": "45", "amount_cents": charge - allowed}]),
        )],
    )
    .await;
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["paid_cents"], allowed);

    // Part of the allowed amount applied to the deductible (PR-1).
    let (_, charge_2) = one_line(&submit(&app, &key, deductible).await);
    let allowed_2 = charge_2 - 1146;
    adjudicate(
        &app,
        &key,
        deductible,
        vec![remitted(
            1,
            allowed_2,
            allowed_2 - 2000,
            2000,
            2,
            json!([
            {"group": "CO", "reason_code": "45", "amount_cents": charge_2 - allowed_2},
            {"group": "PR", "reason_code": "1", "amount_cents": 2000}]),
        )],
    )
    .await;

    // Two lines: 97110 bundled into the other (CO-97), the other paid in full.
    let bundled_lines = lines_of(&submit(&app, &key, bundled).await);
    assert_eq!(bundled_lines.len(), 2, "{bundled_lines:?}");
    let remittance: Vec<Value> = bundled_lines
        .iter()
        .enumerate()
        .map(|(index, (code, charge))| {
            if code == "97110" {
                remitted(
                    index + 1,
                    0,
                    0,
                    0,
                    0,
                    json!([{"group": "CO", "reason_code": "97", "amount_cents": charge}]),
                )
            } else {
                remitted(index + 1, *charge, *charge, 0, 2, json!([]))
            }
        })
        .collect();
    let reply = adjudicate(&app, &key, bundled, remittance).await;
    assert_eq!(reply.body["status"], "paid");
    let bundled_charge = bundled_lines
        .iter()
        .find(|(code, _)| code == "97110")
        .expect("a 97110 line")
        .1;

    // Denied as not medically necessary (CO-50), then written off.
    let (_, charge_4) = one_line(&submit(&app, &key, written_off).await);
    let denied = adjudicate(
        &app,
        &key,
        written_off,
        vec![remitted(
            1,
            0,
            0,
            0,
            0,
            json!([{"group": "CO", "reason_code": "50", "amount_cents": charge_4}]),
        )],
    )
    .await;
    assert_eq!(denied.body["status"], "denied");
    let reply = post(
        &app,
        &key,
        format!("/v1/claims/{written_off}/write-off"),
        Some(json!({"reason": "not worth an appeal", "amount_cents": charge_4})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["status"], "written_off");

    // 97140 denied (CO-50); resubmitted as 97124, which the payer pays.
    let (_, charge_5) = one_line(&submit(&app, &key, resubmitted).await);
    adjudicate(
        &app,
        &key,
        resubmitted,
        vec![remitted(
            1,
            0,
            0,
            0,
            0,
            json!([{"group": "CO", "reason_code": "50", "amount_cents": charge_5}]),
        )],
    )
    .await;
    // The rollups see the denial before the resubmission replaces it.
    drain(&mut projector).await;
    let denials_before: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(lines), 0)::int8 FROM read_models.denial_reasons_monthly \
         WHERE code = '97140' AND reason_code = '50'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(denials_before, 2);
    let reply = post(
        &app,
        &key,
        format!("/v1/claims/{resubmitted}/resubmit"),
        Some(
            json!({"reason": "97140 denied CO-50; billing 97124", "lines": [
            {"code": "97124", "modifiers": ["GP"], "units": 2, "charge_cents": 6146}]}),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["status"], "resubmitted");
    assert_eq!(reply.body["resubmissions"], 1);
    let reply = adjudicate(
        &app,
        &key,
        resubmitted,
        vec![remitted(1, 6146, 6146, 0, 2, json!([]))],
    )
    .await;
    assert_eq!(reply.body["status"], "paid");
    drain(&mut projector).await;

    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0);

    // The claims rows.
    let row = claim_row(&app, &paid).await;
    assert_eq!(
        row,
        (
            "paid".to_owned(),
            charge,
            allowed,
            allowed,
            0,
            0,
            0,
            Some(today())
        )
    );
    let row = claim_row(&app, &denied).await;
    assert_eq!(
        row,
        (
            "written_off".to_owned(),
            charge_4,
            0,
            0,
            0,
            charge_4,
            0,
            Some(today())
        )
    );
    let row = claim_row(&app, &reply).await;
    assert_eq!(
        row,
        ("paid".to_owned(), 6146, 6146, 6146, 0, 0, 1, Some(today()))
    );

    // The outcome of the bundled line.
    let (denied_flag, adjustments): (bool, Value) = sqlx::query_as(
        "SELECT denied, adjustments FROM read_models.claim_line_outcomes WHERE code = '97110'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(denied_flag);
    assert_eq!(
        adjustments,
        json!([{"group": "CO", "reason": "97", "amount_cents": bundled_charge}])
    );

    // The monthly rollup, per code: the resubmitted claim counts as 97124 only.
    let march = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let days = |day: u32| (today() - NaiveDate::from_ymd_opt(2026, 3, day).unwrap()).num_days();
    let rows: Vec<RollupRow> = sqlx::query_as(
        "SELECT month, code, billed_lines, adjudicated_lines, denied_lines, paid_cents, \
                patient_responsibility_cents, paid_lines, paid_units, days_to_payment_sum \
         FROM read_models.reimbursement_monthly ORDER BY code",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let bundled_paid: i64 = bundled_lines
        .iter()
        .filter(|(code, _)| code == "97124")
        .map(|(_, charge)| charge)
        .sum();
    assert_eq!(
        rows,
        vec![
            (march, "97110".to_owned(), 1, 1, 1, 0, 0, 0, 0, 0),
            (
                march,
                "97124".to_owned(),
                4,
                4,
                0,
                allowed + (allowed_2 - 2000) + bundled_paid + 6146,
                2000,
                4,
                8,
                days(10) + days(11) + days(12) + days(14)
            ),
            (march, "97140".to_owned(), 1, 1, 1, 0, 0, 0, 0, 0),
        ]
    );
    assert_eq!(rows[0].0.day(), 1);
    let reasons: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT code, group_code, reason_code, lines, amount_cents \
         FROM read_models.denial_reasons_monthly ORDER BY code",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        reasons,
        vec![
            (
                "97110".to_owned(),
                "CO".to_owned(),
                "97".to_owned(),
                1,
                bundled_charge
            ),
            (
                "97140".to_owned(),
                "CO".to_owned(),
                "50".to_owned(),
                1,
                charge_4
            ),
        ]
    );

    // The live tables were built batch by batch; a rebuild replays the whole log at once.
    let live = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("checksums");
    assert!(live["reimbursement_monthly"].rows == 3 && live["claim_line_outcomes"].rows == 6);
    rebuild(&app.log, &app.pool, &projector_config(), None, &mut |_| {})
        .await
        .expect("the rebuild runs");
    let rebuilt = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("checksums");
    assert_eq!(live, rebuilt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_commands_check_roles_tenancy_versions_idempotency_and_bodies() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let key = world.billing.clone();
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    let claim = visit(&app, &world, 0, &[("swedish_massage", "97124", 30)]).await;
    drain(&mut projector).await;

    for role in [Role::Analyst, Role::FrontDesk] {
        let other = app.key(role, None).await;
        post(&app, &other, format!("/v1/claims/{claim}/submit"), None)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "role");
        app.get(&format!("/v1/claims/{claim}"), &other)
            .send()
            .await
            .assert_problem(StatusCode::FORBIDDEN, "role");
    }
    let (_, stranger) = bootstrap_chain(&app.pool, "Another chain").await.unwrap();
    post(
        &app,
        &stranger.secret,
        format!("/v1/claims/{claim}/submit"),
        None,
    )
    .await
    .assert_problem(StatusCode::NOT_FOUND, "claim_id");
    app.get(&format!("/v1/claims/{claim}"), &stranger.secret)
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "claim_id");

    // Idempotent submission: the retry gets the first answer and nothing new is appended.
    let first = app
        .post(&format!("/v1/claims/{claim}/submit"), &key)
        .header("idempotency-key", "submit-1")
        .send()
        .await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    let version = first.etag();
    let log_length = app.total_commits().await;
    let retry = app
        .post(&format!("/v1/claims/{claim}/submit"), &key)
        .header("idempotency-key", "submit-1")
        .send()
        .await;
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(app.total_commits().await, log_length);
    // Submitting again is a state conflict.
    post(&app, &key, format!("/v1/claims/{claim}/submit"), None)
        .await
        .assert_problem(StatusCode::CONFLICT, "status");

    let charge = first.body["lines"][0]["charge_cents"].as_i64().unwrap();
    let good_line = json!({"line_number": 1, "allowed_cents": charge, "paid_cents": charge,
        "patient_responsibility_cents": 0, "paid_units": 2, "adjustments": []});
    let bad_bodies = [
        (
            json!([{"line_number": 1, "allowed_cents": charge, "paid_cents": charge - 1,
            "patient_responsibility_cents": 0, "paid_units": 2, "adjustments": []}]),
            "lines[0].paid_cents",
        ),
        (
            json!([{"line_number": 1, "allowed_cents": charge, "paid_cents": charge - 100,
            "patient_responsibility_cents": 0, "paid_units": 2,
            "adjustments": [{"group": "ZZ", "reason_code": "45", "amount_cents": 100}]}]),
            "lines[0].adjustments[0].group",
        ),
        (
            json!([{"line_number": 1, "allowed_cents": charge, "paid_cents": charge - 100,
            "patient_responsibility_cents": 0, "paid_units": 2,
            "adjustments": [{"group": "CO", "reason_code": "4567", "amount_cents": 100}]}]),
            "lines[0].adjustments[0].reason_code",
        ),
        (
            json!([{"line_number": 2, "allowed_cents": 0, "paid_cents": 0,
            "patient_responsibility_cents": 0, "paid_units": 0, "adjustments": []}]),
            "lines[0].line_number",
        ),
        (
            json!([{"line_number": 1, "allowed_cents": charge, "paid_cents": charge,
            "patient_responsibility_cents": 0, "adjustments": []}]),
            "lines[0].paid_units",
        ),
    ];
    // Text the read models cannot store never reaches the log either.
    let text_bodies = [
        (
            json!({"payer_claim_number": "P\u{0}1", "adjudicated_on": today(), "lines": [good_line]}),
            "payer_claim_number",
        ),
        (
            json!({"payer_claim_number": "P-1", "adjudicated_on": today(), "lines": [good_line],
                "note": "\u{1b}[2J"}),
            "note",
        ),
    ];
    let bodies = bad_bodies
        .into_iter()
        .map(|(lines, field)| {
            (
                json!({"payer_claim_number": "P-1", "adjudicated_on": today(), "lines": lines}),
                field,
            )
        })
        .chain(text_bodies);
    for (body, field) in bodies {
        post(
            &app,
            &key,
            format!("/v1/claims/{claim}/adjudications"),
            Some(body),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    assert_eq!(
        app.total_commits().await,
        log_length,
        "refusals write nothing"
    );
    let current = app.get(&format!("/v1/claims/{claim}"), &key).send().await;
    assert_eq!(current.etag(), version);
    assert_eq!(current.body["status"], "submitted");

    // A stale If-Match is a version conflict; the current one goes through.
    let body =
        json!({"payer_claim_number": "P-1", "adjudicated_on": today(), "lines": [good_line]});
    let stale = app
        .post(&format!("/v1/claims/{claim}/adjudications"), &key)
        .header("if-match", "\"1\"")
        .json(&body)
        .send()
        .await;
    stale.assert_problem(StatusCode::CONFLICT, "If-Match");
    assert!(
        stale.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.starts_with("If-Match: the claim is at version ")),
        "the conflict names the claim: {stale:?}"
    );
    let reply = app
        .post(&format!("/v1/claims/{claim}/adjudications"), &key)
        .header("if-match", &version)
        .json(&body)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["status"], "paid");
    // Paid in full: nothing is left to write off.
    post(
        &app,
        &key,
        format!("/v1/claims/{claim}/write-off"),
        Some(json!({"reason": "x", "amount_cents": 1})),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "amount_cents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_could_not_be_derived_cannot_be_submitted() {
    let app = spawn_app().await;
    let world = app.world().await;
    // The world's payer (`acme-health`) has no rules on the log, so its claims fail to derive.
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    let session = app.checked_in_session(&world).await;
    let key = &world.front_desk;
    for (path, body) in [
        (
            "services",
            json!({"technique": "swedish_massage", "code": "97124", "minutes": 30, "body_region": "neck"}),
        ),
        ("diagnoses", json!({"codes": ["M54.50"]})),
    ] {
        let reply = app
            .post(&format!("/v1/sessions/{session}/{path}"), key)
            .json(&body)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let reply = app
        .post(&format!("/v1/sessions/{session}/complete"), key)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    drain(&mut projector).await;
    let claim =
        ClaimId::for_session_and_payer(SessionId::from(session), PayerId::from(world.payer))
            .as_uuid();
    let billing = app.key(Role::Billing, None).await;
    let before = app.total_commits().await;
    let reply = post(&app, &billing, format!("/v1/claims/{claim}/submit"), None).await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "claim_id");
    assert!(
        reply.body["reason"]
            .as_str()
            .unwrap()
            .contains("could not be derived")
    );
    assert_eq!(app.total_commits().await, before);
}

/// A remittance commit written straight to the log, as another writer might.
fn remittance_commit(app: &TestApp, clinic: Uuid, claim: Uuid) -> (AggregateAddress, Commit) {
    let address = AggregateAddress {
        chain: app.chain,
        clinic: Some(ClinicId::from(clinic)),
        kind: AggregateKind::Claim,
        id: ClaimId::from(claim).into(),
    };
    let commit = Commit {
        command_id: CommandId::from(Uuid::now_v7()),
        chain: app.chain,
        clinic: address.clinic,
        aggregate_kind: AggregateKind::Claim,
        aggregate_id: address.id,
        recorded_at: UtcMicros(0),
        actor: Actor {
            kind: ActorKind::Service,
            id: "test".to_owned(),
        },
        correlation_id: CorrelationId::from(Uuid::now_v7()),
        causation_id: None,
        events: vec![EventRecord {
            event_id: EventId::from(Uuid::now_v7()),
            occurred_at: UtcMicros(0),
            event: Event::ClaimAdjudicated(ClaimAdjudicated {
                payer_claim_number: "X".to_owned(),
                adjudicated_on: EpochDay(20_000),
                lines: Vec::new(),
            }),
        }],
    };
    (address, commit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_commits_that_do_not_fit_are_parked_and_change_nothing() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    let derived = visit(&app, &world, 0, &[("swedish_massage", "97124", 30)]).await;
    drain(&mut projector).await;
    let before = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("checksums");
    // A remittance for a claim that was never derived, and one for a claim never submitted.
    for claim in [Uuid::now_v7(), derived] {
        let (address, commit) = remittance_commit(&app, world.clinic, claim);
        app.log
            .append(&address, 0, &commit)
            .await
            .expect("appended");
    }
    drain(&mut projector).await;
    let parked: Vec<String> =
        sqlx::query_scalar("SELECT error FROM parked_events ORDER BY sequence")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked[0].contains("never derived"), "{parked:?}");
    assert!(parked[1].contains("never submitted"), "{parked:?}");
    let after = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("checksums");
    assert_eq!(before, after);
    // The API ignores the stray remittance as the projector does: the claim is still a draft,
    // at the version the stray commit gave its subject.
    let reply = submit_with_version(&app, &world.billing, derived).await;
    assert_eq!(reply.body["status"], "submitted");
}

/// Submits with the claim's current version as `If-Match` (the parked commit moved it).
async fn submit_with_version(app: &TestApp, key: &str, claim: Uuid) -> Reply {
    let current = app.get(&format!("/v1/claims/{claim}"), key).send().await;
    assert_eq!(current.status, StatusCode::OK, "{current:?}");
    assert_eq!(current.body["status"], "draft");
    app.post(&format!("/v1/claims/{claim}/submit"), key)
        .header("if-match", &current.etag())
        .send()
        .await
}

/// POSTs `body` to `path` on the API at `base` (another instance than the test app's).
async fn post_to(
    app: &TestApp,
    base: &str,
    key: &str,
    path: String,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("the API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An instance keeps the claims it worked in memory at their versions; when another instance has
/// moved a claim on since, the next command or read sees the log's current version and decides on
/// the current state, not on the remembered one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_works_a_claim_that_another_instance_moved_on_since() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let key = world.billing.clone();
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    let claim = visit(&app, &world, 0, &[("swedish_massage", "97124", 30)]).await;
    drain(&mut projector).await;
    let submitted = submit(&app, &key, claim).await;
    let line = &submitted.body["lines"][0];
    let (charge, units) = (
        line["charge_cents"].as_i64().unwrap(),
        line["units"].clone(),
    );

    // The other instance records a remittance that pays all but a 10.00 contractual adjustment.
    let other = app.second_instance().await;
    let remittance = json!({"payer_claim_number": "P-7", "adjudicated_on": today(), "lines": [
        {"line_number": 1, "allowed_cents": charge - 1000, "paid_cents": charge - 1000,
         "patient_responsibility_cents": 0, "paid_units": units,
         "adjustments": [{"group": "CO", "reason_code": "45", "amount_cents": 1000}]}]});
    let (status, paid) = post_to(
        &app,
        &other,
        &key,
        format!("/v1/claims/{claim}/adjudications"),
        remittance,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paid:?}");
    assert_eq!(paid["status"], "paid");
    assert_ne!(paid["version"], submitted.body["version"]);

    // The first instance last saw the claim submitted; it reads and writes at the new version.
    let current = app.get(&format!("/v1/claims/{claim}"), &key).send().await;
    assert_eq!(current.status, StatusCode::OK, "{current:?}");
    assert_eq!(current.body["status"], "paid");
    assert_eq!(current.body["version"], paid["version"]);
    let written_off = app
        .post(&format!("/v1/claims/{claim}/write-off"), &key)
        .header("if-match", &format!("\"{}\"", paid["version"]))
        .json(&json!({"reason": "contractual adjustment", "amount_cents": paid["unpaid_balance_cents"]}))
        .send()
        .await;
    assert_eq!(written_off.status, StatusCode::OK, "{written_off:?}");
    assert_eq!(written_off.body["status"], "written_off");

    // And the other instance, which last saw it paid, refuses a second write-off as the log says.
    let (status, refused) = post_to(
        &app,
        &other,
        &key,
        format!("/v1/claims/{claim}/write-off"),
        json!({"reason": "again", "amount_cents": 1}),
    )
    .await;
    assert!(status.is_client_error(), "{refused:?}");
    assert_eq!(refused["field"], "status", "{refused:?}");
}

/// The fields of a derived claim's scrubber findings, as the read model holds them.
async fn finding_fields(app: &TestApp, claim: Uuid) -> Vec<String> {
    let findings: Value = sqlx::query_scalar(
        "SELECT c.findings FROM read_models.claims c JOIN read_models.claim_ids i \
         ON i.chain_id = c.chain_id AND i.session_id = c.session_id AND i.payer_id = c.payer_id \
         WHERE i.claim_id = $1",
    )
    .bind(claim)
    .fetch_one(&app.pool)
    .await
    .expect("the claim is derived");
    findings
        .as_array()
        .expect("findings are a list")
        .iter()
        .map(|finding| finding["field"].as_str().expect("a field").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_judged_with_the_referral_its_visit_was_booked_under() {
    let app = spawn_app().await;
    let world = billing_world(&app).await;
    let mut projector =
        Projector::build(app.log.clone(), app.pool.clone(), projector_config()).expect("builds");
    // medicare-like requires a referral; the world's covers March to May 2026 for M54.50.
    let referred = visit_under(
        &app,
        &world,
        0,
        &[("swedish_massage", "97124", 30)],
        Some(world.referral),
    )
    .await;
    let unreferred = visit(&app, &world, 1, &[("swedish_massage", "97124", 30)]).await;
    drain(&mut projector).await;

    let referred = finding_fields(&app, referred).await;
    assert!(
        referred
            .iter()
            .all(|field| !field.starts_with("visit.referral")),
        "a valid referral raises no referral finding: {referred:?}"
    );
    let unreferred = finding_fields(&app, unreferred).await;
    assert!(
        unreferred.iter().any(|field| field == "visit.referral"),
        "a visit without a referral is flagged for a payer that requires one: {unreferred:?}"
    );

    // A rebuild derives the same claims from the log alone (the referral from the log's own
    // `ReferralRecorded`, not from the API's tables).
    let before = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("digests");
    rebuild(&app.log, &app.pool, &projector_config(), None, &mut |_| {})
        .await
        .expect("the rebuild runs");
    let after = read_model_checksums(&app.pool, LIVE_SCHEMA, None)
        .await
        .expect("digests");
    assert_eq!(before, after, "the rebuilt read models equal the live ones");
}
