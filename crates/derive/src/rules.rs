//! The payer rule book as the log records it: every `RulesChanged` event, parsed with the
//! payer-rules crate's own validation, kept per chain and payer, and selectable by date of service.
//!
//! A claim is priced with "the rules in force for the date of service as the log records them": the
//! rule book holds exactly the versions applied so far in log order, so a completion is priced with
//! the versions recorded before it, whatever happens later in the log.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use claimledger_billing::{Cents, CptCode, PayerPolicy, PriceList, ReferenceData};
use claimledger_events::PayerId;
use claimledger_events::rules::RulesChanged;
use claimledger_payer_rules::{
    InvalidRules, PayerRules, PayerRulesVersion, RuleBook, parse_published_version,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why a recorded rules version cannot be used (its commit is parked).
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The text does not match the hash recorded with it.
    #[error("rules_toml: its SHA-256 differs from content_sha256")]
    ChecksumMismatch,
    /// The text is not a valid published rules version.
    #[error("rules_toml: the rules are invalid")]
    Invalid(#[source] InvalidRules),
    /// The event and its text disagree.
    #[error("{field}: the event says {event}, the rules text says {text}")]
    Disagreement {
        /// The field that differs.
        field: &'static str,
        /// The event's value.
        event: String,
        /// The text's value.
        text: String,
    },
}

/// One recorded version, parsed and checked, ready to be recorded.
#[derive(Debug, Clone)]
pub struct PreparedVersion {
    /// The payer on the log.
    pub payer: PayerId,
    /// The payer's identifier inside the rules, e.g. `medicare-like`.
    pub payer_key: String,
    /// The parsed version.
    pub rules: PayerRulesVersion,
}

impl PreparedVersion {
    /// The version number.
    pub fn version(&self) -> u32 {
        self.rules.policy.version
    }

    /// The first date of service it applies to.
    pub fn effective_from(&self) -> NaiveDate {
        self.rules.policy.effective_from
    }
}

/// The rules selected for one claim.
#[derive(Debug, Clone, Copy)]
pub struct InForce<'a> {
    /// The payer's identifier inside the rules.
    pub payer_key: &'a str,
    /// The version's number.
    pub version: u32,
    /// SHA-256 of the version's text as recorded.
    pub content_sha256: &'a [u8; 32],
    /// The policy.
    pub policy: &'a PayerPolicy,
    /// What the version's claims charge per unit: the payer's expected allowed amounts, built once
    /// per recorded version.
    pub charge_master: &'a PriceList,
}

/// Every recorded version of one payer of one chain, compiled together.
#[derive(Debug, Clone)]
struct PayerBook {
    payer_key: String,
    book: RuleBook,
    /// The charge master of each version, by version number: built once here rather than for
    /// every claim derived.
    charge_masters: Vec<(u32, PriceList)>,
}

/// Every rules version recorded so far, per chain and payer.
#[derive(Debug, Clone)]
pub struct LogRules {
    reference: ReferenceData,
    payers: HashMap<(Uuid, PayerId), PayerBook>,
}

impl LogRules {
    /// An empty rule book using `reference` for every version.
    pub fn new(reference: ReferenceData) -> Self {
        Self {
            reference,
            payers: HashMap::new(),
        }
    }

    /// The reference tables.
    pub fn reference(&self) -> &ReferenceData {
        &self.reference
    }

    /// Parses and checks a `RulesChanged` event without recording it, so a commit's versions are
    /// recorded all together or not at all.
    pub fn prepare(&self, changed: &RulesChanged) -> Result<PreparedVersion, RulesError> {
        let digest: [u8; 32] = Sha256::digest(changed.rules_toml.as_bytes()).into();
        if digest != changed.content_sha256 {
            return Err(RulesError::ChecksumMismatch);
        }
        let name = format!("payer-rules/{}/v{}", changed.payer, changed.version);
        let (payer_key, rules) =
            parse_published_version(&name, &changed.rules_toml).map_err(RulesError::Invalid)?;
        if rules.policy.version != changed.version {
            return Err(RulesError::Disagreement {
                field: "version",
                event: changed.version.to_string(),
                text: rules.policy.version.to_string(),
            });
        }
        let event_day = epoch_day_to_date(changed.effective_from.0);
        if event_day != Some(rules.policy.effective_from) {
            return Err(RulesError::Disagreement {
                field: "effective_from",
                event: event_day.map_or_else(
                    || format!("day {}", changed.effective_from.0),
                    |day| day.to_string(),
                ),
                text: rules.policy.effective_from.to_string(),
            });
        }
        Ok(PreparedVersion {
            payer: changed.payer,
            payer_key,
            rules,
        })
    }

