//! The wire contract from `proto/payer_rules.proto`, generated at build time by prost.
#![allow(missing_debug_implementations)]
include!(concat!(env!("OUT_DIR"), "/claimledger.payer_rules.v1.rs"));
