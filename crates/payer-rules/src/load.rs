//! Reading and validating a rules directory: one TOML file per payer plus the dated reference
//! tables under `reference/`. Every problem in every file is collected and reported as
//! `file:line: field: reason`; a directory with any problem yields no rules at all, so nothing is
//! ever published or served from half-valid data.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use claimledger_billing::{
    AlwaysTherapyEntry, Cents, Confidence, CptCode, DistinctProcedureModifiers, EffectivePeriod,
    Modifier, ModifierIndicator, MueLimit, PayerPolicy, PriceList, PtpEdit, ReferenceData,
    ReferralRequirement, UnitMethod,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use thiserror::Error;
use toml::Spanned;
use toml::value::Datetime;

use crate::files::{
    AlwaysTherapyFile, ConfidenceName, DistinctModifiersName, MueFile, PayerFile, PtpFile,
    UnitMethodName, VersionTable,
};
use crate::rulebook::{PayerRules, PayerRulesVersion, RuleBook};

mod diagnostics;
mod reference_tables;

use diagnostics::{Problems, parse_toml};
use reference_tables::{parse_always_therapy, parse_mue, parse_ptp};

/// The reference tables' file names, relative to the rules directory.
pub const PTP_FILE: &str = "reference/ncci-ptp.toml";
/// See [`PTP_FILE`].
pub const MUE_FILE: &str = "reference/mue.toml";
/// See [`PTP_FILE`].
pub const ALWAYS_THERAPY_FILE: &str = "reference/always-therapy.toml";

/// One problem in one rules file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}:{line}: {field}: {reason}", file.display())]
pub struct RuleFileError {
    /// The file, as it was named when read.
    pub file: PathBuf,
    /// The 1-based line the problem is on.
    pub line: usize,
    /// The field at fault, as a path such as `versions[1].fee_schedule."97124"`.
    pub field: String,
    /// Why it was refused, as a sentence fragment.
    pub reason: String,
}

/// Every problem found in a rules directory, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRules {
    /// At least one problem.
    pub errors: Vec<RuleFileError>,
}

impl fmt::Display for InvalidRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the rules files", self.errors.len())?;
        for error in &self.errors {
            write!(f, "\n{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRules {}

/// Why a rules directory could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The directory or one of its files could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The files were read but are not valid rules.
    #[error(transparent)]
    Invalid(#[from] InvalidRules),
}

/// The text of one rules file and the name it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path used in error messages.
    pub path: PathBuf,
    /// The file's contents.
    pub text: String,
}

impl SourceFile {
    /// A source file from a name and its text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    fn read(path: PathBuf) -> Result<SourceFile, LoadError> {
        match fs::read_to_string(&path) {
            Ok(text) => Ok(SourceFile { path, text }),
            Err(source) => Err(LoadError::Read { path, source }),
        }
    }

    /// The 1-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count()
            + 1
    }
}

/// Every file of a rules directory, read but not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSources {
    /// One file per payer, in file-name order.
    pub payer_files: Vec<SourceFile>,
    /// `reference/ncci-ptp.toml`.
    pub ptp: SourceFile,
    /// `reference/mue.toml`.
    pub mue: SourceFile,
    /// `reference/always-therapy.toml`.
    pub always_therapy: SourceFile,
}

impl RuleSources {
    /// Reads `dir/*.toml` (the payers) and the three reference files under `dir/reference/`.
    pub fn read_dir(dir: &Path) -> Result<RuleSources, LoadError> {
        let entries = fs::read_dir(dir).map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut payer_paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
                payer_paths.push(path);
            }
        }
        payer_paths.sort();
        let payer_files = payer_paths
            .into_iter()
            .map(SourceFile::read)
            .collect::<Result<Vec<SourceFile>, LoadError>>()?;
        Ok(RuleSources {
            payer_files,
            ptp: SourceFile::read(dir.join(PTP_FILE))?,
            mue: SourceFile::read(dir.join(MUE_FILE))?,
            always_therapy: SourceFile::read(dir.join(ALWAYS_THERAPY_FILE))?,
        })
    }

    /// Validates every file and builds the rule book, or reports every problem found.
    pub fn compile(&self) -> Result<RuleBook, InvalidRules> {
        let mut errors: Vec<RuleFileError> = Vec::new();
        let reference = ReferenceData {
            ptp_edits: parse_ptp(&self.ptp, &mut errors),
            mue_limits: parse_mue(&self.mue, &mut errors),
            always_therapy: parse_always_therapy(&self.always_therapy, &mut errors),
        };
        let mut payers: Vec<PayerRules> = Vec::new();
        let mut seen_payers: BTreeSet<String> = BTreeSet::new();
        for file in &self.payer_files {
            if let Some(payer) = parse_payer(file, &mut errors) {
                if !seen_payers.insert(payer.payer.clone()) {
                    errors.push(RuleFileError {
                        file: file.path.clone(),
                        line: 1,
                        field: "payer".to_owned(),
                        reason: format!("payer {:?} is defined by another file too", payer.payer),
                    });
                }
                payers.push(payer);
            }
        }
        if payers.is_empty() && errors.is_empty() {
            errors.push(RuleFileError {
                file: PathBuf::from("."),
                line: 1,
                field: "payers".to_owned(),
                reason: "the rules directory holds no payer file (*.toml)".to_owned(),
            });
        }
        if errors.is_empty() {
            Ok(RuleBook::new(payers, reference))
        } else {
            Err(InvalidRules { errors })
        }
    }
}

