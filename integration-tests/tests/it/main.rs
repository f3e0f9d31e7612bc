//! Integration tests against the real NATS JetStream and PostgreSQL; one binary, one module per area.

mod appending;
mod cluster;
mod direct_reads;
mod durability;
mod harness;
mod invalid_messages;
mod reading;
mod setup;
mod tidy;
