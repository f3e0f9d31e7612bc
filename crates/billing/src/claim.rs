//! Claim lines from a completed visit: which code, how many units, which modifiers, which
//! diagnoses and what charge, shaped like CMS-1500 item 24, each decision with its reason.

use std::fmt;

use chrono::NaiveDate;
use thiserror::Error;

use crate::codes::{CptCode, Technique, TechniqueSet};
use crate::edits::{ModifierIndicator, ReferenceData};
use crate::modifiers::Modifier;
use crate::money::{Cents, MoneyOverflow};
use crate::policy::{DistinctProcedureModifiers, PayerPolicy, PriceList};
use crate::units::{
    CodeMinutes, CodeUnits, TieBreak, UnitsError, UntimedUnits, VisitUnits, visit_units,
};
use crate::validation::{FieldError, Icd10Code, Npi, Problem, TaxId};

/// The most diagnoses item 21 holds (A to L).
pub const MAX_DIAGNOSES: usize = 12;
/// The most diagnosis pointers item 24E holds per line.
pub const MAX_POINTERS_PER_LINE: usize = 4;
/// The most modifiers item 24D holds per line.
pub const MAX_MODIFIERS_PER_LINE: usize = 4;

/// A place-of-service code (item 24B), e.g. 11 for an office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceOfService(pub u8);

impl PlaceOfService {
    /// 02: telehealth provided other than in the patient's home.
    pub const TELEHEALTH: PlaceOfService = PlaceOfService(2);
    /// 10: telehealth in the patient's home.
    pub const TELEHEALTH_IN_HOME: PlaceOfService = PlaceOfService(10);
    /// 11: office.
    pub const OFFICE: PlaceOfService = PlaceOfService(11);
    /// 12: the patient's home.
    pub const HOME: PlaceOfService = PlaceOfService(12);
}

impl fmt::Display for PlaceOfService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// One documented hands-on service of a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// The technique performed.
    pub technique: Technique,
    /// The code the clinician recorded for it.
    pub code: CptCode,
    /// Direct one-on-one minutes.
    pub minutes: u32,
    /// The body region treated, free text (compared case-insensitively).
    pub body_region: String,
    /// A written description of the service; required for 97139.
    pub description: Option<String>,
}

/// One documented untimed service: a supervised modality (97010, 97012) or an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntimedService {
    /// The code.
    pub code: CptCode,
    /// Minutes, kept for the record; they never join the timed pool (decision 7).
    pub minutes: u32,
    /// The body region, free text.
    pub body_region: String,
}

/// The referral or prescription the visit relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The date it was issued.
    pub issued: NaiveDate,
    /// The last date it covers.
    pub expires: NaiveDate,
    /// The diagnoses it names, as written.
    pub diagnoses: Vec<String>,
}

/// A completed visit as documented, the input of claim derivation.
///
/// Diagnoses are kept as written rather than as [`Icd10Code`]: a typo in a diagnosis does not
/// make the visit any less real, so it must reach the scrubber (which reports it) instead of
/// being refused and lost at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// Date of service, already resolved in the clinic's time zone by the caller.
    pub date_of_service: NaiveDate,
    /// Where the service was delivered.
    pub place_of_service: PlaceOfService,
    /// The clinic's (billing provider's) NPI.
    pub clinic_npi: Npi,
    /// The clinic's federal tax id.
    pub tax_id: TaxId,
    /// The rendering therapist's NPI.
    pub rendering_npi: Npi,
    /// Hands-on, timed services.
    pub services: Vec<ServiceRecord>,
    /// Untimed modalities and evaluations.
    pub modalities: Vec<UntimedService>,
    /// ICD-10-CM diagnoses as documented, primary first.
    pub diagnoses: Vec<String>,
    /// The code the clinician marked as primary, used to break unit ties (decision 3).
    pub primary_code: Option<CptCode>,
    /// The referral, if any.
    pub referral: Option<Referral>,
}

/// A diagnosis pointer (item 24E): an index into item 21, printed as a letter A to L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiagnosisPointer(pub u8);

