//! Assembles and starts the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use domain::TenantId;
use fhir_mapping::ParseLimits;
use fhir_mapping::capability::{ServerDescription, capability_statement};
use fhir_mapping::resource_types::{R4_RESOURCE_TYPES, is_storable};

use crate::clinics::Clinics;
use crate::clock::{Clock, instant_string, to_micros};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::http::{self, state::AppState};
use crate::sessions::SessionSettings;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot store the conformance resources: {0}")]
    Conformance(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot rebuild the search index: {0}")]
    Index(String),
    #[error("cannot record the monitoring events of earlier data: {0}")]
    Monitoring(String),
}

/// The topics a client may subscribe to, on the Subscription resource of the
/// CapabilityStatement (the backport's way to list them in R4).
fn add_topics(statement: &mut serde_json::Value) {
    let url = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical";
    let topics: Vec<serde_json::Value> = fhir_mapping::subscriptions::TOPICS
        .iter()
        .map(|t| serde_json::json!({"url": url, "valueCanonical": t.url()}))
        .collect();
    if let Some(resources) = statement
        .pointer_mut("/rest/0/resource")
        .and_then(|r| r.as_array_mut())
        && let Some(sub) = resources.iter_mut().find(|r| r["type"] == "Subscription")
    {
        sub["extension"] = serde_json::Value::Array(topics);
        sub["supportedProfile"] = serde_json::json!([
            "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
        ]);
    }
}

fn capability(clock: &dyn Clock) -> serde_json::Value {
    let operations = http::operations();
    let operations: Vec<(&str, &str, &str)> = operations
        .iter()
        .map(|(t, name, def)| (*t, *name, def.as_str()))
        .collect();
    let types: Vec<&str> = R4_RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| is_storable(t))
        .collect();
    let mut statement = capability_statement(&ServerDescription {
        software_name: "hep-server",
        software_version: env!("CARGO_PKG_VERSION"),
        base_url: "",
        date: &instant_string(to_micros(clock.now())),
        resource_types: &types,
        type_interactions: http::TYPE_INTERACTIONS,
        system_interactions: http::SYSTEM_INTERACTIONS,
        formats: &[
            "json",
            "xml",
            "application/fhir+json",
            "application/fhir+xml",
        ],
        conditional_create: true,
        conditional_update: true,
        supported_profiles: &fhir_mapping::hep::profiles(),
        operations: &operations,
    });
    add_topics(&mut statement);
    statement
}

/// The allowed origins of browser apps, each checked to be a scheme, a host and an
/// optional port (no `*`: every origin is named).
fn cors_origins(configured: &[String]) -> Result<Vec<String>, StartError> {
    let mut origins = Vec::new();
    for o in configured
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        let valid = (o.starts_with("https://") || o.starts_with("http://"))
            && o.split_once("://").is_some_and(|(_, host)| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
        if !valid {
            return Err(StartError::Config(format!(
                "`{o}` is not an origin (scheme://host[:port]) for --cors-allowed-origins"
            )));
        }
        origins.push(o.to_string());
    }
    Ok(origins)
}

/// CORS for the configured origins: the FHIR methods and headers, and the response
/// headers a browser app reads.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            "authorization",
            "content-type",
            "accept",
            "if-match",
            "if-none-exist",
            "if-none-match",
            "prefer",
            "idempotency-key",
            "x-request-id",
        ])
        .expose_headers([
            "location",
            "etag",
            "last-modified",
            "content-location",
            "x-request-id",
            "retry-after",
        ])
        .max_age(600);
    for o in origins {
        cors = cors.allowed_origin(o);
    }
    cors
}

