//! The payer-rules engine: pure decisions over a [`RuleBook`]. For one claim line it answers
//! accepted, rejected with a reason, or accepted with changes (substitute code, modifiers to add,
//! units capped) with the expected allowed amount; it also picks the code a visit should bill
//! and prices a whole visit under the rules in force or under any named rules version.
//!
//! The projector calls these functions in-process and the NATS service wraps them, so both give
//! the same answers. Units from minutes come from the billing core's unit allocation; this module
//! only applies payer rules.

use std::fmt;

use chrono::{Days, NaiveDate};
use claimledger_billing::money::MoneyOverflow;
use claimledger_billing::units::{CodeMinutes, UnitsError, visit_units};
use claimledger_billing::{
    Cents, CptCode, DistinctProcedureModifiers, Icd10Code, Modifier, ModifierIndicator,
    ReferralRequirement, TieBreak,
};
use thiserror::Error;

use crate::rulebook::{CompiledPayer, CompiledVersion, RuleBook};

/// Facts about the patient's episode that some payers' limits need. Unknown facts are `None`,
/// and a limit whose fact is unknown is not applied (except a required referral, whose absence
/// is itself the fact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisitContext {
    /// The date the referral or prescription was issued.
    pub referral_date: Option<NaiveDate>,
    /// This visit's number within the calendar year for the payer (1 for the first).
    pub visit_number_in_year: Option<u32>,
    /// The date the claim will be submitted.
    pub submission_date: Option<NaiveDate>,
}

/// One claim line to judge.
#[derive(Debug, Clone, Copy)]
pub struct LineQuery<'a> {
    /// The date of service; it selects the rules in force.
    pub date_of_service: NaiveDate,
    /// The code the documentation supports and the clinic intends to bill.
    pub code: CptCode,
    /// Units on the line.
    pub units: u32,
    /// Modifiers already on the line.
    pub modifiers: &'a [Modifier],
    /// The visit's diagnoses.
    pub diagnoses: &'a [Icd10Code],
    /// The other codes billed for the patient on that date (NCCI edits, one-code-per-visit).
    pub other_codes_on_visit: &'a [CptCode],
    /// Codes the documentation also supports for this time; substitution only picks among these.
    pub supported_alternatives: &'a [CptCode],
    /// Episode facts.
    pub context: VisitContext,
}

/// Which rules judge a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesSelector {
    /// The payer's version in force on the date of service.
    InForce,
    /// A specific version number, whatever the date ("what would this visit bill under X").
    Version(u32),
}

