//! The state every request handler shares.

use std::sync::Arc;

use actix_web::HttpRequest;
use domain::TenantId;
use fhir_mapping::ParseLimits;

use crate::clock::Clock;
use crate::db::Db;

/// Everything a request handler needs.
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub tenant: TenantId,
    /// The clinics set up with their definitions and starter library.
    pub clinics: Arc<crate::clinics::Clinics>,
    pub base_url: Option<String>,
    pub limits: ParseLimits,
    pub max_body_bytes: usize,
    /// Largest media content of a `Binary`, in bytes.
    pub max_binary_bytes: usize,
    /// Largest transaction, batch or message Bundle, in bytes.
    pub max_bundle_bytes: usize,
    /// Most entries in a transaction, batch or message Bundle.
    pub max_bundle_entries: usize,
    /// Most operations in a JSON Patch document.
    pub max_patch_operations: usize,
    /// What the entries of one Bundle may search, read and answer.
    pub bundle_answer: crate::transaction::AnswerLimits,
    /// How exercise sessions are made.
    pub sessions: Arc<crate::sessions::SessionSettings>,
    /// The background jobs run while this is alive.
    pub _jobs: crate::sessions::Jobs,
    pub _outcome_jobs: crate::sessions::Jobs,
    /// PostgreSQL: the planner statistics kept current while this is alive.
    pub _statistics: Option<crate::db::statistics::StatisticsJob>,
    /// The CapabilityStatement, built once at start from what the server implements.
    pub capability: serde_json::Value,
    /// The key of the access tokens this server issues.
    pub token_keys: Arc<crate::auth::tokens::TokenKeys>,
    /// The key of ID tokens (RS256; its public half is `/auth/jwks`).
    pub id_key: Arc<crate::auth::authorize::IdTokenKey>,
    /// The key of the values the sign-in pages carry (a pending request, a sign-in).
    pub page_keys: Arc<crate::auth::authorize::PageKeys>,
    /// Failed sign-ins and codes, per account, code and address.
    pub throttle: Arc<crate::auth::accounts::Throttle>,
    /// Tokens already checked.
    pub token_cache: crate::auth::bearer::TokenCache,
    /// Clients' JWKS documents fetched from their URLs.
    pub jwks_cache: Arc<crate::auth::clients::JwksCache>,
    /// Requests per client (token subject), when limited.
    pub rate_limit: Option<Arc<crate::auth::RateLimit>>,
    /// The audit trail's queue.
    pub audit: crate::audit::AuditLog,
    /// Whether browser apps of named origins are allowed (CORS).
    pub cors_enabled: bool,
    /// The external OpenID Connect provider whose tokens are accepted, if configured.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
    /// Where bulk export files are written (one directory per job).
    pub export_dir: std::path::PathBuf,
    /// This process's export workers (`None`: it runs none; another process will).
    pub export_workers: Option<crate::export::ExportWorkers>,
    /// The metrics of this process (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The readiness checks (`/health/ready`), at most one round per second.
    pub readiness: Arc<crate::health::Readiness>,
    /// This process's subscription delivery workers (they stop with the state).
    pub _delivery: Option<crate::subscriptions::delivery::DeliveryWorkers>,
}

impl AppState {
    /// The scope of a write by a request with this access, within these limits.
    pub fn scope_for(
        &self,
        access: &crate::auth::Access,
        limits: &crate::auth::Limits,
    ) -> crate::service::Scope {
        crate::service::Scope {
            tenant: access.tenant.clone(),
            patient: limits.patient.clone(),
            visibility: crate::auth::visibility::Visibility::Of(std::sync::Arc::new(
                access.clone(),
            )),
            agent: Some(crate::audit::Agent {
                client: access.client.clone(),
                address: access.address.clone(),
                scope: access.scopes.to_scope_string(),
                patient: access.patient.clone(),
                admin: access.admin,
                grant: access.grant.clone(),
            }),
            sessions: self.sessions.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The largest body accepted for a write of `resource_type`: a `Binary` carries
    /// media, base64-encoded in JSON and XML.
    pub fn body_limit(&self, resource_type: &str) -> usize {
        fhir_mapping::media::body_limit(resource_type, self.max_body_bytes, self.max_binary_bytes)
    }

    /// This server's origin as clients reach it (the FHIR base without `/fhir`).
    pub fn origin(&self, req: &HttpRequest) -> String {
        let base = self.base_url(req);
        base.strip_suffix("/fhir").unwrap_or(&base).to_string()
    }

    /// The FHIR base URL as clients reach it.
    pub fn base_url(&self, req: &HttpRequest) -> String {
        match &self.base_url {
            Some(b) => b.trim_end_matches('/').to_string(),
            None => {
                let info = req.connection_info();
                format!("{}://{}/fhir", info.scheme(), info.host())
            }
        }
    }
}
