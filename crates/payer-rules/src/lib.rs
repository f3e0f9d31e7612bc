//! Payer rules as versioned data, and the one engine that applies them.
//!
//! - [`load`]: reads a rules directory (one TOML file per payer, dated reference tables under
//!   `reference/`), validates it, and reports every problem as `file:line: field: reason`.
//! - [`rulebook`]: the validated rules with their lookups precomputed; versions are selected by
//!   date of service.
//! - [`engine`]: pure decisions (accept, reject, accept with changes, the expected allowed
//!   amount), the code a visit should bill, and what a visit bills under any rules version.
//! - [`proto`] and [`wire`]: the protobuf contract in `proto/payer_rules.proto` and its mapping
//!   to the engine's types.
//! - `service` and `publish` (feature `service`, on by default): the NATS request/reply service
//!   and the publisher of `RulesChanged` events. The projector embeds the engine without them.
//!
//! The billing core (`claimledger-billing`) owns the domain types ([`claimledger_billing::PayerPolicy`],
//! [`claimledger_billing::ReferenceData`], units); this crate only turns data files into them
//! and applies payer rules.

pub mod engine;
mod files;
pub mod load;
pub mod proto;
#[cfg(feature = "service")]
pub mod publish;
pub mod rulebook;
#[cfg(feature = "service")]
pub mod service;
pub mod wire;

pub use engine::{
    Changes, ChoiceReason, CodeChoice, Decision, EngineError, LineQuery, Outcome, Quantity,
    RejectionReason, RulesSelector, VisitContext, VisitDecision, VisitLine, VisitQuery,
};
pub use load::{
    InvalidRules, LoadError, RuleFileError, RuleSources, SourceFile, load_dir,
    parse_published_version,
};
pub use rulebook::{PayerRules, PayerRulesVersion, RuleBook};
