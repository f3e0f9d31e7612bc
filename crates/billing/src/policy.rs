//! One version of one payer's billing rules, as plain data the claim derivation and the scrubber
//! read. The payer-rules crate loads these from data files; this crate never does.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::codes::CptCode;
use crate::modifiers::Modifier;
use crate::money::Cents;
use crate::units::UnitMethod;

/// A price per unit for each code: used both for a payer's fee schedule (expected allowed amount)
/// and for a chain's charge master (what the clinic charges).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceList {
    /// Sorted by code, one entry per code.
    per_unit: Vec<(CptCode, Cents)>,
}

impl PriceList {
    /// Builds a price list from `(code, price per unit)` pairs; a later pair for the same code
    /// replaces an earlier one.
    pub fn from_pairs<I: IntoIterator<Item = (CptCode, Cents)>>(pairs: I) -> PriceList {
        let mut per_unit: Vec<(CptCode, Cents)> = Vec::new();
        for (code, price) in pairs {
            match per_unit.binary_search_by_key(&code, |(listed, _)| *listed) {
                Ok(position) => per_unit[position].1 = price,
                Err(position) => per_unit.insert(position, (code, price)),
            }
        }
        PriceList { per_unit }
    }

    /// The price per unit of `code`, if listed.
    pub fn per_unit(&self, code: CptCode) -> Option<Cents> {
        self.per_unit
            .iter()
            .find(|(listed, _)| *listed == code)
            .map(|(_, price)| *price)
    }

    /// Every `(code, price per unit)` in code order, as a slice (e.g. for [`crate::TieBreak`]).
    pub fn as_slice(&self) -> &[(CptCode, Cents)] {
        &self.per_unit
    }

    /// Every listed `(code, price per unit)`, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (CptCode, Cents)> + '_ {
        self.per_unit.iter().copied()
    }
}

/// Which NCCI-associated modifier the payer wants when a procedure-to-procedure edit may be
/// bypassed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistinctProcedureModifiers {
    /// Modifier 59.
    Use59,
    /// The more specific X{EPSU} modifiers (CMS Transmittal 1422); for different body regions
    /// this is XS.
    UseXModifiers,
    /// The payer accepts neither; a pair on its edit list is simply not payable together.
    NotAccepted,
}

/// Whether the payer needs a referral or prescription before it pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferralRequirement {
    /// No referral needed.
    NotRequired,
    /// A referral is needed and counts as valid for `valid_days` days from its issue date
    /// (or until its own expiry date, whichever comes first).
    Required {
        /// How many days after issue the payer accepts the referral.
        valid_days: u32,
    },
}

/// One version of one payer's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerPolicy {
    /// The payer's identifier within ClaimLedger, e.g. `"medicare-like"`.
    pub payer_id: String,
    /// The version of these rules; a new contract or policy change is a new version.
    pub version: u32,
    /// The first date of service these rules apply to.
    pub effective_from: NaiveDate,
    /// How timed units are counted (decision 2): CMS total time or AMA per code.
    pub unit_method: UnitMethod,
    /// The codes this payer pays for at all; a billed code outside this set is an error.
    pub accepted_codes: BTreeSet<CptCode>,
    /// Which of 97124/97140 the payer prefers when the documentation supports both (decision 8);
    /// `None` when the payer states no preference.
    pub preferred_massage_code: Option<CptCode>,
    /// The plan-of-care (discipline) modifier the payer requires on always-therapy codes, e.g. GP;
    /// `None` when the payer does not require one.
    pub plan_of_care_modifier: Option<Modifier>,
    /// Which modifier bypasses an NCCI pair where the indicator allows it.
    pub distinct_procedure_modifiers: DistinctProcedureModifiers,
    /// Whether the payer applies NCCI PTP edits and MUE caps.
    pub enforce_ncci_edits: bool,
    /// Whether the payer wants one of 97124/97140 per visit rather than both (the seeds' advice:
    /// do not split one session into units of each).
    pub one_massage_or_manual_code_per_visit: bool,
    /// The most units of any one code the payer pays per visit, beyond the MUE; `None` for no cap.
    pub max_units_per_code_per_visit: Option<u32>,
    /// Codes the payer never pays separately (e.g. 97010 for Medicare-like payers, status B);
    /// they are left off the claim because the patient cannot be billed for them either.
    pub bundled_codes: BTreeSet<CptCode>,
    /// The payer's expected allowed amount per unit of each code.
    pub fee_schedule: PriceList,
    /// Whether a referral or prescription is needed.
    pub referral: ReferralRequirement,
    /// The most visits per calendar year the payer covers; `None` for no cap. This crate only
    /// carries it: counting visits needs history, which the caller holds.
    pub max_visits_per_year: Option<u32>,
    /// Days after the date of service within which the claim must be filed.
    pub timely_filing_days: u32,
}