/// Reads and validates a rules directory in one step.
pub fn load_dir(dir: &Path) -> Result<RuleBook, LoadError> {
    Ok(RuleSources::read_dir(dir)?.compile()?)
}

/// Parses one published version (the `rules_toml` of a `RulesChanged` event, as written by
/// [`crate::rulebook::PayerRulesVersion::canonical_toml`]) back into its payer id and rules, with the
/// same validation as a rules file except that the document holds a single version whose number
/// need not be 1. `name` is what errors are reported under, e.g. the event's log position.
pub fn parse_published_version(
    name: &str,
    text: &str,
) -> Result<(String, PayerRulesVersion), InvalidRules> {
    let file = SourceFile::new(name, text);
    let mut errors: Vec<RuleFileError> = Vec::new();
    let parsed: Option<PayerFile> = parse_toml(&file, &mut errors);
    if let Some(parsed) = parsed {
        let mut problems = Problems {
            file: &file,
            errors: &mut errors,
        };
        match parsed.versions.as_slice() {
            [table] => {
                let payer = parsed.payer.get_ref().clone();
                let policy = version_policy(&mut problems, &payer, "versions[0]", table.get_ref());
                let effective_to = table
                    .get_ref()
                    .effective_to
                    .as_ref()
                    .and_then(|value| problems.date("versions[0].effective_to", value));
                if let Some(policy) = policy
                    && errors.is_empty()
                {
                    let canonical_toml = canonical_version_toml(&parsed, table);
                    let content_sha256: [u8; 32] = Sha256::digest(canonical_toml.as_bytes()).into();
                    return Ok((
                        payer,
                        PayerRulesVersion {
                            policy,
                            effective_to,
                            canonical_toml,
                            content_sha256,
                        },
                    ));
                }
            }
            _ => problems.push(
                0..0,
                "versions",
                "a published rules document holds exactly one [[versions]] table",
            ),
        }
    }
    Err(InvalidRules { errors })
}

