//! The projector: follows the event log and keeps the PostgreSQL read models (sessions, draft claims
//! with CMS-1500-shaped lines, unit totals) exactly once, and rebuilds them without downtime.
//!
//! - [`Projector::process_next_batch`] is the whole loop body: read a batch of commits, fold them in
//!   memory, write the changed rows in bulk and the checkpoint in one transaction. [`Projector::run`]
//!   repeats it until cancelled, waiting out an unavailable database or log.
//! - [`rebuild::rebuild`] replays the log into a fresh schema and swaps it in atomically.
//! - [`metrics`] and [`http`] expose progress and lag; [`checksum`] digests every read model.
//!
//! Claims are derived in-process with the billing core and the payer-rules engine, using the payer
//! rules versions recorded on the log (`RulesChanged`) up to the position of the completion, and the
//! repository's NCCI/MUE reference tables loaded at start-up.

pub mod checksum;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
mod pipeline;
pub mod rebuild;
pub mod reference_tables;
mod store;

pub use config::{LIVE_SCHEMA, ProjectorConfig, REBUILD_SCHEMA};
pub use error::ProjectorError;
pub use pipeline::{Outcome, Projector};
