//! People's sign-in (SMART App Launch): the authorization endpoint and its pages
//! (sign-in, a clinic's code, consent), the EHR launch, introspection, revocation, the
//! ID token's keys and the OpenID configuration.
//!
//! The pages need no JavaScript. What a page hands to the next travels in the form: the
//! pending authorization request (`request`, signed by the server) and a CSRF value
//! that must equal the `hep_csrf` cookie. A signed-in person is the `hep_session`
//! cookie (signed, an hour). Both cookies are `HttpOnly`, `SameSite=Lax`, and `Secure`
//! when the server's base URL is https.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::pages;
use super::rest::blocking;
use super::state::AppState;
use crate::auth::accounts::{self, RedeemError, SignInError, User};
use crate::auth::authorize::{self, AuthorizeError, AuthorizeParams, Pending, SignedIn};
use crate::db::clients::ClientRow;
use crate::error::ApiError;

type State = web::Data<AppState>;

const SESSION_COOKIE: &str = "hep_session";
const CSRF_COOKIE: &str = "hep_csrf";
/// How the pages name the clinic (a clinic's display name is not configured yet).
const CLINIC: &str = "your clinic";

fn now(state: &AppState) -> i64 {
    crate::clock::to_micros(state.clock.now()) / 1_000_000
}

fn cookie(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    value: String,
    secs: i64,
) -> Cookie<'static> {
    let mut c = Cookie::build(name.to_string(), value)
        .path("/auth")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.origin(req).starts_with("https://"))
        .finish();
    c.set_max_age(actix_web::cookie::time::Duration::seconds(secs));
    c
}

/// The origin of a URI (for the consent page's `form-action`).
fn origin_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// A page of the sign-in, with its security headers and cookies.
fn page(
    status: StatusCode,
    html: String,
    redirect_origin: Option<&str>,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header(("Content-Security-Policy", pages::csp(redirect_origin)))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .content_type("text/html; charset=utf-8");
    for c in cookies {
        b.cookie(c);
    }
    b.body(html)
}

fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(status, pages::error(title, message), None, Vec::new())
}

fn redirect(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut b = HttpResponse::Found();
    b.insert_header(("Location", location.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"));
    for c in cookies {
        b.cookie(c);
    }
    b.finish()
}

fn server_error(e: &ApiError) -> HttpResponse {
    if let ApiError::Unavailable(o) = e {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again in a moment",
            &format!(
                "The clinic's server cannot sign you in right now ({}).",
                o.text()
            ),
        );
    }
    tracing::error!(error = %crate::error::chain(e), "sign-in page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The clinic's server could not complete this step. Please go back to the app and try again.",
    )
}

/// The CSRF value of this browser: its cookie's, or a new one (to set).
fn csrf_of(req: &HttpRequest) -> Result<(String, bool), ApiError> {
    match req.cookie(CSRF_COOKIE).map(|c| c.value().to_string()) {
        Some(v) if v.len() >= 32 && v.len() <= 64 => Ok((v, false)),
        _ => Ok((authorize::random_secret()?, true)),
    }
}

/// Whether a posted form's CSRF value is this browser's.
fn csrf_ok(req: &HttpRequest, sent: &str) -> bool {
    match req.cookie(CSRF_COOKIE) {
        Some(c) if !sent.is_empty() => {
            aws_lc_rs::constant_time::verify_slices_are_equal(c.value().as_bytes(), sent.as_bytes())
                .is_ok()
        }
        _ => false,
    }
}

async fn find_client(state: &AppState, id: Option<String>) -> Result<Option<ClientRow>, ApiError> {
    let Some(id) = id.filter(|i| !i.is_empty() && i.len() <= 100) else {
        return Ok(None);
    };
    Ok(state
        .db
        .read(move |conn| Ok(crate::db::clients::find(conn, &id)?))
        .await?)
}

/// The person signed in in this browser, in the clinic of `tenant`.
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &str,
) -> Result<Option<User>, ApiError> {
    let Some(s) = req
        .cookie(SESSION_COOKIE)
        .and_then(|c| state.page_keys.session(c.value(), now(state)))
        .filter(|s| s.tenant == tenant)
    else {
        return Ok(None);
    };
    let db = state.db.clone();
    blocking(move || db.write(move |conn| accounts::find(conn, &s.tenant, &s.user_id))).await
}

