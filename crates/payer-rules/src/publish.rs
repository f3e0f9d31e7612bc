//! Publishing validated rules to the event log as `RulesChanged` events, one commit per payer
//! version on that payer's rules aggregate.
//!
//! Publishing is idempotent: a version already on the log with the same content hash is skipped,
//! and the command id of each commit derives from payer, version and content hash, so a retried
//! publish is recognised by the log too. A version already on the log with *different* content is
//! refused (change the rules with a new version instead), and the whole publish is planned before
//! anything is appended, so a refusal writes nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use claimledger_events::{
    Actor, ActorKind, AggregateId, AggregateKind, ChainId, CommandId, Commit, CorrelationId,
    EpochDay, Event, EventId, EventRecord, PayerId, UtcMicros, rules::RulesChanged,
};
use claimledger_log::{AggregateAddress, EventLog, LogError};
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

use crate::rulebook::{PayerRules, PayerRulesVersion, RuleBook};

/// The actor recorded on every published commit.
pub const PUBLISHER_ACTOR: &str = "claimledger rules publish";

/// Why a publish was refused or failed.
#[derive(Debug, Error)]
pub enum PublishError {
    /// The log already holds this version with other content.
    #[error(
        "payer {payer:?} version {version} is already published with different content; add a new version instead of editing a published one"
    )]
    VersionRewritten {
        /// The payer.
        payer: String,
        /// The version.
        version: u32,
    },
    /// The log holds a version the files no longer define.
    #[error(
        "payer {payer:?} version {version} is published but missing from the rules files; published versions cannot be removed"
    )]
    VersionRemoved {
        /// The payer.
        payer: String,
        /// The version.
        version: u32,
    },
    /// Reading or appending failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// `(payer, version)` pairs appended now, in order.
    pub appended: Vec<(String, u32)>,
    /// `(payer, version)` pairs already on the log with the same content.
    pub unchanged: Vec<(String, u32)>,
}

/// A deterministic UUID (version 8) from a SHA-256 of `text`.
fn derived_uuid(text: &str) -> Uuid {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The payer's identifier on the log, derived from its rules-file identifier so every publisher
/// and reader agrees on it without a registry.
pub fn payer_id(payer: &str) -> PayerId {
    PayerId::from_rules_key(payer)
}

/// The log address of the payer's rules aggregate in `chain`.
pub fn rules_aggregate(chain: ChainId, payer: &str) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: None,
        kind: AggregateKind::PayerRules,
        id: AggregateId::from(payer_id(payer)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The command id of publishing one version: the same rules always yield the same id.
pub fn publish_command_id(chain: ChainId, payer: &str, version: &PayerRulesVersion) -> CommandId {
    CommandId::from(derived_uuid(&format!(
        "claimledger/rules-publish/{chain}/{payer}/{}/{}",
        version.policy.version,
        hex(&version.content_sha256)
    )))
}

fn epoch_day(date: NaiveDate) -> EpochDay {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    // Dates in rules files are four-digit years, so the day count always fits in i32.
    EpochDay(i32::try_from((date - epoch).num_days()).unwrap_or(i32::MAX))
}

/// The commit that publishes one version.
pub fn rules_changed_commit(
    chain: ChainId,
    payer: &str,
    version: &PayerRulesVersion,
    recorded_at: UtcMicros,
) -> Commit {
    let command_id = publish_command_id(chain, payer, version);
    Commit {
        command_id,
        chain,
        clinic: None,
        aggregate_kind: AggregateKind::PayerRules,
        aggregate_id: AggregateId::from(payer_id(payer)),
        recorded_at,
        actor: Actor {
            kind: ActorKind::Service,
            id: PUBLISHER_ACTOR.to_owned(),
        },
        correlation_id: CorrelationId::from(command_id.as_uuid()),
        causation_id: None,
        events: vec![EventRecord {
            event_id: EventId::from(derived_uuid(&format!("{command_id}/event/0"))),
            occurred_at: recorded_at,
            event: Event::RulesChanged(RulesChanged {
                payer: payer_id(payer),
                version: version.policy.version,
                effective_from: epoch_day(version.policy.effective_from),
                rules_toml: version.canonical_toml.clone(),
                content_sha256: version.content_sha256,
            }),
        }],
    }
}

/// One payer's versions still to append, after the log's history was checked.
struct PayerPlan<'a> {
    rules: &'a PayerRules,
    aggregate: AggregateAddress,
    log_version: u64,
    missing: Vec<&'a PayerRulesVersion>,
}

/// Publishes every payer version of `book` that the log does not hold yet.
pub async fn publish(
    log: &EventLog,
    chain: ChainId,
    book: &RuleBook,
    recorded_at: UtcMicros,
) -> Result<PublishReport, PublishError> {
    let mut report = PublishReport::default();
    let mut plans: Vec<PayerPlan<'_>> = Vec::new();
    for payer in book.payer_ids() {
        let Some(rules) = book.payer(payer) else {
            continue;
        };
        let aggregate = rules_aggregate(chain, payer);
        let history = log.read(&aggregate).await?;
        let published: BTreeMap<u32, [u8; 32]> = history
            .commits
            .iter()
            .flat_map(|recorded| &recorded.commit.events)
            .filter_map(|record| match &record.event {
                Event::RulesChanged(changed) => Some((changed.version, changed.content_sha256)),
                _ => None,
            })
            .collect();
        let mut missing = Vec::new();
        for version in &rules.versions {
            let number = version.policy.version;
            match published.get(&number) {
                Some(hash) if *hash == version.content_sha256 => {
                    report.unchanged.push((payer.to_owned(), number));
                }
                Some(_) => {
                    return Err(PublishError::VersionRewritten {
                        payer: payer.to_owned(),
                        version: number,
                    });
                }
                None => missing.push(version),
            }
        }
        if let Some(removed) = published
            .keys()
            .find(|number| !rules.versions.iter().any(|v| v.policy.version == **number))
        {
            return Err(PublishError::VersionRemoved {
                payer: payer.to_owned(),
                version: *removed,
            });
        }
        plans.push(PayerPlan {
            rules,
            aggregate,
            log_version: history.version,
            missing,
        });
    }
    for plan in plans {
        let mut expected_version = plan.log_version;
        for version in plan.missing {
            let commit = rules_changed_commit(chain, &plan.rules.payer, version, recorded_at);
            let appended = log
                .append(&plan.aggregate, expected_version, &commit)
                .await?;
            expected_version = appended.sequence;
            tracing::info!(
                payer = %plan.rules.payer,
                version = version.policy.version,
                seq = appended.sequence,
                duplicate = appended.duplicate,
                "rules version published"
            );
            report
                .appended
                .push((plan.rules.payer.clone(), version.policy.version));
        }
    }
    Ok(report)
}
