//! SMART Backend Services: registered clients, and the `client_credentials` grant with a
//! `private_key_jwt` client assertion (RS384 or ES384) checked against the client's
//! JWKS, each assertion usable once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;

use super::scopes::Scope;
use super::tokens::{Claims, ISSUER, TokenKeys};
use crate::db::clients::{self, ClientRow};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

/// Seconds an access token from the token endpoint lasts.
pub const ACCESS_TOKEN_SECONDS: i64 = 300;
/// The longest an assertion may be valid ahead (SMART: at most five minutes).
const MAX_ASSERTION_SECONDS: i64 = 300;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a JWKS fetched from a client's URL is used before it is fetched again.
const JWKS_CACHE: Duration = Duration::from_secs(300);

/// What registering a client takes.
#[derive(Debug, Clone)]
pub struct Registration {
    pub tenant: String,
    pub name: String,
    /// The scopes it may be granted.
    pub scope: String,
    pub jwks: Option<String>,
    pub jwks_url: Option<String>,
    /// `backend` (SMART Backend Services: keys), `public` or `confidential` (an app
    /// people sign in to: redirect URIs).
    pub kind: String,
    pub redirect_uris: Vec<String>,
}

/// Checks and stores a client; returns it with its new id, and a confidential app's
/// secret (shown once: only its SHA-256 is kept).
pub fn register(
    conn: &mut AnyConnection,
    r: &Registration,
    now_micros: i64,
) -> Result<(ClientRow, Option<String>), ApiError> {
    domain::TenantId::parse(&r.tenant)
        .map_err(|_| ApiError::BadRequest(format!("`{}` is not a valid tenant", r.tenant)))?;
    if r.name.trim().is_empty() || r.name.len() > 200 {
        return Err(ApiError::BadRequest(
            "a client needs a name (200 characters at most)".into(),
        ));
    }
    let scopes: Vec<&str> = r.scope.split_whitespace().collect();
    let app = match r.kind.as_str() {
        "backend" => false,
        "public" | "confidential" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "`{other}`: a client is a backend service, or a public or confidential app"
            )));
        }
    };
    if app {
        if scopes.is_empty()
            || scopes.iter().any(|s| !super::authorize::is_known_scope(s))
            || !scopes.iter().any(|s| Scope::parse(s).is_some())
        {
            return Err(ApiError::BadRequest(format!(
                "`{}`: an app's scopes are SMART resource scopes (such as patient/*.rs) and launch scopes (launch/patient, openid, fhirUser, offline_access)",
                r.scope
            )));
        }
        if r.jwks.is_some() || r.jwks_url.is_some() {
            return Err(ApiError::BadRequest(
                "an app people sign in to has redirect URIs, not keys".into(),
            ));
        }
        if r.redirect_uris.is_empty() || r.redirect_uris.len() > 20 {
            return Err(ApiError::BadRequest(
                "an app needs its redirect URIs (one to twenty)".into(),
            ));
        }
        for u in &r.redirect_uris {
            super::authorize::check_redirect_uri(u).map_err(ApiError::BadRequest)?;
        }
    } else {
        if scopes.is_empty() || scopes.iter().any(|s| Scope::parse(s).is_none()) {
            return Err(ApiError::BadRequest(format!(
                "`{}`: a client's scopes are SMART resource scopes such as system/*.rs",
                r.scope
            )));
        }
        check_keys(r.jwks.as_deref(), r.jwks_url.as_deref())?;
    }
    let secret = if r.kind == "confidential" {
        Some(super::authorize::random_secret()?)
    } else {
        None
    };
    let row = ClientRow {
        tenant: r.tenant.clone(),
        client_id: uuid::Uuid::new_v4().to_string(),
        name: r.name.trim().to_string(),
        scope: scopes.join(" "),
        jwks: r.jwks.clone(),
        jwks_url: r.jwks_url.clone(),
        created_at: now_micros,
        kind: r.kind.clone(),
        redirect_uris: app.then(|| r.redirect_uris.join(" ")),
        secret_hash: secret.as_deref().map(super::authorize::secret_hash),
    };
    clients::insert(conn, &row)?;
    Ok((row, secret))
}

/// The client id of the patient app this server serves at `/app/`, in `tenant`.
pub fn own_app_id(tenant: &str) -> String {
    format!("hep-app.{tenant}")
}

