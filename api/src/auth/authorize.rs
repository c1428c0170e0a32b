//! SMART App Launch's authorization code flow (OAuth 2.0 with PKCE, OpenID Connect):
//! the checks of an authorization request, the signed values that carry a pending
//! request and a signed-in person between pages, the grants, codes and refresh tokens
//! a consent makes, and the ID token.
//!
//! A grant is what one person allowed one app; its access tokens carry its id (`sid`),
//! so that revoking the grant (a refresh token replayed, a code used twice, the person's
//! access revoked, RFC 7009) refuses all of them at once in every server process.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::scopes::Scope;
use crate::db::AnyConnection;
use crate::db::clients::ClientRow;
use crate::db::grants::{self, GrantRow};
use crate::error::ApiError;

/// Seconds an authorization code may wait for its exchange.
pub const CODE_SECONDS: i64 = 60;
/// Seconds a pending authorization request lasts (the person signs in meanwhile).
pub const PENDING_SECONDS: i64 = 15 * 60;
/// Seconds a sign-in lasts in the browser.
pub const SESSION_SECONDS: i64 = 60 * 60;
/// Seconds a refresh token of `offline_access` lasts (each refresh makes a new one).
pub const OFFLINE_SECONDS: i64 = 90 * 24 * 3600;
/// Seconds a refresh token of `online_access` lasts.
pub const ONLINE_SECONDS: i64 = 12 * 3600;
/// Seconds an EHR launch context waits for its app.
pub const LAUNCH_SECONDS: i64 = 5 * 60;

/// Scopes that are not about resources and that an app may be registered for.
pub const LAUNCH_SCOPES: &[&str] = &[
    "launch",
    "launch/patient",
    "launch/encounter",
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
];

/// Whether a scope is one an app may ask (a resource scope, or a launch scope).
pub fn is_known_scope(s: &str) -> bool {
    LAUNCH_SCOPES.contains(&s) || Scope::parse(s).is_some()
}

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub aud: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub launch: Option<String>,
    pub nonce: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Before the client and its redirect URI are known: shown on a page, never
    /// redirected (RFC 6749 §4.1.2.1).
    Page(String),
    /// Sent back to the app's redirect URI with `error` and `state`.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

impl AuthorizeError {
    /// The URL an app is sent back to, for a `Redirect`.
    pub fn location(&self) -> Option<String> {
        match self {
            AuthorizeError::Page(_) => None,
            AuthorizeError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut pairs = vec![("error", error.to_string())];
                pairs.push(("error_description", description.clone()));
                if let Some(s) = state {
                    pairs.push(("state", s.clone()));
                }
                Some(with_query(redirect_uri, &pairs))
            }
        }
    }
}

/// `uri` with `pairs` added to its query.
pub fn with_query(uri: &str, pairs: &[(&str, String)]) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// The registered redirect URIs of an app, absolute: a path (`/app/`, registered only by
/// the server for the app it serves itself) is on this server's `origin`.
fn registered_uris<'a>(registered: &'a str, origin: &'a str) -> impl Iterator<Item = String> + 'a {
    registered.split_whitespace().map(move |r| {
        if r.starts_with('/') {
            format!("{origin}{r}")
        } else {
            r.to_string()
        }
    })
}

/// Whether `sent` is one of the app's registered redirect URIs: the same text, or for a
/// registered loopback URI (`http://127.0.0.1/cb`, `http://[::1]/cb`) the same URI on
/// any port (RFC 8252 §7.3). `origin`: this server's, for a registered path.
pub fn redirect_matches(registered: &str, sent: &str, origin: &str) -> bool {
    registered_uris(registered, origin).any(|r| {
        if r == sent {
            return true;
        }
        let (Ok(r), Ok(s)) = (url::Url::parse(&r), url::Url::parse(sent)) else {
            return false;
        };
        let loopback = |u: &url::Url| {
            u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
        };
        loopback(&r)
            && loopback(&s)
            && r.host_str() == s.host_str()
            && r.path() == s.path()
            && r.query() == s.query()
            && s.fragment().is_none()
    })
}

