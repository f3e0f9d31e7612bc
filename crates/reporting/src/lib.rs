//! The reporting service: what a chain was paid, by code × payer × clinic × month, read from the
//! read models the projector keeps, behind PostgreSQL row-level security keyed on the chain.
//!
//! - [`reports`]: [`reports::Reports`], the query layer's entry point (one chain-scoped read-only
//!   transaction per report). [`scope`]: that transaction (role `claimledger_reader`, setting
//!   `claimledger.chain_id`; migration 0008 holds the policies).
//! - [`filter`]: date range, filters, grouping and source, validated once. [`reimbursement`]: the
//!   reimbursement and denial-reason queries over the rollups or the lines. [`insights`]: best code
//!   per payer, outlier clinics. [`table`]: CSV and terminal tables. [`error`]: [`error::ReportError`].
//! - [`startup`], [`config`], [`routes`], [`problem`], [`openapi`], [`charts`]: the HTTP service
//!   (`/v1/reports/...`, `/openapi.json`, `/charts`).

pub mod charts;
pub mod config;
pub mod error;
pub mod filter;
pub mod insights;
pub mod openapi;
pub mod problem;
pub mod reimbursement;
pub mod reports;
pub mod routes;
pub mod scope;
pub mod startup;
pub mod table;
