//! What publishing a proposed rules directory would append: the versions the log does not hold yet
//! for a chain, as the very `RulesChanged` commits `claimledger rules publish` would write, checked
//! with the same refusals (an edited or removed published version).

use chrono::NaiveDate;
use claimledger_derive::rules::LogRules;
use claimledger_events::{ChainId, Commit, UtcMicros};
use claimledger_payer_rules::RuleBook;
use claimledger_payer_rules::publish::{payer_id, rules_changed_commit};
use serde::Serialize;

/// One proposed version that the log does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedVersion {
    /// The chain it would be published to.
    pub chain: uuid::Uuid,
    /// The payer's rules key.
    pub payer_key: String,
    /// The version number.
    pub version: u32,
    /// Its first date of service.
    pub effective_from: NaiveDate,
}

/// Why the proposed rules could not be published as they are (publishing would refuse them too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// A version the log holds has other content in the proposal.
    #[error(
        "{payer_key} version {version}: already published for chain {chain} with different content; propose a new version instead of editing a published one"
    )]
    VersionRewritten {
        /// The chain.
        chain: uuid::Uuid,
        /// The payer.
        payer_key: String,
        /// The version.
        version: u32,
    },
    /// A version the log holds is missing from the proposal.
    #[error(
        "{payer_key} version {version}: published for chain {chain} but missing from the proposed rules; published versions cannot be removed"
    )]
    VersionRemoved {
        /// The chain.
        chain: uuid::Uuid,
        /// The payer.
        payer_key: String,
        /// The version.
        version: u32,
    },
}

/// The commits publishing `proposed` to `chain` would append, given the versions the log has
/// recorded for that chain (`recorded`), in payer then version order.
pub fn proposed_commits(
    proposed: &RuleBook,
    chain: ChainId,
    recorded: &LogRules,
    recorded_at: UtcMicros,
) -> Result<Vec<(ProposedVersion, Commit)>, ProposalError> {
    let mut commits = Vec::new();
    for payer_key in proposed.payer_ids() {
        let Some(rules) = proposed.payer(payer_key) else {
            continue;
        };
        let published: Vec<(u32, [u8; 32])> = recorded
            .payer_book(chain.as_uuid(), payer_id(payer_key))
            .and_then(|(key, book)| book.payer(key))
            .map(|payer| {
                payer
                    .versions
                    .iter()
                    .map(|version| (version.policy.version, version.content_sha256))
                    .collect()
            })
            .unwrap_or_default();
        for version in &rules.versions {
            let number = version.policy.version;
            match published.iter().find(|(published, _)| *published == number) {
                Some((_, hash)) if *hash == version.content_sha256 => {}
                Some(_) => {
                    return Err(ProposalError::VersionRewritten {
                        chain: chain.as_uuid(),
                        payer_key: payer_key.to_owned(),
                        version: number,
                    });
                }
                None => commits.push((
                    ProposedVersion {
                        chain: chain.as_uuid(),
                        payer_key: payer_key.to_owned(),
                        version: number,
                        effective_from: version.policy.effective_from,
                    },
                    rules_changed_commit(chain, payer_key, version, recorded_at),
                )),
            }
        }
        if let Some((removed, _)) = published.iter().find(|(number, _)| {
            !rules
                .versions
                .iter()
                .any(|version| version.policy.version == *number)
        }) {
            return Err(ProposalError::VersionRemoved {
                chain: chain.as_uuid(),
                payer_key: payer_key.to_owned(),
                version: *removed,
            });
        }
    }
    Ok(commits)
}