/// `GET /auth/authorize`: the authorization request in the query.
pub async fn authorize_get(req: HttpRequest, state: State) -> HttpResponse {
    match serde_urlencoded::from_str::<AuthorizeParams>(req.query_string()) {
        Ok(params) => authorize(&req, &state, params).await,
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            "The app sent a request this server cannot read. Please go back to the app.",
        ),
    }
}

/// `POST /auth/authorize`: the authorization request as a form (SMART `authorize-post`).
pub async fn authorize_post(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    match serde_urlencoded::from_bytes::<AuthorizeParams>(&body) {
        Ok(params) => authorize(&req, &state, params).await,
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            "The app sent a request this server cannot read. Please go back to the app.",
        ),
    }
}

async fn authorize(req: &HttpRequest, state: &AppState, params: AuthorizeParams) -> HttpResponse {
    let client = match find_client(state, params.client_id.clone()).await {
        Ok(c) => c,
        Err(e) => return server_error(&e),
    };
    let base = state.base_url(req);
    let mut pending = match authorize::check(&params, client.as_ref(), &base, now(state)) {
        Ok(p) => p,
        Err(e @ AuthorizeError::Redirect { .. }) => {
            return redirect(&e.location().unwrap_or_default(), Vec::new());
        }
        Err(AuthorizeError::Page(message)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This app cannot sign you in",
                &message,
            );
        }
    };
    if let Some(launch) = params.launch.clone().filter(|_| pending.asks("launch")) {
        let (tenant, t) = (pending.tenant.clone(), now(state));
        let db = state.db.clone();
        let taken = blocking(move || {
            db.write(move |conn| {
                Ok::<_, ApiError>(crate::db::grants::take_launch(
                    conn,
                    &tenant,
                    &authorize::secret_hash(&launch),
                    t,
                )?)
            })
        })
        .await;
        match taken {
            Ok(Some((patient, encounter))) => {
                pending.launch_patient = Some(patient);
                pending.launch_encounter = encounter;
            }
            Ok(None) => {
                let e = AuthorizeError::Redirect {
                    redirect_uri: pending.redirect_uri.clone(),
                    error: "invalid_request",
                    description: "the launch is unknown, used or expired".into(),
                    state: pending.state.clone(),
                };
                return redirect(&e.location().unwrap_or_default(), Vec::new());
            }
            Err(e) => return server_error(&e),
        }
    }
    let (csrf, fresh) = match csrf_of(req) {
        Ok(c) => c,
        Err(e) => return server_error(&e),
    };
    let mut cookies = Vec::new();
    if fresh {
        cookies.push(cookie(
            state,
            req,
            CSRF_COOKIE,
            csrf.clone(),
            authorize::SESSION_SECONDS * 12,
        ));
    }
    let signed = match state.page_keys.sign_pending(&pending) {
        Ok(s) => s,
        Err(e) => return server_error(&e),
    };
    // a checked request has its client
    let Some(client) = client else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This app cannot sign you in",
            "This app is not registered with the clinic.",
        );
    };
    match signed_in(state, req, &pending.tenant).await {
        Ok(Some(user)) => {
            consent_page(
                state, &pending, &signed, &csrf, &client, &user, "", None, cookies,
            )
            .await
        }
        Ok(None) => page(
            StatusCode::OK,
            pages::sign_in(
                CLINIC,
                &client.name,
                &pages::Form {
                    request: &signed,
                    csrf: &csrf,
                },
                "",
                None,
            ),
            None,
            cookies,
        ),
        Err(e) => server_error(&e),
    }
}