    /// Records a prepared version for `chain`. Recording the same version number again replaces
    /// it, so re-applying a commit is harmless.
    pub fn insert(&mut self, chain: Uuid, prepared: PreparedVersion) {
        let key = (chain, prepared.payer);
        let mut versions: Vec<PayerRulesVersion> = self
            .payers
            .get(&key)
            .and_then(|payer| payer.book.payer(&payer.payer_key))
            .map(|rules| rules.versions.clone())
            .unwrap_or_default();
        versions.retain(|existing| existing.policy.version != prepared.rules.policy.version);
        versions.push(prepared.rules);
        let charge_masters = versions
            .iter()
            .map(|version| (version.policy.version, charge_master(&version.policy)))
            .collect();
        let payer_rules = PayerRules {
            payer: prepared.payer_key.clone(),
            name: prepared.payer_key.clone(),
            versions,
        };
        let book = RuleBook::new(vec![payer_rules], self.reference.clone());
        self.payers.insert(
            key,
            PayerBook {
                payer_key: prepared.payer_key,
                book,
                charge_masters,
            },
        );
    }

    /// Every recorded version of `payer` of `chain`, compiled, with the payer's key inside the book
    /// (what the payer-rules engine needs to judge a line).
    pub fn payer_book(&self, chain: Uuid, payer: PayerId) -> Option<(&str, &RuleBook)> {
        let payer = self.payers.get(&(chain, payer))?;
        Some((&payer.payer_key, &payer.book))
    }

    /// The rules in force for `payer` of `chain` on `date_of_service`, if the log has recorded any.
    pub fn in_force(
        &self,
        chain: Uuid,
        payer: PayerId,
        date_of_service: NaiveDate,
    ) -> Option<InForce<'_>> {
        let payer = self.payers.get(&(chain, payer))?;
        let policy = payer
            .book
            .policy_in_force(&payer.payer_key, date_of_service)?;
        let version = payer
            .book
            .payer(&payer.payer_key)?
            .versions
            .iter()
            .find(|version| version.policy.version == policy.version)?;
        let (_, charge_master) = payer
            .charge_masters
            .iter()
            .find(|(number, _)| *number == policy.version)?;
        Some(InForce {
            payer_key: &payer.payer_key,
            version: policy.version,
            content_sha256: &version.content_sha256,
            policy,
            charge_master,
        })
    }
}

/// The charge per unit of every catalogue code. The clinic's own charge master is not on the log
/// yet, so a line is charged at the payer's expected allowed amount, or at
/// [`UNLISTED_CHARGE_PER_UNIT`] for a code the payer's fee schedule does not list (the scrubber then
/// reports the code as not accepted, rather than the claim failing to derive).
fn charge_master(policy: &PayerPolicy) -> PriceList {
    PriceList::from_pairs(CptCode::ALL.into_iter().map(|code| {
        (
            code,
            policy
                .fee_schedule
                .per_unit(code)
                .unwrap_or(UNLISTED_CHARGE_PER_UNIT),
        )
    }))
}

/// The stand-in charge per unit for codes outside the payer's fee schedule.
const UNLISTED_CHARGE_PER_UNIT: Cents = Cents(4500);

/// Converts the log's day number (days since 1970-01-01) to a date.
pub fn epoch_day_to_date(day: i32) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    if day >= 0 {
        epoch.checked_add_days(Days::new(u64::from(day.unsigned_abs())))
    } else {
        epoch.checked_sub_days(Days::new(u64::from(day.unsigned_abs())))
    }
}