/// What the patient app asks: the patient's record to read, its sessions to complete,
/// its answers to outcome measures to send, and its messages with the clinic to send
/// and mark read.
pub const OWN_APP_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u patient/QuestionnaireResponse.c patient/Communication.cu";

/// The patient app's scope as earlier releases registered it: a registration that still
/// has one gets the current one (a clinic's own change of it is kept).
const EARLIER_OWN_APP_SCOPES: &[&str] = &[
    "launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u",
    "launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u patient/QuestionnaireResponse.c",
];

/// Registers the patient app this server serves at `/app/` in `tenant`, once: a public
/// client whose redirect URI is `/app/` on this server's own origin (a path only the
/// server registers). A registration the clinic changed or made earlier is kept.
pub fn register_own_app(
    conn: &mut AnyConnection,
    tenant: &domain::TenantId,
    now_micros: i64,
) -> Result<(), ApiError> {
    let client_id = own_app_id(tenant.as_str());
    if clients::find(conn, &client_id)?.is_some() {
        for was in EARLIER_OWN_APP_SCOPES {
            clients::replace_scope(conn, tenant.as_str(), &client_id, was, OWN_APP_SCOPE)?;
        }
        return Ok(());
    }
    clients::insert(
        conn,
        &ClientRow {
            tenant: tenant.as_str().to_string(),
            client_id,
            name: "Home exercises".into(),
            scope: OWN_APP_SCOPE.into(),
            jwks: None,
            jwks_url: None,
            created_at: now_micros,
            kind: "public".into(),
            redirect_uris: Some("/app/".into()),
            secret_hash: None,
        },
    )?;
    Ok(())
}

/// Checks a client's keys: a JWKS document with a usable key, or an https URL of one.
fn check_keys(jwks: Option<&str>, jwks_url: Option<&str>) -> Result<(), ApiError> {
    match (jwks, jwks_url) {
        (Some(jwks), None) => {
            usable_keys(jwks)?;
            Ok(())
        }
        (None, Some(url)) => check_jwks_url(url),
        _ => Err(ApiError::BadRequest(
            "give the client's public keys as a JWKS document or as the URL of one (not both)"
                .into(),
        )),
    }
}

/// Replaces the keys of a client (rotation): assertions signed with the old keys are
/// refused from then on. 404 when the clinic has no such client.
pub fn rotate_keys(
    conn: &mut AnyConnection,
    tenant: &str,
    client_id: &str,
    jwks: Option<&str>,
    jwks_url: Option<&str>,
) -> Result<(), ApiError> {
    check_keys(jwks, jwks_url)?;
    if clients::set_keys(conn, tenant, client_id, jwks, jwks_url)? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "there is no client {client_id}"
        )))
    }
}

/// Removes a client: it gets no token from then on (tokens already issued run out
/// within their short lifetime). 404 when the clinic has no such client.
pub fn remove(conn: &mut AnyConnection, tenant: &str, client_id: &str) -> Result<(), ApiError> {
    if clients::remove(conn, tenant, client_id)? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "there is no client {client_id}"
        )))
    }
}

/// What an administrator sees of a client (never its keys' contents).
pub fn describe(c: &ClientRow) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.client_id,
        "name": c.name,
        "scope": c.scope,
        "tenant": c.tenant,
        "kind": c.kind,
        "redirect_uris": c.redirect_uris.as_deref().map(|u| u.split_whitespace().collect::<Vec<_>>()),
        "keys": match (c.kind.as_str(), c.jwks_url.is_some()) {
            ("backend", true) => Some("jwks_url"),
            ("backend", false) => Some("jwks"),
            _ => None,
        },
        "jwks_url": c.jwks_url,
        "created": crate::clock::instant_string(c.created_at),
    })
}

/// Who changed a client, for the audit trail: an administrator's token, or the
/// operator at the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: String,
    pub client: String,
    pub address: Option<String>,
}

impl Actor {
    /// An administrator's token.
    pub fn of(access: &crate::auth::Access) -> Actor {
        Actor {
            tenant: access.tenant.clone(),
            client: access.client.clone(),
            address: access.address.clone(),
        }
    }

    /// The operator of a `client` command, acting on a clinic.
    fn command_line(tenant: &str) -> Actor {
        Actor {
            tenant: tenant.to_string(),
            client: COMMAND_LINE.to_string(),
            address: None,
        }
    }
}