impl DiagnosisPointer {
    /// The letter printed on the form; `?` for an index beyond L.
    pub fn letter(self) -> char {
        if usize::from(self.0) < MAX_DIAGNOSES {
            char::from(b'A' + self.0)
        } else {
            '?'
        }
    }
}

impl fmt::Display for DiagnosisPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// One service line, shaped like CMS-1500 item 24.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    /// 24A: date of service (from and to are the same day).
    pub date_of_service: NaiveDate,
    /// 24B: place of service.
    pub place_of_service: PlaceOfService,
    /// 24D: the procedure code.
    pub code: CptCode,
    /// 24D: up to four modifiers.
    pub modifiers: Vec<Modifier>,
    /// 24E: up to four pointers into the claim's diagnoses.
    pub diagnosis_pointers: Vec<DiagnosisPointer>,
    /// 24F: line charge (units times the charge master's price per unit).
    pub charge: Cents,
    /// 24G: units.
    pub units: u32,
    /// 24J: rendering provider NPI.
    pub rendering_npi: Npi,
}

/// The claim for one visit: the header fields this crate knows and the service lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Date of service.
    pub date_of_service: NaiveDate,
    /// Place of service.
    pub place_of_service: PlaceOfService,
    /// Item 33a: billing provider (clinic) NPI.
    pub billing_npi: Npi,
    /// Item 25: federal tax id.
    pub tax_id: TaxId,
    /// Item 21: diagnoses A to L.
    pub diagnoses: Vec<Icd10Code>,
    /// Item 24: one line per code (decision 5).
    pub lines: Vec<ClaimLine>,
    /// Item 28: total charge.
    pub total_charge: Cents,
}

/// Why a payer preference changed the code of massage/manual work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubstitutionCause {
    /// The payer wants one of 97124/97140 per visit and both were documented.
    OneCodePerVisit,
    /// The payer does not accept a documented code but accepts the other, which the visit's
    /// techniques also support.
    DocumentedCodeNotAccepted,
}

/// Why a line carries its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeReason {
    /// The clinician's code, supported by the documented techniques.
    AsDocumented {
        /// The techniques documented under the code.
        techniques: TechniqueSet,
    },
    /// Massage/manual work billed under the payer's choice among the codes the documentation
    /// supports (decision 8).
    PayerPreference {
        /// The codes the clinician recorded.
        documented: Vec<CptCode>,
        /// Every massage/manual code the visit's techniques support.
        supported: Vec<CptCode>,
        /// Why one code was needed.
        cause: SubstitutionCause,
        /// True when the payer named this code as its preference; false when it was chosen by
        /// documented minutes.
        payer_preferred: bool,
    },
    /// An untimed modality or evaluation, as documented.
    UntimedService,
}

/// Where the units came from before any cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitsBasis {
    /// A timed code under the payer's unit method.
    Timed(CodeUnits<CptCode>),
    /// An untimed code.
    Untimed(UntimedUnits),
}

/// A cap that lowered the units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitCapSource {
    /// The medically unlikely edit for the code on this date.
    Mue,
    /// The payer's own maximum per code per visit.
    PayerMaximum,
}

/// Why a line carries its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitsReason {
    /// The units the minutes earn.
    pub basis: UnitsBasis,
    /// A cap that lowered them, with the cap value.
    pub cap: Option<(UnitCapSource, u32)>,
}

/// Why a line carries a modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModifierReason {
    /// The payer requires its plan-of-care modifier on always-therapy codes.
    PlanOfCare {
        /// The modifier.
        modifier: Modifier,
    },
    /// The line is column 2 of an NCCI pair with indicator 1, and the documentation puts the two
    /// codes on different body regions, which supports a distinct-procedure modifier.
    DistinctBodyRegions {
        /// The modifier.
        modifier: Modifier,
        /// The column 1 code of the pair.
        column1: CptCode,
        /// Regions documented under this line's code, comma-separated.
        regions: String,
        /// Regions documented under the column 1 code, comma-separated.
        column1_regions: String,
    },
}

/// The reasons behind one line, in the same order as `Claim::lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineExplanation {
    /// The code.
    pub code: CptCode,
    /// Why this code.
    pub code_reason: CodeReason,
    /// Why these units.
    pub units_reason: UnitsReason,
    /// Why each modifier.
    pub modifier_reasons: Vec<ModifierReason>,
}

