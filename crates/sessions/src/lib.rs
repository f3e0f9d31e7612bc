//! The pure session domain of ClaimLedger: what a clinic may record about a treatment session, and
//! what it becomes on the log.
//!
//! Nothing here performs I/O, awaits, or reads a clock: callers look up what a decision needs (the
//! coverage and referral terms, the clinic's time zone) and pass it in with the current instant.
//!
//! - [`command`]: the commands a clinic issues and the [`command::DecisionContext`] they are decided in.
//! - [`event`]: the domain events a decision produces.
//! - [`session`]: the [`session::Session`] state, its fold (`apply`) and its decisions (`decide`).
//! - [`error`]: [`error::SessionError`], every business refusal naming the field and the reason.
//! - [`body`]: body regions and sides a service is delivered to.
//! - [`schema`]: explicit conversions between these domain events and the log's archived events.
//! - [`visit`]: the conversion of a completed session into the billing core's `Visit`.

pub mod body;
pub mod command;
pub mod error;
pub mod event;
pub mod schema;
pub mod session;
pub mod visit;

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests;