/// Why a line is not payable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionReason {
    /// The payer does not cover the code and the documentation supports no covered alternative.
    CodeNotCovered {
        /// The refused code.
        code: CptCode,
    },
    /// The payer never pays the code separately.
    Bundled {
        /// The bundled code.
        code: CptCode,
    },
    /// An NCCI edit with `column1` on the same visit, which no modifier bypasses.
    NcciEdit {
        /// The payable code of the pair.
        column1: CptCode,
    },
    /// An NCCI edit with `column1` that the payer's distinct-procedure modifier could bypass,
    /// but the line carries none the payer accepts.
    NcciModifierRequired {
        /// The payable code of the pair.
        column1: CptCode,
        /// The modifier family the payer accepts.
        accepted: DistinctProcedureModifiers,
    },
    /// The payer pays one of 97124/97140 per visit and `kept` wins.
    OneMassageOrManualCodePerVisit {
        /// The code that stays on the claim.
        kept: CptCode,
    },
    /// The payer needs a referral or prescription and there is none on or before the visit.
    ReferralMissing,
    /// The referral had expired on the date of service.
    ReferralExpired {
        /// The last date it covered.
        valid_until: NaiveDate,
    },
    /// The visit is beyond the payer's yearly cap.
    VisitCapReached {
        /// Visits per year the payer covers.
        cap: u32,
    },
    /// The submission date is past the payer's filing limit.
    TimelyFilingExpired {
        /// The last date the claim could be filed.
        deadline: NaiveDate,
    },
    /// The line has no diagnosis to show medical necessity.
    DiagnosisMissing,
    /// The documented minutes allow no unit (fewer than 8 timed minutes).
    NoBillableUnits,
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectionReason::CodeNotCovered { code } => write!(
                f,
                "{code} is not covered by this payer and the documentation supports no covered alternative"
            ),
            RejectionReason::Bundled { code } => {
                write!(f, "{code} is bundled: this payer never pays it separately")
            }
            RejectionReason::NcciEdit { column1 } => write!(
                f,
                "NCCI edit: only {column1} is payable when both are billed the same day, and no modifier bypasses it"
            ),
            RejectionReason::NcciModifierRequired { column1, accepted } => match accepted {
                DistinctProcedureModifiers::Use59 => write!(
                    f,
                    "NCCI edit with {column1}: payable only with modifier 59 when the documentation shows a distinct service"
                ),
                DistinctProcedureModifiers::UseXModifiers => write!(
                    f,
                    "NCCI edit with {column1}: payable only with an X modifier (XE, XS, XP or XU) when the documentation shows a distinct service"
                ),
                DistinctProcedureModifiers::NotAccepted => write!(
                    f,
                    "NCCI edit with {column1}: this payer accepts no bypass modifier"
                ),
            },
            RejectionReason::OneMassageOrManualCodePerVisit { kept } => write!(
                f,
                "this payer pays one of 97124/97140 per visit; bill the visit's time as {kept}"
            ),
            RejectionReason::ReferralMissing => f.write_str(
                "this payer requires a referral or prescription dated on or before the visit",
            ),
            RejectionReason::ReferralExpired { valid_until } => {
                write!(f, "the referral was valid until {valid_until}")
            }
            RejectionReason::VisitCapReached { cap } => {
                write!(f, "this payer covers {cap} visits per year")
            }
            RejectionReason::TimelyFilingExpired { deadline } => {
                write!(
                    f,
                    "the filing limit for this date of service was {deadline}"
                )
            }
            RejectionReason::DiagnosisMissing => {
                f.write_str("at least one diagnosis is needed to show medical necessity")
            }
            RejectionReason::NoBillableUnits => {
                f.write_str("the documented minutes allow no unit (8 minutes or more are needed)")
            }
        }
    }
}

/// What to change on a line before it goes out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// The code to bill instead.
    pub substitute_code: Option<CptCode>,
    /// Modifiers the payer requires that the line lacks.
    pub modifiers_to_add: Vec<Modifier>,
    /// The units after the payer's and MUE caps.
    pub units_capped_to: Option<u32>,
}

/// The engine's verdict on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Payable as it stands.
    Accepted,
    /// Not payable.
    Rejected(RejectionReason),
    /// Payable once the changes are made.
    AcceptedWithChanges(Changes),
}

/// A decision on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub outcome: Outcome,
    /// The code the line should go out with (after changes), or the judged code when rejected.
    pub billed_code: CptCode,
    /// The units the line should go out with (after changes), or the judged units when rejected.
    pub billed_units: u32,
    /// Fee schedule amount for the line as billed; zero when rejected.
    pub expected_allowed: Cents,
    /// The payer's rules version that decided.
    pub rules_version: u32,
}