impl fmt::Display for LineExplanation {
    /// The reasons as sentences separated by "; ".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        match &self.code_reason {
            CodeReason::AsDocumented { techniques } => {
                write!(f, "{code} as documented (")?;
                for (index, technique) in techniques.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}{technique}")?;
                }
                write!(f, ")")?;
            }
            CodeReason::PayerPreference {
                documented,
                cause,
                payer_preferred,
                ..
            } => {
                let documented: Vec<&str> = documented.iter().map(|code| code.as_str()).collect();
                let cause = match cause {
                    SubstitutionCause::OneCodePerVisit => {
                        "the payer wants one massage/manual code per visit"
                    }
                    SubstitutionCause::DocumentedCodeNotAccepted => {
                        "the payer does not accept every documented code"
                    }
                };
                let choice = if *payer_preferred {
                    "the payer's preferred code"
                } else {
                    "the code with the most documented minutes"
                };
                write!(
                    f,
                    "{code} for work documented as {}: {cause}, and {code} is {choice} among those the techniques support",
                    documented.join(" and ")
                )?;
            }
            CodeReason::UntimedService => write!(f, "{code} as documented (untimed service)")?,
        }
        match self.units_reason.basis {
            UnitsBasis::Timed(units) => write!(f, "; {units}")?,
            UnitsBasis::Untimed(units) => write!(f, "; {units}")?,
        }
        if let Some((source, cap)) = self.units_reason.cap {
            let source = match source {
                UnitCapSource::Mue => "the MUE",
                UnitCapSource::PayerMaximum => "the payer's maximum per visit",
            };
            write!(f, "; capped at {cap} by {source}")?;
        }
        for reason in &self.modifier_reasons {
            match reason {
                ModifierReason::PlanOfCare { modifier } => {
                    write!(
                        f,
                        "; {modifier}: always-therapy code and the payer requires the plan-of-care modifier"
                    )?;
                }
                ModifierReason::DistinctBodyRegions {
                    modifier,
                    column1,
                    regions,
                    column1_regions,
                } => write!(
                    f,
                    "; {modifier}: NCCI pair with {column1} (indicator 1) and the documentation separates the regions ({regions} vs {column1_regions})"
                )?,
            }
        }
        Ok(())
    }
}

/// Why documented work has no line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmissionReason {
    /// The payer never pays the code separately (e.g. 97010, status B).
    Bundled,
    /// The minutes earned no unit under the payer's method.
    NoUnits(CodeUnits<CptCode>),
}

/// Documented work left off the claim, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmittedCode {
    /// The code.
    pub code: CptCode,
    /// Its documented minutes.
    pub minutes: u32,
    /// Why.
    pub reason: OmissionReason,
}

/// The derived claim with every decision's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedClaim {
    /// The claim.
    pub claim: Claim,
    /// One explanation per line, in line order.
    pub explanations: Vec<LineExplanation>,
    /// Documented codes without a line.
    pub omitted: Vec<OmittedCode>,
    /// The unit computation, including any tie and how it was settled.
    pub units: VisitUnits,
    /// Diagnoses that could not go on the claim (invalid syntax or beyond L); the scrubber reports them.
    pub skipped_diagnoses: Vec<FieldError>,
}

/// A claim that cannot be derived at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeriveError {
    /// The charge master has no price for a billed code.
    #[error("charge_master[{code}]: no charge per unit for {code}")]
    MissingCharge {
        /// The code without a price.
        code: CptCode,
    },
    /// The minutes of one code overflow.
    #[error("services: the minutes documented for {code} overflow")]
    MinutesOverflow {
        /// The code.
        code: CptCode,
    },
    /// A charge overflowed.
    #[error(transparent)]
    Money(#[from] MoneyOverflow),
    /// The unit computation refused its input.
    #[error(transparent)]
    Units(#[from] UnitsError),
}

/// What the documentation says about one billed code after any payer substitution. It borrows
/// the visit and finds its services on demand, so grouping a visit allocates almost nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeDocumentation<'v> {
    /// The billed code.
    pub code: CptCode,
    /// Total documented minutes.
    pub minutes: u32,
    /// True when this code absorbs all massage/manual services because of a payer substitution.
    merged_massage: bool,
    visit: &'v Visit,
}

