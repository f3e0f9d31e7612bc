//! The claim scrubber: checks a claim against the visit it bills, the payer's policy and the
//! reference data, and reports findings before the claim goes out. It checks the claim as given,
//! so it also catches hand-edited claims, and it accepts every unit assignment the CMS manual
//! allows where codes tie.

use std::fmt;

use chrono::{Days, NaiveDate};

use crate::claim::{
    Attribution, Claim, ClaimLine, MAX_DIAGNOSES, MAX_MODIFIERS_PER_LINE, MAX_POINTERS_PER_LINE,
    Visit, attribute, unit_cap,
};
use crate::codes::CptCode;
use crate::edits::{ModifierIndicator, ReferenceData};
use crate::modifiers::Modifier;
use crate::policy::{DistinctProcedureModifiers, PayerPolicy, ReferralRequirement};
use crate::units::{CodeMinutes, TieBreak, UnitMethod, VisitUnits, visit_units};
use crate::validation::{FieldError, check_icd10_syntax};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The claim must not go out as it is.
    Error,
    /// The claim may go out, but someone should look.
    Warning,
}

/// What a finding is about; stable identifiers for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCode {
    /// No diagnosis on the claim, or a line that points at none.
    MissingDiagnosis,
    /// A documented diagnosis that is not valid ICD-10-CM syntax, or beyond the twelve item 21 holds.
    InvalidDiagnosis,
    /// A line points at a diagnosis the claim does not have, or at more than four.
    InvalidDiagnosisPointer,
    /// The payer requires a referral and the visit has none.
    ReferralMissing,
    /// The referral does not cover the date of service.
    ReferralNotValidOnDate,
    /// None of the claim's diagnoses is on the referral.
    ReferralDiagnosisMismatch,
    /// A billed code the documented techniques do not support (overcoding).
    CodeNotSupportedByDocumentation,
    /// More units than the documented minutes allow under the payer's method.
    UnitsExceedDocumentedMinutes,
    /// Fewer units than the documented minutes support (undercoding).
    UnitsBelowDocumentedMinutes,
    /// Both codes of an NCCI pair without a distinct-procedure modifier on the column 2 code.
    NcciPairWithoutModifier,
    /// Both codes of an NCCI pair that no modifier can bypass (indicator 0).
    NcciPairNotBypassable,
    /// A distinct-procedure modifier the documentation or the payer does not support.
    DistinctModifierQuestionable,
    /// Both 97124 and 97140 for a payer that wants one per visit.
    MoreThanOneMassageCode,
    /// Units above the medically unlikely edit.
    MueExceeded,
    /// Units above the payer's own maximum per code per visit.
    PayerUnitMaximumExceeded,
    /// 97139 without a written description of the service.
    UnlistedCodeWithoutDescription,
    /// A timed code billed with fewer than 8 documented minutes.
    TimedCodeUnderEightMinutes,
    /// A code the payer does not pay.
    CodeNotAccepted,
    /// A code the payer never pays separately.
    BundledCodeBilled,
    /// An always-therapy line without the payer's plan-of-care modifier.
    PlanOfCareModifierMissing,
    /// More than one line for a code on the date of service (decision 5), or a line on another date.
    LineShape,
}

/// One problem found on a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What kind.
    pub code: FindingCode,
    /// The field concerned, e.g. `lines[1].units` or `visit.referral`.
    pub field: String,
    /// A sentence for the biller.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{severity} {:?} at {}: {}",
            self.code, self.field, self.message
        )
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, severity: Severity, code: FindingCode, field: String, message: String) {
        self.0.push(Finding {
            severity,
            code,
            field,
            message,
        });
    }
}

/// Scrubs `claim` (possibly hand-edited) against the `visit` it bills. Findings come in a stable
/// order: claim-level first, then line by line.
pub fn scrub(
    claim: &Claim,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
) -> Vec<Finding> {
    let mut findings = Findings(Vec::new());
    check_diagnoses(claim, visit, &mut findings);
    check_referral(claim, visit, policy, &mut findings);
    match attribute(visit, policy) {
        Ok(attribution) => {
            check_lines(claim, visit, policy, reference, &attribution, &mut findings)
        }
        Err(error) => findings.push(
            Severity::Error,
            FindingCode::UnitsExceedDocumentedMinutes,
            "visit.services".to_owned(),
            error.to_string(),
        ),
    }
    findings.0
}

