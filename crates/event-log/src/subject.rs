//! The subject layout of the log: `<prefix>.<chain>.<clinic or _>.<aggregate kind>.<aggregate id>`.
//!
//! One subject per aggregate is the unit of optimistic concurrency (the expected last subject
//! sequence) on every server version. The hierarchy lets a consumer follow one chain
//! (`<prefix>.<chain>.>`), one clinic (`<prefix>.<chain>.<clinic>.>`) or one aggregate (its subject).
//! Event types travel in a header, not in the subject, because 2.9 cannot check concurrency over a
//! wildcard below the aggregate.

use claimledger_events::{AggregateId, AggregateKind, ChainId, ClinicId, Commit};

use crate::config::validate_token;
use crate::error::LogError;

/// The token that stands for "no clinic" in the subjects of chain-wide aggregates.
pub const CHAIN_WIDE_CLINIC_TOKEN: &str = "_";

/// Where one aggregate lives on the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AggregateAddress {
    /// The tenant.
    pub chain: ChainId,
    /// The clinic, or `None` for chain-wide aggregates.
    pub clinic: Option<ClinicId>,
    /// The kind of aggregate.
    pub kind: AggregateKind,
    /// The aggregate within its kind.
    pub id: AggregateId,
}

impl AggregateAddress {
    /// The address a commit's envelope describes.
    pub fn of(commit: &Commit) -> Self {
        Self {
            chain: commit.chain,
            clinic: commit.clinic,
            kind: commit.aggregate_kind,
            id: commit.aggregate_id,
        }
    }

    /// The aggregate's subject under `prefix`.
    pub fn subject(&self, prefix: &str) -> Result<String, LogError> {
        let kind = self.kind.subject_token();
        // The kind is the one token not derived from a UUID; check it so that a future kind with a
        // careless name cannot split or widen subjects.
        validate_token("aggregate_kind", kind)?;
        Ok(format!(
            "{prefix}.{chain}.{clinic}.{kind}.{id}",
            chain = self.chain,
            clinic = clinic_token(self.clinic),
            id = self.id,
        ))
    }
}

fn clinic_token(clinic: Option<ClinicId>) -> String {
    clinic.map_or_else(
        || CHAIN_WIDE_CLINIC_TOKEN.to_owned(),
        |clinic| clinic.to_string(),
    )
}

/// Which part of the log a replay covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFilter {
    /// Every commit. Unfiltered replay is also the fastest on high-cardinality streams.
    All,
    /// Every commit of one chain.
    Chain(ChainId),
    /// Every commit of one clinic, excluding the chain-wide aggregates.
    Clinic(ChainId, ClinicId),
    /// The commits of one aggregate.
    Aggregate(AggregateAddress),
    /// The chain-wide aggregates (payer rules and reference data: clinics, therapists, payers,
    /// patients, coverages, referrals) of one chain, or of every chain: the small part of the log
    /// that sessions and claims refer to, read without the clinics' sessions and claims.
    ChainWide(Option<ChainId>),
}

impl ReplayFilter {
    /// The consumer filter subject, or `None` for the whole stream.
    pub(crate) fn filter_subject(&self, prefix: &str) -> Result<Option<String>, LogError> {
        Ok(match self {
            Self::All => None,
            Self::Chain(chain) => Some(format!("{prefix}.{chain}.>")),
            Self::Clinic(chain, clinic) => Some(format!("{prefix}.{chain}.{clinic}.>")),
            Self::Aggregate(address) => Some(address.subject(prefix)?),
            Self::ChainWide(chain) => Some(format!(
                "{prefix}.{chain}.{CHAIN_WIDE_CLINIC_TOKEN}.>",
                chain = chain.map_or_else(|| "*".to_owned(), |chain| chain.to_string())
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn address(clinic: Option<ClinicId>, kind: AggregateKind) -> AggregateAddress {
        AggregateAddress {
            chain: Uuid::from_u128(0xc1).into(),
            clinic,
            kind,
            id: Uuid::from_u128(0xa1).into(),
        }
    }

    #[test]
    fn session_subjects_carry_chain_clinic_kind_and_id() {
        let session = address(Some(Uuid::from_u128(0xc2).into()), AggregateKind::Session);
        assert_eq!(
            session.subject("ev").unwrap(),
            "ev.00000000-0000-0000-0000-0000000000c1.00000000-0000-0000-0000-0000000000c2\
             .session.00000000-0000-0000-0000-0000000000a1"
        );
    }

    #[test]
    fn chain_wide_aggregates_use_the_placeholder_clinic_token() {
        let rules = address(None, AggregateKind::PayerRules);
        let subject = rules.subject("ev").unwrap();
        let tokens: Vec<&str> = subject.split('.').collect();
        assert_eq!(tokens.len(), 5);
        assert_eq!(tokens[2], CHAIN_WIDE_CLINIC_TOKEN);
        assert_eq!(tokens[3], "payer-rules");
    }

    #[test]
    fn filters_match_the_subject_hierarchy() {
        let chain: ChainId = Uuid::from_u128(0xc1).into();
        let clinic: ClinicId = Uuid::from_u128(0xc2).into();
        assert_eq!(ReplayFilter::All.filter_subject("ev").unwrap(), None);
        assert_eq!(
            ReplayFilter::Chain(chain)
                .filter_subject("ev")
                .unwrap()
                .unwrap(),
            format!("ev.{chain}.>")
        );
        assert_eq!(
            ReplayFilter::Clinic(chain, clinic)
                .filter_subject("ev")
                .unwrap()
                .unwrap(),
            format!("ev.{chain}.{clinic}.>")
        );
        assert_eq!(
            ReplayFilter::ChainWide(Some(chain))
                .filter_subject("ev")
                .unwrap()
                .unwrap(),
            format!("ev.{chain}._.>")
        );
        assert_eq!(
            ReplayFilter::ChainWide(None)
                .filter_subject("ev")
                .unwrap()
                .unwrap(),
            "ev.*._.>"
        );
    }
}
