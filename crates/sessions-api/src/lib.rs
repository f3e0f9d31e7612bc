//! The sessions HTTP API: the chains' clinics record what happened in each treatment session, and
//! every change becomes an event on the log (written only through `claimledger-log`'s append).
//!
//! - [`startup`]: [`startup::Application`] (`build`, `run_until_stopped`) and the router.
//! - [`config`]: [`config::Settings`], loaded from the environment. [`clock`]: where "now" comes from.
//! - [`auth`]: API keys (hashed, chain-scoped, optional clinic scope, roles) and the bootstrap helper.
//! - `sessions`: the session lifecycle endpoints. `reference`: reference data. `keys`: API keys.
//! - [`projection`]: the reference tables as a projection of the log's reference events.
//! - `claims`: the claim lifecycle endpoints (submit, adjudications, resubmit, write-off, read).
//! - `aggregate`: the one pipeline of every aggregate command (state at a version, preconditions,
//!   state after an append). `commit`: the one builder of every commit the API appends.
//! - `store`: every SQL statement of the session and claim commands, with named rows.
//! - `idempotency`: `Idempotency-Key` handling. `extract`: body and header extractors.
//! - `error`: `error::ApiError` and its application/problem+json rendering.
//! - `dto`: the wire shapes. `openapi`: the OpenAPI document served at `/openapi.json`.
//!
//! Only what other crates use is public (`startup`, `config`, `clock`, `auth`, `projection`);
//! `unreachable_pub` keeps every other item crate-visible.

#![warn(unreachable_pub)]

mod aggregate;
pub mod auth;
mod claims;
pub mod clock;
mod commit;
pub mod config;
mod dto;
mod error;
mod extract;
mod idempotency;
mod keys;
mod openapi;
pub mod projection;
mod reference;
mod sessions;
pub mod startup;
mod store;
