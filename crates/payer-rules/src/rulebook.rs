//! The validated rules of every payer plus the reference tables, with the lookups the engine
//! needs precomputed at load time (per-code arrays instead of searches), so that a decision does
//! no allocation-heavy work and no scanning of whole tables.

use std::collections::HashMap;

use chrono::NaiveDate;
use claimledger_billing::{
    Cents, CptCode, EffectivePeriod, ModifierIndicator, PayerPolicy, ReferenceData,
};

/// How many codes the catalogue holds; per-code tables are arrays of this length.
pub(crate) const CODE_COUNT: usize = CptCode::ALL.len();

/// The array index of `code` in per-code tables.
pub(crate) const fn code_index(code: CptCode) -> usize {
    code as usize
}

/// One version of one payer's rules, as loaded: the billing core's [`PayerPolicy`] plus what the
/// policy does not carry (an optional end date, and the canonical text that is published).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerRulesVersion {
    /// The rules themselves, in the billing core's terms.
    pub policy: PayerPolicy,
    /// The last date of service (inclusive) these rules apply to, when the file sets one;
    /// otherwise they apply until the next version's `effective_from`.
    pub effective_to: Option<NaiveDate>,
    /// This version alone as a canonical TOML document (comments and other versions removed):
    /// the text that `rules publish` puts on the log.
    pub canonical_toml: String,
    /// SHA-256 of `canonical_toml`.
    pub content_sha256: [u8; 32],
}

/// Every version of one payer's rules, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerRules {
    /// The payer's identifier.
    pub payer: String,
    /// A name for people.
    pub name: String,
    /// Versions in `effective_from` order, numbered 1, 2, 3...
    pub versions: Vec<PayerRulesVersion>,
}

/// One payer version with its per-code lookups precomputed.
#[derive(Debug, Clone)]
pub(crate) struct CompiledVersion {
    pub rules: PayerRulesVersion,
    pub accepted: [bool; CODE_COUNT],
    pub bundled: [bool; CODE_COUNT],
    pub fee_per_unit: [Cents; CODE_COUNT],
}

impl CompiledVersion {
    fn new(rules: PayerRulesVersion) -> CompiledVersion {
        let mut accepted = [false; CODE_COUNT];
        let mut bundled = [false; CODE_COUNT];
        let mut fee_per_unit = [Cents::ZERO; CODE_COUNT];
        for code in CptCode::ALL {
            let index = code_index(code);
            accepted[index] = rules.policy.accepts(code);
            bundled[index] = rules.policy.bundles(code);
            fee_per_unit[index] = rules
                .policy
                .fee_schedule
                .per_unit(code)
                .unwrap_or(Cents::ZERO);
        }
        CompiledVersion {
            rules,
            accepted,
            bundled,
            fee_per_unit,
        }
    }

    pub fn policy(&self) -> &PayerPolicy {
        &self.rules.policy
    }

    /// True when the payer pays `code` separately: accepted and not bundled.
    pub fn pays(&self, code: CptCode) -> bool {
        let index = code_index(code);
        self.accepted[index] && !self.bundled[index]
    }

    /// True when the payer never pays `code` separately.
    pub fn bundles(&self, code: CptCode) -> bool {
        self.bundled[code_index(code)]
    }

    /// The allowed amount per unit of `code` (zero when the schedule lists none).
    pub fn fee(&self, code: CptCode) -> Cents {
        self.fee_per_unit[code_index(code)]
    }

