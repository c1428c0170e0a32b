//! The clinics (tenants): each gets its own copy of the project's definitions and of
//! the starter library, the default clinic at start, any other at its first request.

use std::sync::Arc;

use domain::TenantId;
use fhir_mapping::ParseLimits;

use crate::clock::Clock;
use crate::db::Db;
use crate::service::Seed;

/// Why a clinic's own resources could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetUpError(String);

/// The clinics (tenants) whose own copy of the project's definitions and of the starter
/// library this process has made sure of: the default clinic at start, any other at
/// its first request.
pub struct Clinics {
    db: Db,
    clock: Arc<dyn Clock>,
    starter_library: bool,
    patient_app: bool,
    ready: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Clinics {
    pub fn new(db: Db, clock: Arc<dyn Clock>, starter_library: bool, patient_app: bool) -> Clinics {
        Clinics {
            db,
            clock,
            starter_library,
            patient_app,
            ready: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Whether the clinic was set up by this process.
    fn is_ready(&self, tenant: &str) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(tenant)
    }

    /// Stores the definitions (rewritten when a release changed them) and the starter
    /// library (once, never over the clinic's changes) in the clinic.
    pub fn set_up(&self, tenant: &TenantId) -> Result<(), SetUpError> {
        if self.is_ready(tenant.as_str()) {
            return Ok(());
        }
        store_own(
            &self.db,
            tenant,
            &self.clock,
            fhir_mapping::hep::conformance::all(),
            Seed::Current,
        )?;
        if self.starter_library {
            store_own(
                &self.db,
                tenant,
                &self.clock,
                fhir_mapping::hep::library::all(),
                Seed::Once,
            )?;
            store_own(
                &self.db,
                tenant,
                &self.clock,
                fhir_mapping::hep::measures::all(),
                Seed::Once,
            )?;
        }
        if self.patient_app {
            let (t, now) = (tenant.clone(), crate::clock::to_micros(self.clock.now()));
            self.db
                .write(move |conn| crate::auth::clients::register_own_app(conn, &t, now))
                .map_err(|e| SetUpError(format!("the patient app's registration: {e}")))?;
        }
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.as_str().to_string());
        Ok(())
    }

    /// `set_up` off the async worker, for a request of a clinic not yet set up.
    pub async fn ensure(self: &Arc<Self>, tenant: &str) -> Result<(), crate::error::ApiError> {
        if self.is_ready(tenant) {
            return Ok(());
        }
        let tenant = TenantId::parse(tenant)
            .map_err(|e| crate::error::ApiError::internal_from("clinic", e))?;
        let clinics = self.clone();
        tokio::task::spawn_blocking(move || clinics.set_up(&tenant))
            .await
            .map_err(|e| crate::error::ApiError::internal_from("the set-up task failed", e))?
            .map_err(|e| crate::error::ApiError::internal_from("setting up the clinic", e))
    }
}

/// Stores the server's own resources: the project's definitions (StructureDefinitions,
/// CodeSystems, OperationDefinition: rewritten when a release changes them) and the
/// starter library (once, never over a clinic's changes).
fn store_own(
    db: &Db,
    tenant: &TenantId,
    clock: &Arc<dyn Clock>,
    resources: Vec<(&str, &str, serde_json::Value)>,
    policy: Seed,
) -> Result<(), SetUpError> {
    for (resource_type, id, json) in resources {
        let parsed = own_resource(resource_type, id, &json)?;
        crate::service::seed(
            db,
            crate::service::Scope::of_tenant(tenant.as_str(), clock.clone()),
            parsed,
            id.to_string(),
            policy,
        )
        .map_err(|e| SetUpError(format!("{resource_type}/{id}: {e}")))?;
    }
    Ok(())
}

fn own_resource(
    resource_type: &str,
    id: &str,
    json: &serde_json::Value,
) -> Result<fhir_mapping::ParsedResource, SetUpError> {
    let bytes = serde_json::to_vec(json).map_err(|e| SetUpError(e.to_string()))?;
    fhir_mapping::parse_resource(&bytes, fhir_mapping::Format::Json, &ParseLimits::default())
        .map_err(|e| SetUpError(format!("{resource_type}/{id}: {e}")))
}
