//! `claimledger replay --rules <dir>`: what a proposed payer-rules change would do to the claims
//! already on the log, without touching the live read models or the log.
//!
//! - [`replay::replay`] validates the proposed directory (the same `file:line: field: reason`
//!   errors as `rules check`; nothing runs if it fails), reads the log once, and derives every
//!   completed session's claim twice in memory with the projector's own derivation
//!   (`claimledger_derive::derived::derive_claims`): under the rules the log recorded, and
//!   under those plus the proposed versions, appended as the very commits `rules publish` would
//!   write ([`proposal`]). Publishing the directory and letting the projector catch up therefore
//!   yields the "after" claims (a test proves it).
//! - [`report`] compares the two derivations (pure): changed claims (code, units, modifiers,
//!   expected payment), totals per clinic, payer and code, and which changed claims are still
//!   within the payer's timely filing limit as of a given date.
//! - [`render`] prints the report as an aligned table, CSV or JSON.

pub mod proposal;
pub mod render;
pub mod replay;
pub mod report;
