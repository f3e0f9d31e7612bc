//! `replay` and "publish, then let the projector catch up" agree: every draft claim the projector
//! holds after publishing equals replay's "after" derivation, and replay lists exactly the claims
//! that changed. Bad proposed rules stop the replay with `file:line: field: reason` and nothing
//! written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{Days, NaiveDate};
use claimledger_events::UtcMicros;
use claimledger_log::EventLog;
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_projector::{Outcome, Projector, ProjectorConfig};
use claimledger_replay::replay::{DEFAULT_MAX_OPEN_SESSIONS, ReplayError, ReplayRequest, replay};
use claimledger_replay::report::{Change, ReplayReport, Scope};
use integration_tests::TestEnv;
use uuid::Uuid;

use crate::workload::{Workload, now, rules_dir};

/// Lakeshore Mutual's proposed second version (the harness's fixture).
pub(crate) const LAKESHORE_V2: &str = crate::workload::LAKESHORE_V2_VERSION;

/// One test's world: its log and database, a projected workload, and a proposed rules directory.
struct World {
    env: TestEnv,
    log: EventLog,
    workload: Workload,
    projector: Projector,
    proposed: PathBuf,
}

impl World {
    async fn start(visits: u64, lakeshore_v2: &str) -> anyhow::Result<World> {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let env = TestEnv::start().await?;
        let log = env.event_log().await?;
        let workload = Workload::new();
        workload.seed_directory(&env.db).await?;
        workload.record_directory(&log).await?;
        workload.publish_rules(&log).await?;
        workload.append_visits(&log, 0..visits, 16).await?;
        let mut config = ProjectorConfig::live(rules_dir());
        config.max_batch_commits = 200;
        config.idle_wait = Duration::from_millis(100);
        let mut projector = Projector::build(log.clone(), env.db.clone(), config)?;
        drain(&mut projector).await?;
        let proposed = proposed_dir(lakeshore_v2)?;
        Ok(World {
            env,
            log,
            workload,
            projector,
            proposed,
        })
    }

    fn request(&self, as_of: NaiveDate) -> ReplayRequest {
        ReplayRequest {
            proposed_dir: self.proposed.clone(),
            reference_dir: rules_dir(),
            scope: Scope {
                chain: Some(self.workload.chain.as_uuid()),
                from: None,
                to: None,
                as_of,
            },
            recorded_at: now(),
            max_open_sessions: DEFAULT_MAX_OPEN_SESSIONS,
        }
    }

    /// The chain's claims as the read models hold them, by session: status, rules version and
    /// lines (code, units, modifiers, charge).
    async fn claims(&self) -> anyhow::Result<BTreeMap<Uuid, StoredClaim>> {
        let chain = self.workload.chain.as_uuid();
        let headers: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(
            "SELECT session_id, status, rules_version FROM read_models.claims WHERE chain_id = $1",
        )
        .bind(chain)
        .fetch_all(&self.env.db)
        .await?;
        let lines: Vec<(Uuid, String, i32, Vec<String>, i64)> = sqlx::query_as(
            "SELECT session_id, code, units, modifiers, charge_cents FROM read_models.claim_lines \
             WHERE chain_id = $1 ORDER BY session_id, line_number",
        )
        .bind(chain)
        .fetch_all(&self.env.db)
        .await?;
        let mut claims: BTreeMap<Uuid, StoredClaim> = headers
            .into_iter()
            .map(|(session, status, rules_version)| {
                (
                    session,
                    StoredClaim {
                        status,
                        rules_version: rules_version.and_then(|v| u32::try_from(v).ok()),
                        lines: Vec::new(),
                    },
                )
            })
            .collect();
        for (session, code, units, modifiers, charge) in lines {
            if let Some(claim) = claims.get_mut(&session) {
                claim.lines.push(StoredLine {
                    code,
                    units,
                    modifiers,
                    charge,
                });
            }
        }
        Ok(claims)
    }