/// The agent of the audit records of `client` commands.
pub const COMMAND_LINE: &str = "hep-server-command-line";

/// Records a change to a client (action `C`, `U` or `D`), in the change's transaction.
pub fn record_change(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    client_id: &str,
    status: u16,
    now: i64,
) -> Result<(), ApiError> {
    crate::db::audit::insert(
        conn,
        &[crate::db::audit::AuditRow {
            tenant: actor.tenant.clone(),
            id: crate::db::new_id(),
            recorded: now,
            action: action.into(),
            subtype: fhir_mapping::audit::CLIENT_CHANGE.into(),
            outcome: "0".into(),
            status: i32::from(status),
            client: actor.client.clone(),
            address: actor.address.clone(),
            res_type: Some(fhir_mapping::audit::CLIENT_ENTITY.into()),
            res_id: Some(client_id.to_string()),
            version: None,
            patient: None,
            query: None,
        }],
    )?;
    Ok(())
}

/// Registers a client in the database at `database_url` (the `client add` command).
pub fn register_in(
    database_url: &str,
    r: &Registration,
) -> Result<(ClientRow, Option<String>), ApiError> {
    let db = Db::open(database_url, 1)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let r = r.clone();
    db.write(move |conn| {
        let (row, secret) = register(conn, &r, now)?;
        record_change(
            conn,
            &Actor::command_line(&r.tenant),
            "C",
            &row.client_id,
            201,
            now,
        )?;
        Ok((row, secret))
    })
}

/// The clients of a clinic in the database at `database_url` (the `client list` command).
pub fn list_in(database_url: &str, tenant: &str) -> Result<Vec<ClientRow>, ApiError> {
    let db = Db::open(database_url, 1)?;
    let tenant = tenant.to_string();
    db.write(move |conn| Ok::<_, ApiError>(clients::list(conn, &tenant)?))
}

/// New keys for a client in the database at `database_url` (the `client keys` command).
pub fn rotate_in(
    database_url: &str,
    tenant: &str,
    client_id: &str,
    jwks: Option<String>,
    jwks_url: Option<String>,
) -> Result<(), ApiError> {
    let db = Db::open(database_url, 1)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let (tenant, client_id) = (tenant.to_string(), client_id.to_string());
    db.write(move |conn| {
        rotate_keys(
            conn,
            &tenant,
            &client_id,
            jwks.as_deref(),
            jwks_url.as_deref(),
        )?;
        record_change(
            conn,
            &Actor::command_line(&tenant),
            "U",
            &client_id,
            200,
            now,
        )
    })
}

/// Removes a client from the database at `database_url` (the `client remove` command).
pub fn remove_in(database_url: &str, tenant: &str, client_id: &str) -> Result<(), ApiError> {
    let db = Db::open(database_url, 1)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let (tenant, client_id) = (tenant.to_string(), client_id.to_string());
    db.write(move |conn| {
        remove(conn, &tenant, &client_id)?;
        record_change(
            conn,
            &Actor::command_line(&tenant),
            "D",
            &client_id,
            204,
            now,
        )
    })
}

/// The keys of a JWKS document that can check RS384 or ES384 signatures.
fn usable_keys(jwks: &str) -> Result<JwkSet, ApiError> {
    let set: JwkSet = serde_json::from_str(jwks)
        .map_err(|e| ApiError::BadRequest(format!("the JWKS is not valid: {e}")))?;
    if set.keys.iter().all(|k| DecodingKey::from_jwk(k).is_err()) {
        return Err(ApiError::BadRequest(
            "the JWKS holds no RSA or EC public key".into(),
        ));
    }
    Ok(set)
}

/// A JWKS URL must be https (http only on this machine's loopback, for development).
pub(crate) fn check_jwks_url(url: &str) -> Result<(), ApiError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|r| r.starts_with([':', '/']))
        });
    if url.starts_with("https://") || loopback {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a JWKS URL must be https (or http on the loopback address)".into(),
        ))
    }
}

/// JWKS documents fetched from clients' URLs, by URL.
#[derive(Default)]
pub struct JwksCache {
    fetched: Mutex<HashMap<String, (Instant, String)>>,
}