/// Why a query could not be answered at all (as opposed to a line being rejected).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// No rules file defines the payer.
    #[error("payer: {payer:?} is not a known payer")]
    UnknownPayer {
        /// The payer asked for.
        payer: String,
    },
    /// The payer has no version in force on the date.
    #[error("date_of_service: payer {payer:?} has no rules in force on {date_of_service}")]
    NoRulesInForce {
        /// The payer.
        payer: String,
        /// The date asked for.
        date_of_service: NaiveDate,
    },
    /// The payer has no version with that number.
    #[error("rules_version: payer {payer:?} has no rules version {version}")]
    UnknownRulesVersion {
        /// The payer.
        payer: String,
        /// The version asked for.
        version: u32,
    },
    /// Units could not be derived from the visit's minutes.
    #[error(transparent)]
    Units(#[from] UnitsError),
    /// An allowed amount left the `i64` range.
    #[error(transparent)]
    Amount(#[from] MoneyOverflow),
}

/// Why [`RuleBook::choose_code`] picked its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceReason {
    /// The payer states a preferred code among 97124/97140 and the documentation supports it.
    PayerPreference,
    /// Only one supported code is paid by the payer.
    OnlyCoveredCode,
    /// It has the highest expected allowed amount.
    HighestAllowed,
    /// Several codes tie on the allowed amount; the lowest code number wins (decision 3).
    LowestCodeNumber,
}

impl ChoiceReason {
    /// A short phrase for people and the wire.
    pub const fn describe(self) -> &'static str {
        match self {
            ChoiceReason::PayerPreference => "payer's preferred code",
            ChoiceReason::OnlyCoveredCode => "only covered code",
            ChoiceReason::HighestAllowed => "highest allowed amount",
            ChoiceReason::LowestCodeNumber => "lowest code number",
        }
    }
}

/// The code a visit should bill for a payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeChoice {
    /// The chosen code, or `None` when the payer pays none of the supported codes.
    pub code: Option<CptCode>,
    /// Allowed amount for the requested units of the chosen code.
    pub expected_allowed: Cents,
    /// Why.
    pub reason: Option<ChoiceReason>,
    /// The rules version used.
    pub rules_version: u32,
}

/// How much of a code a visit line documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Units already computed.
    Units(u32),
    /// Minutes, turned into units with the rules version's unit method.
    Minutes(u32),
}

/// One line of a visit to price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitLine {
    /// The code.
    pub code: CptCode,
    /// Units or minutes.
    pub quantity: Quantity,
    /// Modifiers already on the line.
    pub modifiers: Vec<Modifier>,
    /// Codes the documentation also supports for this time.
    pub supported_alternatives: Vec<CptCode>,
}

/// A whole visit to price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitQuery {
    /// The date of service.
    pub date_of_service: NaiveDate,
    /// One line per code (decision 5).
    pub lines: Vec<VisitLine>,
    /// The visit's diagnoses.
    pub diagnoses: Vec<Icd10Code>,
    /// Episode facts.
    pub context: VisitContext,
}

/// A priced visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitDecision {
    /// One decision per query line, in query order.
    pub lines: Vec<Decision>,
    /// The sum of the lines' expected allowed amounts.
    pub expected_allowed: Cents,
    /// The rules version used.
    pub rules_version: u32,
}

impl RuleBook {
    fn compiled_payer(&self, payer: &str) -> Result<&CompiledPayer, EngineError> {
        self.payers
            .get(payer)
            .ok_or_else(|| EngineError::UnknownPayer {
                payer: payer.to_owned(),
            })
    }

    fn select(
        &self,
        payer: &str,
        selector: RulesSelector,
        date_of_service: NaiveDate,
    ) -> Result<&CompiledVersion, EngineError> {
        let compiled = self.compiled_payer(payer)?;
        match selector {
            RulesSelector::InForce => {
                compiled
                    .in_force(date_of_service)
                    .ok_or_else(|| EngineError::NoRulesInForce {
                        payer: payer.to_owned(),
                        date_of_service,
                    })
            }
            RulesSelector::Version(version) => {
                compiled
                    .version(version)
                    .ok_or_else(|| EngineError::UnknownRulesVersion {
                        payer: payer.to_owned(),
                        version,
                    })
            }
        }
    }

    /// Judges one line under the payer's rules in force on its date of service.
    pub fn decide(&self, payer: &str, line: &LineQuery<'_>) -> Result<Decision, EngineError> {
        self.decide_with(payer, RulesSelector::InForce, line)
    }

