//! The one place where failures become FHIR OperationOutcome responses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use fhir_mapping::{Format, Issue, IssueType, MappingError, operation_outcome, render_value};

use crate::db::{DbError, IsRetryable, is_race};

/// The `Retry-After` of a request stopped by the statement time limit (seconds).
pub const TIMEOUT_RETRY_SECS: u64 = 5;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The content is not a valid FHIR resource (400).
    #[error("invalid resource")]
    Invalid(MappingError),
    /// The request itself is malformed (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request asks for more work than a limit allows, such as a search with too
    /// many parameters (400, `too-costly`).
    #[error("too costly: {0}")]
    TooCostly(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("gone: {0}")]
    Gone(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body did not arrive within this many seconds (408).
    #[error("request body not received within {0} s")]
    RequestTimeout(u64),
    /// Over a configured limit other than the body size (413).
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// A business rule or reference check failed (422).
    #[error("unprocessable")]
    Unprocessable(Vec<Issue>),
    /// A failure of the server: what failed, and the error that caused it, whose chain
    /// of sources is logged, never sent.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// No valid access token (401, with `WWW-Authenticate`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The token does not allow this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The client sent more requests than its rate allows; retry after this many seconds
    /// (429).
    #[error("too many requests")]
    TooManyRequests(u64),
    /// Too much work of this client under way (429): why, and when to retry (seconds).
    #[error("busy: {0}")]
    Busy(String, u64),
    /// A database statement ran past its time limit and was stopped (503, with
    /// `Retry-After`); the connection stays usable.
    #[error("statement time limit reached")]
    Timeout,
    /// The database cannot do its work (its disk is full, or it does not answer): 503
    /// with `Retry-After`; the client tries again later.
    #[error("{}", .0.text())]
    Unavailable(crate::db::outage::Outage),
    /// A transaction lost a race and may be retried.
    #[error("transaction conflict")]
    Retry,
    /// An entry of a transaction Bundle failed, which fails the whole Bundle: the
    /// entry's own error, located in the Bundle.
    #[error("{label}: {source}")]
    Entry {
        index: usize,
        label: String,
        source: Box<ApiError>,
    },
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if let Some(outage) = e.outage() {
            return ApiError::Unavailable(outage);
        }
        match e {
            DbError::Query(q) => q.into(),
            other => ApiError::internal_from("database", other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        if is_race(&e) {
            ApiError::Retry
        } else if crate::db::deadline::is_timeout(&e) {
            ApiError::Timeout
        } else if let Some(outage) = crate::db::outage::of_error(&e) {
            ApiError::Unavailable(outage)
        } else {
            ApiError::internal_from("database", e)
        }
    }
}

impl IsRetryable for ApiError {
    fn is_retryable(&self) -> bool {
        match self {
            ApiError::Retry => true,
            ApiError::Entry { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    fn outage(&self) -> Option<crate::db::outage::Outage> {
        match self.root() {
            ApiError::Unavailable(o) => Some(*o),
            _ => None,
        }
    }
}

impl From<MappingError> for ApiError {
    fn from(e: MappingError) -> Self {
        ApiError::Invalid(e)
    }
}

/// An error and its sources, `outer: inner: innermost`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ApiError {
    /// A failure of the server, described by `context`.
    pub fn internal(context: impl Into<String>) -> ApiError {
        ApiError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// A failure of the server caused by `source` (its chain is logged with it).
    pub fn internal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ApiError {
        ApiError::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) | ApiError::TooCostly(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::Retry => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Timeout | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests(_) | ApiError::Busy(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Entry { source, .. } => source.status(),
        }
    }

    /// The issues sent to the client.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            ApiError::Invalid(m) => m.issues.clone(),
            ApiError::BadRequest(m) => vec![Issue::error(IssueType::Invalid, m.clone())],
            ApiError::TooCostly(m) => vec![Issue::error(IssueType::TooCostly, m.clone())],
            ApiError::NotFound(m) => vec![Issue::error(IssueType::NotFound, m.clone())],
            ApiError::Gone(m) => vec![Issue::error(IssueType::Deleted, m.clone())],
            ApiError::MethodNotAllowed => vec![Issue::error(
                IssueType::NotSupported,
                "this interaction is not supported on this URL",
            )],
            ApiError::Conflict(m) => vec![Issue::error(IssueType::Conflict, m.clone())],
            ApiError::Retry => vec![Issue::error(
                IssueType::Conflict,
                "the resource was changed concurrently; retry the request",
            )],
            ApiError::PreconditionFailed(m) => vec![Issue::error(IssueType::Conflict, m.clone())],
            ApiError::PayloadTooLarge(limit) => vec![Issue::error(
                IssueType::TooCostly,
                format!("the request body is larger than the limit of {limit} bytes"),
            )],
            ApiError::TooLarge(m) => vec![Issue::error(IssueType::TooCostly, m.clone())],
            ApiError::RequestTimeout(secs) => vec![Issue::error(
                IssueType::Timeout,
                format!("the request body was not received within {secs} seconds"),
            )],
            ApiError::UnsupportedMediaType(m) | ApiError::NotAcceptable(m) => {
                vec![Issue::error(IssueType::NotSupported, m.clone())]
            }
            ApiError::Unprocessable(issues) => issues.clone(),
            ApiError::Unauthorized(m) => vec![Issue::error(IssueType::Login, m.clone())],
            ApiError::TooManyRequests(secs) => vec![Issue::error(
                IssueType::Throttled,
                format!("too many requests from this client; retry in {secs} s"),
            )],
            ApiError::Busy(m, _) => vec![Issue::error(IssueType::Throttled, m.clone())],
            ApiError::Forbidden(m) => vec![Issue::error(IssueType::Forbidden, m.clone())],
            ApiError::Internal { .. } => vec![Issue::error(
                IssueType::Exception,
                "the server could not complete the request",
            )],
            ApiError::Unavailable(o) => vec![Issue::error(
                IssueType::NoStore,
                format!(
                    "{}: the server cannot store or read data now; nothing of this request \
                     was kept; retry in {} s",
                    o.text(),
                    o.retry_after_secs()
                ),
            )],
            ApiError::Timeout => vec![Issue::error(
                IssueType::TooCostly,
                format!(
                    "the request took longer than the database's time limit and was stopped; \
                     retry in {TIMEOUT_RETRY_SECS} s, or narrow the search"
                ),
            )],
            ApiError::Entry {
                index,
                label,
                source,
            } => source
                .issues()
                .into_iter()
                .map(|mut issue| {
                    issue.diagnostics = format!("{label}: {}", issue.diagnostics);
                    issue.expression = Some(match issue.expression.take() {
                        // `Patient.name[0]` of the entry is `Bundle.entry[3].resource.name[0]`
                        Some(e) if !e.starts_with("Bundle.entry[") => match e.split_once('.') {
                            Some((_, rest)) => format!("Bundle.entry[{index}].resource.{rest}"),
                            None => format!("Bundle.entry[{index}].resource"),
                        },
                        Some(e) => e,
                        None => format!("Bundle.entry[{index}]"),
                    });
                    issue
                })
                .collect(),
        }
    }

    /// The error of entry `index` of a Bundle (`label` says which: index, method, URL).
    pub fn in_entry(self, index: usize, label: String) -> ApiError {
        ApiError::Entry {
            index,
            label,
            source: Box::new(self),
        }
    }

    /// The error itself, an entry's wrapping set aside.
    pub fn root(&self) -> &ApiError {
        match self {
            ApiError::Entry { source, .. } => source.root(),
            other => other,
        }
    }

    /// The OperationOutcome response, in `format` (JSON when the request's format is not
    /// known or not acceptable).
    pub fn to_response(&self, format: Format, pretty: bool) -> HttpResponse {
        if let internal @ ApiError::Internal { .. } = self.root() {
            // Logged once here, with its chain of causes; the client only sees a generic
            // message.
            tracing::error!(error = %chain(internal), "request failed");
        }
        if let ApiError::Timeout = self.root() {
            // logged once here, without the statement or its values
            tracing::warn!("a database statement reached its time limit and was stopped");
        }
        let outcome = operation_outcome(&self.issues());
        let mut builder = HttpResponse::build(self.status());
        if matches!(self, ApiError::MethodNotAllowed) {
            builder.insert_header(("Allow", "GET, POST, PUT, DELETE"));
        }
        if let ApiError::TooManyRequests(secs) | ApiError::Busy(_, secs) = self.root() {
            builder.insert_header(("Retry-After", secs.to_string()));
        }
        if let ApiError::Timeout = self.root() {
            builder.insert_header(("Retry-After", TIMEOUT_RETRY_SECS.to_string()));
        }
        if let ApiError::Unavailable(o) = self.root() {
            builder.insert_header(("Retry-After", o.retry_after_secs().to_string()));
        }
        if let ApiError::Unauthorized(m) = self.root() {
            // RFC 6750: the scheme, and why the token was refused
            let description = m.replace(['"', '\\'], "'");
            builder.insert_header((
                "WWW-Authenticate",
                format!("Bearer realm=\"hep\", error=\"invalid_token\", error_description=\"{description}\""),
            ));
        }
        match render_value(&outcome, format, pretty) {
            Ok(bytes) => builder.content_type(content_type(format)).body(bytes),
            Err(_) => builder
                .content_type(content_type(Format::Json))
                .body(outcome.to_string()),
        }
    }
}

/// The `Content-Type` of a FHIR response body.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/fhir+json; charset=utf-8",
        Format::Xml => "application/fhir+xml; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_causes_for_the_log_and_shows_none() {
        let io = std::io::Error::other("disk on fire");
        let e = ApiError::internal_from("writing export files", io);
        assert_eq!(
            chain(&e),
            "internal error: writing export files: disk on fire"
        );
        let issues = e.issues();
        assert_eq!(issues.len(), 1);
        assert!(!issues[0].diagnostics.contains("disk"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