impl JwksCache {
    pub(crate) async fn get(&self, url: &str, refresh: bool) -> Result<String, TokenError> {
        if !refresh
            && let Ok(cache) = self.fetched.lock()
            && let Some((at, jwks)) = cache.get(url)
            && at.elapsed() < JWKS_CACHE
        {
            return Ok(jwks.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| TokenError::Server)?;
        let res = client.get(url).send().await.map_err(|_| {
            TokenError::InvalidClient("the client's JWKS URL cannot be fetched".into())
        })?;
        if !res.status().is_success() {
            return Err(TokenError::InvalidClient(format!(
                "the client's JWKS URL answered {}",
                res.status()
            )));
        }
        let text = res
            .text()
            .await
            .map_err(|_| TokenError::InvalidClient("the client's JWKS cannot be read".into()))?;
        if let Ok(mut cache) = self.fetched.lock() {
            cache.insert(url.to_string(), (Instant::now(), text.clone()));
        }
        Ok(text)
    }
}

/// Why a token request is refused (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    InvalidScope(String),
    UnsupportedGrantType,
    Server,
}

impl TokenError {
    /// The HTTP status and the body of the error answer.
    pub fn answer(&self) -> (u16, serde_json::Value) {
        let (status, code, description) = match self {
            TokenError::InvalidRequest(d) => (400, "invalid_request", d.as_str()),
            TokenError::InvalidClient(d) => (401, "invalid_client", d.as_str()),
            TokenError::InvalidGrant(d) => (400, "invalid_grant", d.as_str()),
            TokenError::InvalidScope(d) => (400, "invalid_scope", d.as_str()),
            TokenError::UnsupportedGrantType => (
                400,
                "unsupported_grant_type",
                "the grant types are authorization_code, refresh_token and client_credentials",
            ),
            TokenError::Server => (500, "server_error", "the token could not be issued"),
        };
        (
            status,
            serde_json::json!({"error": code, "error_description": description}),
        )
    }
}

/// The answer to a granted token request.
#[derive(Debug, Clone, Serialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// The patient in context (SMART).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// For the audit trail, not sent.
    #[serde(skip)]
    pub client_id: String,
    #[serde(skip)]
    pub tenant: String,
    /// The person (`fhirUser`), for the audit trail.
    #[serde(skip)]
    pub user: Option<String>,
}

/// A token request's form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

/// The `iss` and `sub` of an assertion, read before its signature is checked (to find
/// the client and its keys).
pub fn unverified_client(assertion: &str) -> Option<String> {
    let claims = super::tokens::unverified_claims(assertion)?;
    let iss = claims.get("iss")?.as_str()?;
    (claims.get("sub")?.as_str()? == iss).then(|| iss.to_string())
}

#[derive(Debug, serde::Deserialize)]
struct AssertionClaims {
    jti: Option<String>,
    exp: i64,
}

/// Everything the token endpoint needs.
pub struct TokenContext<'a> {
    pub db: &'a Db,
    pub keys: &'a std::sync::Arc<TokenKeys>,
    pub cache: &'a JwksCache,
    /// The token endpoint's URL: the assertion's `aud`.
    pub token_url: String,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// The key of ID tokens.
    pub id_key: &'a std::sync::Arc<super::authorize::IdTokenKey>,
    /// This server's origin (the `iss` of ID tokens) and FHIR base.
    pub origin: String,
    pub fhir_base: String,
    /// `Authorization: Basic` of the request: a confidential app's id and secret.
    pub basic: Option<(String, String)>,
}

/// The token endpoint: `client_credentials` (a backend service's signed assertion),
/// `authorization_code` (an app's code with its PKCE verifier) or `refresh_token`.
pub async fn exchange(ctx: TokenContext<'_>, form: TokenForm) -> Result<TokenAnswer, TokenError> {
    match form.grant_type.as_deref() {
        Some("client_credentials") => client_credentials(ctx, form).await,
        Some("authorization_code") | Some("refresh_token") => app_grant(ctx, form).await,
        None => Err(TokenError::InvalidRequest("grant_type is missing".into())),
        Some(_) => Err(TokenError::UnsupportedGrantType),
    }
}