    /// Judges one line under the selected rules.
    pub fn decide_with(
        &self,
        payer: &str,
        selector: RulesSelector,
        line: &LineQuery<'_>,
    ) -> Result<Decision, EngineError> {
        let version = self.select(payer, selector, line.date_of_service)?;
        self.decide_line(version, line)
    }

    fn decide_line(
        &self,
        version: &CompiledVersion,
        line: &LineQuery<'_>,
    ) -> Result<Decision, EngineError> {
        let policy = version.policy();
        let rejected = |reason: RejectionReason| Decision {
            outcome: Outcome::Rejected(reason),
            billed_code: line.code,
            billed_units: line.units,
            expected_allowed: Cents::ZERO,
            rules_version: policy.version,
        };
        if let Some(reason) = episode_rejection(version, line) {
            return Ok(rejected(reason));
        }
        if line.units == 0 {
            return Ok(rejected(RejectionReason::NoBillableUnits));
        }
        if version.bundles(line.code) {
            return Ok(rejected(RejectionReason::Bundled { code: line.code }));
        }

        let billed_code = match billed_code(version, line) {
            Some(code) => code,
            None => {
                return Ok(rejected(RejectionReason::CodeNotCovered {
                    code: line.code,
                }));
            }
        };
        if let Some(reason) = visit_rejection(self, version, line, billed_code) {
            return Ok(Decision {
                billed_code,
                ..rejected(reason)
            });
        }

        let mut changes = Changes {
            substitute_code: (billed_code != line.code).then_some(billed_code),
            ..Changes::default()
        };
        if let Some(required) = policy.plan_of_care_modifier
            && self
                .reference
                .is_always_therapy(billed_code, line.date_of_service)
            && !line.modifiers.contains(&required)
        {
            changes.modifiers_to_add.push(required);
        }
        let mut cap = policy.max_units_per_code_per_visit;
        if !billed_code.is_timed() {
            // Untimed codes bill one unit whatever the time (decision 7).
            cap = Some(1);
        }
        if policy.enforce_ncci_edits
            && let Some(mue) = self.reference.mue(billed_code, line.date_of_service)
        {
            cap = Some(cap.map_or(mue, |payer_cap| payer_cap.min(mue)));
        }
        let billed_units = match cap {
            Some(cap) if line.units > cap => {
                changes.units_capped_to = Some(cap);
                cap
            }
            _ => line.units,
        };
        let expected_allowed = version
            .fee(billed_code)
            .times_units(billed_units, "expected_allowed")?;
        let outcome = if changes == Changes::default() {
            Outcome::Accepted
        } else {
            Outcome::AcceptedWithChanges(changes)
        };
        Ok(Decision {
            outcome,
            billed_code,
            billed_units,
            expected_allowed,
            rules_version: policy.version,
        })
    }

    /// Which code a visit should bill for this payer among the codes its documentation supports:
    /// the payer's preferred code if it is supported, else the highest allowed amount for
    /// `units`, else the lowest code number.
    pub fn choose_code(
        &self,
        payer: &str,
        date_of_service: NaiveDate,
        supported_codes: &[CptCode],
        units: u32,
    ) -> Result<CodeChoice, EngineError> {
        let version = self.select(payer, RulesSelector::InForce, date_of_service)?;
        let policy = version.policy();
        let covered: Vec<CptCode> = supported_codes
            .iter()
            .copied()
            .filter(|code| version.pays(*code))
            .collect();
        let best = covered.iter().copied().max_by(|first, second| {
            version
                .fee(*first)
                .cmp(&version.fee(*second))
                .then_with(|| second.cmp(first))
        });
        let Some(best) = best else {
            return Ok(CodeChoice {
                code: None,
                expected_allowed: Cents::ZERO,
                reason: None,
                rules_version: policy.version,
            });
        };
        let preferred = policy
            .preferred_massage_code
            .filter(|code| covered.contains(code));
        let tied = covered
            .iter()
            .any(|other| *other != best && version.fee(*other) == version.fee(best));
        let (code, reason) = match preferred {
            Some(code) => (code, ChoiceReason::PayerPreference),
            None if covered.iter().all(|other| *other == best) => {
                (best, ChoiceReason::OnlyCoveredCode)
            }
            None if tied => (best, ChoiceReason::LowestCodeNumber),
            None => (best, ChoiceReason::HighestAllowed),
        };
        Ok(CodeChoice {
            code: Some(code),
            expected_allowed: version.fee(code).times_units(units, "expected_allowed")?,
            reason: Some(reason),
            rules_version: policy.version,
        })
    }