impl<'v> CodeDocumentation<'v> {
    /// The visit's services billed under this code, with their indexes in `Visit::services`.
    pub fn services(&self) -> impl Iterator<Item = (usize, &'v ServiceRecord)> + '_ {
        let visit: &'v Visit = self.visit;
        visit
            .services
            .iter()
            .enumerate()
            .filter(move |(_, service)| {
                if self.merged_massage {
                    service.code.is_massage_or_manual()
                } else {
                    service.code == self.code
                }
            })
    }

    /// The visit's untimed services billed under this code.
    pub fn modalities(&self) -> impl Iterator<Item = &'v UntimedService> + '_ {
        let visit: &'v Visit = self.visit;
        visit
            .modalities
            .iter()
            .filter(move |modality| modality.code == self.code)
    }

    /// The documented techniques.
    pub fn techniques(&self) -> TechniqueSet {
        self.services()
            .map(|(_, service)| service.technique)
            .collect()
    }

    /// Every documented body region, trimmed (it may repeat).
    pub fn regions(&self) -> impl Iterator<Item = &'v str> + '_ {
        self.services()
            .map(|(_, service)| service.body_region.trim())
            .chain(
                self.modalities()
                    .map(|modality| modality.body_region.trim()),
            )
    }

    /// Distinct documented body regions, comma-separated, for explanations.
    pub fn distinct_regions(&self) -> String {
        let mut text = String::new();
        for (index, region) in self.regions().enumerate() {
            let seen_before = self
                .regions()
                .take(index)
                .any(|known| known.eq_ignore_ascii_case(region));
            if !seen_before {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                text.push_str(region);
            }
        }
        text
    }

    /// True when no body region of `self` is also a region of `other`, ignoring ASCII case.
    pub fn regions_disjoint(&self, other: &CodeDocumentation<'_>) -> bool {
        !self.regions().any(|region| {
            other
                .regions()
                .any(|other| region.eq_ignore_ascii_case(other))
        })
    }
}

/// A payer substitution among massage/manual codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// The code billed for all massage/manual work.
    pub billed: CptCode,
    /// The codes the clinician recorded.
    pub documented: Vec<CptCode>,
    /// The massage/manual codes the techniques support.
    pub supported: Vec<CptCode>,
    /// Why.
    pub cause: SubstitutionCause,
    /// Whether the payer's stated preference chose the code.
    pub payer_preferred: bool,
}

/// The visit's documentation grouped by the code it will be billed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution<'v> {
    /// Per billed code, in code order.
    pub codes: Vec<CodeDocumentation<'v>>,
    /// The massage/manual substitution, if the payer's rules called for one.
    pub substitution: Option<Substitution>,
}

impl<'v> Attribution<'v> {
    /// The code a clinician's recorded code is billed under.
    pub fn billed_code_for(&self, documented: CptCode) -> CptCode {
        match &self.substitution {
            Some(substitution) if substitution.documented.contains(&documented) => {
                substitution.billed
            }
            _ => documented,
        }
    }

    /// The documentation billed under `code`, if any.
    pub fn get(&self, code: CptCode) -> Option<&CodeDocumentation<'v>> {
        self.codes
            .iter()
            .find(|documentation| documentation.code == code)
    }
}

