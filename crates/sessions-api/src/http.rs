//! The HTTP layer: one module of handlers per resource. A handler checks the caller's role, parses
//! the request into domain values (refusing with a 4xx that names the field), calls the
//! application layer ([`crate::app`]) and renders the answer; none touches the log or SQL itself.

pub(crate) mod claims;
mod fields;
pub(crate) mod keys;
pub(crate) mod reference;
pub(crate) mod sessions;
