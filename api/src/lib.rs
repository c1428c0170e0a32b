//! The HEP FHIR server: HTTP (actix-web), SQL (diesel), configuration, logging.
//! The only crate of the workspace that does IO.
//!
//! Public: what the binary, the integration tests and the benchmark use (starting the
//! server, its configuration and clock, tokens and clients for the command line, the
//! database handle and the rows the benchmark seeds). Everything else is `pub(crate)`;
//! the modules sit on floors (ARCHITECTURE.md).

pub(crate) mod audit;
pub mod auth;
pub(crate) mod clinics;
pub mod clock;
pub(crate) mod commit;
pub mod config;
pub mod db;
pub mod error;
pub(crate) mod export;
pub(crate) mod health;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod monitoring;
pub(crate) mod operations;
pub(crate) mod outcomes;
pub(crate) mod patch;
pub(crate) mod referrals;
pub(crate) mod search;
pub mod server;
pub(crate) mod service;
pub(crate) mod sessions;
pub mod subscriptions;
pub mod telemetry;
pub(crate) mod transaction;