/// Groups the visit's documentation by billed code, applying the payer's massage/manual rules
/// (decision 8): the payer's preference may only choose among codes the documented techniques
/// support. Where the payer states no preference, the code with the most documented minutes
/// wins, then the decision 3 order (primary, higher allowed, lower code); a careful biller picks
/// the dominant documented work rather than the better-paid code.
pub fn attribute<'v>(
    visit: &'v Visit,
    policy: &PayerPolicy,
) -> Result<Attribution<'v>, DeriveError> {
    let mut massage_minutes: [Option<u32>; 2] = [None, None];
    for service in &visit.services {
        let slot = match service.code {
            CptCode::Massage => &mut massage_minutes[0],
            CptCode::ManualTherapy => &mut massage_minutes[1],
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0).saturating_add(service.minutes));
    }
    let substitution = choose_substitution(visit, policy, massage_minutes);
    let mut codes: Vec<CodeDocumentation<'v>> =
        Vec::with_capacity(visit.services.len() + visit.modalities.len());
    let merged = substitution
        .as_ref()
        .map(|substitution| substitution.billed);
    let timed = visit.services.iter().map(|service| {
        let code = match merged {
            Some(billed) if service.code.is_massage_or_manual() => billed,
            _ => service.code,
        };
        (code, service.minutes)
    });
    let untimed = visit
        .modalities
        .iter()
        .map(|modality| (modality.code, modality.minutes));
    for (code, minutes) in timed.chain(untimed) {
        match codes
            .iter_mut()
            .find(|documentation| documentation.code == code)
        {
            Some(documentation) => {
                documentation.minutes = documentation
                    .minutes
                    .checked_add(minutes)
                    .ok_or(DeriveError::MinutesOverflow { code })?;
            }
            None => codes.push(CodeDocumentation {
                code,
                minutes,
                merged_massage: merged == Some(code),
                visit,
            }),
        }
    }
    codes.sort_by_key(|documentation| documentation.code);
    Ok(Attribution {
        codes,
        substitution,
    })
}

fn choose_substitution(
    visit: &Visit,
    policy: &PayerPolicy,
    massage_minutes: [Option<u32>; 2],
) -> Option<Substitution> {
    let pairs = [
        (CptCode::Massage, massage_minutes[0]),
        (CptCode::ManualTherapy, massage_minutes[1]),
    ];
    let documented = || {
        pairs
            .iter()
            .filter_map(|(code, minutes)| minutes.map(|_| *code))
    };
    let cause = if policy.one_massage_or_manual_code_per_visit && documented().count() > 1 {
        SubstitutionCause::OneCodePerVisit
    } else if documented().any(|code| !policy.accepts(code)) {
        SubstitutionCause::DocumentedCodeNotAccepted
    } else {
        return None;
    };
    let is_supported = |code: CptCode| {
        visit
            .services
            .iter()
            .any(|service| code.covers(service.technique))
    };
    let minutes_of = |code: CptCode| {
        pairs
            .iter()
            .find(|(listed, _)| *listed == code)
            .and_then(|(_, minutes)| *minutes)
            .unwrap_or(0)
    };
    let candidates = pairs
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| is_supported(*code) && policy.accepts(*code));
    let preferred = policy
        .preferred_massage_code
        .filter(|code| candidates.clone().any(|candidate| candidate == *code));
    let billed = preferred.or_else(|| {
        candidates.max_by(|left, right| {
            let is_primary = |code: CptCode| visit.primary_code == Some(code);
            let allowed = |code: CptCode| policy.fee_schedule.per_unit(code);
            minutes_of(*left)
                .cmp(&minutes_of(*right))
                .then_with(|| is_primary(*left).cmp(&is_primary(*right)))
                .then_with(|| allowed(*left).cmp(&allowed(*right)))
                .then_with(|| right.cmp(left))
        })
    })?;
    if documented().eq([billed]) {
        return None;
    }
    Some(Substitution {
        billed,
        documented: documented().collect(),
        supported: pairs
            .iter()
            .map(|(code, _)| *code)
            .filter(|code| is_supported(*code))
            .collect(),
        cause,
        payer_preferred: preferred.is_some(),
    })
}