fn parse_payer(file: &SourceFile, errors: &mut Vec<RuleFileError>) -> Option<PayerRules> {
    let parsed: PayerFile = parse_toml(file, errors)?;
    let errors_before = errors.len();
    let mut problems = Problems {
        file,
        errors: &mut *errors,
    };
    let payer = parsed.payer.get_ref().clone();
    let valid_id = !payer.is_empty()
        && payer
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_id {
        problems.push(
            parsed.payer.span(),
            "payer",
            format!("{payer:?} must be lower-case letters, digits and hyphens"),
        );
    }
    let stem = file.path.file_stem().and_then(|stem| stem.to_str());
    if valid_id && stem != Some(payer.as_str()) {
        problems.push(
            parsed.payer.span(),
            "payer",
            format!(
                "{payer:?} must match the file name ({})",
                file.path.display()
            ),
        );
    }
    if parsed.versions.is_empty() {
        problems.push(0..0, "versions", "the payer has no [[versions]] table");
    }
    let mut versions: Vec<PayerRulesVersion> = Vec::new();
    for (index, table) in parsed.versions.iter().enumerate() {
        let prefix = format!("versions[{index}]");
        let Some(policy) = version_policy(&mut problems, &payer, &prefix, table.get_ref()) else {
            continue;
        };
        let effective_to = match &table.get_ref().effective_to {
            Some(value) => match problems.date(&format!("{prefix}.effective_to"), value) {
                Some(date) if date < policy.effective_from => {
                    problems.push(
                        value.span(),
                        format!("{prefix}.effective_to"),
                        format!("{date} is before effective_from {}", policy.effective_from),
                    );
                    continue;
                }
                Some(date) => Some(date),
                None => continue,
            },
            None => None,
        };
        let expected_version = index + 1;
        if usize::try_from(policy.version).ok() != Some(expected_version) {
            problems.push(
                table.get_ref().version.span(),
                format!("{prefix}.version"),
                format!(
                    "{} is out of order: versions are numbered 1, 2, 3... in file order, so this one must be {expected_version}",
                    policy.version
                ),
            );
        }
        if let Some(previous) = versions.last() {
            let span = table.get_ref().effective_from.span();
            if policy.effective_from <= previous.policy.effective_from {
                problems.push(
                    span,
                    format!("{prefix}.effective_from"),
                    format!(
                        "{} is not after the previous version's effective_from {} (versions must be in date order)",
                        policy.effective_from, previous.policy.effective_from
                    ),
                );
            } else if previous
                .effective_to
                .is_some_and(|end| end >= policy.effective_from)
            {
                problems.push(
                    span,
                    format!("{prefix}.effective_from"),
                    format!(
                        "{} overlaps the previous version, which runs until {}",
                        policy.effective_from,
                        previous.effective_to.unwrap_or(policy.effective_from)
                    ),
                );
            }
        }
        let canonical_toml = canonical_version_toml(&parsed, table);
        let content_sha256: [u8; 32] = Sha256::digest(canonical_toml.as_bytes()).into();
        versions.push(PayerRulesVersion {
            policy,
            effective_to,
            canonical_toml,
            content_sha256,
        });
    }
    (errors.len() == errors_before).then_some(PayerRules {
        payer,
        name: parsed.name,
        versions,
    })
}

/// One version alone as a self-contained payer document: what is published to the log and hashed,
/// so that editing comments or other versions does not change this version's content.
fn canonical_version_toml(file: &PayerFile, table: &Spanned<VersionTable>) -> String {
    let single = PayerFile {
        payer: file.payer.clone(),
        name: file.name.clone(),
        versions: vec![table.clone()],
    };
    // Serialising plain strings, integers, dates and tables cannot fail; an empty document would
    // still hash deterministically if it ever did.
    toml::to_string(&single).unwrap_or_default()
}