/// Whether a redirect URI may be registered: https, or http on a loopback address
/// (native apps, RFC 8252), without a fragment.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|_| format!("`{uri}` is not an absolute URI"))?;
    if u.fragment().is_some() {
        return Err(format!("`{uri}`: a redirect URI has no fragment"));
    }
    let loopback = matches!(
        u.host_str(),
        Some("127.0.0.1") | Some("[::1]") | Some("localhost")
    );
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "`{uri}`: a redirect URI is https, or http on the loopback address"
        )),
    }
}

/// An authorization request that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub tenant: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes asked that the app is registered for.
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The patient of an EHR launch.
    pub launch_patient: Option<String>,
    pub launch_encounter: Option<String>,
    pub exp: i64,
    aud: String,
}

impl Pending {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    pub fn asks(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Checks an authorization request of `client` (found by its `client_id`; `None` when
/// unknown) against this server's FHIR base `base`.
pub fn check(
    params: &AuthorizeParams,
    client: Option<&ClientRow>,
    base: &str,
    now: i64,
) -> Result<Pending, AuthorizeError> {
    let client = match (params.client_id.as_deref(), client) {
        (None, _) => {
            return Err(AuthorizeError::Page(
                "The app did not say who it is (client_id is missing).".into(),
            ));
        }
        (Some(_), None) => {
            return Err(AuthorizeError::Page(
                "This app is not registered with the clinic.".into(),
            ));
        }
        (Some(_), Some(c)) => c,
    };
    if client.kind == "backend" {
        return Err(AuthorizeError::Page(
            "This client is a backend service: it cannot ask people to sign in.".into(),
        ));
    }
    let registered = client.redirect_uris.as_deref().unwrap_or("");
    let origin = base.trim_end_matches('/');
    let origin = origin.strip_suffix("/fhir").unwrap_or(origin);
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(r) if redirect_matches(registered, r, origin) => r.to_string(),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The app asked to return to an address it did not register (redirect_uri).".into(),
            ));
        }
        None => {
            // one registered URI is the default (RFC 6749 §3.1.2.3)
            let mut uris = registered_uris(registered, origin);
            match (uris.next(), uris.next()) {
                (Some(only), None) => only,
                _ => {
                    return Err(AuthorizeError::Page(
                        "The app did not say where to return (redirect_uri is missing).".into(),
                    ));
                }
            }
        }
    };
    let refuse = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_string(),
        state: params.state.clone(),
    };
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let base = base.trim_end_matches('/');
    match params.aud.as_deref().map(|a| a.trim_end_matches('/')) {
        Some(a) if a == base => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "aud is not this server's FHIR base URL",
            ));
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "aud (this server's FHIR base URL) is missing",
            ));
        }
    }
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: code_challenge_method=S256 and code_challenge",
            ));
        }
    }
    let code_challenge = match params.code_challenge.as_deref() {
        Some(c)
            if c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            c.to_string()
        }
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)",
            ));
        }
        None => return Err(refuse("invalid_request", "code_challenge is missing")),
    };
    if params.state.as_deref().is_some_and(|s| s.len() > 1024)
        || params.nonce.as_deref().is_some_and(|s| s.len() > 1024)
    {
        return Err(refuse("invalid_request", "state or nonce is too long"));
    }
    let requested = params.scope.as_deref().unwrap_or("");
    if requested.len() > 4096 {
        return Err(refuse("invalid_scope", "the scope is too long"));
    }
    let scope = granted_scope(requested, &client.scope);
    if !scope.split_whitespace().any(|s| Scope::parse(s).is_some()) {
        return Err(refuse(
            "invalid_scope",
            "none of the requested resource scopes is among the app's registered scopes",
        ));
    }
    if scope.split_whitespace().any(|s| s == "launch") && params.launch.is_none() {
        return Err(refuse(
            "invalid_request",
            "the launch scope needs the launch parameter of an EHR launch",
        ));
    }
    Ok(Pending {
        tenant: client.tenant.clone(),
        client_id: client.client_id.clone(),
        redirect_uri,
        scope,
        state: params.state.clone(),
        code_challenge,
        nonce: params.nonce.clone(),
        launch_patient: None,
        launch_encounter: None,
        exp: now + PENDING_SECONDS,
        aud: PENDING_AUDIENCE.into(),
    })
}

