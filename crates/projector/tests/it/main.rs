//! The projector's integration tests, one binary: real NATS JetStream and PostgreSQL, each test with
//! its own stream and database (see `integration-tests`).

mod batching;
mod claim_workload;
mod crash;
mod helpers;
mod postgres_restart;
mod projection;
mod rebuild;
mod rejected_values;
mod reprice;
mod rollups;
mod workload;
