//! The HEP FHIR server: HTTP (actix-web), SQL (diesel), configuration, logging.
//! The only crate of the workspace that does IO.

pub mod audit;
pub mod auth;
pub mod clinics;
pub mod clock;
pub mod commit;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod http;
pub mod operations;
pub mod patch;
pub mod referrals;
pub mod search;
pub mod server;
pub mod service;
pub mod sessions;
pub mod subscriptions;
pub mod telemetry;
pub mod transaction;