/// The scopes a person may grant: a patient grants patient scopes and the launch
/// scopes (never `user/` or `system/`, which would open the whole clinic); a staff
/// member grants patient and user scopes.
fn scopes_for(user: &User, pending: &Pending) -> String {
    pending
        .scopes()
        .filter(|s| match (user.patient().is_some(), s.split('/').next()) {
            (_, Some("system")) if s.contains('/') => false,
            (true, Some("user")) if s.contains('/') => false,
            _ => true,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[allow(clippy::too_many_arguments)]
async fn consent_page(
    state: &AppState,
    pending: &Pending,
    signed: &str,
    csrf: &str,
    client: &ClientRow,
    user: &User,
    query: &str,
    error: Option<&str>,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    let scopes: Vec<String> = scopes_for(user, pending)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let picks = user.patient().is_none()
        && pending.launch_patient.is_none()
        && pending.asks("launch/patient");
    let choices = if picks {
        match patients(state, &pending.tenant, query).await {
            Ok(c) => Some(c),
            Err(e) => return server_error(&e),
        }
    } else {
        None
    };
    let listed: Option<Vec<pages::PatientChoice<'_>>> = choices.as_ref().map(|c| {
        c.iter()
            .map(|(id, name, birth)| pages::PatientChoice {
                id,
                name,
                birth_date: birth.as_deref(),
            })
            .collect()
    });
    let html = pages::consent(
        &pages::Consent {
            clinic: CLINIC,
            app: &client.name,
            person: &user.username,
            scopes: &scopes,
            patients: listed.as_deref(),
            query,
        },
        &pages::Form {
            request: signed,
            csrf,
        },
        error,
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        status,
        html,
        origin_of(&pending.redirect_uri).as_deref(),
        cookies,
    )
}

/// Up to 20 of the clinic's patients whose name matches `query`, by family name.
async fn patients(
    state: &AppState,
    tenant: &str,
    query: &str,
) -> Result<Vec<(String, String, Option<String>)>, ApiError> {
    let mut pairs = vec![("_sort".to_string(), "family".to_string())];
    let q = query.trim();
    if !q.is_empty() {
        pairs.push(("name".into(), q.chars().take(100).collect()));
    }
    let search = crate::search::parsing::parse("Patient", &pairs)?;
    let tenant = tenant.to_string();
    let found = state
        .db
        .read(move |conn| crate::search::execute(conn, &tenant, "Patient", &search, 20, None))
        .await?;
    Ok(found
        .rows
        .iter()
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_str(r.body.as_deref()?).ok()?;
            let name = body["name"][0].clone();
            let given = name["given"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let family = name["family"].as_str().unwrap_or_default();
            let text = name["text"].as_str().map(str::to_string);
            let display = text.unwrap_or_else(|| format!("{given} {family}").trim().to_string());
            let display = if display.is_empty() {
                r.res_id.clone()
            } else {
                display
            };
            Some((
                r.res_id.clone(),
                display,
                body["birthDate"].as_str().map(str::to_string),
            ))
        })
        .collect())
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The pending request and app of a posted page, or the page that says why not.
async fn pending_of(
    req: &HttpRequest,
    state: &AppState,
    request: &str,
    csrf: &str,
) -> Result<(Pending, ClientRow), HttpResponse> {
    if !csrf_ok(req, csrf) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This page has expired",
            "For your safety this form could not be used (its security check is missing or old). Please go back to the app and start again.",
        ));
    }
    let Some(pending) = state.page_keys.pending(request, now(state)) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Signing in took too long. Please go back to the app and start again.",
        ));
    };
    match find_client(state, Some(pending.client_id.clone())).await {
        Ok(Some(c)) => Ok((pending, c)),
        Ok(None) => Err(error_page(
            StatusCode::BAD_REQUEST,
            "This app cannot sign you in",
            "This app is no longer registered with the clinic.",
        )),
        Err(e) => Err(server_error(&e)),
    }
}

