//! The shapes of the rules files as written on disk (TOML), kept apart from the billing core's
//! types so that the file format can evolve on its own. Every value that validation may refuse is
//! wrapped in [`Spanned`] so that the error can name its line.
//!
//! The loader ([`crate::load`]) converts these into `claimledger_billing` types; nothing else in
//! the crate reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::value::Datetime;

/// One payer's file: `rules/<payer>.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayerFile {
    /// The payer's identifier; must equal the file name without `.toml`.
    pub payer: Spanned<String>,
    /// A name for people.
    pub name: String,
    /// Every version of the payer's rules, oldest first.
    pub versions: Vec<Spanned<VersionTable>>,
}

/// One `[[versions]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionTable {
    pub version: Spanned<i64>,
    pub effective_from: Spanned<Datetime>,
    /// The last date of service (inclusive) these rules apply to; absent = until the next version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<Spanned<Datetime>>,
    pub unit_method: UnitMethodName,
    pub accepted_codes: Vec<Spanned<String>>,
    #[serde(default)]
    pub bundled_codes: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_massage_code: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_of_care_modifier: Option<Spanned<String>>,
    pub distinct_procedure_modifiers: DistinctModifiersName,
    pub enforce_ncci_edits: bool,
    pub one_massage_or_manual_code_per_visit: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_units_per_code_per_visit: Option<Spanned<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_visits_per_year: Option<Spanned<i64>>,
    pub timely_filing_days: Spanned<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralTable>,
    /// Allowed cents per unit, keyed by code.
    pub fee_schedule: BTreeMap<Spanned<String>, Spanned<i64>>,
}

/// `[versions.referral]`: present when the payer needs a referral or prescription.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReferralTable {
    pub valid_days: Spanned<i64>,
}

/// `unit_method = "cms_total_time" | "ama_per_code"`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UnitMethodName {
    CmsTotalTime,
    AmaPerCode,
}

/// `distinct_procedure_modifiers = "59" | "x_modifiers" | "not_accepted"`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub(crate) enum DistinctModifiersName {
    #[serde(rename = "59")]
    Use59,
    #[serde(rename = "x_modifiers")]
    UseXModifiers,
    #[serde(rename = "not_accepted")]
    NotAccepted,
}

/// `reference/ncci-ptp.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PtpFile {
    pub edits: Vec<Spanned<PtpRow>>,
}

/// One `[[edits]]` row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PtpRow {
    pub column1: Spanned<String>,
    pub column2: Spanned<String>,
    pub modifier_indicator: Spanned<i64>,
    pub effective: Spanned<Datetime>,
    /// The first date the row no longer applies to.
    #[serde(default)]
    pub deleted: Option<Spanned<Datetime>>,
    pub confidence: ConfidenceName,
}

/// `reference/mue.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MueFile {
    pub limits: Vec<Spanned<MueRow>>,
}

/// One `[[limits]]` row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MueRow {
    pub code: Spanned<String>,
    pub max_units: Spanned<i64>,
    pub effective: Spanned<Datetime>,
    /// The first date the row no longer applies to.
    #[serde(default)]
    pub deleted: Option<Spanned<Datetime>>,
    pub confidence: ConfidenceName,
}

/// `reference/always-therapy.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlwaysTherapyFile {
    pub codes: Vec<Spanned<AlwaysTherapyRow>>,
}

/// One `[[codes]]` row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlwaysTherapyRow {
    pub code: Spanned<String>,
    pub effective: Spanned<Datetime>,
    /// The first date the row no longer applies to.
    #[serde(default)]
    pub deleted: Option<Spanned<Datetime>>,
    pub confidence: ConfidenceName,
}

/// domain.md's confidence tags.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConfidenceName {
    Verified,
    Secondary,
    Unverified,
}