/// The requested scopes that `registered` allows, in the order asked, each once.
pub fn granted_scope(requested: &str, registered: &str) -> String {
    let allowed: Vec<&str> = registered.split_whitespace().collect();
    let allowed_resources: Vec<Scope> = allowed.iter().filter_map(|s| Scope::parse(s)).collect();
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split_whitespace() {
        let ok = match Scope::parse(s) {
            Some(r) => allowed_resources.iter().any(|a| r.within(a)),
            None => LAUNCH_SCOPES.contains(&s) && allowed.contains(&s),
        };
        if ok && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

const PENDING_AUDIENCE: &str = "hep-authorize";
const SESSION_AUDIENCE: &str = "hep-session";

/// A person signed in in one browser: the value of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    pub tenant: String,
    pub user_id: String,
    pub exp: i64,
    aud: String,
}

impl SignedIn {
    pub fn new(tenant: &str, user_id: &str, now: i64) -> SignedIn {
        SignedIn {
            tenant: tenant.into(),
            user_id: user_id.into(),
            exp: now + SESSION_SECONDS,
            aud: SESSION_AUDIENCE.into(),
        }
    }
}

/// Signs and checks the values the pages carry (a pending request, a sign-in), with a
/// key of the database, so that any server process on it reads them.
pub struct PageKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl PageKeys {
    /// The database's key of page values, made (32 random bytes) when it has none yet.
    pub fn of_database(conn: &mut AnyConnection) -> Result<PageKeys, ApiError> {
        let fresh = random_secret()?;
        let stored = crate::db::store::setting_or_insert(conn, "page-key", &fresh)?;
        Ok(PageKeys::from_secret(stored.as_bytes()))
    }

    pub fn from_secret(secret: &[u8]) -> PageKeys {
        PageKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    fn sign<T: Serialize>(&self, value: &T) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), value, &self.encoding)
            .map_err(|e| ApiError::internal_from("cannot sign a page value", e))
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, value: &str, aud: &str, now: i64) -> Option<T> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "aud"]);
        v.validate_exp = false;
        #[derive(Deserialize)]
        struct Exp {
            exp: i64,
        }
        let exp: Exp = jsonwebtoken::decode(value, &self.decoding, &v).ok()?.claims;
        if exp.exp <= now {
            return None;
        }
        jsonwebtoken::decode::<T>(value, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }

    pub fn sign_pending(&self, p: &Pending) -> Result<String, ApiError> {
        self.sign(p)
    }

    pub fn pending(&self, value: &str, now: i64) -> Option<Pending> {
        self.read(value, PENDING_AUDIENCE, now)
    }

    pub fn sign_session(&self, s: &SignedIn) -> Result<String, ApiError> {
        self.sign(s)
    }

    pub fn session(&self, value: &str, now: i64) -> Option<SignedIn> {
        self.read(value, SESSION_AUDIENCE, now)
    }
}