fn address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The audit record of a step of a person's sign-in.
fn record(
    state: &AppState,
    req: &HttpRequest,
    tenant: &str,
    client: &str,
    subtype: &str,
    status: u16,
    person: Option<&str>,
) -> crate::db::audit::AuditRow {
    // a patient is the record's patient; a clinician its entity
    let (patient, res_type, res_id) = match person.and_then(|p| p.split_once('/')) {
        Some(("Patient", id)) => (Some(id.to_string()), None, None),
        Some((t, id)) => (None, Some(t.to_string()), Some(id.to_string())),
        None => (None, None, None),
    };
    crate::db::audit::AuditRow {
        tenant: tenant.to_string(),
        id: String::new(),
        recorded: crate::clock::to_micros(state.clock.now()),
        action: "E".into(),
        subtype: subtype.into(),
        outcome: if status < 400 { "0" } else { "4" }.into(),
        status: i32::from(status),
        client: client.to_string(),
        address: Some(address(req)),
        patient,
        res_type,
        res_id,
        version: None,
        query: None,
    }
}

fn session_cookie(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
) -> Result<Cookie<'static>, ApiError> {
    let s =
        state
            .page_keys
            .sign_session(&SignedIn::new(&user.tenant, &user.user_id, now(state)))?;
    Ok(cookie(
        state,
        req,
        SESSION_COOKIE,
        s,
        authorize::SESSION_SECONDS,
    ))
}

/// A page's step of a sign-in: where it happens, for what request of which app.
struct Step<'a> {
    state: &'a AppState,
    req: &'a HttpRequest,
    pending: &'a Pending,
    client: &'a ClientRow,
}

impl Step<'_> {
    /// A step that was refused (`status`), recorded without a person.
    async fn refused(&self, subtype: &str, status: u16) {
        self.state
            .audit
            .record(record(
                self.state,
                self.req,
                &self.pending.tenant,
                &self.client.client_id,
                subtype,
                status,
                None,
            ))
            .await;
    }

    /// A person signed in (`subtype`: by password, or by a clinic's code): recorded,
    /// the browser's session cookie set, and the consent page shown.
    async fn signed_in(
        &self,
        subtype: &str,
        user: &User,
        request: &str,
        csrf: &str,
    ) -> HttpResponse {
        let (state, req) = (self.state, self.req);
        state
            .audit
            .record(record(
                state,
                req,
                &self.pending.tenant,
                &self.client.client_id,
                subtype,
                200,
                Some(&user.fhir_user),
            ))
            .await;
        let c = match session_cookie(state, req, user) {
            Ok(c) => c,
            Err(e) => return server_error(&e),
        };
        consent_page(
            state,
            self.pending,
            request,
            csrf,
            self.client,
            user,
            "",
            None,
            vec![c],
        )
        .await
    }
}

