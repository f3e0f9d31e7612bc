//! What both HTTP services (the sessions API and reporting) share at their edge, so that neither
//! depends on the other:
//!
//! - [`keys`]: API keys (hashed, chain-scoped, optional clinic scope, roles, expiry, revocation),
//!   authentication, and the scope rules every endpoint applies.
//! - [`problem`]: the problem document (RFC 9457), and when a database error is an outage (503).
//! - [`text`]: the text rule every string of every request body obeys.
//! - [`edge`]: path ids that name themselves, problem bodies for bare errors, `/health`, `/ready`.
//! - [`openapi`]: documents that state what the server checks.
//! - [`config`]: PostgreSQL's settings and the typed reading of a variable.

pub mod config;
pub mod edge;
pub mod keys;
pub mod openapi;
pub mod problem;
pub mod text;
