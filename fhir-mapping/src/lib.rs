//! FHIR R4 mapping: parsing and rendering with fhirbolt, references, search values,
//! Bundles, OperationOutcome and CapabilityStatement construction. No IO.

pub mod audit;
pub mod bulk;
pub mod bundle;
pub mod capability;
pub mod codec;
pub mod compartment_table;
pub mod error;
pub(crate) mod fidelity;
pub mod hep;
pub mod locate;
pub mod media;
pub mod outcome;
pub mod references;
pub mod resource_types;
pub mod search_params;
pub mod subscriptions;
pub mod transaction;
pub mod validate;

pub use codec::{Format, ParseLimits, ParsedResource, parse_resource, render, render_value};
pub use error::MappingError;
pub use outcome::{Issue, IssueType, Severity, operation_outcome};
