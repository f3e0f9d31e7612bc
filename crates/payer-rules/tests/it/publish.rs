//! Publishing rules to the real event log (JetStream): every version once, nothing on a
//! republish of unchanged rules, only the new version after one is added, and a refusal (with
//! nothing written) when a published version's content changed. Each test owns its streams.

use claimledger_billing::{CptCode, Modifier};
use claimledger_events::{ChainId, Event, UtcMicros};
use claimledger_log::{EventLog, LogConfig, LogStorage};
use claimledger_payer_rules::publish::{PublishError, publish, rules_aggregate};
use claimledger_payer_rules::{
    PayerRules, RuleBook, RuleSources, SourceFile, parse_published_version,
};

use crate::helpers::{Line, book, date, nats_url, rules_dir};

/// A throwaway log on its own in-memory streams, deleted by [`TestLog::delete`].
struct TestLog {
    log: EventLog,
    context: async_nats::jetstream::Context,
}

impl TestLog {
    async fn create() -> anyhow::Result<TestLog> {
        let client = async_nats::connect(nats_url()).await?;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let mut config = LogConfig::new(
            format!("TEST_RULES_{unique}"),
            format!("test-rules-{unique}"),
        );
        config.storage = LogStorage::Memory;
        let log = EventLog::connect(client.clone(), config).await?;
        Ok(TestLog {
            log,
            context: async_nats::jetstream::new(client),
        })
    }

    async fn delete(self) -> anyhow::Result<()> {
        let config = self.log.config();
        self.context.delete_stream(&config.stream_name).await?;
        self.context
            .delete_stream(config.parked_stream_name())
            .await?;
        Ok(())
    }
}

fn now() -> UtcMicros {
    UtcMicros(1_767_225_600_000_000)
}

fn total_versions() -> usize {
    book()
        .payer_ids()
        .iter()
        .filter_map(|payer| book().payer(payer))
        .map(|payer| payer.versions.len())
        .sum()
}

#[tokio::test]
async fn publishing_twice_writes_each_version_once() -> anyhow::Result<()> {
    let test_log = TestLog::create().await?;
    let chain = ChainId::from(uuid::Uuid::new_v4());

    let first = publish(&test_log.log, chain, book(), now()).await?;
    assert_eq!(first.appended.len(), total_versions());
    assert!(first.unchanged.is_empty());
    assert!(first.appended.contains(&("medicare-like".to_owned(), 2)));

    let history = test_log
        .log
        .read(&rules_aggregate(chain, "medicare-like"))
        .await?;
    let published: Vec<(u32, String)> = history
        .commits
        .iter()
        .flat_map(|recorded| &recorded.commit.events)
        .filter_map(|record| match &record.event {
            Event::RulesChanged(changed) => Some((changed.version, changed.rules_toml.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1].0, 2);
    assert!(published[1].1.contains("effective_from = 2026-01-01"));
    // The published text is a rules document on its own: it parses back to the same version,
    // which is how a replay re-derives decisions with the rules of the time.
    let medicare = book().payer("medicare-like").expect("shipped payer");
    assert_eq!(published[1].1, medicare.versions[1].canonical_toml);
    let (payer, reparsed) = parse_published_version("log", &published[1].1)?;
    assert_eq!(payer, "medicare-like");
    assert_eq!(reparsed, medicare.versions[1]);

    // A replay rebuilds the rules from the log alone and decides exactly as the files do, on
    // both sides of the 2026-01-01 change.
    let rebuilt_versions = published
        .iter()
        .map(|(_, text)| parse_published_version("log", text).map(|(_, version)| version))
        .collect::<Result<Vec<_>, _>>()?;
    let rebuilt = RuleBook::new(
        vec![PayerRules {
            payer: "medicare-like".to_owned(),
            name: medicare.name.clone(),
            versions: rebuilt_versions,
        }],
        book().reference().clone(),
    );
    for date_of_service in [date(2025, 12, 31), date(2026, 1, 1)] {
        let mut line = Line::new(date_of_service, CptCode::ManualTherapy, 2);
        line.modifiers.push(Modifier::PhysicalTherapyPlan);
        assert_eq!(
            rebuilt.decide("medicare-like", &line.query())?,
            book().decide("medicare-like", &line.query())?
        );
    }

    let second = publish(&test_log.log, chain, book(), now()).await?;
    assert!(second.appended.is_empty(), "{second:?}");
    assert_eq!(second.unchanged.len(), total_versions());
    let after = test_log
        .log
        .read(&rules_aggregate(chain, "medicare-like"))
        .await?;
    assert_eq!(after.version, history.version, "nothing new on the log");
    test_log.delete().await
}

fn sources_with_medicare(text: String) -> anyhow::Result<RuleSources> {
    let mut sources = RuleSources::read_dir(&rules_dir())?;
    for file in &mut sources.payer_files {
        if file.path.ends_with("medicare-like.toml") {
            *file = SourceFile::new(file.path.clone(), text.clone());
        }
    }
    Ok(sources)
}

#[tokio::test]
async fn a_new_version_is_appended_and_an_edited_one_refused() -> anyhow::Result<()> {
    let test_log = TestLog::create().await?;
    let chain = ChainId::from(uuid::Uuid::new_v4());
    publish(&test_log.log, chain, book(), now()).await?;
    let original = std::fs::read_to_string(rules_dir().join("medicare-like.toml"))?;

    // A comment-only edit changes nothing that is published.
    let commented = format!("{original}\n# Reviewed for 2026.\n");
    let report = publish(
        &test_log.log,
        chain,
        &sources_with_medicare(commented)?.compile()?,
        now(),
    )
    .await?;
    assert!(report.appended.is_empty());

    let third_version = original.clone()
        + r#"
[[versions]]
version = 3
effective_from = 2026-07-01
unit_method = "cms_total_time"
accepted_codes = ["97010", "97110", "97112", "97124", "97140", "97530"]
bundled_codes = ["97010"]
plan_of_care_modifier = "GP"
distinct_procedure_modifiers = "x_modifiers"
enforce_ncci_edits = true
one_massage_or_manual_code_per_visit = false
timely_filing_days = 365

[versions.referral]
valid_days = 90

[versions.fee_schedule]
"97010" = 0
"97110" = 2906
"97112" = 3273
"97124" = 3073
"97140" = 2800
"97530" = 3507
"#;
    let report = publish(
        &test_log.log,
        chain,
        &sources_with_medicare(third_version)?.compile()?,
        now(),
    )
    .await?;
    assert_eq!(report.appended, [("medicare-like".to_owned(), 3)]);

    let aggregate = rules_aggregate(chain, "medicare-like");
    let before = test_log.log.read(&aggregate).await?.version;
    let edited = original.replacen(r#""97140" = 2772"#, r#""97140" = 2790"#, 1);
    let refused = publish(
        &test_log.log,
        chain,
        &sources_with_medicare(edited)?.compile()?,
        now(),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(PublishError::VersionRewritten { ref payer, version: 2 }) if payer == "medicare-like"
        ),
        "{refused:?}"
    );
    assert_eq!(test_log.log.read(&aggregate).await?.version, before);
    test_log.delete().await
}