    /// Prices a whole visit: each line judged with the others as its visit, under the selected
    /// rules. Lines given in minutes get their units from the billing core with the version's
    /// unit method.
    pub fn evaluate_visit(
        &self,
        payer: &str,
        selector: RulesSelector,
        visit: &VisitQuery,
    ) -> Result<VisitDecision, EngineError> {
        let version = self.select(payer, selector, visit.date_of_service)?;
        let policy = version.policy();
        let minutes: Vec<CodeMinutes> = visit
            .lines
            .iter()
            .filter_map(|line| match line.quantity {
                Quantity::Minutes(minutes) => Some(CodeMinutes {
                    code: line.code,
                    minutes,
                }),
                Quantity::Units(_) => None,
            })
            .collect();
        let from_minutes = if minutes.is_empty() {
            None
        } else {
            let fees: Vec<(CptCode, Cents)> = policy.fee_schedule.iter().collect();
            let tie_break = TieBreak {
                primary: None,
                expected_allowed_per_unit: &fees,
            };
            Some(visit_units(policy.unit_method, &minutes, &tie_break)?)
        };
        let codes: Vec<CptCode> = visit.lines.iter().map(|line| line.code).collect();
        let mut lines: Vec<Decision> = Vec::with_capacity(visit.lines.len());
        for (index, line) in visit.lines.iter().enumerate() {
            let units = match (line.quantity, &from_minutes) {
                (Quantity::Units(units), _) => units,
                (Quantity::Minutes(_), Some(allocation)) if line.code.is_timed() => {
                    allocation.timed.units_of(line.code)
                }
                (Quantity::Minutes(_), _) => 1,
            };
            let other_codes: Vec<CptCode> = codes
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, code)| *code)
                .collect();
            let query = LineQuery {
                date_of_service: visit.date_of_service,
                code: line.code,
                units,
                modifiers: &line.modifiers,
                diagnoses: &visit.diagnoses,
                other_codes_on_visit: &other_codes,
                supported_alternatives: &line.supported_alternatives,
                context: visit.context,
            };
            lines.push(self.decide_line(version, &query)?);
        }
        let expected_allowed = Cents::sum(
            lines.iter().map(|line| line.expected_allowed),
            "expected_allowed",
        )?;
        Ok(VisitDecision {
            lines,
            expected_allowed,
            rules_version: policy.version,
        })
    }
}

/// Rejections that depend on the episode, not the code: diagnosis, filing limit, referral,
/// yearly visit cap.
fn episode_rejection(version: &CompiledVersion, line: &LineQuery<'_>) -> Option<RejectionReason> {
    let policy = version.policy();
    if line.diagnoses.is_empty() {
        return Some(RejectionReason::DiagnosisMissing);
    }
    if let Some(submitted) = line.context.submission_date {
        let deadline = line
            .date_of_service
            .checked_add_days(Days::new(u64::from(policy.timely_filing_days)))
            .unwrap_or(NaiveDate::MAX);
        if submitted > deadline {
            return Some(RejectionReason::TimelyFilingExpired { deadline });
        }
    }
    if let ReferralRequirement::Required { valid_days } = policy.referral {
        match line.context.referral_date {
            Some(issued) if issued <= line.date_of_service => {
                let valid_until = issued
                    .checked_add_days(Days::new(u64::from(valid_days)))
                    .unwrap_or(NaiveDate::MAX);
                if line.date_of_service > valid_until {
                    return Some(RejectionReason::ReferralExpired { valid_until });
                }
            }
            _ => return Some(RejectionReason::ReferralMissing),
        }
    }
    if let (Some(cap), Some(number)) = (
        policy.max_visits_per_year,
        line.context.visit_number_in_year,
    ) && number > cap
    {
        return Some(RejectionReason::VisitCapReached { cap });
    }
    None
}

