//! The replay's integration tests, one binary: real NATS JetStream and PostgreSQL, each test with its
//! own stream and database (see `integration-tests`).

mod agreement;
// The projector's deterministic workload generator, shared rather than copied; this binary uses a
// part of it.
#[allow(dead_code)]
#[path = "../../../projector/tests/it/workload.rs"]
mod workload;