/// `POST /auth/login`: a username and password.
pub async fn login(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (pending, client) = match pending_of(&req, &state, &form.request, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let (db, throttle) = (state.db.clone(), state.throttle.clone());
    let (tenant, username, password, t, addr) = (
        pending.tenant.clone(),
        form.username.trim().to_string(),
        form.password.clone(),
        now(&state),
        address(&req),
    );
    // a read (on a reader thread: the Argon2 check takes about 80 ms), never the writer
    let outcome = db
        .read(move |conn| {
            Ok(accounts::sign_in(
                conn, &throttle, &tenant, &username, &password, &addr, t,
            ))
        })
        .await
        .map_err(ApiError::from)
        .and_then(|r| match r {
            Err(SignInError::Internal(e)) => Err(e),
            other => Ok(other),
        });
    let form_of = pages::Form {
        request: &form.request,
        csrf: &form.csrf,
    };
    let refused = |status: StatusCode, message: &str| {
        page(
            status,
            pages::sign_in(
                CLINIC,
                &client.name,
                &form_of,
                form.username.trim(),
                Some(message),
            ),
            None,
            Vec::new(),
        )
    };
    let step = Step {
        state: &state,
        req: &req,
        pending: &pending,
        client: &client,
    };
    match outcome {
        Ok(Ok(user)) => {
            step.signed_in("login", &user, &form.request, &form.csrf)
                .await
        }
        Ok(Err(e)) => {
            step.refused("login", 401).await;
            match e {
                SignInError::Throttled(wait) => refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many tries. Please wait {} seconds and try again.",
                        wait.as_secs().max(1)
                    ),
                ),
                SignInError::Wrong | SignInError::Disabled | SignInError::Internal(_) => refused(
                    StatusCode::UNAUTHORIZED,
                    "The username or password is not right.",
                ),
            }
        }
        Err(e) => server_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct RequestQuery {
    #[serde(default)]
    request: String,
    #[serde(default)]
    q: String,
}

/// `GET /auth/redeem`: the page of a clinic's code.
pub async fn redeem_page(req: HttpRequest, state: State) -> HttpResponse {
    let q: RequestQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let Some(pending) = state.page_keys.pending(&q.request, now(&state)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Signing in took too long. Please go back to the app and start again.",
        );
    };
    let client = match find_client(&state, Some(pending.client_id.clone())).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This app cannot sign you in",
                "This app is no longer registered with the clinic.",
            );
        }
        Err(e) => return server_error(&e),
    };
    let (csrf, fresh) = match csrf_of(&req) {
        Ok(c) => c,
        Err(e) => return server_error(&e),
    };
    let cookies = if fresh {
        vec![cookie(
            &state,
            &req,
            CSRF_COOKIE,
            csrf.clone(),
            authorize::SESSION_SECONDS * 12,
        )]
    } else {
        Vec::new()
    };
    page(
        StatusCode::OK,
        pages::redeem(
            CLINIC,
            &client.name,
            &pages::Form {
                request: &q.request,
                csrf: &csrf,
            },
            None,
        ),
        None,
        cookies,
    )
}