/// The app a code or refresh request comes from, authenticated: a confidential app by
/// its secret (`client_secret_basic`, or in the form), a public app by its id alone
/// (its code is bound to its PKCE verifier, its refresh tokens rotate).
pub async fn authenticate_app(
    db: &Db,
    basic: Option<&(String, String)>,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientRow, TokenError> {
    let (id, secret) = match (basic, form_id) {
        (Some((id, secret)), None) => (id.clone(), Some(secret.clone())),
        (Some((id, secret)), Some(f)) if f == id => (id.clone(), Some(secret.clone())),
        (Some(_), Some(_)) => {
            return Err(TokenError::InvalidRequest(
                "client_id differs from the Authorization header's".into(),
            ));
        }
        (None, Some(f)) => (f.to_string(), form_secret.map(str::to_string)),
        (None, None) => {
            return Err(TokenError::InvalidClient(
                "the app is not identified (client_id, or Authorization: Basic)".into(),
            ));
        }
    };
    let lookup = id.clone();
    let client = db
        .read(move |conn| Ok(clients::find(conn, &lookup)?))
        .await
        .map_err(|_| TokenError::Server)?
        .filter(|c| c.kind != "backend")
        .ok_or_else(|| TokenError::InvalidClient("unknown app".into()))?;
    match (client.kind.as_str(), secret, client.secret_hash.as_deref()) {
        ("public", None, _) => Ok(client),
        ("public", Some(_), _) => Err(TokenError::InvalidClient(
            "a public app has no secret".into(),
        )),
        ("confidential", Some(secret), Some(hash)) => {
            let sent = super::authorize::secret_hash(&secret);
            if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), hash.as_bytes())
                .is_ok()
            {
                Ok(client)
            } else {
                Err(TokenError::InvalidClient(
                    "the app's secret is not right".into(),
                ))
            }
        }
        _ => Err(TokenError::InvalidClient(
            "a confidential app authenticates with its secret (client_secret_basic)".into(),
        )),
    }
}

/// `authorization_code` and `refresh_token`.
async fn app_grant(ctx: TokenContext<'_>, form: TokenForm) -> Result<TokenAnswer, TokenError> {
    use super::authorize::{self, Issuer};
    let client = authenticate_app(
        ctx.db,
        ctx.basic.as_ref(),
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let by_code = form.grant_type.as_deref() == Some("authorization_code");
    let secret = if by_code {
        form.code.clone()
    } else {
        form.refresh_token.clone()
    }
    .filter(|s| !s.is_empty() && s.len() <= 512)
    .ok_or_else(|| {
        TokenError::InvalidRequest(if by_code {
            "code is missing".into()
        } else {
            "refresh_token is missing".into()
        })
    })?;
    let (keys, id_key) = (ctx.keys.clone(), ctx.id_key.clone());
    let (origin, fhir_base, now) = (ctx.origin.clone(), ctx.fhir_base.clone(), ctx.now);
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || {
        db.write(move |conn| {
            let issuer = Issuer {
                keys: &keys,
                id_key: &id_key,
                origin: origin.clone(),
                fhir_base: fhir_base.clone(),
                now,
            };
            if by_code {
                match authorize::redeem_code(
                    conn,
                    &client,
                    &secret,
                    form.redirect_uri.as_deref(),
                    form.code_verifier.as_deref(),
                    now,
                )? {
                    Ok((grant, nonce)) => Ok(Ok(authorize::tokens_of(
                        conn,
                        &issuer,
                        &grant,
                        nonce.as_deref(),
                    )?)),
                    Err(e) => Ok(Err(TokenError::InvalidGrant(e.0))),
                }
            } else {
                match authorize::redeem_refresh(conn, &client, &secret, now)? {
                    Ok(grant) => match authorize::narrowed(&grant, form.scope.as_deref()) {
                        Ok(g) => Ok(Ok(authorize::tokens_of(conn, &issuer, &g, None)?)),
                        Err(e) => Ok(Err(TokenError::InvalidScope(e.0))),
                    },
                    Err(e) => Ok(Err(TokenError::InvalidGrant(e.0))),
                }
            }
        })
    })
    .await
    .map_err(|_| TokenError::Server)?
    .map_err(|_: ApiError| TokenError::Server)?
}

