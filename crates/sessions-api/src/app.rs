//! The application layer: each command and read of the API as one function that takes domain
//! values (a parsed command, the caller's principal, the request's `Idempotency-Key` and `If-Match`)
//! and returns the aggregate's state, with no HTTP in sight. Handlers ([`crate::http`]) parse,
//! call these, and render; the aggregate pipeline ([`crate::aggregate`]) and the SQL
//! ([`crate::store`]) are what these call in turn.

pub(crate) mod claims;
pub(crate) mod keys;
pub(crate) mod reference;
pub(crate) mod sessions;