/// A random secret of 32 bytes, base64url: a code, a refresh token, a launch, a CSRF
/// value.
pub fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ApiError::internal("no random numbers for a secret"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret: its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a PKCE verifier (RFC 7636: 43-128 unreserved characters) matches its S256
/// challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(d.as_ref());
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

/// What a consent makes: the code the app exchanges for its grant's tokens.
pub struct Consented {
    pub code: String,
}

/// Records a person's consent to a pending request: a grant for the scopes asked, with
/// the patient in context (the patient themself, the one a clinician picked, or the
/// EHR launch's), and a single-use code of 60 seconds.
pub fn consent(
    conn: &mut AnyConnection,
    pending: &Pending,
    user_id: &str,
    fhir_user: &str,
    patient: Option<&str>,
    now: i64,
) -> Result<Consented, ApiError> {
    let refresh_life = if pending.asks("offline_access") {
        OFFLINE_SECONDS
    } else {
        ONLINE_SECONDS
    };
    let grant = GrantRow {
        tenant: pending.tenant.clone(),
        grant_id: crate::db::new_id(),
        client_id: pending.client_id.clone(),
        user_id: user_id.to_string(),
        scope: pending.scope.clone(),
        patient: patient.map(str::to_string),
        fhir_user: Some(fhir_user.to_string()),
        created_at: now,
        expires_at: now + refresh_life,
        revoked_at: None,
    };
    grants::insert_grant(conn, &grant)?;
    let code = random_secret()?;
    grants::insert_code(
        conn,
        &pending.tenant,
        &secret_hash(&code),
        &grant.grant_id,
        &pending.redirect_uri,
        &pending.code_challenge,
        pending.nonce.as_deref(),
        now + CODE_SECONDS,
    )?;
    Ok(Consented { code })
}

/// Why a code or a refresh token is refused (`invalid_grant`), in words for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidGrant(pub String);

/// The grant a code opens, checked: unused (a second use revokes the grant, and with it
/// what the first use issued), unexpired, for this client and redirect URI, and the
/// PKCE verifier matching its challenge. Returns the grant and the request's nonce.
pub fn redeem_code(
    conn: &mut AnyConnection,
    client: &ClientRow,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: i64,
) -> Result<Result<(GrantRow, Option<String>), InvalidGrant>, ApiError> {
    let refused = |m: &str| Ok(Err(InvalidGrant(m.to_string())));
    let Some((row, fresh)) = grants::take_code(conn, &client.tenant, &secret_hash(code), now)?
    else {
        return refused("the authorization code is not known");
    };
    let Some(grant) = grants::grant(conn, &client.tenant, &row.grant_id)? else {
        return refused("the authorization code is not known");
    };
    if grant.client_id != client.client_id {
        return refused("the authorization code was issued to another app");
    }
    if !fresh {
        grants::revoke_grant(conn, &client.tenant, &grant.grant_id, now)?;
        return refused("the authorization code was used already: the tokens it gave are revoked");
    }
    if row.expires_at <= now {
        return refused("the authorization code has expired");
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return refused("redirect_uri is not the one of the authorization request");
    }
    match verifier {
        Some(v) if pkce_matches(v, &row.code_challenge) => {}
        Some(_) => return refused("the code_verifier does not match the code_challenge"),
        None => return refused("code_verifier is missing (PKCE)"),
    }
    if !grants::grant_holds(conn, &client.tenant, &grant.grant_id)? {
        return refused("the authorization was revoked");
    }
    Ok(Ok((grant, row.nonce)))
}

/// The grant a refresh token opens, checked, the token used up: a token used before
/// revokes its whole family (the grant), RFC 9700 §4.14.
pub fn redeem_refresh(
    conn: &mut AnyConnection,
    client: &ClientRow,
    token: &str,
    now: i64,
) -> Result<Result<GrantRow, InvalidGrant>, ApiError> {
    let refused = |m: &str| Ok(Err(InvalidGrant(m.to_string())));
    let Some((grant_id, expires_at, fresh)) =
        grants::take_refresh(conn, &client.tenant, &secret_hash(token), now)?
    else {
        return refused("the refresh token is not known");
    };
    let Some(grant) = grants::grant(conn, &client.tenant, &grant_id)? else {
        return refused("the refresh token is not known");
    };
    if grant.client_id != client.client_id {
        return refused("the refresh token was issued to another app");
    }
    if !fresh {
        grants::revoke_grant(conn, &client.tenant, &grant.grant_id, now)?;
        return refused(
            "the refresh token was used already: every token of this sign-in is revoked",
        );
    }
    if expires_at <= now || grant.expires_at <= now {
        return refused("the refresh token has expired");
    }
    if !grants::grant_holds(conn, &client.tenant, &grant.grant_id)? {
        return refused("the authorization was revoked");
    }
    Ok(Ok(grant))
}

/// A new refresh token of a grant (when it has `offline_access` or `online_access`).
pub fn new_refresh(
    conn: &mut AnyConnection,
    grant: &GrantRow,
    now: i64,
) -> Result<Option<String>, ApiError> {
    let asks = |s: &str| grant.scope.split_whitespace().any(|g| g == s);
    if !(asks("offline_access") || asks("online_access")) {
        return Ok(None);
    }
    let token = random_secret()?;
    let life = if asks("offline_access") {
        OFFLINE_SECONDS
    } else {
        ONLINE_SECONDS
    };
    grants::insert_refresh(
        conn,
        &grant.tenant,
        &secret_hash(&token),
        &grant.grant_id,
        (now + life).min(grant.expires_at.max(now + life)),
    )?;
    Ok(Some(token))
}

/// The key that signs ID tokens (RS256), kept in the database (made at the first
/// start) so that every server process signs with it; its public half is the JWKS.
pub struct IdTokenKey {
    encoding: EncodingKey,
    kid: String,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for IdTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdTokenKey({})", self.kid)
    }
}

