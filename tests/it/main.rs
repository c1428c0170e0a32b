//! Integration tests: the real server over HTTP on SQLite, or on PostgreSQL when
//! `HEP_TEST_DATABASE_URL` is set.

mod accounts;
mod adherence;
mod amplification;
mod architecture;
mod audit;
mod backup;
mod compartment;
mod concurrency;
mod conditional;
mod crud;
mod emitted;
mod errors;
mod export;
mod faults;
mod formats;
mod health;
mod history;
mod leaks;
mod library;
mod logging;
mod media;
mod metadata;
mod patch;
mod patient_app;
mod prescriptions;
mod referrals;
mod robustness;
mod search;
mod search_limits;
mod search_more;
mod security;
mod shalls;
mod signin;
mod subscriptions;
mod support;