impl PayerPolicy {
    /// True when the payer pays for `code` at all.
    pub fn accepts(&self, code: CptCode) -> bool {
        self.accepted_codes.contains(&code)
    }

    /// True when `code` is never paid separately by this payer.
    pub fn bundles(&self, code: CptCode) -> bool {
        self.bundled_codes.contains(&code)
    }

    /// An example Medicare-like policy: CMS total time, GP on always-therapy codes, X modifiers,
    /// NCCI enforced, 97010 bundled, the 2025 national non-facility amounts from domain.md
    /// section 9 where known, and one year of timely filing.
    pub fn example_medicare_like() -> PayerPolicy {
        PayerPolicy {
            payer_id: "medicare-like".to_owned(),
            version: 1,
            effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or(NaiveDate::MIN),
            unit_method: UnitMethod::CmsTotalTime,
            accepted_codes: CptCode::ALL.into_iter().collect(),
            preferred_massage_code: None,
            plan_of_care_modifier: Some(Modifier::PhysicalTherapyPlan),
            distinct_procedure_modifiers: DistinctProcedureModifiers::UseXModifiers,
            enforce_ncci_edits: true,
            one_massage_or_manual_code_per_visit: false,
            max_units_per_code_per_visit: None,
            bundled_codes: [CptCode::HotColdPacks].into_iter().collect(),
            fee_schedule: PriceList::from_pairs([
                (CptCode::Massage, Cents(2976)),
                (CptCode::ManualTherapy, Cents(2717)),
                (CptCode::TherapeuticExercise, Cents(2879)),
                (CptCode::HotColdPacks, Cents::ZERO),
            ]),
            referral: ReferralRequirement::NotRequired,
            max_visits_per_year: None,
            timely_filing_days: 365,
        }
    }

    /// An example commercial massage policy modelled on the seeds: AMA per-code units, only 97124
    /// and 97010 accepted, one massage/manual code per visit, modifier 59, a prescription valid
    /// for 90 days, 16 visits a year (the Washington Uniform Medical Plan figure in section 9).
    pub fn example_commercial_massage_only() -> PayerPolicy {
        PayerPolicy {
            payer_id: "commercial-massage".to_owned(),
            version: 1,
            effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or(NaiveDate::MIN),
            unit_method: UnitMethod::AmaPerCode,
            accepted_codes: [CptCode::Massage, CptCode::HotColdPacks]
                .into_iter()
                .collect(),
            preferred_massage_code: Some(CptCode::Massage),
            plan_of_care_modifier: None,
            distinct_procedure_modifiers: DistinctProcedureModifiers::Use59,
            enforce_ncci_edits: false,
            one_massage_or_manual_code_per_visit: true,
            max_units_per_code_per_visit: Some(4),
            bundled_codes: BTreeSet::new(),
            fee_schedule: PriceList::from_pairs([
                (CptCode::Massage, Cents(3000)),
                (CptCode::HotColdPacks, Cents(800)),
            ]),
            referral: ReferralRequirement::Required { valid_days: 90 },
            max_visits_per_year: Some(16),
            timely_filing_days: 90,
        }
    }
}
