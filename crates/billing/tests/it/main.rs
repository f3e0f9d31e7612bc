//! The billing crate's integration tests, in one binary (one link step): domain.md's worked
//! examples, property tests, claim derivation, the scrubber and the crate's purity checks.

mod claim_derivation;
mod fixtures;
mod purity;
mod scrubber;
mod unit_examples;
mod unit_properties;