#[derive(Debug, Default, Deserialize)]
struct RedeemForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /auth/redeem`: a patient's invitation or a staff member's set-up code, with
/// the username and password they choose.
pub async fn redeem(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let form: RedeemForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (pending, client) = match pending_of(&req, &state, &form.request, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let (db, throttle) = (state.db.clone(), state.throttle.clone());
    let birth = Some(form.birth_date.trim().to_string()).filter(|b| !b.is_empty());
    let (tenant, code, username, password, t, addr) = (
        pending.tenant.clone(),
        form.code.trim().to_string(),
        form.username.trim().to_string(),
        form.password.clone(),
        now(&state),
        address(&req),
    );
    let outcome = blocking(move || {
        Ok(db.write(move |conn| {
            accounts::redeem(
                conn,
                &throttle,
                &tenant,
                &code,
                birth.as_deref(),
                &username,
                &password,
                &addr,
                t,
            )
        }))
    })
    .await
    .and_then(|r| match r {
        Err(RedeemError::Internal(e)) => Err(e),
        other => Ok(other),
    });
    let refused = |status: StatusCode, message: &str| {
        page(
            status,
            pages::redeem(
                CLINIC,
                &client.name,
                &pages::Form {
                    request: &form.request,
                    csrf: &form.csrf,
                },
                Some(message),
            ),
            None,
            Vec::new(),
        )
    };
    let step = Step {
        state: &state,
        req: &req,
        pending: &pending,
        client: &client,
    };
    match outcome {
        Ok(Ok(user)) => {
            step.signed_in("invitation-redeemed", &user, &form.request, &form.csrf)
                .await
        }
        Ok(Err(e)) => {
            step.refused("invitation-redeemed", 400).await;
            match e {
                RedeemError::Code => refused(
                    StatusCode::BAD_REQUEST,
                    "This code is not right, has been used, or has expired, or the birth date does not match. Please check it, or ask your clinic for a new code.",
                ),
                RedeemError::Username(m) | RedeemError::Password(m) => {
                    refused(StatusCode::BAD_REQUEST, &m)
                }
                RedeemError::Internal(e) => server_error(&e),
                RedeemError::Throttled(wait) => refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many tries. Please wait {} seconds and try again.",
                        wait.as_secs().max(1)
                    ),
                ),
            }
        }
        Err(e) => server_error(&e),
    }
}

/// `GET /auth/consent`: the consent page again, with the clinic's patients filtered by
/// `q` (a staff member choosing the patient).
pub async fn consent_filter(req: HttpRequest, state: State) -> HttpResponse {
    let q: RequestQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let Some(pending) = state.page_keys.pending(&q.request, now(&state)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Signing in took too long. Please go back to the app and start again.",
        );
    };
    let csrf = match req.cookie(CSRF_COOKIE) {
        Some(c) => c.value().to_string(),
        None => {
            return error_page(
                StatusCode::FORBIDDEN,
                "This page has expired",
                "Please go back to the app and start again.",
            );
        }
    };
    let client = match find_client(&state, Some(pending.client_id.clone())).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This app cannot sign you in",
                "This app is no longer registered with the clinic.",
            );
        }
        Err(e) => return server_error(&e),
    };
    match signed_in(&state, &req, &pending.tenant).await {
        Ok(Some(user)) => {
            consent_page(
                &state,
                &pending,
                &q.request,
                &csrf,
                &client,
                &user,
                &q.q,
                None,
                Vec::new(),
            )
            .await
        }
        Ok(None) => page(
            StatusCode::OK,
            pages::sign_in(
                CLINIC,
                &client.name,
                &pages::Form {
                    request: &q.request,
                    csrf: &csrf,
                },
                "",
                None,
            ),
            None,
            Vec::new(),
        ),
        Err(e) => server_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConsentForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    patient: String,
}

/// `POST /auth/consent`: allow (a code, sent back to the app) or deny.
pub async fn consent(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let form: ConsentForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (pending, client) = match pending_of(&req, &state, &form.request, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let user = match signed_in(&state, &req, &pending.tenant).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return page(
                StatusCode::UNAUTHORIZED,
                pages::sign_in(
                    CLINIC,
                    &client.name,
                    &pages::Form {
                        request: &form.request,
                        csrf: &form.csrf,
                    },
                    "",
                    Some("Please sign in again."),
                ),
                None,
                Vec::new(),
            );
        }
        Err(e) => return server_error(&e),
    };
    let back = |error: &'static str, description: &str| {
        AuthorizeError::Redirect {
            redirect_uri: pending.redirect_uri.clone(),
            error,
            description: description.into(),
            state: pending.state.clone(),
        }
        .location()
        .unwrap_or_default()
    };
    if form.decision != "allow" {
        state
            .audit
            .record(record(
                &state,
                &req,
                &pending.tenant,
                &client.client_id,
                "consent",
                403,
                Some(&user.fhir_user),
            ))
            .await;
        return redirect(
            &back("access_denied", "the person did not allow the app"),
            Vec::new(),
        );
    }
    let mut granted = pending.clone();
    granted.scope = scopes_for(&user, &pending);
    if !granted
        .scopes()
        .any(|s| crate::auth::scopes::Scope::parse(s).is_some())
    {
        return redirect(
            &back(
                "invalid_scope",
                "none of the requested scopes is one this person can grant",
            ),
            Vec::new(),
        );
    }
    let patient = match (user.patient(), &pending.launch_patient) {
        (Some(own), _) => Some(own.to_string()),
        (None, Some(launched)) => Some(launched.clone()),
        (None, None) if pending.asks("launch/patient") => {
            let chosen = form.patient.trim().to_string();
            let known = !chosen.is_empty()
                && fhir_mapping::resource_types::is_valid_id(&chosen)
                && matches!(
                    exists_patient(&state, &pending.tenant, &chosen).await,
                    Ok(true)
                );
            if !known {
                return consent_page(
                    &state,
                    &pending,
                    &form.request,
                    &form.csrf,
                    &client,
                    &user,
                    "",
                    Some("Please choose the patient you are working with."),
                    Vec::new(),
                )
                .await;
            }
            Some(chosen)
        }
        (None, None) => None,
    };
    let db = state.db.clone();
    let (u, t) = (user.clone(), now(&state));
    let made = blocking(move || {
        db.write(move |conn| {
            authorize::consent(
                conn,
                &granted,
                &u.user_id,
                &u.fhir_user,
                patient.as_deref(),
                t,
            )
        })
    })
    .await;
    match made {
        Ok(consented) => {
            state
                .audit
                .record(record(
                    &state,
                    &req,
                    &pending.tenant,
                    &client.client_id,
                    "consent",
                    200,
                    Some(&user.fhir_user),
                ))
                .await;
            let mut pairs = vec![("code", consented.code)];
            if let Some(s) = &pending.state {
                pairs.push(("state", s.clone()));
            }
            redirect(
                &authorize::with_query(&pending.redirect_uri, &pairs),
                Vec::new(),
            )
        }
        Err(e) => server_error(&e),
    }
}

async fn exists_patient(state: &AppState, tenant: &str, id: &str) -> Result<bool, ApiError> {
    let (tenant, id) = (tenant.to_string(), id.to_string());
    Ok(state
        .db
        .read(move |conn| {
            let row = crate::db::store::current(
                conn,
                crate::db::store::Key {
                    tenant: &tenant,
                    res_type: "Patient",
                    res_id: &id,
                },
            )?;
            Ok(row.is_some_and(|r| !r.deleted))
        })
        .await?)
}

/// `GET /auth/pages.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(pages::STYLESHEET)
}

