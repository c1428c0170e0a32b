//! The home exercise program domain: concepts and rules, pure (no IO, no clock reads,
//! no FHIR or database types).

pub mod adherence;
pub mod dose;
pub mod occurrence;
pub mod outcome;
pub mod program;
pub mod referral;
pub mod rtm;
pub mod schedule;
pub mod tenant;
pub mod version;

pub use tenant::TenantId;
pub use version::VersionId;