const ID_KEY_SETTING: &str = "id-token-key";

impl IdTokenKey {
    /// The database's key, made (RSA 2048) when it has none yet.
    pub fn of_database(conn: &mut AnyConnection) -> Result<IdTokenKey, ApiError> {
        use aws_lc_rs::encoding::AsDer;
        let stored = match crate::db::store::setting(conn, ID_KEY_SETTING)? {
            Some(s) => s,
            None => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| ApiError::internal("cannot make the ID token key"))?;
                let der = pair
                    .as_der()
                    .map_err(|_| ApiError::internal("cannot encode the ID token key"))?;
                let fresh = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
                crate::db::store::setting_or_insert(conn, ID_KEY_SETTING, &fresh)?
            }
        };
        IdTokenKey::from_pkcs8_base64(&stored)
    }

    fn from_pkcs8_base64(stored: &str) -> Result<IdTokenKey, ApiError> {
        use aws_lc_rs::signature::KeyPair;
        let der = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .map_err(|_| ApiError::internal("the stored ID token key is not base64"))?;
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .map_err(|_| ApiError::internal("the stored ID token key is not an RSA key"))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let kid = secret_hash(&format!("{n}.{e}"))[..16].to_string();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| ApiError::internal_from("the ID token key cannot sign", e))?;
        Ok(IdTokenKey {
            encoding,
            jwk: serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e
            }),
            kid,
        })
    }

    /// The JWKS of the key (`/auth/jwks`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// Signs the ID token of a grant for its app: `iss` is this server's origin, `sub`
    /// the person's account, `fhirUser` the URL of their Patient or Practitioner.
    pub fn id_token(
        &self,
        issuer: &str,
        fhir_base: &str,
        grant: &GrantRow,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, ApiError> {
        let mut claims = serde_json::json!({
            "iss": issuer,
            "sub": grant.user_id,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + super::clients::ACCESS_TOKEN_SECONDS,
            "auth_time": grant.created_at,
        });
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        if let Some(u) = &grant.fhir_user {
            claims["fhirUser"] = format!("{}/{u}", fhir_base.trim_end_matches('/')).into();
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::internal_from("cannot sign an ID token", e))
    }
}

/// Seconds an access token of a person's sign-in lasts (each request still checks that
/// its grant holds).
pub const USER_TOKEN_SECONDS: i64 = 3600;

/// What the token endpoint needs to answer a code or a refresh token.
pub struct Issuer<'a> {
    pub keys: &'a super::tokens::TokenKeys,
    pub id_key: &'a IdTokenKey,
    /// This server's origin: the `iss` of ID tokens.
    pub origin: String,
    /// The FHIR base: `fhirUser` URLs start with it.
    pub fhir_base: String,
    pub now: i64,
}