fn check_diagnoses(claim: &Claim, visit: &Visit, findings: &mut Findings) {
    if visit.diagnoses.is_empty() || claim.diagnoses.is_empty() {
        findings.push(Severity::Error, FindingCode::MissingDiagnosis, "diagnoses".to_owned(), "the claim has no diagnosis; payers need at least one ICD-10-CM code showing medical necessity".to_owned());
    }
    for (index, text) in visit.diagnoses.iter().enumerate() {
        let field = || format!("visit.diagnoses[{index}]");
        if let Err(problem) = check_icd10_syntax(text) {
            let error = FieldError::new(&field(), text, problem);
            findings.push(
                Severity::Error,
                FindingCode::InvalidDiagnosis,
                field(),
                error.to_string(),
            );
        } else if index >= MAX_DIAGNOSES {
            findings.push(
                Severity::Error,
                FindingCode::InvalidDiagnosis,
                field(),
                format!(
                    "{text} is diagnosis #{}; item 21 holds 12, so move the relevant ones up",
                    index + 1
                ),
            );
        }
    }
    if claim.diagnoses.len() > MAX_DIAGNOSES {
        findings.push(
            Severity::Error,
            FindingCode::InvalidDiagnosis,
            "diagnoses".to_owned(),
            format!(
                "{} diagnoses; item 21 holds at most 12",
                claim.diagnoses.len()
            ),
        );
    }
}

/// The last date a referral covers: its own expiry or the payer's validity window, whichever is
/// earlier.
fn referral_last_day(issued: NaiveDate, expires: NaiveDate, valid_days: u32) -> NaiveDate {
    let payer_limit = issued
        .checked_add_days(Days::new(u64::from(valid_days)))
        .unwrap_or(NaiveDate::MAX);
    expires.min(payer_limit)
}

fn check_referral(claim: &Claim, visit: &Visit, policy: &PayerPolicy, findings: &mut Findings) {
    let ReferralRequirement::Required { valid_days } = policy.referral else {
        return;
    };
    let Some(referral) = &visit.referral else {
        findings.push(
            Severity::Error,
            FindingCode::ReferralMissing,
            "visit.referral".to_owned(),
            format!(
                "payer {} requires a referral or prescription and the visit has none",
                policy.payer_id
            ),
        );
        return;
    };
    let last_day = referral_last_day(referral.issued, referral.expires, valid_days);
    let date = visit.date_of_service;
    if date < referral.issued {
        findings.push(
            Severity::Error,
            FindingCode::ReferralNotValidOnDate,
            "visit.referral.issued".to_owned(),
            format!(
                "the referral was issued on {}, after the date of service {date}",
                referral.issued
            ),
        );
    } else if date > last_day {
        findings.push(Severity::Error, FindingCode::ReferralNotValidOnDate, "visit.referral.expires".to_owned(), format!("the referral expired on {last_day} (its expiry {} or {valid_days} days after issue, whichever is earlier); the date of service is {date}", referral.expires));
    }
    if !referral.diagnoses.is_empty()
        && !claim.diagnoses.iter().any(|diagnosis| {
            referral
                .diagnoses
                .iter()
                .any(|referred| referred == diagnosis.as_str())
        })
    {
        findings.push(
            Severity::Warning,
            FindingCode::ReferralDiagnosisMismatch,
            "diagnoses".to_owned(),
            "none of the claim's diagnoses is named on the referral".to_owned(),
        );
    }
}

fn check_lines(
    claim: &Claim,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    attribution: &Attribution,
    findings: &mut Findings,
) {
    let date = visit.date_of_service;
    let units = documented_units(visit, policy, attribution);

    for (index, line) in claim.lines.iter().enumerate() {
        let field = |name: &str| line_field(index, name);
        if claim.lines[..index]
            .iter()
            .any(|earlier| earlier.code == line.code)
        {
            findings.push(Severity::Error, FindingCode::LineShape, field("code"), format!("{} appears on more than one line; bill each code once per date of service with all its units", line.code));
        }
        if line.date_of_service != date {
            findings.push(
                Severity::Error,
                FindingCode::LineShape,
                field("date_of_service"),
                format!(
                    "the line is dated {} but the visit was on {date}",
                    line.date_of_service
                ),
            );
        }
        if !policy.accepts(line.code) {
            findings.push(
                Severity::Error,
                FindingCode::CodeNotAccepted,
                field("code"),
                format!("payer {} does not pay {}", policy.payer_id, line.code),
            );
        }
        if policy.bundles(line.code) {
            findings.push(Severity::Error, FindingCode::BundledCodeBilled, field("code"), format!("payer {} never pays {} separately and the patient cannot be billed for it; remove the line", policy.payer_id, line.code));
        }
        check_pointers(line, index, claim, findings);
        check_support(line, index, attribution, findings);
        check_units(
            line,
            index,
            visit,
            policy,
            reference,
            attribution,
            units.as_ref(),
            findings,
        );
        check_modifiers(line, index, policy, reference, date, findings);
    }
    check_undercoding(claim, policy, reference, date, units.as_ref(), findings);
    check_pairs(claim, visit, policy, reference, attribution, findings);
}

