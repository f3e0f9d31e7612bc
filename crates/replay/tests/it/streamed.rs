//! The streamed replay equals the in-memory derivation: on a generated log with amendments, a
//! rules version recorded halfway (re-pricing earlier visits) and a proposal on top, the report
//! `replay` streams (holding as few as four sessions, so sessions are set aside and read back from
//! the log) is exactly `compare` over `derive_claims` of the whole log, before and after.

use anyhow::Context as _;
use chrono::NaiveDate;
use claimledger_derive::derived::derive_claims;
use claimledger_derive::directory::Directory;
use claimledger_derive::rules::LogRules;
use claimledger_log::{RecordedCommit, ReplayFilter, ReplayItem};
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::publish;
use claimledger_replay::proposal::proposed_commits;
use claimledger_replay::replay::{DEFAULT_MAX_OPEN_SESSIONS, ReplayRequest, replay};
use claimledger_replay::report::{Scope, compare};
use futures::StreamExt as _;
use integration_tests::TestEnv;

use crate::agreement::{LAKESHORE_V2, proposed_dir};
use crate::workload::{Workload, now, rules_dir};

/// A third Lakeshore version, proposed on top of the second (which the log records halfway):
/// from 2025-10-01 it pays 97110 at $35.00.
const LAKESHORE_V3: &str = r#"
[[versions]]
version = 3
effective_from = 2025-10-01
unit_method = "ama_per_code"
accepted_codes = ["97110", "97112", "97124", "97530"]
distinct_procedure_modifiers = "x_modifiers"
enforce_ncci_edits = true
one_massage_or_manual_code_per_visit = false
timely_filing_days = 90

[versions.fee_schedule]
"97110" = 3500
"97112" = 3350
"97124" = 4000
"97530" = 3600
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streamed_replay_equals_the_in_memory_derivation() -> anyhow::Result<()> {
    let env = TestEnv::start().await?;
    let log = env.event_log().await?;
    let workload = Workload::new();
    workload.record_directory(&log).await?;
    workload.publish_rules(&log).await?;
    workload.append_visits(&log, 0..200, 16).await?;
    // Lakeshore's second version, recorded after 200 visits and effective from 2025-08-01: the
    // visits before it are re-priced, those after it are priced by it at completion.
    let recorded_dir = proposed_dir(LAKESHORE_V2)?;
    publish(&log, workload.chain, &load_dir(&recorded_dir)?, now()).await?;
    workload.append_visits(&log, 200..400, 16).await?;
    let proposed = proposed_dir(&format!("{LAKESHORE_V2}{LAKESHORE_V3}"))?;

    // In memory: the whole log, derived twice.
    let mut items: Vec<ReplayItem> = Vec::new();
    let mut reader = log.replay(1, ReplayFilter::All).await?;
    while let Some(item) = reader.next().await {
        items.push(item?);
    }
    let reference = load_dir(&rules_dir())?.reference().clone();
    let directory = Directory::from_log(&items);
    let mut recorded = LogRules::new(reference.clone());
    let before = derive_claims(&items, &mut recorded, &directory)?;
    let positions = items.len() as u64;
    let last = items.last().map_or(0, ReplayItem::sequence);
    let mut with_proposal = items;
    let commits = proposed_commits(&load_dir(&proposed)?, workload.chain, &recorded, now())?;
    assert_eq!(commits.len(), 1, "the proposal adds Lakeshore version 3");
    for (sequence, (_, commit)) in (last + 1..).zip(commits) {
        with_proposal.push(ReplayItem::Commit(RecordedCommit {
            sequence,
            subject: "replay.proposed".to_owned(),
            commit,
        }));
    }
    let after = derive_claims(&with_proposal, &mut LogRules::new(reference), &directory)?;

    let as_of = NaiveDate::from_ymd_opt(2025, 11, 15).context("a date")?;
    let everything = Scope {
        chain: None,
        from: None,
        to: None,
        as_of,
    };
    let autumn = Scope {
        chain: Some(workload.chain.as_uuid()),
        from: NaiveDate::from_ymd_opt(2025, 9, 1),
        to: NaiveDate::from_ymd_opt(2026, 1, 31),
        as_of,
    };
    for scope in [everything, autumn] {
        let expected = compare(&before, &after, &Default::default(), scope);
        assert!(!expected.1.is_empty(), "the proposal changes claims");
        for max_open_sessions in [4, DEFAULT_MAX_OPEN_SESSIONS] {
            let request = ReplayRequest {
                proposed_dir: proposed.clone(),
                reference_dir: rules_dir(),
                scope,
                recorded_at: now(),
                max_open_sessions,
            };
            let report = replay(&log, &request).await?;
            let label = format!("{scope:?}, {max_open_sessions} sessions held");
            assert_eq!(report.claims_compared, expected.0, "{label}");
            assert_eq!(report.changed, expected.1, "{label}");
            assert_eq!(report.totals, expected.2, "{label}");
            assert_eq!(report.log_positions, positions, "{label}");
            assert_eq!(report.proposed.len(), 1, "{label}");
        }
    }
    for dir in [recorded_dir, proposed] {
        std::fs::remove_dir_all(dir).ok();
    }
    env.cleanup().await
}
