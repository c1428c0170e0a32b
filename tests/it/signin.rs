//! People's sign-in (SMART App Launch): a patient redeems the clinic's invitation in an
//! app's standalone launch and gets a token of their own compartment; a clinician signs
//! in with a set-up code and picks a patient; and each refusal of the flow.

use std::collections::HashMap;

use base64::Engine;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::support::{self, TestServer, id_of};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "https://app.example.org/callback";
const PASSWORD: &str = "tangerine-walrus-cobalt-88";

/// A browser of the test: keeps the cookies the server sets, follows no redirect.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap_or_default();
            if let Some((pair, _)) = text.split_once(';')
                && let Some((k, v)) = pair.split_once('=')
            {
                self.cookies.insert(k.trim().into(), v.trim().into());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, url: &str) -> (StatusCode, HashMap<String, String>, String) {
        let res = self
            .http
            .get(url)
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.answer(res).await
    }

    async fn post(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HashMap<String, String>, String) {
        let res = self
            .http
            .post(url)
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"))
            .send()
            .await
            .expect("POST");
        self.answer(res).await
    }

    async fn answer(
        &mut self,
        res: reqwest::Response,
    ) -> (StatusCode, HashMap<String, String>, String) {
        self.keep(&res);
        let status = res.status();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        (status, headers, res.text().await.unwrap_or_default())
    }
}

/// The value of a hidden input of a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| {
            panic!("no hidden {name} in {html}");
        });
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&")
}

fn origin(s: &TestServer) -> String {
    s.base.trim_end_matches("/fhir").to_string()
}

fn register_app(s: &TestServer, tenant: &str, kind: &str, scope: &str) -> (String, Option<String>) {
    let (row, secret) = api::auth::clients::register_in(
        &s.database_url,
        &api::auth::clients::Registration {
            tenant: tenant.into(),
            name: "Home exercises".into(),
            scope: scope.into(),
            jwks: None,
            jwks_url: None,
            kind: kind.into(),
            redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1/native".into()],
        },
    )
    .expect("app registered");
    (row.client_id, secret)
}

fn authorize_url(s: &TestServer, client_id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code".to_string()),
        ("client_id", client_id.to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("scope", scope.to_string()),
        ("state", "st-42".to_string()),
        ("aud", s.base.clone()),
        ("code_challenge", CHALLENGE.to_string()),
        ("code_challenge_method", "S256".to_string()),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        if !v.is_empty() {
            pairs.push((k, v.to_string()));
        }
    }
    format!(
        "{}/auth/authorize?{}",
        origin(s),
        serde_urlencoded::to_string(&pairs).expect("query")
    )
}

/// The query parameters of a redirect's Location.
fn location_query(headers: &HashMap<String, String>) -> HashMap<String, String> {
    let location = headers.get("location").expect("a Location");
    let url = url::Url::parse(location).expect("an absolute Location");
    url.query_pairs().into_owned().collect()
}

async fn invite(s: &TestServer, patient: &str) -> String {
    let res = s
        .post_json(
            &format!("Patient/{patient}/$invite"),
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "$invite");
    let p: Value = res.json().await.expect("Parameters");
    p["parameter"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "code"))
        .and_then(|x| x["valueString"].as_str())
        .expect("a code")
        .to_string()
}