/// The code the line should bill: the payer's preferred 97124/97140 when the documentation
/// supports it, the code itself when the payer pays it, else the best-paid supported alternative.
/// `None` when nothing the documentation supports is payable.
fn billed_code(version: &CompiledVersion, line: &LineQuery<'_>) -> Option<CptCode> {
    let policy = version.policy();
    if line.code.is_massage_or_manual()
        && let Some(preferred) = policy.preferred_massage_code
        && preferred != line.code
        && line.supported_alternatives.contains(&preferred)
        && version.pays(preferred)
    {
        return Some(preferred);
    }
    if version.pays(line.code) {
        return Some(line.code);
    }
    line.supported_alternatives
        .iter()
        .copied()
        .filter(|code| version.pays(*code))
        .max_by(|first, second| {
            version
                .fee(*first)
                .cmp(&version.fee(*second))
                .then_with(|| second.cmp(first))
        })
}

/// Rejections that depend on the other codes of the visit: one massage/manual code per visit,
/// then NCCI procedure-to-procedure edits.
fn visit_rejection(
    book: &RuleBook,
    version: &CompiledVersion,
    line: &LineQuery<'_>,
    billed_code: CptCode,
) -> Option<RejectionReason> {
    let policy = version.policy();
    if policy.one_massage_or_manual_code_per_visit && billed_code.is_massage_or_manual() {
        let rival = line
            .other_codes_on_visit
            .iter()
            .copied()
            .find(|other| other.is_massage_or_manual() && *other != billed_code);
        if let Some(rival) = rival {
            let kept = policy.preferred_massage_code.unwrap_or_else(|| {
                match version.fee(rival).cmp(&version.fee(billed_code)) {
                    std::cmp::Ordering::Greater => rival,
                    std::cmp::Ordering::Less => billed_code,
                    std::cmp::Ordering::Equal => rival.min(billed_code),
                }
            });
            if kept != billed_code {
                return Some(RejectionReason::OneMassageOrManualCodePerVisit { kept });
            }
        }
    }
    if !policy.enforce_ncci_edits {
        return None;
    }
    for other in line.other_codes_on_visit {
        let Some(edit) = book
            .reference
            .edit_against(billed_code, *other, line.date_of_service)
        else {
            continue;
        };
        match edit.indicator {
            ModifierIndicator::NotAllowed => {
                return Some(RejectionReason::NcciEdit {
                    column1: edit.column1,
                });
            }
            ModifierIndicator::Allowed => {
                let bypassed = match policy.distinct_procedure_modifiers {
                    DistinctProcedureModifiers::Use59 => {
                        line.modifiers.contains(&Modifier::DistinctProcedural)
                    }
                    DistinctProcedureModifiers::UseXModifiers => line.modifiers.iter().any(|m| {
                        m.is_ncci_distinct_procedure() && *m != Modifier::DistinctProcedural
                    }),
                    // A payer that accepts no bypass modifier treats the pair like indicator 0.
                    DistinctProcedureModifiers::NotAccepted => {
                        return Some(RejectionReason::NcciEdit {
                            column1: edit.column1,
                        });
                    }
                };
                if !bypassed {
                    return Some(RejectionReason::NcciModifierRequired {
                        column1: edit.column1,
                        accepted: policy.distinct_procedure_modifiers,
                    });
                }
            }
            ModifierIndicator::NotApplicable => {}
        }
    }
    None
}
