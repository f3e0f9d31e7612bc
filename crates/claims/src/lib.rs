//! The pure claim lifecycle of ClaimLedger: what billing staff may do with a derived claim after
//! the projector has drafted it, and what it becomes on the log.
//!
//! Lifecycle: `draft → submitted → paid | denied`, `denied → resubmitted → paid | denied`, a
//! corrected remittance may adjudicate a paid or denied claim again, and any claim with an unpaid
//! balance may be `written_off` (final).
//!
//! Nothing here performs I/O, awaits, or reads a clock: callers look up the derived claim's lines
//! and pass them in with the current instant and the clinic's time zone.
//!
//! - [`command`]: the commands and their unvalidated inputs (as a remittance or a request carries
//!   them), and the [`command::DecisionContext`].
//! - [`event`]: the validated domain events a decision produces, and the adjustment group codes.
//! - [`claim`]: the [`claim::Claim`] state, its fold (`apply`) and its decisions (`decide`).
//! - [`remittance`]: the 835-style checks of an adjudication (every line names a submitted line,
//!   amounts, balancing).
//! - [`error`]: [`error::ClaimError`], every refusal naming the field and the reason.
//! - [`schema`]: explicit conversions between these domain events and the log's archived events.
//! - [`simulator`]: the remittance a payer with a given policy would send (demos), from a seed.

pub mod claim;
pub mod command;
pub mod error;
pub mod event;
pub mod remittance;
pub mod schema;
pub mod simulator;

#[cfg(test)]
mod tests;