    async fn cleanup(self) -> anyhow::Result<()> {
        std::fs::remove_dir_all(&self.proposed).ok();
        self.env.cleanup().await
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredClaim {
    status: String,
    rules_version: Option<u32>,
    lines: Vec<StoredLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredLine {
    code: String,
    units: i32,
    modifiers: Vec<String>,
    charge: i64,
}

/// (code, units, modifiers) of each line: what replay compares.
type Coding = Vec<(String, i32, Vec<String>)>;

fn stored_coding(claim: &StoredClaim) -> Coding {
    claim
        .lines
        .iter()
        .map(|line| (line.code.clone(), line.units, line.modifiers.clone()))
        .collect()
}

fn replayed_coding(lines: &[claimledger_replay::report::PricedLine]) -> Coding {
    lines
        .iter()
        .map(|line| (line.code.clone(), line.units, line.modifiers.clone()))
        .collect()
}

/// A copy of the repository's rules directory with `lakeshore_v2` appended to Lakeshore Mutual's
/// file.
pub(crate) fn proposed_dir(lakeshore_v2: &str) -> anyhow::Result<PathBuf> {
    crate::workload::rules_dir_with_lakeshore(lakeshore_v2)
}

/// Steps the projector until idle (bounded: fails after 120 seconds).
async fn drain(projector: &mut Projector) -> anyhow::Result<()> {
    let steps = async {
        while projector.process_next_batch().await? != Outcome::Idle {}
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(120), steps)
        .await
        .context("the projector did not become idle within 120 seconds")?
}

fn changed_sessions(report: &ReplayReport) -> BTreeSet<Uuid> {
    report.changed.iter().map(|claim| claim.session).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_predicts_exactly_what_publishing_the_rules_does_to_draft_claims()
-> anyhow::Result<()> {
    // Dates of service from 2025-06-01 for 160 days, so Lakeshore claims fall on both sides of
    // 2025-08-01.
    let mut world = World::start(160, LAKESHORE_V2).await?;
    let as_of = NaiveDate::from_ymd_opt(2025, 11, 15).context("a date")?;
    let last_before_replay = world.log.last_sequence().await?;
    let before = world.claims().await?;
    let report = replay(&world.log, &world.request(as_of)).await?;

    // Replay wrote nothing.
    assert_eq!(world.log.last_sequence().await?, last_before_replay);
    assert_eq!(world.claims().await?, before);
    assert_eq!(report.proposed.len(), 1, "{:?}", report.proposed);
    assert_eq!(report.proposed[0].payer_key, "lakeshore-mutual");
    assert_eq!(report.proposed[0].version, 2);
    assert_eq!(report.claims_compared, before.len() as u64);
    assert!(!report.changed.is_empty());
    assert!(
        report.changed.len() < before.len(),
        "other payers do not change"
    );

    // Apply it for real: publish the directory and let the projector catch up.
    let book = load_dir(&world.proposed)?;
    let published = publish(&world.log, world.workload.chain, &book, UtcMicros(now().0)).await?;
    assert_eq!(published.appended, vec![("lakeshore-mutual".to_owned(), 2)]);
    drain(&mut world.projector).await?;
    let after = world.claims().await?;
    assert_eq!(after.len(), before.len());

    // Replay's changed claims are exactly the claims whose lines changed in the read models.
    let changed_in_read_models: BTreeSet<Uuid> = after
        .iter()
        .filter(|(session, claim)| before[*session].lines != claim.lines)
        .map(|(session, _)| *session)
        .collect();
    assert_eq!(changed_sessions(&report), changed_in_read_models);

    for changed in &report.changed {
        let old = &before[&changed.session];
        let new = &after[&changed.session];
        assert_eq!(new.status, "draft");
        assert_eq!(changed.status, "draft");
        // "Before" is what the projector held, "after" what it holds now.
        assert_eq!(replayed_coding(&changed.before.lines), stored_coding(old));
        assert_eq!(changed.before.rules_version, old.rules_version);
        assert_eq!(replayed_coding(&changed.after.lines), stored_coding(new));
        assert_eq!(changed.after.rules_version, new.rules_version);
        assert_eq!(new.rules_version, Some(2));
        assert!(changed.changes.contains(&Change::Code), "{changed:?}");
        assert!(changed.changes.contains(&Change::ExpectedPayment));
        // Every line version 2 bills is covered and priced by its fee schedule, which is also the
        // charge master the projector bills with: expected payment equals the charged total.
        let charged: i64 = new.lines.iter().map(|line| line.charge).sum();
        assert_eq!(changed.after.expected_payment_cents, charged, "{changed:?}");
        assert_eq!(
            changed.delta_cents,
            changed.after.expected_payment_cents - changed.before.expected_payment_cents
        );
        // Lakeshore files within 90 days of the date of service.
        let day = changed.date_of_service.context("a date of service")?;
        let deadline = day.checked_add_days(Days::new(90)).context("a date")?;
        assert_eq!(changed.filing_deadline, Some(deadline));
        assert_eq!(changed.resubmittable, as_of <= deadline, "{changed:?}");
    }
    assert!(report.changed.iter().any(|claim| claim.resubmittable));
    assert!(report.changed.iter().any(|claim| !claim.resubmittable));

    // Claims that did not change keep everything, including their rules version.
    for (session, claim) in &after {
        if !changed_in_read_models.contains(session) {
            assert_eq!(claim, &before[session], "session {session}");
        }
    }

    // The totals add up to the changed claims' deltas.
    let totals_delta: i64 = report.totals.iter().map(|total| total.delta_cents).sum();
    let claims_delta: i64 = report.changed.iter().map(|claim| claim.delta_cents).sum();
    assert_eq!(totals_delta, claims_delta);

    // Replaying again, now that the rules are published, proposes nothing and changes nothing.
    let again = replay(&world.log, &world.request(as_of)).await?;
    assert!(again.proposed.is_empty());
    assert!(again.changed.is_empty());
    world.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_proposed_rules_stop_the_replay_naming_file_line_and_field() -> anyhow::Result<()> {
    let broken = LAKESHORE_V2.replace("timely_filing_days = 90", "timely_filing_days = -3");
    let world = World::start(20, &broken).await?;
    let last = world.log.last_sequence().await?;
    let before = world.claims().await?;
    let as_of = NaiveDate::from_ymd_opt(2025, 11, 15).context("a date")?;
    let error = replay(&world.log, &world.request(as_of))
        .await
        .expect_err("invalid rules must not replay");
    assert!(
        matches!(error, ReplayError::ProposedRules { .. }),
        "{error:?}"
    );
    let text = format!("{:#}", anyhow::Error::from(error));
    assert!(
        text.contains("lakeshore-mutual.toml:") && text.contains("timely_filing_days"),
        "{text}"
    );
    assert_eq!(world.log.last_sequence().await?, last);
    assert_eq!(world.claims().await?, before);

    // Editing a version the log already holds is refused, as publishing would refuse it.
    let rewritten = proposed_dir("")?;
    let file = rewritten.join("lakeshore-mutual.toml");
    let text = std::fs::read_to_string(&file)?.replace("\"97124\" = 3100", "\"97124\" = 3999");
    std::fs::write(&file, text)?;
    let request = ReplayRequest {
        proposed_dir: rewritten.clone(),
        ..world.request(as_of)
    };
    let error = replay(&world.log, &request)
        .await
        .expect_err("a rewritten version must not replay");
    std::fs::remove_dir_all(&rewritten).ok();
    let text = format!("{:#}", anyhow::Error::from(error));
    assert!(
        text.contains("lakeshore-mutual version 1") && text.contains("different content"),
        "{text}"
    );
    world.cleanup().await
}
