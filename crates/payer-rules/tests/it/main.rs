//! The payer-rules test binary (one binary for link time): the engine against the shipped example
//! payers, the loader's located errors, and the NATS service, its Python client and the publisher
//! against the real NATS server (`NATS_URL`, default `nats://127.0.0.1:4222`).

mod engine;
mod helpers;
mod loader;
mod publish;
mod python_client;
mod service;