/// The tokens of a grant: an access token naming the grant, a new refresh token when
/// the grant has `offline_access` or `online_access`, an ID token when it has `openid`.
pub fn tokens_of(
    conn: &mut AnyConnection,
    issuer: &Issuer<'_>,
    grant: &GrantRow,
    nonce: Option<&str>,
) -> Result<super::clients::TokenAnswer, ApiError> {
    let now = issuer.now;
    let access_token = issuer.keys.issue(&super::tokens::Claims {
        iss: super::tokens::ISSUER.into(),
        aud: super::tokens::ISSUER.into(),
        sub: grant.client_id.clone(),
        iat: now,
        exp: now + USER_TOKEN_SECONDS,
        jti: uuid::Uuid::new_v4().to_string(),
        scope: grant.scope.clone(),
        tenant: grant.tenant.clone(),
        patient: grant.patient.clone(),
        fhir_user: grant.fhir_user.clone(),
        sid: Some(grant.grant_id.clone()),
    })?;
    let refresh_token = new_refresh(conn, grant, now)?;
    let id_token = if grant.scope.split_whitespace().any(|s| s == "openid") {
        Some(
            issuer
                .id_key
                .id_token(&issuer.origin, &issuer.fhir_base, grant, nonce, now)?,
        )
    } else {
        None
    };
    Ok(super::clients::TokenAnswer {
        access_token,
        token_type: "Bearer",
        expires_in: USER_TOKEN_SECONDS,
        scope: grant.scope.clone(),
        patient: grant.patient.clone(),
        id_token,
        refresh_token,
        client_id: grant.client_id.clone(),
        tenant: grant.tenant.clone(),
        user: grant.fhir_user.clone(),
    })
}

/// A refresh request may narrow the scope of its grant, never widen it.
pub fn narrowed(grant: &GrantRow, asked: Option<&str>) -> Result<GrantRow, InvalidScope> {
    let Some(asked) = asked else {
        return Ok(grant.clone());
    };
    let held: Vec<&str> = grant.scope.split_whitespace().collect();
    if let Some(beyond) = asked.split_whitespace().find(|s| !held.contains(s)) {
        return Err(InvalidScope(format!(
            "`{beyond}` was not granted: a refresh can only narrow the scopes"
        )));
    }
    let mut g = grant.clone();
    g.scope = asked.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(g)
}

