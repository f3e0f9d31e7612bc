//! End-to-end tests of the sessions API over HTTP against the real NATS JetStream and PostgreSQL:
//! one test binary, one isolated app (database, stream, subject prefix) per test.

mod access;
mod bodies;
mod claims;
mod concurrency;
mod corpus;
mod hardening;
mod helpers;
mod lifecycle;
mod openapi;
mod reference;
mod scopes;
mod shutdown;
mod validation;
