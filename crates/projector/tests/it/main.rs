//! The projector's integration tests, one binary: real NATS JetStream and PostgreSQL, each test with
//! its own stream and database (see `integration-tests`).

mod batching;
mod crash;
mod helpers;
mod postgres_restart;
mod projection;
mod rebuild;
mod rejected_values;
mod reprice;
mod rollups;

// The workload generators are the harness's, shared with replay's tests and the benchmarks.
use integration_tests::{claim_workload, workload};