/// The name of a field of line `index`, built only when a finding needs it.
fn line_field(index: usize, name: &str) -> String {
    format!("lines[{index}].{name}")
}

/// Units the documentation earns per code under the payer's method (bundled codes left out).
fn documented_units(
    visit: &Visit,
    policy: &PayerPolicy,
    attribution: &Attribution,
) -> Option<VisitUnits> {
    let minutes: Vec<CodeMinutes> = attribution
        .codes
        .iter()
        .filter(|documentation| !policy.bundles(documentation.code))
        .map(|documentation| CodeMinutes {
            code: documentation.code,
            minutes: documentation.minutes,
        })
        .collect();
    let tie_break = TieBreak {
        primary: visit
            .primary_code
            .map(|code| attribution.billed_code_for(code)),
        expected_allowed_per_unit: policy.fee_schedule.as_slice(),
    };
    visit_units(policy.unit_method, &minutes, &tie_break).ok()
}

fn check_pointers(line: &ClaimLine, index: usize, claim: &Claim, findings: &mut Findings) {
    let field = || line_field(index, "diagnosis_pointers");
    if line.diagnosis_pointers.is_empty() {
        findings.push(
            Severity::Error,
            FindingCode::MissingDiagnosis,
            field(),
            format!("{} points at no diagnosis", line.code),
        );
    }
    if line.diagnosis_pointers.len() > MAX_POINTERS_PER_LINE {
        findings.push(
            Severity::Error,
            FindingCode::InvalidDiagnosisPointer,
            field(),
            format!(
                "{} pointers; item 24E holds at most 4",
                line.diagnosis_pointers.len()
            ),
        );
    }
    for pointer in &line.diagnosis_pointers {
        if usize::from(pointer.0) >= claim.diagnoses.len() {
            findings.push(
                Severity::Error,
                FindingCode::InvalidDiagnosisPointer,
                field(),
                format!(
                    "pointer {pointer} refers to a diagnosis the claim does not list ({} listed)",
                    claim.diagnoses.len()
                ),
            );
        }
    }
}

/// Overcoding: the billed code must be supported by a documented technique (timed codes) or a
/// documented untimed service; a payer substitution may only pick among codes the techniques
/// support (decision 8).
fn check_support(
    line: &ClaimLine,
    index: usize,
    attribution: &Attribution,
    findings: &mut Findings,
) {
    let field = || line_field(index, "code");
    let code = line.code;
    let Some(documentation) = attribution.get(code) else {
        findings.push(
            Severity::Error,
            FindingCode::CodeNotSupportedByDocumentation,
            field(),
            format!("no documented service supports {code}"),
        );
        return;
    };
    if code.is_timed() {
        let substituted = attribution
            .substitution
            .as_ref()
            .is_some_and(|substitution| {
                substitution.billed == code && substitution.supported.contains(&code)
            });
        for (source, service) in documentation.services() {
            if !code.covers(service.technique) && !substituted {
                findings.push(Severity::Error, FindingCode::CodeNotSupportedByDocumentation, field(), format!("services[{source}] documents {}, which {code} does not cover (it is billed as {})", service.technique, service.technique.billing_code()));
            }
        }
    }
    if code.requires_description() {
        let described = documentation.services().any(|(_, service)| {
            service
                .description
                .as_deref()
                .is_some_and(|text| !text.trim().is_empty())
        });
        if !described {
            findings.push(Severity::Error, FindingCode::UnlistedCodeWithoutDescription, field(), format!("{code} is an unlisted procedure; the payer needs a written description of the service"));
        }
    }
}