/// Headers on every answer: no sniffing, no framing, no referrer, nothing kept in
/// shared caches (answers hold patient data), no active content; HSTS when the server
/// is reached over https.
fn security_headers(hsts: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        ));
    if hsts {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// Opens the database (applying migrations), binds and returns the server, not yet
/// awaited, with the address it listens on (port 0 picks a free port).
pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<(Server, SocketAddr), StartError> {
    let db = Db::open_with(
        &config.database_url,
        crate::db::DbOptions {
            pool_size: config.db_pool_size,
            limits: config.statement_limits(),
            client_share: (config.db_reads_per_client > 0).then_some(config.db_reads_per_client),
            sqlite_max_mib: (config.sqlite_max_size_mb > 0).then_some(config.sqlite_max_size_mb),
        },
    )?;
    let indexed =
        crate::commit::rebuild_search_index(&db).map_err(|e| StartError::Index(e.to_string()))?;
    if indexed > 0 {
        tracing::info!(resources = indexed, "search index rebuilt");
    }
    let read = crate::monitoring::backfill_events(&db)
        .map_err(|e| StartError::Monitoring(e.to_string()))?;
    if read > 0 {
        tracing::info!(
            resources = read,
            "monitoring events recorded for earlier data"
        );
    }
    let token_keys = Arc::new(
        db.write(crate::auth::tokens::TokenKeys::of_database)
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let id_key = Arc::new(
        db.write(crate::auth::authorize::IdTokenKey::of_database)
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let page_keys = Arc::new(
        db.write(crate::auth::authorize::PageKeys::of_database)
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let tenant = TenantId::default_tenant();
    let clinics = Clinics::new(
        db.clone(),
        clock.clone(),
        config.starter_library,
        config.patient_app,
    );
    clinics
        .set_up(&tenant)
        .map_err(|e| StartError::Conformance(e.to_string()))?;
    let sessions = Arc::new(SessionSettings {
        default_tz: jiff::tz::TimeZone::get(&config.time_zone).map_err(|_| {
            StartError::Config(format!("`{}` is not an IANA time zone", config.time_zone))
        })?,
        horizon: jiff::SignedDuration::from_hours(
            24 * i64::from(config.session_horizon_days.max(1)),
        ),
        endpoints: crate::subscriptions::EndpointPolicy {
            allow_loopback: config.subscription_allow_loopback,
            allow_private: config.subscription_allow_private,
        },
    });
    let jobs = crate::sessions::spawn_jobs(
        db.clone(),
        (*sessions).clone(),
        clock.clone(),
        std::time::Duration::from_millis(config.job_interval_ms.max(10)),
    );
    let outcome_jobs = crate::outcomes::spawn_jobs(
        db.clone(),
        (*sessions).clone(),
        clock.clone(),
        std::time::Duration::from_millis(config.job_interval_ms.max(10)),
    );
    let origins = cors_origins(&config.cors_allowed_origins)?;
    let audit = crate::audit::AuditLog::start(db.clone());
    // the hash an unknown username is checked against, made before the first sign-in
    std::thread::spawn(crate::auth::passwords::warm);
    let oidc = match &config.oidc_issuer {
        Some(issuer) => Some(Arc::new(
            crate::auth::oidc::Oidc::new(
                issuer,
                config.oidc_jwks_url.as_deref(),
                config.oidc_audience.as_deref(),
                &config.oidc_tenant_claim,
            )
            .map_err(StartError::Config)?,
        )),
        None => None,
    };
    let export_settings = Arc::new(crate::export::ExportSettings {
        dir: std::path::PathBuf::from(&config.export_dir),
        expiry_micros: i64::try_from(config.export_expiry_minutes)
            .unwrap_or(i64::MAX / 60_000_000)
            .saturating_mul(60_000_000),
        file_max_resources: config.export_file_max_resources.max(1),
        pause: std::time::Duration::from_millis(config.export_pause_ms),
        workers: config.export_workers,
    });
    let export_workers = (config.export_workers > 0)
        .then(|| crate::export::spawn_workers(db.clone(), clock.clone(), export_settings.clone()));
    let delivery = if config.subscription_workers > 0 {
        let bind_base = format!("http://{}/fhir", config.bind);
        Some(
            crate::subscriptions::delivery::spawn_delivery(
                db.clone(),
                clock.clone(),
                Arc::new(crate::subscriptions::SubscriptionSettings {
                    policy: sessions.endpoints,
                    max_failures: config.subscription_max_failures,
                    max_backoff: std::time::Duration::from_secs(
                        config.subscription_max_backoff_secs.max(1),
                    ),
                    signing_key: config
                        .subscription_signing_key
                        .as_ref()
                        .map(|k| k.as_bytes().to_vec()),
                    workers: config.subscription_workers,
                    base_url: config.base_url.clone().unwrap_or(bind_base),
                }),
            )
            .map_err(StartError::Config)?,
        )
    } else {
        None
    };
    let readiness = Arc::new(crate::health::Readiness::new(
        db.clone(),
        clock.clone(),
        config.health_min_free_disk_mb,
    ));
    let state = web::Data::new(AppState {
        metrics: Arc::default(),
        readiness,
        clinics: Arc::new(clinics),
        _delivery: delivery,
        export_dir: export_settings.dir.clone(),
        export_workers,
        audit,
        oidc,
        cors_enabled: !origins.is_empty(),
        sessions,
        _jobs: jobs,
        _outcome_jobs: outcome_jobs,
        _statistics: crate::db::statistics::spawn(&db, std::time::Duration::from_secs(5)),
        db,
        capability: capability(clock.as_ref()),
        clock,
        tenant,
        base_url: config.base_url.clone(),
        limits: ParseLimits {
            max_depth: config.max_depth,
        },
        max_body_bytes: config.max_body_bytes,
        max_binary_bytes: config.max_binary_bytes,
        max_bundle_bytes: config.max_bundle_bytes,
        max_bundle_entries: config.max_bundle_entries,
        max_patch_operations: config.max_patch_operations,
        bundle_answer: crate::transaction::AnswerLimits {
            max_searches: config.max_bundle_searches,
            max_resources: config.max_bundle_response_resources,
            max_bytes: config.max_bundle_response_bytes,
        },
        token_keys,
        id_key,
        page_keys,
        throttle: Arc::new(crate::auth::accounts::Throttle::new()),
        token_cache: crate::auth::bearer::TokenCache::default(),
        jwks_cache: Arc::new(crate::auth::clients::JwksCache::default()),
        rate_limit: crate::auth::RateLimit::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
        )
        .map(Arc::new),
    });
    let hsts = config
        .base_url
        .as_deref()
        .is_some_and(|b| b.starts_with("https://"));
    let body_timeout = std::time::Duration::from_secs(config.body_timeout_secs.max(1));
    let patient_app = config.patient_app;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(security_headers(hsts))
            .wrap(actix_web::middleware::Condition::new(
                !origins.is_empty(),
                cors(&origins),
            ))
            .wrap(from_fn(http::span::request_span))
            .wrap(from_fn(move |req, next| {
                http::deadline::body_deadline(body_timeout, req, next)
            }))
            .configure(http::routes)
            .configure(http::health::routes)
            .configure(move |cfg| {
                if patient_app {
                    http::app::routes(cfg);
                }
            })
            .default_service(web::to(http::not_found))
    })
    // actix-http's own timeouts: the headers of a request must arrive within 5 s (else
    // an empty 408, before any of this server's code runs; the body has its deadline
    // above), and a connection it closes gets 1 s to go
    .client_request_timeout(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    .shutdown_timeout(config.shutdown_timeout);
    if let Some(w) = config.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .bind(&config.bind)
        .map_err(|e| StartError::Bind(config.bind.clone(), e))?;
    let addr = server.addrs().first().copied().ok_or_else(|| {
        StartError::Bind(config.bind.clone(), std::io::Error::other("no address"))
    })?;
    Ok((server.run(), addr))
}
