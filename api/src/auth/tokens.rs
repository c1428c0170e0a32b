//! The access tokens this server issues: JWTs signed with HS256 by a key kept in the
//! database (made at the first start), so every server process on one database, and
//! the `dev-token` command, sign and check the same tokens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::AnyConnection;
use crate::error::ApiError;

/// `iss` and `aud` of the tokens this server issues.
pub const ISSUER: &str = "hep-server";
const SECRET_SETTING: &str = "access-token-key";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The client the token was issued to.
    pub sub: String,
    /// Seconds since the Unix epoch.
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// SMART scopes, space separated.
    pub scope: String,
    /// The clinic whose data the token opens.
    pub tenant: String,
    /// The patient in context (SMART `patient`), for patient scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The user (SMART `fhirUser`), as `Practitioner/x` or `Patient/x`.
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The grant the token was issued under (a person's sign-in to an app): revoking the
    /// grant refuses the token at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The claims of a JWT read before any check (to find the key that checks it); never
/// trusted as they are.
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The key that signs and checks access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The database's key, made (32 random bytes) when it has none yet.
    pub fn of_database(conn: &mut AnyConnection) -> Result<TokenKeys, ApiError> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| ApiError::internal("no random numbers for the token key"))?;
        let stored =
            crate::db::store::setting_or_insert(conn, SECRET_SETTING, &STANDARD.encode(secret))?;
        let secret = STANDARD
            .decode(stored)
            .map_err(|_| ApiError::internal("the stored token key is not base64"))?;
        Ok(TokenKeys::from_secret(&secret))
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::internal_from("cannot sign a token", e))
    }

    /// Checks a token's signature, issuer, audience and lifetime (`now` in seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // the expiry is checked below against the server's clock
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| ApiError::Unauthorized(format!("the access token is not valid ({e})")))?;
        let claims = data.claims;
        if claims.exp <= now {
            return Err(ApiError::Unauthorized(
                "the access token has expired".into(),
            ));
        }
        if claims.iat > now + 60 {
            return Err(ApiError::Unauthorized(
                "the access token was issued in the future".into(),
            ));
        }
        Ok(claims)
    }
}

/// What a `dev-token` asks for.
#[derive(Debug, Clone)]
pub struct DevToken {
    pub scope: String,
    pub patient: Option<String>,
    pub tenant: String,
    pub minutes: i64,
    /// Allowed against a PostgreSQL server that is not local.
    pub force: bool,
}

/// Whether a database URL is an SQLite file or a PostgreSQL server on this machine.
fn is_local(database_url: &str) -> bool {
    if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
        return true;
    }
    let rest = database_url.split_once("://").map_or("", |(_, r)| r);
    let host_part = rest.split(['/', '?']).next().unwrap_or("");
    let host = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host.split(':').next().unwrap_or(""), |(h, _)| h);
    host.is_empty() || matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Signs an access token for local use with the database's key (made if needed).
pub fn dev_token(database_url: &str, req: &DevToken, now: i64) -> Result<String, ApiError> {
    if !is_local(database_url) && !req.force {
        return Err(ApiError::Forbidden(
            "dev-token signs tokens for a local database only; register a client for a shared server (or pass --force)".into(),
        ));
    }
    domain::TenantId::parse(&req.tenant)
        .map_err(|_| ApiError::BadRequest(format!("`{}` is not a valid tenant", req.tenant)))?;
    if let Some(p) = &req.patient
        && !fhir_mapping::resource_types::is_valid_id(p)
    {
        return Err(ApiError::BadRequest(format!(
            "`{p}` is not a valid Patient id"
        )));
    }
    if super::scopes::Scopes::parse(&req.scope).0.is_empty()
        && !req
            .scope
            .split_whitespace()
            .any(|s| s == super::ADMIN_SCOPE)
    {
        return Err(ApiError::BadRequest(format!(
            "`{}` holds no SMART resource scope (such as system/*.cruds or patient/*.rs)",
            req.scope
        )));
    }
    let db = crate::db::Db::open(database_url, 1)?;
    let keys = db.write(TokenKeys::of_database)?;
    keys.issue(&Claims {
        iss: ISSUER.into(),
        aud: ISSUER.into(),
        sub: "dev-token".into(),
        iat: now,
        exp: now + req.minutes.max(1) * 60,
        jti: uuid::Uuid::new_v4().to_string(),
        scope: req.scope.clone(),
        tenant: req.tenant.clone(),
        patient: req.patient.clone(),
        fhir_user: None,
        sid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: "app".into(),
            iat: 1000,
            exp,
            jti: "j1".into(),
            scope: "system/*.rs".into(),
            tenant: "default".into(),
            patient: None,
            fhir_user: None,
            sid: None,
        }
    }

    #[test]
    fn dev_tokens_are_for_local_databases() {
        assert!(is_local("hep.db"));
        assert!(is_local("postgres://hep@127.0.0.1:5432/hep"));
        assert!(is_local("postgresql://u:p@localhost/db"));
        assert!(is_local("postgres://u@[::1]:5432/db"));
        assert!(is_local("postgres:///hep?host=/var/run/postgresql"));
        assert!(!is_local("postgres://u:p@db.clinic.example.org/hep"));
        assert!(!is_local("postgres://10.0.0.5/hep"));
    }

    #[test]
    fn tokens_are_checked() {
        let keys = TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef");
        let token = keys.issue(&claims(2000)).unwrap_or_default();
        assert_eq!(keys.verify(&token, 1500).ok(), Some(claims(2000)));
        assert!(keys.verify(&token, 2000).is_err(), "expired");
        let other = TokenKeys::from_secret(b"another key, another key, anothe");
        assert!(other.verify(&token, 1500).is_err(), "wrong signature");
        let mut wrong_audience = claims(2000);
        wrong_audience.aud = "elsewhere".into();
        let token = keys.issue(&wrong_audience).unwrap_or_default();
        assert!(keys.verify(&token, 1500).is_err(), "wrong audience");
        assert!(keys.verify("not.a.token", 1500).is_err());
    }
}
