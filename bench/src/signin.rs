//! People's sign-in, timed: full standalone launches of a patient app (authorize, the
//! sign-in page, consent, the code exchanged for tokens), then rotating refreshes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1/bench-callback";
const SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";
const PASSWORD: &str = "tangerine-walrus-cobalt-88";
const LAUNCHES: usize = 20;
const REFRESH_FAMILIES: usize = 8;
const REFRESH_SECONDS: u64 = 5;

/// A browser: its cookies, no redirects followed.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Result<Browser, String> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?,
            cookies: HashMap::new(),
        })
    }

    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, String, String), String> {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = req
            .header("Cookie", cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        for v in res.headers().get_all("set-cookie") {
            if let Some((pair, _)) = v.to_str().unwrap_or_default().split_once(';')
                && let Some((k, v)) = pair.split_once('=')
            {
                self.cookies.insert(k.trim().into(), v.trim().into());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((status, location, res.text().await.unwrap_or_default()))
    }

    async fn post(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, String, String), String> {
        let body = serde_urlencoded::to_string(form).map_err(|e| e.to_string())?;
        let req = self
            .http
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }
}

fn hidden(html: &str, name: &str) -> Result<String, String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .ok_or_else(|| format!("the page has no {name}"))?
        + marker.len();
    Ok(html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// One launch: the time from the authorization request to the token answer.
async fn launch(
    origin: &str,
    fhir_base: &str,
    app: &str,
    first: Option<(&str, &str)>,
) -> Result<(f64, Value), String> {
    let started = Instant::now();
    let mut b = Browser::new()?;
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", app),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPE),
        ("state", "bench"),
        ("aud", fhir_base),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
    .map_err(|e| e.to_string())?;
    let req = b.http.get(format!("{origin}/auth/authorize?{query}"));
    let (status, _, page) = b.send(req).await?;
    if status != 200 {
        return Err(format!("authorize answered {status}"));
    }
    let (request, csrf) = (hidden(&page, "request")?, hidden(&page, "csrf")?);
    let (status, _, page) = match first {
        Some((code, birth)) => {
            b.post(
                &format!("{origin}/auth/redeem"),
                &[
                    ("request", &request),
                    ("csrf", &csrf),
                    ("code", code),
                    ("birth_date", birth),
                    ("username", "bench-patient"),
                    ("password", PASSWORD),
                ],
            )
            .await?
        }
        None => {
            b.post(
                &format!("{origin}/auth/login"),
                &[
                    ("request", &request),
                    ("csrf", &csrf),
                    ("username", "bench-patient"),
                    ("password", PASSWORD),
                ],
            )
            .await?
        }
    };
    if status != 200 {
        return Err(format!("sign-in answered {status}: {page}"));
    }
    let (status, location, _) = b
        .post(
            &format!("{origin}/auth/consent"),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "allow"),
            ],
        )
        .await?;
    let code =
        url_code(&location).ok_or_else(|| format!("consent answered {status} without a code"))?;
    let (status, _, body) = b
        .post(
            &format!("{origin}/auth/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", app),
                ("code_verifier", VERIFIER),
            ],
        )
        .await?;
    if status != 200 {
        return Err(format!("the token endpoint answered {status}: {body}"));
    }
    let tokens: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, tokens))
}

fn url_code(location: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v)
}

/// 20 launches of one patient (the first redeems the invitation), then 8 sign-ins
/// refreshing their tokens in turn for 5 seconds, all at once.
pub async fn launches(
    client: &reqwest::Client,
    fhir_base: &str,
    database_url: &str,
) -> Result<(Vec<f64>, String), String> {
    let origin = fhir_base.trim_end_matches("/fhir").to_string();
    let (app, _) = api::auth::clients::register_in(
        database_url,
        &api::auth::clients::Registration {
            tenant: "default".into(),
            name: "Benchmark app".into(),
            scope: SCOPE.into(),
            jwks: None,
            jwks_url: None,
            kind: "public".into(),
            redirect_uris: vec![REDIRECT.into()],
        },
    )
    .map_err(|e| e.to_string())?;
    let app = app.client_id;
    let patient: Value = client
        .post(format!("{fhir_base}/Patient"))
        .header("Content-Type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "birthDate": "1961-04-12"}).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let id = patient["id"].as_str().ok_or("no Patient id")?;
    let invitation: Value = client
        .post(format!("{fhir_base}/Patient/{id}/$invite"))
        .header("Content-Type", "application/fhir+json")
        .body(json!({"resourceType": "Parameters"}).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let code = invitation["parameter"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "code"))
        .and_then(|p| p["valueString"].as_str())
        .ok_or("no invitation code")?
        .to_string();
    let mut runs = Vec::new();
    let mut refresh_tokens = Vec::new();
    for i in 0..LAUNCHES {
        let first = (i == 0).then_some((code.as_str(), "1961-04-12"));
        let (ms, tokens) = launch(&origin, fhir_base, &app, first).await?;
        runs.push(ms);
        if let Some(r) = tokens["refresh_token"].as_str() {
            refresh_tokens.push(r.to_string());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(REFRESH_SECONDS);
    let families = refresh_tokens
        .into_iter()
        .take(REFRESH_FAMILIES)
        .map(|mut token| {
            let (origin, app) = (origin.clone(), app.clone());
            async move {
                let http = reqwest::Client::new();
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let body = serde_urlencoded::to_string([
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                        ("client_id", app.as_str()),
                    ])
                    .map_err(|e| e.to_string())?;
                    let res = http
                        .post(format!("{origin}/auth/token"))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if res.status().as_u16() != 200 {
                        return Err(format!("a refresh answered {}", res.status()));
                    }
                    let v: Value = res.json().await.map_err(|e| e.to_string())?;
                    token = v["refresh_token"]
                        .as_str()
                        .ok_or("no rotated refresh token")?
                        .to_string();
                    done += 1;
                }
                Ok::<u64, String>(done)
            }
        });
    let counts = futures_util::future::join_all(families).await;
    let mut refreshes = 0u64;
    for c in counts {
        refreshes += c?;
    }
    let per_second = refreshes as f64 / REFRESH_SECONDS as f64;
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let detail = format!(
        "launch (authorize to token, with an Argon2 check each): median {:.1} ms, max {:.1} ms over {LAUNCHES} (the first redeems the invitation); refreshes: {per_second:.0} / s ({REFRESH_FAMILIES} sign-ins at once, each refresh rotating its token, {REFRESH_SECONDS} s)",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    );
    Ok((runs, detail))
}
