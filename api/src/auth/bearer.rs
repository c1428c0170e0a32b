//! The access of a bearer token: checked by the key of its issuer, then kept until it
//! expires.

use super::scopes::Scopes;
use super::{ADMIN_SCOPE, Access, oidc, tokens};
use crate::error::ApiError;

/// The `iss` of a token, read before any check (to choose the key that checks it).
fn unverified_issuer(token: &str) -> Option<String> {
    let claims = tokens::unverified_claims(token)?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// The access of a bearer token: checked by the key of its issuer (an external OpenID
/// Connect provider's, or this server's), then cached until it expires.
pub async fn verify(
    token: &str,
    now: i64,
    cache: &TokenCache,
    keys: &tokens::TokenKeys,
    oidc: Option<&oidc::Oidc>,
    db: &crate::db::Db,
) -> Result<Access, ApiError> {
    let access = match cache.get(token, now) {
        Some(access) => access,
        None => checked(token, now, cache, keys, oidc).await?,
    };
    // a person's sign-in is looked up on every request (one read by key), so that a
    // token revoked by any server process on the database is refused at once
    if let Some(g) = access.grant.clone() {
        let tenant = access.tenant.clone();
        let holds = db
            .read(move |conn| Ok(crate::db::grants::grant_holds(conn, &tenant, &g)?))
            .await?;
        if !holds {
            return Err(ApiError::Unauthorized(
                "the access token was revoked".into(),
            ));
        }
    }
    Ok(access)
}

/// A token not seen before: its signature and claims checked, its access cached.
async fn checked(
    token: &str,
    now: i64,
    cache: &TokenCache,
    keys: &tokens::TokenKeys,
    oidc: Option<&oidc::Oidc>,
) -> Result<Access, ApiError> {
    let (claims, ours) = match oidc {
        Some(oidc) if unverified_issuer(token).as_deref() == Some(oidc.issuer.as_str()) => {
            (oidc.verify(token, now).await?, false)
        }
        _ => (keys.verify(token, now)?, true),
    };
    if domain::TenantId::parse(&claims.tenant).is_err() {
        return Err(ApiError::Unauthorized(
            "the access token names no valid tenant".into(),
        ));
    }
    let access = Access {
        tenant: claims.tenant,
        client: claims.sub,
        scopes: Scopes::parse(&claims.scope),
        admin: claims.scope.split_whitespace().any(|s| s == ADMIN_SCOPE),
        patient: claims.patient,
        address: None,
        user: claims.fhir_user,
        grant: claims.sid.filter(|_| ours),
    };
    cache.put(token, &access, claims.exp, now);
    Ok(access)
}

/// Tokens already checked, until they expire: a client sends the same token with every
/// request, and checking one (base64, the HMAC or signature, JSON, the scopes) was a
/// good part of the cost of a read.
#[derive(Default)]
pub struct TokenCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (Access, i64)>>,
}

/// Tokens kept at most (then the expired ones go, or all of them).
const TOKEN_CACHE_ENTRIES: usize = 10_000;

impl TokenCache {
    /// The access of a token checked before and not expired at `now` (seconds).
    fn get(&self, token: &str, now: i64) -> Option<Access> {
        let entries = self.entries.read().ok()?;
        let (access, exp) = entries.get(token)?;
        (*exp > now).then(|| access.clone())
    }

    fn put(&self, token: &str, access: &Access, exp: i64, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= TOKEN_CACHE_ENTRIES {
                entries.retain(|_, (_, e)| *e > now);
                if entries.len() >= TOKEN_CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(token.to_string(), (access.clone(), exp));
        }
    }
}