#[allow(clippy::too_many_arguments)] // The scrubber's inputs are all needed; bundling them would only hide that.
fn check_units(
    line: &ClaimLine,
    index: usize,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    attribution: &Attribution,
    units: Option<&VisitUnits>,
    findings: &mut Findings,
) {
    let field = || line_field(index, "units");
    let code = line.code;
    let minutes = attribution
        .get(code)
        .map_or(0, |documentation| documentation.minutes);
    let max_earned = match (code.is_timed(), units) {
        (false, _) => u32::from(attribution.get(code).is_some()),
        (true, Some(units)) => units
            .timed
            .codes
            .iter()
            .find(|entry| entry.code == code)
            .map_or(0, |entry| entry.allowed_units.1),
        (true, None) => 0,
    };
    if line.units > max_earned {
        let method = policy.unit_method;
        findings.push(Severity::Error, FindingCode::UnitsExceedDocumentedMinutes, field(), format!("{} units of {code}, but {minutes} documented min allow at most {max_earned} ({method})", line.units));
    }
    if code.is_timed() && minutes < 8 && line.units > 0 {
        let message = match policy.unit_method {
            UnitMethod::CmsTotalTime => format!(
                "{code} has {minutes} documented min; under CMS total time its unit comes from the day's pooled minutes, so make sure the note shows that time"
            ),
            UnitMethod::AmaPerCode => format!(
                "{code} has {minutes} documented min, under the 8 minutes a unit needs (AMA per code)"
            ),
        };
        findings.push(
            Severity::Warning,
            FindingCode::TimedCodeUnderEightMinutes,
            field(),
            message,
        );
    }
    if policy.enforce_ncci_edits
        && let Some(mue) = reference.mue_for(code, visit.date_of_service)
        && line.units > mue
    {
        findings.push(Severity::Error, FindingCode::MueExceeded, field(), format!("{} units of {code} exceed the MUE of {mue} per date of service; the whole line would be denied", line.units));
    }
    if let Some(maximum) = policy.max_units_per_code_per_visit
        && line.units > maximum
    {
        findings.push(
            Severity::Error,
            FindingCode::PayerUnitMaximumExceeded,
            field(),
            format!(
                "{} units of {code} exceed payer {}'s maximum of {maximum} per visit",
                line.units, policy.payer_id
            ),
        );
    }
}

/// Fewer units than documented: each code below the least any allowed assignment gives it (after
/// caps), and a day total below what the timed minutes earn.
fn check_undercoding(
    claim: &Claim,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    date: NaiveDate,
    units: Option<&VisitUnits>,
    findings: &mut Findings,
) {
    let Some(units) = units else { return };
    let billed = |code: CptCode| {
        claim
            .lines
            .iter()
            .filter(|line| line.code == code)
            .map(|line| line.units)
            .sum::<u32>()
    };
    let capped = |code: CptCode, earned: u32| {
        unit_cap(code, date, policy, reference).map_or(earned, |(_, cap)| earned.min(cap))
    };
    let mut any_cap = false;
    for entry in &units.timed.codes {
        let least = capped(entry.code, entry.allowed_units.0);
        any_cap |= least < entry.allowed_units.0 || capped(entry.code, entry.units) < entry.units;
        if billed(entry.code) < least {
            findings.push(
                Severity::Warning,
                FindingCode::UnitsBelowDocumentedMinutes,
                format!("codes[{}]", entry.code),
                format!(
                    "{} min of {} support at least {least} units; the claim bills {}",
                    entry.minutes,
                    entry.code,
                    billed(entry.code)
                ),
            );
        }
    }
    for entry in &units.untimed {
        if billed(entry.code) == 0 {
            findings.push(
                Severity::Warning,
                FindingCode::UnitsBelowDocumentedMinutes,
                format!("codes[{}]", entry.code),
                format!("{} was documented but is not billed", entry.code),
            );
        }
    }
    let timed_billed: u32 = claim
        .lines
        .iter()
        .filter(|line| line.code.is_timed())
        .map(|line| line.units)
        .sum();
    if !any_cap && timed_billed < units.timed.total_units {
        findings.push(
            Severity::Warning,
            FindingCode::UnitsBelowDocumentedMinutes,
            "lines".to_owned(),
            format!(
                "the claim bills {timed_billed} timed units; {} timed min earn {} ({})",
                units.timed.total_timed_minutes, units.timed.total_units, units.timed.method
            ),
        );
    }
}

fn check_modifiers(
    line: &ClaimLine,
    index: usize,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    date: NaiveDate,
    findings: &mut Findings,
) {
    let field = || line_field(index, "modifiers");
    if line.modifiers.len() > MAX_MODIFIERS_PER_LINE {
        findings.push(
            Severity::Error,
            FindingCode::LineShape,
            field(),
            format!(
                "{} modifiers; item 24D holds at most 4",
                line.modifiers.len()
            ),
        );
    }
    if let Some(required) = policy.plan_of_care_modifier
        && reference.is_always_therapy(line.code, date)
        && !line.modifiers.contains(&required)
    {
        findings.push(Severity::Error, FindingCode::PlanOfCareModifierMissing, field(), format!("{} is an always-therapy code and payer {} requires {required}; the claim would be returned", line.code, policy.payer_id));
    }
    let distinct_count = line
        .modifiers
        .iter()
        .filter(|modifier| modifier.is_ncci_distinct_procedure())
        .count();
    if line.modifiers.contains(&Modifier::DistinctProcedural) && distinct_count > 1 {
        findings.push(
            Severity::Error,
            FindingCode::DistinctModifierQuestionable,
            field(),
            "59 and an X modifier must not be reported together on one line".to_owned(),
        );
    }
}

