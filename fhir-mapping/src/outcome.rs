//! OperationOutcome construction.

use serde_json::{Map, Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (value set issue-type), the codes this server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    /// A code that is not in the value set its required binding names.
    CodeInvalid,
    Invariant,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    NotFound,
    Deleted,
    TooLong,
    TooCostly,
    BusinessRule,
    Conflict,
    Throttled,
    Timeout,
    /// The persistent store is unavailable (its disk full, the database down): `no-store`,
    /// a kind of `transient`.
    NoStore,
    Exception,
    Informational,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::NoStore => "no-store",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Throttled => "throttled",
            IssueType::Timeout => "timeout",
            IssueType::Exception => "exception",
            IssueType::Informational => "informational",
        }
    }
}

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath location of the problem (`Patient.name[0].given`), when known.
    pub expression: Option<String>,
    /// Line and column in the request body, when known.
    pub position: Option<(u64, u64)>,
}

impl Issue {
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
            position: None,
        }
    }

    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, diagnostics)
        }
    }

    pub fn information(diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: diagnostics.into(),
            expression: None,
            position: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    pub fn with_position(mut self, line: u64, column: u64) -> Self {
        self.position = Some((line, column));
        self
    }
}

/// Builds an OperationOutcome resource as JSON.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues.iter().map(issue_json).collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

fn issue_json(issue: &Issue) -> Value {
    let mut obj = Map::new();
    obj.insert("severity".into(), issue.severity.as_str().into());
    obj.insert("code".into(), issue.code.as_str().into());
    let mut diagnostics = issue.diagnostics.clone();
    if let Some((line, col)) = issue.position {
        diagnostics.push_str(&format!(" (line {line}, column {col})"));
    }
    obj.insert("diagnostics".into(), diagnostics.into());
    if let Some(expr) = &issue.expression {
        obj.insert("expression".into(), json!([expr]));
    }
    if let Some((line, col)) = issue.position {
        // The FHIR core extensions for the position of an issue in the source.
        obj.insert(
            "extension".into(),
            json!([
                {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": line},
                {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger": col}
            ]),
        );
    }
    // Canonical element order: extension first.
    let mut ordered = Map::new();
    for key in ["extension", "severity", "code", "diagnostics", "expression"] {
        if let Some(v) = obj.remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    Value::Object(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_has_location_and_position() {
        let oo = operation_outcome(
            &[Issue::error(IssueType::Structure, "unknown element `foo`")
                .at("Patient.foo")
                .with_position(3, 9)],
        );
        assert_eq!(oo["resourceType"], "OperationOutcome");
        let issue = &oo["issue"][0];
        assert_eq!(issue["severity"], "error");
        assert_eq!(issue["code"], "structure");
        assert_eq!(issue["expression"][0], "Patient.foo");
        assert_eq!(issue["extension"][0]["valueInteger"], 3);
        assert_eq!(issue["extension"][1]["valueInteger"], 9);
        let keys: Vec<&String> = issue
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["extension", "severity", "code", "diagnostics", "expression"]
        );
    }
}