/// `GET /auth/jwks`: the public key of ID tokens.
pub async fn jwks(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(state.id_key.jwks().to_string())
}

/// What an app sends to end the person's sign-in in this browser (OpenID Connect
/// RP-Initiated Logout 1.0).
#[derive(Debug, serde::Deserialize)]
pub struct LogoutParams {
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    /// Accepted and not needed: the sign-in ends whoever's it is.
    #[serde(rename = "id_token_hint")]
    _id_token_hint: Option<String>,
}

/// `GET /auth/logout`: ends the person's sign-in in this browser (the session cookie),
/// so that the next sign-in asks for the password again, as a person signing out of an
/// app on a shared phone expects. The app revokes its own tokens with `/auth/revoke`.
/// Back to `post_logout_redirect_uri` when it is one of the app's registered redirect
/// URIs, else a page saying so.
pub async fn logout(req: HttpRequest, state: State) -> HttpResponse {
    let params = match serde_urlencoded::from_str::<LogoutParams>(req.query_string()) {
        Ok(p) => p,
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-out link is not valid",
                "The app sent a request this server cannot read. You can close this page.",
            );
        }
    };
    let ended = vec![
        cookie(&state, &req, SESSION_COOKIE, String::new(), 0),
        cookie(&state, &req, CSRF_COOKIE, String::new(), 0),
    ];
    let back = match (
        &params.post_logout_redirect_uri,
        find_client(&state, params.client_id.clone()).await,
    ) {
        (Some(uri), Ok(Some(client)))
            if authorize::redirect_matches(
                client.redirect_uris.as_deref().unwrap_or(""),
                uri,
                &state.origin(&req),
            ) =>
        {
            Some(match &params.state {
                Some(st) => authorize::with_query(uri, &[("state", st.clone())]),
                None => uri.clone(),
            })
        }
        _ => None,
    };
    match back {
        Some(location) => redirect(&location, ended),
        None => page(
            StatusCode::OK,
            pages::error(
                "You are signed out",
                "You are signed out on this device. You can close this page.",
            ),
            None,
            ended,
        ),
    }
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(req: HttpRequest, state: State) -> HttpResponse {
    let origin = state.origin(&req);
    let body = serde_json::json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/auth/authorize"),
        "token_endpoint": format!("{origin}/auth/token"),
        "jwks_uri": format!("{origin}/auth/jwks"),
        "introspection_endpoint": format!("{origin}/auth/introspect"),
        "revocation_endpoint": format!("{origin}/auth/revoke"),
        "end_session_endpoint": format!("{origin}/auth/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"]
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}