/// NCCI pairs and the one-massage-code rule across the claim's lines.
fn check_pairs(
    claim: &Claim,
    visit: &Visit,
    policy: &PayerPolicy,
    reference: &ReferenceData,
    attribution: &Attribution,
    findings: &mut Findings,
) {
    let date = visit.date_of_service;
    let severity = if policy.enforce_ncci_edits {
        Severity::Error
    } else {
        Severity::Warning
    };
    for (index, line) in claim.lines.iter().enumerate() {
        for other in &claim.lines {
            let Some(edit) = reference.ptp_edit_between(line.code, other.code, date) else {
                continue;
            };
            if edit.column2 != line.code || edit.column1 != other.code {
                continue;
            }
            let field = || line_field(index, "modifiers");
            let first_distinct = line
                .modifiers
                .iter()
                .copied()
                .find(|modifier| modifier.is_ncci_distinct_procedure());
            match (edit.indicator, first_distinct) {
                (ModifierIndicator::NotAllowed, _) => findings.push(severity, FindingCode::NcciPairNotBypassable, field(), format!("{} is column 2 of an NCCI pair with {} (indicator 0): no modifier makes both payable", line.code, other.code)),
                (ModifierIndicator::Allowed, None) => findings.push(severity, FindingCode::NcciPairWithoutModifier, field(), format!("{} and {} are an NCCI pair (indicator 1); without 59/X on {} only {} is paid", line.code, other.code, line.code, other.code)),
                (ModifierIndicator::Allowed, Some(first)) => check_distinct_modifier(line, index, other.code, first, policy, attribution, findings),
                (ModifierIndicator::NotApplicable, _) => {}
            }
        }
    }
    let massage_lines = claim
        .lines
        .iter()
        .filter(|line| line.code.is_massage_or_manual())
        .count();
    if policy.one_massage_or_manual_code_per_visit && massage_lines > 1 {
        findings.push(
            Severity::Error,
            FindingCode::MoreThanOneMassageCode,
            "lines".to_owned(),
            format!(
                "payer {} wants one of 97124/97140 per visit; bill the session under one code",
                policy.payer_id
            ),
        );
    }
}

fn check_distinct_modifier(
    line: &ClaimLine,
    index: usize,
    column1: CptCode,
    first_distinct: Modifier,
    policy: &PayerPolicy,
    attribution: &Attribution,
    findings: &mut Findings,
) {
    let field = || line_field(index, "modifiers");
    let mut distinct = line
        .modifiers
        .iter()
        .copied()
        .filter(|modifier| modifier.is_ncci_distinct_procedure());
    let documentation = attribution.get(line.code);
    let column1_documentation = attribution.get(column1);
    if let (Some(documentation), Some(column1_documentation)) =
        (documentation, column1_documentation)
        && !documentation.regions_disjoint(column1_documentation)
    {
        findings.push(Severity::Error, FindingCode::DistinctModifierQuestionable, field(), format!("{} carries {first_distinct} but the documentation puts it on the same body region as {column1}; a distinct-procedure modifier needs a separate region, encounter or time block", line.code));
    }
    let wanted = match policy.distinct_procedure_modifiers {
        DistinctProcedureModifiers::Use59 => "59",
        DistinctProcedureModifiers::UseXModifiers => "an X modifier (XE/XS/XP/XU)",
        DistinctProcedureModifiers::NotAccepted => "no distinct-procedure modifier at all",
    };
    let fits = match policy.distinct_procedure_modifiers {
        DistinctProcedureModifiers::Use59 => {
            distinct.any(|modifier| modifier == Modifier::DistinctProcedural)
        }
        DistinctProcedureModifiers::UseXModifiers => {
            distinct.any(|modifier| modifier != Modifier::DistinctProcedural)
        }
        DistinctProcedureModifiers::NotAccepted => false,
    };
    if !fits {
        findings.push(
            Severity::Warning,
            FindingCode::DistinctModifierQuestionable,
            field(),
            format!(
                "payer {} accepts {wanted}, but {} carries {first_distinct}",
                policy.payer_id, line.code
            ),
        );
    }
}
