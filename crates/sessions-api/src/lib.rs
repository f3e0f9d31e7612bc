//! The sessions HTTP API: the chains' clinics record what happened in each treatment session, and
//! every change becomes an event on the log (written only through `claimledger-log`'s append).
//!
//! - [`startup`]: [`startup::Application`] (`build`, `run_until_stopped`) and the router.
//! - [`config`]: [`config::Settings`], loaded from the environment. [`clock`]: where "now" comes from.
//! - [`auth`]: API keys (hashed, chain-scoped, optional clinic scope, roles) and the bootstrap helper.
//! - `http`: the handlers, one module per resource (`sessions`, `claims`, `reference`, `keys`):
//!   they check the role, parse, call the application layer, and render.
//! - `app`: the application layer: each command and read as a function of domain values.
//! - [`projection`]: the reference tables as a projection of the log's reference events.
//! - `aggregate`: the one pipeline of every aggregate command (state at a version, preconditions,
//!   decide, append, state after it). `commit`: the one builder of every commit the API appends.
//! - `store`: every SQL statement of the session and claim commands, with named rows.
//! - `idempotency`: `Idempotency-Key` handling. `extract`: body and header extractors.
//! - `error`: `error::ApiError` and its application/problem+json rendering.
//! - `dto`: the wire shapes. `openapi`: the OpenAPI document served at `/openapi.json`.
//!
//! Only what other crates use is public (`startup`, `config`, `clock`, `auth`, `projection`);
//! `unreachable_pub` keeps every other item crate-visible.

#![warn(unreachable_pub)]

mod aggregate;
mod app;
pub mod auth;
pub mod clock;
mod commit;
pub mod config;
mod dto;
mod error;
mod extract;
mod http;
mod idempotency;
mod openapi;
pub mod projection;
pub mod startup;
mod store;