/// Derives the claim for `visit` under `policy`, checking edits from `reference` and pricing
/// from `charge_master`.
///
/// Decisions where domain.md is silent, as a careful biller would take them:
/// - Bundled codes are left off (the patient cannot be billed for them either) and their minutes
///   stay out of the timed pool, because bundled time cannot earn units for other codes.
/// - Units above the MUE (when the payer enforces NCCI) or the payer's per-visit maximum are cut
///   to the cap: a line above an MUE is denied whole.
/// - A distinct-procedure modifier is added only when the documented body regions of the two codes
///   do not overlap; otherwise the pair is left for the scrubber to report, never papered over.
/// - Every line points at the first four diagnoses: the visit does not link diagnoses to services.
pub fn derive_claim(
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    charge_master: &PriceList,
) -> Result<DerivedClaim, DeriveError> {
    let attribution = attribute(visit, policy)?;
    let date = visit.date_of_service;
    let mut omitted = Vec::new();
    let mut minutes: Vec<CodeMinutes> = Vec::with_capacity(attribution.codes.len());
    for documentation in &attribution.codes {
        let code = documentation.code;
        if policy.bundles(code) {
            omitted.push(OmittedCode {
                code,
                minutes: documentation.minutes,
                reason: OmissionReason::Bundled,
            });
        } else {
            minutes.push(CodeMinutes {
                code,
                minutes: documentation.minutes,
            });
        }
    }
    let tie_break = TieBreak {
        primary: visit
            .primary_code
            .map(|code| attribution.billed_code_for(code)),
        expected_allowed_per_unit: policy.fee_schedule.as_slice(),
    };
    let units = visit_units(policy.unit_method, &minutes, &tie_break)?;

    let mut planned: Vec<(CptCode, UnitsBasis)> = Vec::with_capacity(minutes.len());
    for entry in &units.timed.codes {
        if entry.units == 0 {
            omitted.push(OmittedCode {
                code: entry.code,
                minutes: entry.minutes,
                reason: OmissionReason::NoUnits(*entry),
            });
        } else {
            planned.push((entry.code, UnitsBasis::Timed(*entry)));
        }
    }
    planned.extend(
        units
            .untimed
            .iter()
            .map(|entry| (entry.code, UnitsBasis::Untimed(*entry))),
    );
    planned.sort_by_key(|(code, _)| *code);

    let (diagnoses, skipped_diagnoses) = claim_diagnoses(&visit.diagnoses);
    let pointer_count = diagnoses.len().min(MAX_POINTERS_PER_LINE) as u8;
    let mut lines = Vec::with_capacity(planned.len());
    let mut explanations = Vec::with_capacity(planned.len());
    for &(code, basis) in &planned {
        let earned = match basis {
            UnitsBasis::Timed(entry) => entry.units,
            UnitsBasis::Untimed(_) => 1,
        };
        let (billed_units, cap) = apply_caps(code, earned, date, policy, reference);
        let modifier_reasons =
            line_modifiers(code, &planned, &attribution, visit, policy, reference);
        let price = charge_master
            .per_unit(code)
            .ok_or(DeriveError::MissingCharge { code })?;
        let charge = price
            .checked_mul_units(billed_units)
            .ok_or_else(|| MoneyOverflow {
                field: format!("lines[{}].charge", lines.len()),
                operation: format!("{billed_units} units x {price}"),
            })?;
        lines.push(ClaimLine {
            date_of_service: date,
            place_of_service: visit.place_of_service,
            code,
            modifiers: modifier_reasons.iter().map(modifier_of).collect(),
            diagnosis_pointers: (0..pointer_count).map(DiagnosisPointer).collect(),
            charge,
            units: billed_units,
            rendering_npi: visit.rendering_npi,
        });
        explanations.push(LineExplanation {
            code,
            code_reason: code_reason(code, &attribution),
            units_reason: UnitsReason { basis, cap },
            modifier_reasons,
        });
    }
    let total_charge = Cents::sum(lines.iter().map(|line| line.charge), "total_charge")?;
    Ok(DerivedClaim {
        claim: Claim {
            date_of_service: date,
            place_of_service: visit.place_of_service,
            billing_npi: visit.clinic_npi,
            tax_id: visit.tax_id,
            diagnoses,
            lines,
            total_charge,
        },
        explanations,
        omitted,
        units,
        skipped_diagnoses,
    })
}

/// Valid, distinct diagnoses in documented order, at most twelve; the rest with the reason.
fn claim_diagnoses(documented: &[String]) -> (Vec<Icd10Code>, Vec<FieldError>) {
    let mut diagnoses: Vec<Icd10Code> = Vec::with_capacity(documented.len().min(MAX_DIAGNOSES));
    let mut skipped = Vec::new();
    for (index, text) in documented.iter().enumerate() {
        let field = || format!("diagnoses[{index}]");
        match Icd10Code::try_from_text(text) {
            Ok(code) if diagnoses.contains(&code) => {}
            Ok(code) if diagnoses.len() < MAX_DIAGNOSES => diagnoses.push(code),
            Ok(_) => skipped.push(FieldError::new(&field(), text, Problem::TooManyDiagnoses)),
            Err(problem) => skipped.push(FieldError::new(&field(), text, problem)),
        }
    }
    (diagnoses, skipped)
}

