//! Authorization: who a request comes from (its access token), in which clinic, and
//! what its SMART scopes let it do. Every route under `/fhir` but the
//! CapabilityStatement and the SMART configuration needs a token.

pub mod accounts;
pub(crate) mod authorize;
pub(crate) mod bearer;
pub mod clients;
pub(crate) mod oidc;
pub(crate) mod passwords;
pub(crate) mod scopes;
pub mod tokens;
pub(crate) mod visibility;

use crate::db::store::{Condition, Patients};
use crate::error::ApiError;
use scopes::{Grant, Perm, Scopes};

/// The access of a request, from its verified token.
#[derive(Debug, Clone)]
pub struct Access {
    pub tenant: String,
    /// The client the token was issued to.
    pub client: String,
    pub scopes: Scopes,
    /// The patient in context: patient scopes open this patient's compartment only.
    pub patient: Option<String>,
    /// The token carries the scope that registers clients and reads the audit trail
    /// ([`ADMIN_SCOPE`]).
    pub admin: bool,
    /// The network address the request came from.
    pub address: Option<String>,
    /// The person signed in (SMART `fhirUser`: `Patient/x` or `Practitioner/x`).
    pub user: Option<String>,
    /// The person's sign-in to an app the token was issued under (its `sid`): every
    /// request checks that it holds. `None` for a backend service's token (five minutes
    /// long, ended by removing the client) and an external provider's.
    pub grant: Option<String>,
}

/// The scope that lets a token register clients of its clinic (`POST /auth/clients`).
pub const ADMIN_SCOPE: &str = "hep-admin";

/// Types outside any patient's compartment that a patient app may read with patient
/// scopes: the exercise library, the people and places of the clinic, definitions.
const SHARED_TYPES: &[&str] = &[
    "ActivityDefinition",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Binary",
    "Questionnaire",
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "SearchParameter",
    "OperationDefinition",
];

/// What a request may see of one type: its conditions are added to the SQL of every
/// query of that type (the patient's compartment, a scope's search restriction).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Only resources of this patient's compartment.
    pub patient: Option<String>,
    pub conditions: Vec<Condition>,
}

impl Limits {
    pub fn is_open(&self) -> bool {
        self.patient.is_none() && self.conditions.is_empty()
    }
}

impl Access {
    /// The limits of `perm` on `resource_type`, or a 403 that says which scope is missing.
    pub fn require(&self, resource_type: &str, perm: Perm) -> Result<Limits, ApiError> {
        if resource_type == "AuditEvent" {
            // the audit trail: written by the server only, read with the admin scope
            return match perm {
                Perm::Read | Perm::Search if self.admin => Ok(Limits::default()),
                Perm::Read | Perm::Search => Err(ApiError::Forbidden(format!(
                    "the audit trail is read with the `{ADMIN_SCOPE}` scope"
                ))),
                _ => Err(ApiError::Forbidden(
                    "AuditEvents are written by the server only".into(),
                )),
            };
        }
        let Grant::Allowed {
            patient_only,
            restriction,
        } = self.scopes.grant(resource_type, perm)
        else {
            return Err(ApiError::Forbidden(format!(
                "the access token has no scope that allows `{}` on {resource_type} (for example user/{resource_type}.{})",
                perm.letter(),
                perm.letter()
            )));
        };
        let mut limits = Limits::default();
        if patient_only {
            let patient = self.patient.clone().ok_or_else(|| {
                ApiError::Forbidden("patient scopes need a token with a patient in context".into())
            })?;
            if SHARED_TYPES.contains(&resource_type) {
                if !matches!(perm, Perm::Read | Perm::Search) {
                    return Err(ApiError::Forbidden(format!(
                        "{resource_type} is not in a patient's compartment: patient scopes only read it"
                    )));
                }
            } else {
                limits
                    .conditions
                    .push(compartment(resource_type, &patient)?);
                limits.patient = Some(patient);
            }
        }
        if !restriction.is_empty() {
            let search =
                crate::search::parsing::parse(resource_type, &restriction).map_err(|_| {
                    ApiError::Forbidden(format!(
                        "a scope restricts {resource_type} by a search this server does not support"
                    ))
                })?;
            limits.conditions.extend(search.conditions);
        }
        Ok(limits)
    }

    /// The limits of `perm` on every type at once (history of the server): only a
    /// wildcard scope grants it.
    pub fn require_every_type(&self, perm: Perm) -> Result<Limits, ApiError> {
        match self.scopes.grant("*", perm) {
            Grant::Allowed {
                patient_only: false,
                restriction,
            } if restriction.is_empty() => Ok(Limits::default()),
            _ => Err(ApiError::Forbidden(format!(
                "this needs a scope on every type, such as system/*.{}",
                perm.letter()
            ))),
        }
    }

    /// A 403 unless the token opens more than one patient's data.
    pub fn require_beyond_patient(&self, what: &str) -> Result<(), ApiError> {
        if self.scopes.beyond_patient() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} needs user or system scopes"
            )))
        }
    }
}

/// The condition that keeps a search of `resource_type` in `patient`'s compartment (the
/// R4 Patient compartment: any of the type's compartment parameters names the patient,
/// an OR inside the SQL), or a 403 for a type outside every patient's compartment.
fn compartment(resource_type: &str, patient: &str) -> Result<Condition, ApiError> {
    // a Group is in the compartment of each member, but its member list names the
    // other patients: it stays closed to patient scopes
    if resource_type == "Group" || !fhir_mapping::search_params::is_compartment_type(resource_type)
    {
        return Err(ApiError::Forbidden(format!(
            "{resource_type} is not in a patient's compartment: patient scopes cannot open it"
        )));
    }
    Ok(Condition::compartment(
        resource_type,
        Patients::ids(vec![patient.to_string()]),
    ))
}

/// The message of a request without a token (answered without an error code, RFC 6750).
pub const MISSING: &str = "an access token is required (Authorization: Bearer ...)";

/// The request rate of each client (the subject of its tokens), with a burst allowance.
pub struct RateLimit {
    limiter: governor::DefaultKeyedRateLimiter<String>,
}

impl RateLimit {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<RateLimit> {
        let rate = std::num::NonZeroU32::new(per_second)?;
        let burst = std::num::NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(RateLimit {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
        })
    }

    /// A 429 (with the seconds to wait) when `client` is over its rate.
    pub fn check(&self, client: &str) -> Result<(), ApiError> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter
            .check_key(&client.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::TooManyRequests(wait.as_secs().max(1))
            })
    }
}