fn version_policy(
    problems: &mut Problems<'_>,
    payer: &str,
    prefix: &str,
    table: &VersionTable,
) -> Option<PayerPolicy> {
    let field = |name: &str| format!("{prefix}.{name}");
    let mut ok = true;
    let version = problems.count(&field("version"), &table.version, 1);
    let effective_from = problems.date(&field("effective_from"), &table.effective_from);

    let mut accepted_codes: BTreeSet<CptCode> = BTreeSet::new();
    for (index, value) in table.accepted_codes.iter().enumerate() {
        let name = format!("{prefix}.accepted_codes[{index}]");
        match problems.code(&name, value) {
            Some(code) if !accepted_codes.insert(code) => {
                problems.push(value.span(), name, format!("{code} is listed twice"));
                ok = false;
            }
            Some(_) => {}
            None => ok = false,
        }
    }
    let mut bundled_codes: BTreeSet<CptCode> = BTreeSet::new();
    for (index, value) in table.bundled_codes.iter().enumerate() {
        let name = format!("{prefix}.bundled_codes[{index}]");
        match problems.code(&name, value) {
            Some(code) if !bundled_codes.insert(code) => {
                problems.push(value.span(), name, format!("{code} is listed twice"));
                ok = false;
            }
            Some(_) => {}
            None => ok = false,
        }
    }
    let preferred_massage_code = match &table.preferred_massage_code {
        Some(value) => {
            let name = field("preferred_massage_code");
            match problems.code(&name, value) {
                Some(code) if !code.is_massage_or_manual() => {
                    problems.push(value.span(), name, format!("{code} is not 97124 or 97140"));
                    ok = false;
                    None
                }
                Some(code) if !accepted_codes.contains(&code) => {
                    problems.push(
                        value.span(),
                        name,
                        format!("{code} is not among accepted_codes"),
                    );
                    ok = false;
                    None
                }
                Some(code) => Some(code),
                None => {
                    ok = false;
                    None
                }
            }
        }
        None => None,
    };
    let plan_of_care_modifier = match &table.plan_of_care_modifier {
        Some(value) => {
            let name = field("plan_of_care_modifier");
            match value.get_ref().parse::<Modifier>() {
                Ok(modifier) if modifier.is_therapy_discipline() => Some(modifier),
                Ok(modifier) => {
                    problems.push(
                        value.span(),
                        name,
                        format!("{modifier} is not a plan-of-care modifier (GP, GO or GN)"),
                    );
                    ok = false;
                    None
                }
                Err(error) => {
                    problems.push(value.span(), name, error.to_string());
                    ok = false;
                    None
                }
            }
        }
        None => None,
    };
    let max_units_per_code_per_visit = match &table.max_units_per_code_per_visit {
        Some(value) => {
            let parsed = problems.count(&field("max_units_per_code_per_visit"), value, 1);
            ok &= parsed.is_some();
            parsed
        }
        None => None,
    };
    let max_visits_per_year = match &table.max_visits_per_year {
        Some(value) => {
            let parsed = problems.count(&field("max_visits_per_year"), value, 1);
            ok &= parsed.is_some();
            parsed
        }
        None => None,
    };
    let timely_filing_days =
        problems.count(&field("timely_filing_days"), &table.timely_filing_days, 1);
    let referral = match &table.referral {
        Some(referral) => {
            match problems.count(&field("referral.valid_days"), &referral.valid_days, 1) {
                Some(valid_days) => ReferralRequirement::Required { valid_days },
                None => {
                    ok = false;
                    ReferralRequirement::NotRequired
                }
            }
        }
        None => ReferralRequirement::NotRequired,
    };

    let mut fees: Vec<(CptCode, Cents)> = Vec::new();
    for (key, amount) in &table.fee_schedule {
        let name = format!("{prefix}.fee_schedule.\"{}\"", key.get_ref());
        let Some(code) = problems.code(&name, key) else {
            ok = false;
            continue;
        };
        let cents = *amount.get_ref();
        if cents < 0 {
            problems.push(
                amount.span(),
                name,
                format!("{cents} is negative (fees are allowed cents per unit, 0 or more)"),
            );
            ok = false;
        } else if !accepted_codes.contains(&code) && !bundled_codes.contains(&code) {
            problems.push(
                amount.span(),
                name,
                format!("{code} has a fee but is neither accepted nor bundled"),
            );
            ok = false;
        } else if bundled_codes.contains(&code) && cents != 0 {
            problems.push(
                amount.span(),
                name,
                format!("{code} is bundled (never paid separately), so its fee must be 0"),
            );
            ok = false;
        } else {
            fees.push((code, Cents(cents)));
        }
    }
    for (index, value) in table.accepted_codes.iter().enumerate() {
        let Ok(code) = CptCode::parse("", value.get_ref()) else {
            continue;
        };
        let has_fee = table
            .fee_schedule
            .keys()
            .any(|key| key.get_ref() == code.as_str());
        if !bundled_codes.contains(&code) && !has_fee {
            problems.push(
                value.span(),
                format!("{prefix}.accepted_codes[{index}]"),
                format!("{code} is accepted but fee_schedule has no amount for it"),
            );
            ok = false;
        }
    }

    let unit_method = match table.unit_method {
        UnitMethodName::CmsTotalTime => UnitMethod::CmsTotalTime,
        UnitMethodName::AmaPerCode => UnitMethod::AmaPerCode,
    };
    let distinct_procedure_modifiers = match table.distinct_procedure_modifiers {
        DistinctModifiersName::Use59 => DistinctProcedureModifiers::Use59,
        DistinctModifiersName::UseXModifiers => DistinctProcedureModifiers::UseXModifiers,
        DistinctModifiersName::NotAccepted => DistinctProcedureModifiers::NotAccepted,
    };
    if !ok {
        return None;
    }
    Some(PayerPolicy {
        payer_id: payer.to_owned(),
        version: version?,
        effective_from: effective_from?,
        unit_method,
        accepted_codes,
        preferred_massage_code,
        plan_of_care_modifier,
        distinct_procedure_modifiers,
        enforce_ncci_edits: table.enforce_ncci_edits,
        one_massage_or_manual_code_per_visit: table.one_massage_or_manual_code_per_visit,
        max_units_per_code_per_visit,
        bundled_codes,
        fee_schedule: PriceList::from_pairs(fees),
        referral,
        max_visits_per_year,
        timely_filing_days: timely_filing_days?,
    })
}