/// A scope a request may not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn app(kind: &str) -> ClientRow {
        ClientRow {
            tenant: "default".into(),
            client_id: "app".into(),
            name: "Exercises".into(),
            scope: "launch/patient openid fhirUser offline_access patient/*.rs".into(),
            jwks: None,
            jwks_url: None,
            created_at: 0,
            kind: kind.into(),
            redirect_uris: Some("https://app.example.org/cb http://127.0.0.1/native".into()),
            secret_hash: None,
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example.org/cb".into()),
            scope: Some("launch/patient openid patient/*.rs user/*.cruds".into()),
            state: Some("s1".into()),
            aud: Some("https://hep.example.org/fhir".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            launch: None,
            nonce: None,
        }
    }

    #[test]
    fn a_good_request_keeps_only_the_registered_scopes() {
        let p = check(
            &params(),
            Some(&app("public")),
            "https://hep.example.org/fhir/",
            100,
        )
        .expect("accepted");
        assert_eq!(p.scope, "launch/patient openid patient/*.rs");
        assert_eq!(p.exp, 100 + PENDING_SECONDS);
    }

    #[test]
    fn errors_before_the_redirect_is_known_are_pages_after_it_redirects() {
        let c = app("public");
        let base = "https://hep.example.org/fhir";
        assert!(matches!(
            check(&params(), None, base, 0),
            Err(AuthorizeError::Page(_))
        ));
        let mut p = params();
        p.redirect_uri = Some("https://evil.example/cb".into());
        assert!(matches!(
            check(&p, Some(&c), base, 0),
            Err(AuthorizeError::Page(_))
        ));
        assert!(matches!(
            check(&params(), Some(&app("backend")), base, 0),
            Err(AuthorizeError::Page(_))
        ));
        for (edit, error) in [
            (
                (|p: &mut AuthorizeParams| p.code_challenge_method = Some("plain".into()))
                    as fn(&mut AuthorizeParams),
                "invalid_request",
            ),
            (|p| p.code_challenge = None, "invalid_request"),
            (
                |p| p.aud = Some("https://other.example/fhir".into()),
                "invalid_request",
            ),
            (
                |p| p.response_type = Some("token".into()),
                "unsupported_response_type",
            ),
            (
                |p| p.scope = Some("openid system/*.rs".into()),
                "invalid_scope",
            ),
        ] {
            let mut p = params();
            edit(&mut p);
            let e = check(&p, Some(&c), base, 0).expect_err("refused");
            let AuthorizeError::Redirect { error: got, .. } = &e else {
                panic!("not a redirect: {e:?}");
            };
            assert_eq!(*got, error);
            let location = e.location().unwrap_or_default();
            assert!(location.starts_with("https://app.example.org/cb?error="));
            assert!(location.ends_with("&state=s1"), "{location}");
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        let registered = "https://app.example.org/cb http://127.0.0.1/native";
        let origin = "https://hep.example.org";
        let matches = |sent: &str| redirect_matches(registered, sent, origin);
        assert!(matches("http://127.0.0.1:53124/native"));
        assert!(matches("https://app.example.org/cb"));
        assert!(!matches("https://app.example.org:8443/cb"));
        assert!(!matches("http://127.0.0.1:53124/other"));
        assert!(!matches("http://localhost:53124/native"));
        // the server's own app: a path on the server's origin, and on no other
        assert!(redirect_matches(
            "/app/",
            "https://hep.example.org/app/",
            origin
        ));
        assert!(!redirect_matches(
            "/app/",
            "https://evil.example/app/",
            origin
        ));
        assert!(!redirect_matches("/app/", "/app/", origin));
        assert!(check_redirect_uri("https://app.example.org/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1/cb").is_ok());
        assert!(check_redirect_uri("http://app.example.org/cb").is_err());
        assert!(check_redirect_uri("https://app.example.org/cb#x").is_err());
        assert!(check_redirect_uri("custom:cb").is_err());
    }

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636, appendix B
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn page_values_are_signed_and_expire() {
        let keys = PageKeys::from_secret(b"0123456789abcdef0123456789abcdef");
        let p = check(
            &params(),
            Some(&app("public")),
            "https://hep.example.org/fhir",
            100,
        )
        .expect("accepted");
        let signed = keys.sign_pending(&p).unwrap_or_default();
        assert_eq!(keys.pending(&signed, 200), Some(p.clone()));
        assert_eq!(keys.pending(&signed, 100 + PENDING_SECONDS), None);
        // a session is not a pending request, and a changed value is refused
        let s = keys
            .sign_session(&SignedIn::new("default", "u1", 100))
            .unwrap_or_default();
        assert_eq!(keys.pending(&s, 200), None);
        assert!(keys.session(&s, 200).is_some());
        let other = PageKeys::from_secret(b"another key, another key, anothe");
        assert_eq!(other.pending(&signed, 200), None);
    }

    #[test]
    fn id_tokens_are_signed_by_the_published_key() {
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
        let der = aws_lc_rs::encoding::AsDer::as_der(&pair).expect("der");
        let key = IdTokenKey::from_pkcs8_base64(
            &base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
        )
        .expect("key");
        let grant = GrantRow {
            tenant: "default".into(),
            grant_id: "g".into(),
            client_id: "app".into(),
            user_id: "u1".into(),
            scope: "openid fhirUser".into(),
            patient: Some("p1".into()),
            fhir_user: Some("Patient/p1".into()),
            created_at: 100,
            expires_at: 1000,
            revoked_at: None,
        };
        let token = key
            .id_token(
                "https://hep.example.org",
                "https://hep.example.org/fhir",
                &grant,
                Some("n1"),
                100,
            )
            .expect("signed");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(key.jwks()).expect("a JWKS");
        let decoding = DecodingKey::from_jwk(&jwks.keys[0]).expect("an RSA key");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["app"]);
        v.validate_exp = false;
        let claims: serde_json::Value = jsonwebtoken::decode(&token, &decoding, &v)
            .expect("verified")
            .claims;
        assert_eq!(
            claims["fhirUser"],
            "https://hep.example.org/fhir/Patient/p1"
        );
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(claims["iss"], "https://hep.example.org");
    }
}
