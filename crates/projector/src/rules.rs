//! The payer rule book as the log records it: every `RulesChanged` event compiled with the
//! repository's reference tables, selectable by chain, payer and date of service.
//!
//! Each recorded version is compiled on its own (its canonical TOML holds one version), so selecting
//! the rules for a date of service is "the latest version, by effective date, that the log had
//! recorded when the session was completed and that starts on or before the date of service".

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use chrono::{Days, NaiveDate};
use claimledger_billing::PayerPolicy;
use claimledger_events::PayerId;
use claimledger_events::rules::RulesChanged;
use claimledger_payer_rules::{InvalidRules, RuleBook, RuleSources, SourceFile};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ProjectorError;

/// The reference tables every rules version is compiled with, read once at start-up.
///
/// The payer-rules service does not publish NCCI/MUE/always-therapy tables on the log yet, so the
/// projector reads them from the repository (`rules/reference/`).
#[derive(Debug, Clone)]
pub struct ReferenceSources {
    ptp: SourceFile,
    mue: SourceFile,
    always_therapy: SourceFile,
}

impl ReferenceSources {
    /// Reads `rules_dir/reference/{ncci-ptp,mue,always-therapy}.toml`.
    pub fn read_dir(rules_dir: &Path) -> Result<Self, ProjectorError> {
        let read = |name: &str| {
            let path = rules_dir.join("reference").join(name);
            fs::read_to_string(&path)
                .map(|text| SourceFile::new(path.clone(), text))
                .map_err(|error| ProjectorError::Reference {
                    dir: rules_dir.display().to_string(),
                    reason: format!("{}: {error}", path.display()),
                })
        };
        Ok(Self {
            ptp: read("ncci-ptp.toml")?,
            mue: read("mue.toml")?,
            always_therapy: read("always-therapy.toml")?,
        })
    }
}

/// Why a recorded rules version cannot be used (its commit is parked).
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The text does not match the hash recorded with it.
    #[error("rules_toml: its SHA-256 differs from content_sha256")]
    ChecksumMismatch,
    /// The text is not valid rules.
    #[error("rules_toml: the rules do not compile")]
    Invalid(#[source] InvalidRules),
    /// The text defines no payer, or several.
    #[error("rules_toml: expected exactly one payer, found {found}")]
    PayerCount {
        /// How many payers the text defines.
        found: usize,
    },
    /// The effective date is out of the calendar's range.
    #[error("effective_from: day {day} is out of range")]
    EffectiveFrom {
        /// The stored day number.
        day: i32,
    },
}

/// One recorded rules version of one payer.
#[derive(Debug, Clone)]
pub struct RulesVersion {
    /// The payer on the log.
    pub payer: PayerId,
    /// The payer's identifier inside the rules (e.g. `medicare-like`).
    pub payer_key: String,
    /// The version number the log recorded.
    pub version: u32,
    /// The first date of service it applies to.
    pub effective_from: NaiveDate,
    /// SHA-256 of the rules text.
    pub content_sha256: [u8; 32],
    /// The rules text as recorded.
    pub rules_toml: String,
    book: RuleBook,
}

impl RulesVersion {
    /// The compiled rules, with the reference tables.
    pub fn book(&self) -> &RuleBook {
        &self.book
    }
}

/// Every rules version recorded so far, per chain and payer, oldest effective date first.
#[derive(Debug, Clone)]
pub struct LogRules {
    reference: ReferenceSources,
    versions: HashMap<(Uuid, PayerId), Vec<RulesVersion>>,
}

impl LogRules {
    /// An empty rule book using `reference` for every version.
    pub fn new(reference: ReferenceSources) -> Self {
        Self {
            reference,
            versions: HashMap::new(),
        }
    }

    /// Compiles a `RulesChanged` event without recording it, so a commit's versions are recorded
    /// all together or not at all.
    pub fn prepare(&self, changed: &RulesChanged) -> Result<RulesVersion, RulesError> {
        let digest: [u8; 32] = Sha256::digest(changed.rules_toml.as_bytes()).into();
        if digest != changed.content_sha256 {
            return Err(RulesError::ChecksumMismatch);
        }
        let effective_from =
            epoch_day_to_date(changed.effective_from.0).ok_or(RulesError::EffectiveFrom {
                day: changed.effective_from.0,
            })?;
        self.compile(
            changed.payer,
            changed.version,
            effective_from,
            changed.rules_toml.clone(),
        )
    }

    /// Records a prepared version for `chain`. Recording the same version again replaces it, so
    /// re-applying a commit is harmless.
    pub fn insert(&mut self, chain: Uuid, version: RulesVersion) {
        let versions = self.versions.entry((chain, version.payer)).or_default();
        versions.retain(|existing| existing.version != version.version);
        let position = versions.partition_point(|existing| {
            (existing.effective_from, existing.version) < (version.effective_from, version.version)
        });
        versions.insert(position, version);
    }

    fn compile(
        &self,
        payer: PayerId,
        version: u32,
        effective_from: NaiveDate,
        rules_toml: String,
    ) -> Result<RulesVersion, RulesError> {
        let sources = RuleSources {
            payer_files: vec![SourceFile::new(
                format!("log:payer-rules/{payer}/v{version}.toml"),
                rules_toml.clone(),
            )],
            ptp: self.reference.ptp.clone(),
            mue: self.reference.mue.clone(),
            always_therapy: self.reference.always_therapy.clone(),
        };
        let book = sources.compile().map_err(RulesError::Invalid)?;
        let payer_ids = book.payer_ids();
        let [payer_key] = payer_ids.as_slice() else {
            return Err(RulesError::PayerCount {
                found: payer_ids.len(),
            });
        };
        let payer_key = (*payer_key).to_owned();
        let content_sha256 = Sha256::digest(rules_toml.as_bytes()).into();
        Ok(RulesVersion {
            payer,
            payer_key,
            version,
            effective_from,
            content_sha256,
            rules_toml,
            book,
        })
    }

    /// Restores a version read back from the read model (recorded and validated before).
    pub(crate) fn restore(
        &mut self,
        chain: Uuid,
        payer: PayerId,
        version: u32,
        effective_from: NaiveDate,
        rules_toml: String,
    ) -> Result<(), RulesError> {
        let version = self.compile(payer, version, effective_from, rules_toml)?;
        self.insert(chain, version);
        Ok(())
    }

    /// The rules in force for `payer` of `chain` on `date_of_service`, with the policy they give.
    pub fn in_force(
        &self,
        chain: Uuid,
        payer: PayerId,
        date_of_service: NaiveDate,
    ) -> Option<(&RulesVersion, &PayerPolicy)> {
        let version = self
            .versions
            .get(&(chain, payer))?
            .iter()
            .rev()
            .find(|version| version.effective_from <= date_of_service)?;
        let policy = version
            .book
            .policy_in_force(&version.payer_key, date_of_service)?;
        Some((version, policy))
    }
}

/// Converts the log's day number (days since 1970-01-01) to a date.
pub(crate) fn epoch_day_to_date(day: i32) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    if day >= 0 {
        epoch.checked_add_days(Days::new(u64::from(day.unsigned_abs())))
    } else {
        epoch.checked_sub_days(Days::new(u64::from(day.unsigned_abs())))
    }
}
