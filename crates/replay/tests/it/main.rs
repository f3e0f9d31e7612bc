//! The replay's integration tests, one binary: real NATS JetStream and PostgreSQL, each test with its
//! own stream and database (see `integration-tests`).

mod agreement;
mod streamed;
// The projector's deterministic workload generator, from the harness.
use integration_tests::workload;
