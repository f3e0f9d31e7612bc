//! The reporting service's tests (one binary): row-level security, the query layer, the HTTP API,
//! its OpenAPI document and the chart page in headless Chromium, against the real PostgreSQL.

mod api;
mod charts;
mod end_to_end;
mod helpers;
mod known;
mod openapi;
mod queries;
mod rls;
mod scopes;
mod terminal;

// The read-model fixture is the harness's, shared with the reporting benchmark.
use integration_tests::read_model_fixture as fixture;