/// A patient's whole standalone launch: the consent page's form, then the redirect's
/// code (or what the server answered instead).
async fn redeem_to_consent(
    s: &TestServer,
    b: &mut Browser,
    client_id: &str,
    scope: &str,
    code: &str,
    birth: &str,
    username: &str,
) -> (StatusCode, String) {
    let (status, _, page) = b.get(&authorize_url(s, client_id, scope, &[])).await;
    assert_eq!(status, StatusCode::OK, "the sign-in page: {page}");
    assert!(page.contains("autocomplete=\"current-password\""), "{page}");
    let request = hidden(&page, "request");
    let csrf = hidden(&page, "csrf");
    let (status, _, page) = b
        .get(&format!(
            "{}/auth/redeem?{}",
            origin(s),
            serde_urlencoded::to_string([("request", &request)]).expect("query")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "the code page: {page}");
    assert!(page.contains("autocomplete=\"one-time-code\""), "{page}");
    let (status, _, page) = b
        .post(
            &format!("{}/auth/redeem", origin(s)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("code", code),
                ("birth_date", birth),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    (status, page)
}

async fn allow(
    s: &TestServer,
    b: &mut Browser,
    page: &str,
    patient: Option<&str>,
) -> HashMap<String, String> {
    let request = hidden(page, "request");
    let csrf = hidden(page, "csrf");
    let mut form = vec![
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "allow"),
    ];
    if let Some(p) = patient {
        form.push(("patient", p));
    }
    let (status, headers, body) = b.post(&format!("{}/auth/consent", origin(s)), &form).await;
    assert_eq!(status, StatusCode::FOUND, "consent: {body}");
    let q = location_query(&headers);
    assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
    q
}

async fn token_request(
    s: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/auth/token", origin(s)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("form"));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.expect("token");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn exchange(s: &TestServer, client_id: &str, code: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
}

async fn refresh(s: &TestServer, client_id: &str, token: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

async fn read_with(s: &TestServer, token: &str, path: &str) -> StatusCode {
    support::client_with_token(token)
        .get(s.url(path))
        .send()
        .await
        .expect("read")
        .status()
}

fn claims_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

const APP_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

#[tokio::test]
async fn a_patient_redeems_an_invitation_and_sees_only_their_own_data() {
    let s = support::start().await;
    let robin = id_of(&s.create(json!({"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Robin"]}], "birthDate": "1961-04-12"})).await);
    let sam = id_of(
        &s.create(json!({"resourceType": "Patient", "birthDate": "1975-09-30"}))
            .await,
    );
    for p in [&robin, &sam] {
        s.create(json!({"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": format!("Patient/{p}")}})).await;
    }
    let (app, _) = register_app(&s, "default", "public", APP_SCOPE);
    let code = invite(&s, &robin).await;

    // the configuration a SMART client library reads first
    let conf: Value = s
        .get(".well-known/smart-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        conf["authorization_endpoint"],
        format!("{}/auth/authorize", origin(&s))
    );
    assert_eq!(conf["code_challenge_methods_supported"], json!(["S256"]));

    let mut b = Browser::new();
    // a wrong birth date says no more than a wrong code
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-13", "robin").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("role=\"alert\""), "{page}");
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Home exercises"),
        "the consent page names the app: {page}"
    );
    assert!(page.contains("name=\"decision\" value=\"allow\""), "{page}");
    let q = allow(&s, &mut b, &page, None).await;
    let auth_code = q.get("code").expect("a code").clone();

    let (status, t) = exchange(&s, &app, &auth_code).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["patient"], robin.as_str());
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], APP_SCOPE);
    let id_token = claims_of(t["id_token"].as_str().expect("an id_token"));
    assert_eq!(id_token["fhirUser"], format!("{}/Patient/{robin}", s.base));
    assert_eq!(id_token["aud"], app.as_str());
    let access = t["access_token"].as_str().expect("access").to_string();
    let refresh_1 = t["refresh_token"].as_str().expect("refresh").to_string();

    // the patient's own compartment only
    assert_eq!(
        read_with(&s, &access, &format!("Patient/{robin}")).await,
        StatusCode::OK
    );
    assert_eq!(
        read_with(&s, &access, &format!("Patient/{sam}")).await,
        StatusCode::NOT_FOUND
    );
    let tasks: Value = support::client_with_token(&access)
        .get(s.url("Task"))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("Bundle");
    assert_eq!(tasks["entry"].as_array().map(Vec::len), Some(1), "{tasks}");

    // the code is single use: a second use revokes what the first gave
    let (status, e) = exchange(&s, &app, &auth_code).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        read_with(&s, &access, &format!("Patient/{robin}")).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = refresh(&s, &app, &refresh_1).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the family is revoked with its code"
    );

    // a second sign-in (the browser is signed in: straight to consent)
    let (status, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("value=\"allow\""),
        "signed in: the consent page: {page}"
    );
    let q = allow(&s, &mut b, &page, None).await;
    let (_, t) = exchange(&s, &app, q.get("code").expect("code")).await;
    let refresh_2 = t["refresh_token"].as_str().expect("refresh").to_string();
    // refresh tokens rotate; a reused one revokes its whole family
    let (status, t2) = refresh(&s, &app, &refresh_2).await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let refresh_3 = t2["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(refresh_3, refresh_2);
    let access_3 = t2["access_token"].as_str().expect("access").to_string();
    assert_eq!(
        read_with(&s, &access_3, &format!("Patient/{robin}")).await,
        StatusCode::OK
    );
    let (status, e) = refresh(&s, &app, &refresh_2).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = refresh(&s, &app, &refresh_3).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the newer token died with its family"
    );
    assert_eq!(
        read_with(&s, &access_3, &format!("Patient/{robin}")).await,
        StatusCode::UNAUTHORIZED
    );

    // the clinic revokes the patient's access: their tokens and refresh tokens die at
    // once, and the browser's sign-in with them
    let (_, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    let q = allow(&s, &mut b, &page, None).await;
    let (_, t) = exchange(&s, &app, q.get("code").expect("code")).await;
    let (access_4, refresh_4) = (
        t["access_token"].as_str().expect("access").to_string(),
        t["refresh_token"].as_str().expect("refresh").to_string(),
    );
    assert_eq!(
        read_with(&s, &access_4, &format!("Patient/{robin}")).await,
        StatusCode::OK
    );
    let res = s
        .post_json(
            &format!("Patient/{robin}/$revoke-access"),
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        read_with(&s, &access_4, &format!("Patient/{robin}")).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = refresh(&s, &app, &refresh_4).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    assert!(
        page.contains("autocomplete=\"current-password\""),
        "signed out: {page}"
    );

    // the invitation was used: it opens nothing again
    let mut other = Browser::new();
    let (status, _) = redeem_to_consent(
        &s,
        &mut other,
        &app,
        APP_SCOPE,
        &code,
        "1961-04-12",
        "robin2",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn authorization_requests_are_refused_as_oauth_says() {
    let s = support::start().await;
    let (app, _) = register_app(&s, "default", "public", APP_SCOPE);
    let mut b = Browser::new();
    // before the redirect URI is known good: a page, never a redirect
    for extra in [
        vec![("redirect_uri", "https://evil.example/callback")],
        vec![("client_id", "no-such-app")],
    ] {
        let (status, headers, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(!headers.contains_key("location"));
        assert!(page.contains("<h1"), "{page}");
    }
    // after it: back to the app with error and state
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("aud", "https://other.example/fhir")],
            "invalid_request",
        ),
        (vec![("scope", "openid user/*.cruds")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let (status, headers, _) = b.get(&authorize_url(&s, &app, APP_SCOPE, &extra)).await;
        assert_eq!(status, StatusCode::FOUND, "{extra:?}");
        let q = location_query(&headers);
        assert_eq!(q.get("error").map(String::as_str), Some(error), "{extra:?}");
        assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
    }
    // a form without this browser's CSRF value is refused
    let (_, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    let request = hidden(&page, "request");
    let mut stranger = Browser::new();
    let (status, _, _) = stranger
        .post(
            &format!("{}/auth/login", origin(&s)),
            &[
                ("request", &request),
                ("csrf", "x"),
                ("username", "a"),
                ("password", "b"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // a wrong password: the same words for an unknown user, with an alert
    let csrf = hidden(&page, "csrf");
    let (status, _, page) = b
        .post(
            &format!("{}/auth/login", origin(&s)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("username", "nobody"),
                ("password", "wrong-password-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("role=\"alert\""));
    assert!(
        page.contains("The username or password is not right."),
        "{page}"
    );
    // the pages' headers
    let res = reqwest::Client::new()
        .get(authorize_url(&s, &app, APP_SCOPE, &[]))
        .send()
        .await
        .expect("page");
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let set_cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn codes_are_bound_to_their_app_redirect_and_verifier() {
    let s = support::start().await;
    let robin = id_of(
        &s.create(json!({"resourceType": "Patient", "birthDate": "1961-04-12"}))
            .await,
    );
    let (app, _) = register_app(&s, "default", "public", APP_SCOPE);
    let (other_app, _) = register_app(&s, "default", "public", APP_SCOPE);
    let (other_clinic_app, _) = register_app(&s, "another", "public", APP_SCOPE);
    let code = invite(&s, &robin).await;
    // another clinic's app does not know this clinic's invitations
    let mut b = Browser::new();
    let (status, _) = redeem_to_consent(
        &s,
        &mut b,
        &other_clinic_app,
        APP_SCOPE,
        &code,
        "1961-04-12",
        "robin",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let q = allow(&s, &mut b, &page, None).await;
    let auth_code = q.get("code").expect("code").clone();
    for (form, why) in [
        (
            vec![
                ("client_id", other_app.as_str()),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
            ],
            "another app",
        ),
        (
            vec![
                ("client_id", app.as_str()),
                ("code_verifier", "x".repeat(43).as_str()),
                ("redirect_uri", REDIRECT),
            ],
            "a wrong verifier",
        ),
    ] {
        let mut full = vec![
            ("grant_type", "authorization_code"),
            ("code", auth_code.as_str()),
        ];
        full.extend(form);
        let (status, e) = token_request(&s, &full, None).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{why}"
        );
    }
}

#[tokio::test]
async fn a_confidential_app_authenticates_and_tokens_are_introspected_and_revoked() {
    let s = support::start().await;
    let robin = id_of(
        &s.create(json!({"resourceType": "Patient", "birthDate": "1961-04-12"}))
            .await,
    );
    let (app, secret) = register_app(&s, "default", "confidential", APP_SCOPE);
    let secret = secret.expect("a confidential app's secret");
    let code = invite(&s, &robin).await;
    let mut b = Browser::new();
    let (_, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    let q = allow(&s, &mut b, &page, None).await;
    let auth_code = q.get("code").expect("code").clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", auth_code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, e) = token_request(&s, &form, Some((&app, "wrong-secret"))).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, t) = token_request(&s, &form, Some((&app, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().expect("access").to_string();

    // introspection by a backend service of the clinic
    let introspect = |token: String| {
        let s = &s;
        async move {
            let res = s
                .client
                .post(format!("{}/auth/introspect", origin(s)))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("token", token)]).expect("form"))
                .send()
                .await
                .expect("introspect");
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.expect("json")
        }
    };
    let seen = introspect(access.clone()).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["patient"], robin.as_str());
    assert_eq!(seen["client_id"], app.as_str());
    assert_eq!(introspect("not-a-token".into()).await["active"], false);
    // another clinic's backend service learns nothing of this clinic's tokens
    let res = support::client_of_tenant(&s, "another")
        .post(format!("{}/auth/introspect", origin(&s)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", access.as_str())]).expect("form"))
        .send()
        .await
        .expect("introspect");
    assert_eq!(
        res.json::<Value>().await.expect("json"),
        json!({"active": false})
    );
    // nor can it launch an app for this clinic's patient
    let res = support::client_of_tenant(&s, "another")
        .post(format!("{}/auth/launch", origin(&s)))
        .json(&json!({"patient": robin}))
        .send()
        .await
        .expect("launch");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // RFC 7009: the app revokes its access token, and with it its sign-in
    let res = reqwest::Client::new()
        .post(format!("{}/auth/revoke", origin(&s)))
        .basic_auth(&app, Some(&secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", access.as_str())]).expect("form"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        read_with(&s, &access, &format!("Patient/{robin}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(introspect(access).await["active"], false);
}

#[tokio::test]
async fn a_clinician_sets_up_an_account_picks_a_patient_and_an_ehr_launches_an_app() {
    let s = support::start().await;
    let practitioner = id_of(
        &s.create(json!({"resourceType": "Practitioner", "name": [{"family": "Ng"}]}))
            .await,
    );
    let robin = id_of(
        &s.create(
            json!({"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Robin"]}]}),
        )
        .await,
    );
    let scope = "launch launch/patient openid fhirUser patient/*.rs user/*.rs";
    let (app, _) = register_app(&s, "default", "public", scope);
    let setup = api::auth::accounts::add_staff_in(
        &s.database_url,
        "default",
        &format!("Practitioner/{practitioner}"),
        "ann.ng",
        api::auth::accounts::Role::Therapist,
    )
    .expect("staff account");
    let mut b = Browser::new();
    let standalone = "launch/patient openid fhirUser patient/*.rs user/*.rs";
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, standalone, &setup.code, "", "ann.ng").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("value=\"{robin}\"")),
        "the clinic's patients to pick from: {page}"
    );
    let q = allow(&s, &mut b, &page, Some(&robin)).await;
    let (status, t) = exchange(&s, &app, q.get("code").expect("code")).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["patient"], robin.as_str());
    let id_token = claims_of(t["id_token"].as_str().expect("id_token"));
    assert_eq!(
        id_token["fhirUser"],
        format!("{}/Practitioner/{practitioner}", s.base)
    );

    // an EHR launch: the staff member's token asks a launch for the patient
    let staff = t["access_token"].as_str().expect("access").to_string();
    let res = support::client_with_token(&staff)
        .post(format!("{}/auth/launch", origin(&s)))
        .json(&json!({"patient": robin}))
        .send()
        .await
        .expect("launch");
    assert_eq!(res.status(), StatusCode::OK);
    let launch: Value = res.json().await.expect("json");
    let launch = launch["launch"].as_str().expect("a launch").to_string();
    let (status, _, page) = b
        .get(&authorize_url(&s, &app, scope, &[("launch", &launch)]))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        !page.contains("name=\"patient\""),
        "the launch names the patient: {page}"
    );
    let q = allow(&s, &mut b, &page, None).await;
    let (_, t) = exchange(&s, &app, q.get("code").expect("code")).await;
    assert_eq!(t["patient"], robin.as_str());
    // the launch scope without a launch
    let (status, headers, _) = b.get(&authorize_url(&s, &app, scope, &[])).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        location_query(&headers).get("error").map(String::as_str),
        Some("invalid_request")
    );
    // a patient's token cannot start an EHR launch
    let patient_token = support::token(&s.database_url, "patient/*.rs", Some(&robin));
    let res = support::client_with_token(&patient_token)
        .post(format!("{}/auth/launch", origin(&s)))
        .json(&json!({"patient": robin}))
        .send()
        .await
        .expect("launch");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // a launch is single use
    let (status, headers, _) = b
        .get(&authorize_url(&s, &app, scope, &[("launch", &launch)]))
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        location_query(&headers).get("error").map(String::as_str),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn expired_invitations_pending_requests_and_codes_are_refused() {
    use std::sync::Arc;
    let clock = Arc::new(api::clock::ManualClock::new(jiff::Timestamp::now()));
    let s = support::start_with(|_| {}, clock.clone()).await;
    let later = |secs: i64| jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    let robin = id_of(
        &s.create(json!({"resourceType": "Patient", "birthDate": "1961-04-12"}))
            .await,
    );
    let (app, _) = register_app(&s, "default", "public", APP_SCOPE);
    // an invitation lasts 7 days
    let code = invite(&s, &robin).await;
    clock.set(later(8 * 24 * 3600));
    let mut b = Browser::new();
    let (status, _) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an expired invitation");
    // a pending request lasts 15 minutes
    let code = invite(&s, &robin).await;
    let (_, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    let (request, csrf) = (hidden(&page, "request"), hidden(&page, "csrf"));
    clock.set(later(8 * 24 * 3600 + 16 * 60));
    let (status, _, page) = b
        .post(
            &format!("{}/auth/redeem", origin(&s)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("code", &code),
                ("birth_date", "1961-04-12"),
                ("username", "robin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("expired"), "{page}");
    // a code waits 60 seconds for its exchange
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let q = allow(&s, &mut b, &page, None).await;
    clock.set(later(8 * 24 * 3600 + 16 * 60 + 61));
    let (status, e) = exchange(&s, &app, q.get("code").expect("code")).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
}

#[tokio::test]
async fn a_clinicians_subscriptions_end_with_their_account() {
    use std::sync::Arc;
    let s = support::start_with(
        |c| c.subscription_allow_loopback = true,
        Arc::new(api::clock::SystemClock),
    )
    .await;
    let r = crate::subscriptions::receiver().await;
    let practitioner = id_of(
        &s.create(json!({"resourceType": "Practitioner", "name": [{"family": "Ng"}]}))
            .await,
    );
    let robin = id_of(
        &s.create(json!({"resourceType": "Patient", "name": [{"family": "Okafor"}]}))
            .await,
    );
    let scope = "launch/patient openid fhirUser patient/*.rs user/*.cruds";
    let (app, _) = register_app(&s, "default", "public", scope);
    let setup = api::auth::accounts::add_staff_in(
        &s.database_url,
        "default",
        &format!("Practitioner/{practitioner}"),
        "ann.ng",
        api::auth::accounts::Role::Therapist,
    )
    .expect("staff account");
    let mut b = Browser::new();
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, scope, &setup.code, "", "ann.ng").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let q = allow(&s, &mut b, &page, Some(&robin)).await;
    let (_, t) = exchange(&s, &app, q.get("code").expect("code")).await;
    let staff = support::client_with_token(t["access_token"].as_str().expect("access"));
    let sub = staff
        .post(s.url("Subscription"))
        .header("Content-Type", "application/fhir+json")
        .body(crate::subscriptions::subscription("program", None, &r.url, "id-only").to_string())
        .send()
        .await
        .expect("subscribe");
    assert_eq!(sub.status(), StatusCode::CREATED);
    let got = r.wait_for(1).await;
    assert_eq!(crate::subscriptions::kind(&got[0].body), "handshake");
    let plan = json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": format!("Patient/{robin}")}});
    s.create(plan.clone()).await;
    let got = r.wait_for(2).await;
    assert_eq!(
        crate::subscriptions::kind(&got[1].body),
        "event-notification",
        "delivered while the account holds"
    );
    // the clinic disables the account: its subscription delivers nothing more
    let admin = support::client_with_token(&support::token(
        &s.database_url,
        "hep-admin system/*.rs",
        None,
    ));
    let res = admin
        .delete(format!("{}/auth/users/{}", origin(&s), setup.user_id))
        .send()
        .await
        .expect("disable");
    assert!(res.status().is_success(), "{}", res.status());
    s.create(plan).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let events = r
        .all()
        .iter()
        .filter(|x| crate::subscriptions::kind(&x.body) == "event-notification")
        .count();
    assert_eq!(events, 1, "no notification after the account was disabled");
}

#[tokio::test]
async fn signing_out_ends_the_sign_in_of_the_browser() {
    let s = support::start().await;
    let robin = id_of(&s.create(json!({"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Robin"]}], "birthDate": "1961-04-12"})).await);
    let (app, _) = register_app(&s, "default", "public", APP_SCOPE);
    let code = invite(&s, &robin).await;
    let mut b = Browser::new();
    let (status, page) =
        redeem_to_consent(&s, &mut b, &app, APP_SCOPE, &code, "1961-04-12", "robin").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    allow(&s, &mut b, &page, None).await;
    // signed in in this browser: the next authorization goes straight to consent
    let (status, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("name=\"decision\""),
        "consent at once: {page}"
    );

    let conf: Value = reqwest::get(format!("{}/.well-known/openid-configuration", origin(&s)))
        .await
        .expect("configuration")
        .json()
        .await
        .expect("json");
    let end = conf["end_session_endpoint"]
        .as_str()
        .expect("end_session_endpoint");
    assert_eq!(end, format!("{}/auth/logout", origin(&s)));
    let query = serde_urlencoded::to_string([
        ("client_id", app.as_str()),
        ("post_logout_redirect_uri", REDIRECT),
        ("state", "bye-1"),
    ])
    .expect("query");
    let (status, headers, _) = b.get(&format!("{end}?{query}")).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers.get("location").map(String::as_str),
        Some(format!("{REDIRECT}?state=bye-1").as_str())
    );
    assert_eq!(b.cookies.get("hep_session").map(String::as_str), Some(""));
    // the next sign-in asks for the password again
    let (status, _, page) = b.get(&authorize_url(&s, &app, APP_SCOPE, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("autocomplete=\"current-password\""), "{page}");

    // an address the app did not register is not followed
    let query = serde_urlencoded::to_string([
        ("client_id", app.as_str()),
        ("post_logout_redirect_uri", "https://evil.example/"),
    ])
    .expect("query");
    let (status, headers, page) = b.get(&format!("{end}?{query}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("location"));
    assert!(page.contains("You are signed out"), "{page}");
}
