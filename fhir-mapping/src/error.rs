//! The error type of this crate.

use crate::outcome::Issue;

/// A mapping or validation failure: one or more issues, each with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .issues.first().map(|i| i.diagnostics.as_str()).unwrap_or("invalid resource"))]
pub struct MappingError {
    pub issues: Vec<Issue>,
}

impl MappingError {
    pub fn single(issue: Issue) -> Self {
        MappingError {
            issues: vec![issue],
        }
    }
}
