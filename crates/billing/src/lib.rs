//! The ClaimLedger billing core: procedure codes, the 8-minute rule, correct-coding edits, payer
//! policies, claim-line derivation and the claim scrubber, as pure functions with no I/O, no async
//! and no clock (every date is an input).
//!
//! Layout, one module per concern:
//! - [`codes`]: the CPT catalogue, techniques and which technique each code covers.
//! - [`modifiers`]: the modifiers a line can carry.
//! - [`money`]: [`Cents`], integer money with checked arithmetic.
//! - [`validation`]: ICD-10-CM syntax, NPI check digit, tax id, and the field-naming error type.
//! - [`units`]: CMS total-time and AMA per-code units with their reasoning.
//! - [`edits`]: NCCI PTP pairs, MUE caps and the always-therapy list as dated reference data.
//! - [`policy`]: one version of one payer's rules.
//! - [`claim`]: claim lines from a completed visit, with the reason for every decision.
//! - [`scrubber`]: findings on a (possibly hand-edited) claim before it goes out.

pub mod claim;
pub mod codes;
pub mod edits;
pub mod modifiers;
pub mod money;
pub mod policy;
pub mod scrubber;
pub mod units;
pub mod validation;

pub use claim::{
    Claim, ClaimLine, DerivedClaim, PlaceOfService, ServiceRecord, UntimedService, Visit,
    derive_claim,
};
pub use codes::{CptCode, Technique, TechniqueSet, Timing};
pub use edits::{
    AlwaysTherapyEntry, Confidence, EffectivePeriod, ModifierIndicator, MueLimit, PtpEdit,
    ReferenceData,
};
pub use modifiers::Modifier;
pub use money::Cents;
pub use policy::{DistinctProcedureModifiers, PayerPolicy, PriceList, ReferralRequirement};
pub use scrubber::{Finding, FindingCode, Severity, scrub};
pub use units::{TieBreak, UnitMethod};
pub use validation::{FieldError, Icd10Code, Npi, Problem, TaxId};