/// The `client_credentials` grant: checks the client assertion and answers an access
/// token for the requested scopes the client is registered for.
async fn client_credentials(
    ctx: TokenContext<'_>,
    form: TokenForm,
) -> Result<TokenAnswer, TokenError> {
    if form.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
        return Err(TokenError::InvalidRequest(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let assertion = form
        .client_assertion
        .ok_or_else(|| TokenError::InvalidRequest("client_assertion is missing".into()))?;
    let requested = form
        .scope
        .ok_or_else(|| TokenError::InvalidRequest("scope is missing".into()))?;
    let header = jsonwebtoken::decode_header(&assertion)
        .map_err(|_| TokenError::InvalidClient("the client assertion is not a JWT".into()))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(TokenError::InvalidClient(
            "client assertions are signed RS384 or ES384".into(),
        ));
    }
    let client_id = unverified_client(&assertion).ok_or_else(|| {
        TokenError::InvalidClient("the assertion's iss and sub must both be the client id".into())
    })?;
    let id = client_id.clone();
    let client = ctx
        .db
        .read(move |conn| Ok(clients::find(conn, &id)?))
        .await
        .map_err(|_| TokenError::Server)?
        .ok_or_else(|| TokenError::InvalidClient("unknown client".into()))?;
    // before any key is fetched: never from an address the client did not register
    check_jku(header.jku.as_deref(), &client)?;
    let claims = match verify_assertion(&ctx, &client, &assertion, header, false).await {
        // a URL's keys may have been rotated since they were cached
        Err(TokenError::InvalidClient(_)) if client.jwks_url.is_some() => {
            let header = jsonwebtoken::decode_header(&assertion).map_err(|_| TokenError::Server)?;
            verify_assertion(&ctx, &client, &assertion, header, true).await?
        }
        other => other?,
    };
    if claims.exp > ctx.now + MAX_ASSERTION_SECONDS + 60 {
        return Err(TokenError::InvalidClient(
            "the assertion must expire within five minutes".into(),
        ));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or_else(|| TokenError::InvalidClient("the assertion needs a jti".into()))?;
    let (tenant, cid, now, exp) = (
        client.tenant.clone(),
        client.client_id.clone(),
        ctx.now,
        claims.exp,
    );
    let fresh = ctx
        .db
        .write(move |conn| {
            Ok::<_, ApiError>(clients::use_assertion(conn, &tenant, &cid, &jti, exp, now)?)
        })
        .map_err(|_| TokenError::Server)?;
    if !fresh {
        return Err(TokenError::InvalidClient(
            "this assertion was used already (jti)".into(),
        ));
    }
    let allowed: Vec<Scope> = client
        .scope
        .split_whitespace()
        .filter_map(Scope::parse)
        .collect();
    let granted: Vec<&str> = requested
        .split_whitespace()
        .filter(|s| Scope::parse(s).is_some_and(|r| allowed.iter().any(|a| r.within(a))))
        .collect();
    if granted.is_empty() {
        return Err(TokenError::InvalidScope(format!(
            "none of the requested scopes is among the client's: {}",
            client.scope
        )));
    }
    let scope = granted.join(" ");
    let access_token = ctx
        .keys
        .issue(&Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: client.client_id.clone(),
            iat: ctx.now,
            exp: ctx.now + ACCESS_TOKEN_SECONDS,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.clone(),
            tenant: client.tenant.clone(),
            patient: None,
            fhir_user: None,
            sid: None,
        })
        .map_err(|_| TokenError::Server)?;
    Ok(TokenAnswer {
        access_token,
        token_type: "bearer",
        expires_in: ACCESS_TOKEN_SECONDS,
        scope,
        patient: None,
        id_token: None,
        refresh_token: None,
        client_id: client.client_id.clone(),
        tenant: client.tenant.clone(),
        user: None,
    })
}

/// The `jku` of an assertion's header, if any, must be the client's registered JWKS URL
/// (SMART Backend Services); a client whose keys were registered as a JWKS document
/// has no URL an assertion could name. The keys are only ever read from the
/// registration, so a `jku` is checked, never fetched.
fn check_jku(jku: Option<&str>, client: &ClientRow) -> Result<(), TokenError> {
    let Some(jku) = jku else {
        return Ok(());
    };
    match client.jwks_url.as_deref() {
        Some(url) if url == jku => Ok(()),
        Some(_) => Err(TokenError::InvalidClient(
            "the assertion's jku is not the client's registered JWKS URL".into(),
        )),
        None => Err(TokenError::InvalidClient(
            "the client's keys were registered as a JWKS document: its assertions carry no jku"
                .into(),
        )),
    }
}

async fn verify_assertion(
    ctx: &TokenContext<'_>,
    client: &ClientRow,
    assertion: &str,
    header: jsonwebtoken::Header,
    refresh: bool,
) -> Result<AssertionClaims, TokenError> {
    let jwks = match (&client.jwks, &client.jwks_url) {
        (Some(j), _) => j.clone(),
        (None, Some(url)) => ctx.cache.get(url, refresh).await?,
        (None, None) => return Err(TokenError::InvalidClient("the client has no keys".into())),
    };
    let set: JwkSet = serde_json::from_str(&jwks)
        .map_err(|_| TokenError::InvalidClient("the client's JWKS is not valid".into()))?;
    let candidates: Vec<_> = match &header.kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .collect(),
        None => set.keys.iter().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[ctx.token_url.as_str()]);
    validation.set_issuer(&[client.client_id.as_str()]);
    validation.sub = Some(client.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = 60;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            return Ok(data.claims);
        }
    }
    Err(TokenError::InvalidClient(
        "the client assertion is not signed by a key of the client, or is expired or not for this server".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn the_own_app_registration_gets_the_current_scope_unless_the_clinic_changed_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = dir.path().join("hep.db").display().to_string();
        let db = Db::open(&url, 1).unwrap_or_else(|e| panic!("{e}"));
        let scope_after = |was: &'static str| {
            db.write(move |conn| {
                let tenant = domain::TenantId::parse("default").unwrap_or_else(|e| panic!("{e}"));
                register_own_app(conn, &tenant, 0)?;
                let id = own_app_id("default");
                let current = clients::find(conn, &id)?
                    .map(|c| c.scope)
                    .unwrap_or_default();
                clients::replace_scope(conn, "default", &id, &current, was)?;
                register_own_app(conn, &tenant, 0)?;
                Ok::<_, ApiError>(clients::find(conn, &id)?.map(|c| c.scope))
            })
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(
            scope_after(EARLIER_OWN_APP_SCOPES[0]).as_deref(),
            Some(OWN_APP_SCOPE)
        );
        assert_eq!(
            scope_after("launch/patient openid patient/*.rs").as_deref(),
            Some("launch/patient openid patient/*.rs"),
            "a clinic's own scope is kept"
        );
    }

    #[test]
    fn jwks_urls_are_https_or_loopback() {
        assert!(check_jwks_url("https://ehr.example.org/jwks.json").is_ok());
        assert!(check_jwks_url("http://127.0.0.1:9000/jwks").is_ok());
        assert!(check_jwks_url("http://localhost/jwks").is_ok());
        assert!(check_jwks_url("http://ehr.example.org/jwks").is_err());
        assert!(check_jwks_url("http://localhost.evil.example/jwks").is_err());
        assert!(check_jwks_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn a_jku_must_be_the_registered_url() {
        let mut client = ClientRow {
            tenant: "default".into(),
            client_id: "c1".into(),
            name: "EHR".into(),
            scope: "system/*.rs".into(),
            jwks: None,
            jwks_url: Some("https://ehr.example.org/jwks.json".into()),
            created_at: 0,
            kind: "backend".into(),
            redirect_uris: None,
            secret_hash: None,
        };
        assert_eq!(check_jku(None, &client), Ok(()));
        assert_eq!(
            check_jku(Some("https://ehr.example.org/jwks.json"), &client),
            Ok(())
        );
        for other in [
            "https://evil.example/jwks.json",
            "https://ehr.example.org/jwks.json?x=1",
            "https://ehr.example.org/JWKS.json",
        ] {
            assert!(
                matches!(
                    check_jku(Some(other), &client),
                    Err(TokenError::InvalidClient(_))
                ),
                "{other}"
            );
        }
        client.jwks = Some("{\"keys\": []}".into());
        client.jwks_url = None;
        assert_eq!(check_jku(None, &client), Ok(()));
        assert!(matches!(
            check_jku(Some("https://ehr.example.org/jwks.json"), &client),
            Err(TokenError::InvalidClient(_))
        ));
    }

    #[test]
    fn the_client_is_read_from_iss_and_sub() {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = |claims| {
            format!(
                "{}.{}.sig",
                part(serde_json::json!({"alg": "ES384"})),
                part(claims)
            )
        };
        assert_eq!(
            unverified_client(&jwt(serde_json::json!({"iss": "c1", "sub": "c1"}))),
            Some("c1".into())
        );
        assert_eq!(
            unverified_client(&jwt(serde_json::json!({"iss": "c1", "sub": "c2"}))),
            None
        );
        assert_eq!(unverified_client("garbage"), None);
    }
}