/// The lowest applicable cap, if it is below the earned units.
pub(crate) fn unit_cap(
    code: CptCode,
    date: NaiveDate,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> Option<(UnitCapSource, u32)> {
    let mue = policy
        .enforce_ncci_edits
        .then(|| reference.mue_for(code, date))
        .flatten()
        .map(|cap| (UnitCapSource::Mue, cap));
    let payer = policy
        .max_units_per_code_per_visit
        .map(|cap| (UnitCapSource::PayerMaximum, cap));
    [mue, payer]
        .into_iter()
        .flatten()
        .min_by_key(|(_, cap)| *cap)
}

fn apply_caps(
    code: CptCode,
    earned: u32,
    date: NaiveDate,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> (u32, Option<(UnitCapSource, u32)>) {
    match unit_cap(code, date, policy, reference) {
        Some((source, cap)) if cap < earned => (cap, Some((source, cap))),
        _ => (earned, None),
    }
}

fn modifier_of(reason: &ModifierReason) -> Modifier {
    match reason {
        ModifierReason::PlanOfCare { modifier }
        | ModifierReason::DistinctBodyRegions { modifier, .. } => *modifier,
    }
}

fn code_reason(code: CptCode, attribution: &Attribution) -> CodeReason {
    if !code.is_timed() {
        return CodeReason::UntimedService;
    }
    match &attribution.substitution {
        Some(substitution) if substitution.billed == code => CodeReason::PayerPreference {
            documented: substitution.documented.clone(),
            supported: substitution.supported.clone(),
            cause: substitution.cause,
            payer_preferred: substitution.payer_preferred,
        },
        _ => CodeReason::AsDocumented {
            techniques: attribution
                .get(code)
                .map(CodeDocumentation::techniques)
                .unwrap_or_default(),
        },
    }
}

/// The modifiers of one line: the plan-of-care modifier first (as in "97140 GP 59"), then a
/// distinct-procedure modifier when this line is column 2 of a bypassable pair on separate regions.
fn line_modifiers(
    code: CptCode,
    planned: &[(CptCode, UnitsBasis)],
    attribution: &Attribution,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> Vec<ModifierReason> {
    let date = visit.date_of_service;
    let mut reasons = Vec::new();
    if let Some(modifier) = policy.plan_of_care_modifier
        && reference.is_always_therapy(code, date)
    {
        reasons.push(ModifierReason::PlanOfCare { modifier });
    }
    let distinct_modifier = match policy.distinct_procedure_modifiers {
        DistinctProcedureModifiers::Use59 => Some(Modifier::DistinctProcedural),
        DistinctProcedureModifiers::UseXModifiers => Some(Modifier::SeparateStructure),
        DistinctProcedureModifiers::NotAccepted => None,
    };
    if let Some(modifier) = distinct_modifier.filter(|_| policy.enforce_ncci_edits) {
        for &(other, _) in planned.iter().filter(|(other, _)| *other != code) {
            let Some(edit) = reference.ptp_edit_between(code, other, date) else {
                continue;
            };
            if edit.column2 != code || edit.indicator != ModifierIndicator::Allowed {
                continue;
            }
            let documentation = attribution.get(code);
            let column1_documentation = attribution.get(other);
            if let (Some(documentation), Some(column1_documentation)) =
                (documentation, column1_documentation)
                && documentation.regions_disjoint(column1_documentation)
                && !reasons
                    .iter()
                    .any(|reason| matches!(reason, ModifierReason::DistinctBodyRegions { .. }))
            {
                reasons.push(ModifierReason::DistinctBodyRegions {
                    modifier,
                    column1: other,
                    regions: documentation.distinct_regions(),
                    column1_regions: column1_documentation.distinct_regions(),
                });
            }
        }
    }
    reasons.truncate(MAX_MODIFIERS_PER_LINE);
    reasons
}
