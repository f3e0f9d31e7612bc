//! How ClaimLedger's read models follow from the log, with no I/O: the projector's pure layer, and
//! all of `claimledger replay`'s derivation.
//!
//! [`batch::fold_batch`] turns a batch of log positions, the stored state of the sessions it
//! continues, the rules recorded so far and the provider [`directory::Directory`] into the rows the
//! batch changes ([`rows::BatchChanges`]): sessions, draft claims derived with the billing core and
//! the payer-rules engine ([`claim`]), claims re-priced by a rules change ([`reprice`]), unit deltas,
//! reference rows ([`reference`]) and the claim commits whose lifecycle ([`lifecycle`]) and rollup
//! deltas ([`rollup`]) the store folds onto their stored state. [`derived::derive_claims`] is the same
//! fold offered whole for a replay, so live projection, rebuild and replay cannot disagree, and
//! [`whatif::WhatIfFold`] streams it for a replay of any length: the same claims, each settled as
//! its session is set aside.
//!
//! Inputs are the log's positions as `claimledger_events` defines them; the projector's store reads
//! and writes PostgreSQL around this crate, and its pipeline moves batches through both.

pub mod batch;
pub mod claim;
pub mod derived;
pub mod directory;
pub mod hashing;
pub mod keys;
pub mod lifecycle;
pub mod reference;
pub mod reprice;
pub mod rollup;
pub mod rows;
pub mod rules;
pub mod session;
pub mod whatif;
