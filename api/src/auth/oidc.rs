//! Access tokens of an external OpenID Connect provider (an EHR's or a clinic's), when
//! its issuer is configured: the signature checked against the provider's JWKS
//! (fetched and cached), `aud`, `exp` and `nbf`, and the SMART claims (`scope`,
//! `patient`, `fhirUser`) and the clinic claim read into the same claims as the
//! server's own tokens.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::clients::JwksCache;
use super::tokens::Claims;
use crate::error::ApiError;

/// A configured provider.
pub struct Oidc {
    pub issuer: String,
    jwks_url: String,
    audience: String,
    tenant_claim: String,
    cache: JwksCache,
}

impl Oidc {
    /// The provider of the configuration, checked: its JWKS URL is https (or loopback
    /// http) and an audience is named.
    pub fn new(
        issuer: &str,
        jwks_url: Option<&str>,
        audience: Option<&str>,
        tenant_claim: &str,
    ) -> Result<Oidc, String> {
        let jwks_url = jwks_url.ok_or("--oidc-issuer needs --oidc-jwks-url")?;
        super::clients::check_jwks_url(jwks_url).map_err(|e| e.to_string())?;
        let audience = audience
            .filter(|a| !a.is_empty())
            .ok_or("--oidc-issuer needs --oidc-audience (the FHIR base URL its tokens name)")?;
        Ok(Oidc {
            issuer: issuer.to_string(),
            jwks_url: jwks_url.to_string(),
            audience: audience.to_string(),
            tenant_claim: tenant_claim.to_string(),
            cache: JwksCache::default(),
        })
    }

    /// Checks a token of this provider and reads its claims (`now` in seconds).
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthorized("the access token is not a JWT".into()))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::PS256
        ) {
            return Err(ApiError::Unauthorized(
                "the provider's tokens must be signed RS256, RS384, PS256, ES256 or ES384".into(),
            ));
        }
        // the provider may have rotated its keys since they were fetched
        let claims = match self.check(token, &header, now, false).await {
            Err(_) => self.check(token, &header, now, true).await?,
            ok => ok?,
        };
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        let scope = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => s.clone(),
            (_, Some(Value::Array(a))) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let tenant = text(&self.tenant_claim).ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "the provider's token has no `{}` claim naming the clinic",
                self.tenant_claim
            ))
        })?;
        Ok(Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: text("sub")
                .ok_or_else(|| ApiError::Unauthorized("the token has no subject".into()))?,
            iat: claims.get("iat").and_then(Value::as_i64).unwrap_or(now),
            exp: claims.get("exp").and_then(Value::as_i64).unwrap_or(now),
            jti: text("jti").unwrap_or_default(),
            scope,
            tenant,
            patient: text("patient"),
            fhir_user: text("fhirUser"),
            sid: None,
        })
    }

    async fn check(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        now: i64,
        refresh: bool,
    ) -> Result<serde_json::Map<String, Value>, ApiError> {
        let jwks =
            self.cache.get(&self.jwks_url, refresh).await.map_err(|_| {
                ApiError::Unauthorized("the provider's keys cannot be fetched".into())
            })?;
        let set: JwkSet = serde_json::from_str(&jwks)
            .map_err(|_| ApiError::Unauthorized("the provider's JWKS is not valid".into()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // time is checked below against the server's clock
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let keys = set
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.common.key_id == header.kid);
        for jwk in keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Ok(data) =
                jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            {
                let claims = data.claims;
                let at = |k: &str| claims.get(k).and_then(Value::as_i64);
                if at("exp").is_none_or(|exp| exp + 60 <= now) {
                    return Err(ApiError::Unauthorized(
                        "the access token has expired".into(),
                    ));
                }
                if at("nbf").is_some_and(|nbf| nbf - 60 > now) {
                    return Err(ApiError::Unauthorized(
                        "the access token is not valid yet (nbf)".into(),
                    ));
                }
                return Ok(claims);
            }
        }
        Err(ApiError::Unauthorized(
            "the access token is not signed by the provider's keys, or not for this server".into(),
        ))
    }
}