    fn covers(&self, date_of_service: NaiveDate) -> bool {
        date_of_service >= self.rules.policy.effective_from
            && self
                .rules
                .effective_to
                .is_none_or(|last| date_of_service <= last)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPayer {
    pub rules: PayerRules,
    /// Same order as `rules.versions`.
    pub versions: Vec<CompiledVersion>,
}

impl CompiledPayer {
    /// The version in force on `date_of_service`: the latest one starting on or before it, if
    /// that one has not ended.
    pub fn in_force(&self, date_of_service: NaiveDate) -> Option<&CompiledVersion> {
        let started = self
            .versions
            .partition_point(|version| version.rules.policy.effective_from <= date_of_service);
        let candidate = self.versions.get(started.checked_sub(1)?)?;
        candidate.covers(date_of_service).then_some(candidate)
    }

    pub fn version(&self, number: u32) -> Option<&CompiledVersion> {
        self.versions
            .iter()
            .find(|version| version.rules.policy.version == number)
    }
}

/// A PTP edit as the engine reads it: looked up by its column 2 code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column2Edit {
    pub column1: CptCode,
    pub indicator: ModifierIndicator,
    pub period: EffectivePeriod,
}

/// Reference data indexed by code.
#[derive(Debug, Clone)]
pub(crate) struct CompiledReference {
    pub data: ReferenceData,
    pub edits_by_column2: [Vec<Column2Edit>; CODE_COUNT],
    pub mue_by_code: [Vec<(EffectivePeriod, u32)>; CODE_COUNT],
    pub always_therapy_by_code: [Vec<EffectivePeriod>; CODE_COUNT],
}

impl CompiledReference {
    fn new(data: ReferenceData) -> CompiledReference {
        let mut edits_by_column2: [Vec<Column2Edit>; CODE_COUNT] = Default::default();
        for edit in &data.ptp_edits {
            if edit.indicator != ModifierIndicator::NotApplicable {
                edits_by_column2[code_index(edit.column2)].push(Column2Edit {
                    column1: edit.column1,
                    indicator: edit.indicator,
                    period: edit.period,
                });
            }
        }
        let mut mue_by_code: [Vec<(EffectivePeriod, u32)>; CODE_COUNT] = Default::default();
        for limit in &data.mue_limits {
            mue_by_code[code_index(limit.code)].push((limit.period, limit.max_units));
        }
        let mut always_therapy_by_code: [Vec<EffectivePeriod>; CODE_COUNT] = Default::default();
        for entry in &data.always_therapy {
            always_therapy_by_code[code_index(entry.code)].push(entry.period);
        }
        CompiledReference {
            data,
            edits_by_column2,
            mue_by_code,
            always_therapy_by_code,
        }
    }

    pub fn mue(&self, code: CptCode, date_of_service: NaiveDate) -> Option<u32> {
        self.mue_by_code[code_index(code)]
            .iter()
            .filter(|(period, _)| period.contains(date_of_service))
            .map(|(_, max_units)| *max_units)
            .min()
    }

    pub fn is_always_therapy(&self, code: CptCode, date_of_service: NaiveDate) -> bool {
        self.always_therapy_by_code[code_index(code)]
            .iter()
            .any(|period| period.contains(date_of_service))
    }

    /// The edit in force that makes `column2` the denied code when `column1` is on the visit.
    pub fn edit_against(
        &self,
        column2: CptCode,
        column1: CptCode,
        date_of_service: NaiveDate,
    ) -> Option<&Column2Edit> {
        self.edits_by_column2[code_index(column2)]
            .iter()
            .find(|edit| edit.column1 == column1 && edit.period.contains(date_of_service))
    }
}

/// Every payer's validated rules and the reference tables: the input of every decision.
#[derive(Debug, Clone)]
pub struct RuleBook {
    pub(crate) payers: HashMap<String, CompiledPayer>,
    pub(crate) reference: CompiledReference,
}

impl RuleBook {
    /// Builds a rule book from already validated parts: the loader ([`crate::load`]) uses it, and
    /// so can a replay that rebuilds rules from published `RulesChanged` events (see
    /// [`crate::load::parse_published_version`]). Versions are ordered by `effective_from`.
    pub fn new(payers: Vec<PayerRules>, reference: ReferenceData) -> RuleBook {
        let payers = payers
            .into_iter()
            .map(|mut rules| {
                rules
                    .versions
                    .sort_by_key(|version| version.policy.effective_from);
                let versions = rules
                    .versions
                    .iter()
                    .cloned()
                    .map(CompiledVersion::new)
                    .collect();
                (rules.payer.clone(), CompiledPayer { rules, versions })
            })
            .collect();
        RuleBook {
            payers,
            reference: CompiledReference::new(reference),
        }
    }

    /// The payers' identifiers, sorted.
    pub fn payer_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.payers.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Every version of one payer, if it is known.
    pub fn payer(&self, payer: &str) -> Option<&PayerRules> {
        self.payers.get(payer).map(|compiled| &compiled.rules)
    }

    /// The payer's rules in force on `date_of_service`, if any.
    pub fn policy_in_force(&self, payer: &str, date_of_service: NaiveDate) -> Option<&PayerPolicy> {
        self.payers
            .get(payer)?
            .in_force(date_of_service)
            .map(CompiledVersion::policy)
    }

    /// The reference tables (NCCI PTP, MUE, always therapy).
    pub fn reference(&self) -> &ReferenceData {
        &self.reference.data
    }
}
