//! Authorization: every route needs a valid token of the right clinic with the right
//! scopes; a patient-context token opens its patient's compartment and nothing else,
//! by any route.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// Every kind of route, as (method, path, body).
fn routes(patient: &str, plan: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", format!("Patient/{patient}"), None),
        ("GET", format!("Patient/{patient}/_history/1"), None),
        ("GET", format!("Patient/{patient}/_history"), None),
        ("GET", "Patient/_history".into(), None),
        ("GET", "_history".into(), None),
        ("GET", "Patient?gender=female".into(), None),
        (
            "GET",
            format!("Observation?patient={patient}&_include=Observation:patient"),
            None,
        ),
        (
            "GET",
            format!("Patient?_id={patient}&_revinclude=Observation:patient"),
            None,
        ),
        (
            "GET",
            "Observation?patient.identifier=urn:test:mrn|a".into(),
            None,
        ),
        ("POST", "Patient".into(), Some(fixtures::patient("new"))),
        (
            "PUT",
            format!("Patient/{patient}"),
            Some(json!({"resourceType": "Patient", "id": patient})),
        ),
        ("DELETE", format!("Observation/{plan}"), None),
        (
            "PATCH",
            format!("Patient/{patient}"),
            Some(json!([{"op": "replace", "path": "/gender", "value": "other"}])),
        ),
        (
            "GET",
            format!("Task?patient={patient}&session-day=2026-12-02"),
            None,
        ),
        (
            "POST",
            "".into(),
            Some(json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{patient}")}}]})),
        ),
        ("GET", format!("CarePlan/{plan}/$adherence"), None),
        ("GET", format!("Patient/{patient}/$adherence"), None),
        ("GET", "$adherence".into(), None),
        ("GET", format!("CarePlan/{plan}/$outcomes"), None),
        ("GET", format!("Patient/{patient}/$outcomes"), None),
        ("GET", format!("Patient/{patient}/$rtm"), None),
        ("GET", "$rtm".into(), None),
        ("GET", format!("CarePlan/{plan}/$handout"), None),
        ("GET", "$export".into(), None),
        ("GET", "Patient/$export".into(), None),
        (
            "GET",
            "_export/0192a6f0-0000-7000-8000-000000000000".into(),
            None,
        ),
        ("GET", format!("Patient/{patient}/$everything"), None),
        (
            "POST",
            "Patient/$validate".into(),
            Some(fixtures::patient("v")),
        ),
        (
            "POST",
            format!("Patient/{patient}/$validate?mode=update"),
            Some(json!({"resourceType": "Patient", "id": patient})),
        ),
        (
            "POST",
            format!("Patient/{patient}/$invite"),
            Some(json!({"resourceType": "Parameters"})),
        ),
        (
            "POST",
            format!("Patient/{patient}/$revoke-access"),
            Some(json!({"resourceType": "Parameters"})),
        ),
    ]
}

async fn send(
    client: &Client,
    s: &TestServer,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let url = s.url(path);
    let req = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        "PUT" => client.put(url),
        "DELETE" => client.delete(url),
        "PATCH" => client.patch(url),
        other => panic!("{other}"),
    };
    let content_type = if method == "PATCH" {
        "application/json-patch+json"
    } else {
        FHIR_JSON
    };
    let req = match body {
        Some(b) => req.header("Content-Type", content_type).body(b.to_string()),
        None => req,
    };
    req.send().await.expect("request")
}

/// The text of a response, which must not name anything of the data.
async fn refused(res: Response, status: StatusCode, secret: &str, what: &str) {
    assert_eq!(res.status(), status, "{what}");
    let body = res.text().await.unwrap_or_default();
    assert!(body.contains("OperationOutcome"), "{what}: {body}");
    assert!(!body.contains(secret), "{what} leaks: {body}");
}

struct Data {
    a: String,
    b: String,
    plan_b: String,
    obs_a: String,
    obs_b: String,
}

async fn seed(s: &TestServer) -> Data {
    let mut pa = patient("a");
    pa["gender"] = json!("female");
    pa["name"] = json!([{"family": "Secretname"}]);
    let a = id_of(&s.create(pa).await);
    let b = id_of(&s.create(patient("b")).await);
    let obs = |p: &str, category: &str| {
        let mut o = observation(p, PAIN);
        o["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}]);
        o
    };
    let obs_a = id_of(&s.create(obs(&a, "vital-signs")).await);
    let obs_b = id_of(&s.create(obs(&b, "survey")).await);
    let plan_b = id_of(&s.create(care_plan(&b)).await);
    Data {
        a,
        b,
        plan_b,
        obs_a,
        obs_b,
    }
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_bad_token() {
    let s = start().await;
    let d = seed(&s).await;
    let anonymous = Client::new();
    let expired = {
        let request = api::auth::tokens::DevToken {
            scope: "system/*.cruds".into(),
            patient: None,
            tenant: "default".into(),
            minutes: 5,
            force: false,
        };
        let long_ago = jiff::Timestamp::now().as_second() - 3600;
        api::auth::tokens::dev_token(&s.database_url, &request, long_ago).expect("token")
    };
    // signed by another database's key
    let other = start().await;
    let foreign = token(&other.database_url, "system/*.cruds", None);
    let tampered = {
        let t = token(&s.database_url, "system/*.rs", None);
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .expect("claims");
        let claims = String::from_utf8(claims)
            .expect("utf8")
            .replace("system/*.rs", "system/*.cruds");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        parts.join(".")
    };
    let clients = [
        ("no token", anonymous.clone()),
        ("expired", client_with_token(&expired)),
        ("wrong signature", client_with_token(&foreign)),
        ("tampered", client_with_token(&tampered)),
        ("not a JWT", client_with_token("abc")),
    ];
    for (label, client) in &clients {
        for (method, path, body) in routes(&d.a, &d.plan_b) {
            let res = send(client, &s, method, &path, body.as_ref()).await;
            let www = res
                .headers()
                .get("WWW-Authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            assert!(
                www.starts_with("Bearer realm=\"hep\""),
                "{label} {method} {path}: {www}"
            );
            refused(
                res,
                StatusCode::UNAUTHORIZED,
                "Secretname",
                &format!("{label} {method} {path}"),
            )
            .await;
        }
    }
    // a Basic header is not a bearer token
    let res = anonymous
        .get(s.url("Patient"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // the CapabilityStatement and the SMART configuration are open
    assert_eq!(
        anonymous
            .get(s.url("metadata"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    let smart: Value = anonymous
        .get(s.url(".well-known/smart-configuration"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(
        smart["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("permission-v2")))
    );
    // the right token passes
    assert_eq!(
        s.get(&format!("Patient/{}", d.a)).await.status(),
        StatusCode::OK
    );
    let _ = d.b;
}

#[tokio::test]
async fn scopes_are_enforced_per_type_and_interaction() {
    let s = start().await;
    let d = seed(&s).await;
    let read_patients = client_with_token(&token(&s.database_url, "system/Patient.rs", None));
    assert_eq!(
        send(&read_patients, &s, "GET", &format!("Patient/{}", d.a), None)
            .await
            .status(),
        StatusCode::OK
    );
    for (method, path, body) in [
        ("POST", "Patient".to_string(), Some(patient("x"))),
        ("GET", format!("Observation/{}", d.obs_a), None),
        ("GET", "Observation?status=final".into(), None),
        (
            "GET",
            "Observation?patient.identifier=urn:test:mrn|a".into(),
            None,
        ),
        ("GET", "_history".into(), None),
        (
            "GET",
            "Patient?_revinclude=Observation:patient".into(),
            None,
        ),
        ("DELETE", format!("Patient/{}", d.a), None),
        (
            "POST",
            "".into(),
            Some(json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": format!("Observation/{}", d.obs_a)}}]})),
        ),
        ("GET", "$adherence".into(), None),
    ] {
        refused(
            send(&read_patients, &s, method, &path, body.as_ref()).await,
            StatusCode::FORBIDDEN,
            "Secretname",
            &format!("{method} {path}"),
        )
        .await;
    }
    // an include of a type the token cannot read: refused when the request names the
    // type, left out (and said so) when the reference could be of any type
    let watcher = client_with_token(&token(&s.database_url, "system/Observation.rs", None));
    refused(
        send(
            &watcher,
            &s,
            "GET",
            &format!("Observation?_id={}&_include=Observation:patient", d.obs_a),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "Secretname",
        "include of Patient",
    )
    .await;
    let b: Value = send(
        &watcher,
        &s,
        "GET",
        &format!("Observation?_id={}&_include=Observation:subject", d.obs_a),
        None,
    )
    .await
    .json()
    .await
    .expect("bundle");
    let entries = b["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2, "{b}");
    assert!(
        entries
            .iter()
            .all(|e| e["resource"]["resourceType"] != "Patient"),
        "{b}"
    );
    assert!(entries.iter().any(|e| e["search"]["mode"] == "outcome"));
    assert!(!b.to_string().contains("Secretname"));

    // a v2 restriction narrows every search and read
    let vitals = client_with_token(&token(
        &s.database_url,
        "user/Observation.rs?category=vital-signs",
        None,
    ));
    let b: Value = send(&vitals, &s, "GET", "Observation", None)
        .await
        .json()
        .await
        .expect("bundle");
    assert_eq!(b["total"], 1);
    assert_eq!(b["entry"][0]["resource"]["id"], d.obs_a.as_str());
    assert_eq!(
        send(
            &vitals,
            &s,
            "GET",
            &format!("Observation/{}", d.obs_b),
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn another_clinic_sees_nothing() {
    let s = start().await;
    let d = seed(&s).await;
    let request = api::auth::tokens::DevToken {
        scope: "system/*.cruds".into(),
        patient: None,
        tenant: "other-clinic".into(),
        minutes: 60,
        force: false,
    };
    let other = client_with_token(
        &api::auth::tokens::dev_token(
            &s.database_url,
            &request,
            jiff::Timestamp::now().as_second(),
        )
        .expect("token"),
    );
    for path in [
        format!("Patient/{}", d.a),
        format!("Patient/{}/_history/1", d.a),
        format!("Patient/{}/_history", d.a),
        format!("CarePlan/{}/$adherence", d.plan_b),
        format!("CarePlan/{}/$handout", d.plan_b),
        format!("Patient/{}/$everything", d.a),
        format!("Patient/{}/$outcomes", d.a),
        format!("Patient/{}/$rtm", d.a),
    ] {
        refused(
            send(&other, &s, "GET", &path, None).await,
            StatusCode::NOT_FOUND,
            "Secretname",
            &path,
        )
        .await;
    }
    for path in [
        "Patient",
        "Observation?patient.name=secret",
        "_history",
        "Patient/_history",
    ] {
        let b: Value = send(&other, &s, "GET", path, None)
            .await
            .json()
            .await
            .expect("bundle");
        // the other clinic has its own copy of the definitions and starter library
        // only: no patient data, nothing written by the first clinic
        let clinical = b["entry"].as_array().map_or(0, |e| {
            e.iter()
                .filter(|e| {
                    let t = e["resource"]["resourceType"]
                        .as_str()
                        .or_else(|| e["request"]["url"].as_str())
                        .unwrap_or_default();
                    ![
                        "ActivityDefinition",
                        "PlanDefinition",
                        "Questionnaire",
                        "CodeSystem",
                        "ValueSet",
                        "StructureDefinition",
                        "OperationDefinition",
                        "SearchParameter",
                        "Binary",
                    ]
                    .iter()
                    .any(|own| t.starts_with(own))
                })
                .count()
        });
        assert_eq!(clinical, 0, "{path}: {b}");
        assert!(!b.to_string().contains("Secretname"), "{path}");
    }
    // its own starter library, the same as the first clinic's
    let library: Value = send(&other, &s, "GET", "ActivityDefinition?_summary=count", None)
        .await
        .json()
        .await
        .expect("bundle");
    let first: Value = s
        .get("ActivityDefinition?_summary=count")
        .await
        .json()
        .await
        .expect("bundle");
    assert!(
        library["total"].as_u64().is_some_and(|n| n > 0),
        "{library}"
    );
    assert_eq!(library["total"], first["total"]);
    // a write to the same id makes the other clinic's own resource, not a new version
    let mut p = patient("a");
    p["id"] = json!(d.a);
    let res = send(&other, &s, "PUT", &format!("Patient/{}", d.a), Some(&p)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mine = json(s.get(&format!("Patient/{}", d.a)).await).await;
    assert_eq!(mine["meta"]["versionId"], "1");
}

#[tokio::test]
async fn a_patient_token_opens_its_compartment_only() {
    let s = start().await;
    let d = seed(&s).await;
    let app = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&d.a)));
    // its own
    for path in [
        format!("Patient/{}", d.a),
        format!("Observation/{}", d.obs_a),
        format!("Patient/{}/_history", d.a),
        format!("Patient/{}/$adherence", d.a),
        format!("Patient/{}/$outcomes", d.a),
        format!("Patient/{}/$rtm", d.a),
    ] {
        assert_eq!(
            send(&app, &s, "GET", &path, None).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let b: Value = send(&app, &s, "GET", "Observation", None)
        .await
        .json()
        .await
        .expect("bundle");
    assert_eq!(b["total"], 1, "{b}");
    let b: Value = send(&app, &s, "GET", "Patient", None)
        .await
        .json()
        .await
        .expect("bundle");
    assert_eq!(b["total"], 1);
    // another patient's, by every route: as if it did not exist
    for path in [
        format!("Patient/{}", d.b),
        format!("Patient/{}/_history/1", d.b),
        format!("Patient/{}/_history", d.b),
        format!("Observation/{}", d.obs_b),
        format!("CarePlan/{}/$adherence", d.plan_b),
        format!("CarePlan/{}/$handout", d.plan_b),
        format!("Patient/{}/$adherence", d.b),
        format!("Patient/{}/$everything", d.b),
        format!("CarePlan/{}/$outcomes", d.plan_b),
        format!("Patient/{}/$outcomes", d.b),
        format!("Patient/{}/$rtm", d.b),
    ] {
        refused(
            send(&app, &s, "GET", &path, None).await,
            StatusCode::NOT_FOUND,
            "urn:test",
            &path,
        )
        .await;
    }
    for path in [
        "Observation?patient.identifier=urn:test:mrn|b".to_string(),
        format!("Observation?subject=Patient/{}", d.b),
        format!("Patient?_id={}", d.b),
        format!("Observation?_id={}&_include=Observation:patient", d.obs_b),
        format!("Patient?_id={}&_revinclude=Observation:patient", d.a),
        format!("CarePlan?_id={}", d.plan_b),
    ] {
        let b: Value = send(&app, &s, "GET", &path, None)
            .await
            .json()
            .await
            .expect("bundle");
        let ids: Vec<&str> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["id"].as_str())
            .collect();
        assert!(
            !ids.contains(&d.b.as_str())
                && !ids.contains(&d.obs_b.as_str())
                && !ids.contains(&d.plan_b.as_str()),
            "{path}: {ids:?}"
        );
    }
    // writes: its own compartment only
    let obs = |p: &str| observation(p, PAIN);
    assert_eq!(
        send(&app, &s, "POST", "Observation", Some(&obs(&d.a)))
            .await
            .status(),
        StatusCode::CREATED
    );
    refused(
        send(&app, &s, "POST", "Observation", Some(&obs(&d.b))).await,
        StatusCode::FORBIDDEN,
        "urn:test",
        "create for another",
    )
    .await;
    let mut moved = obs(&d.a);
    moved["id"] = json!(d.obs_b);
    refused(
        send(
            &app,
            &s,
            "PUT",
            &format!("Observation/{}", d.obs_b),
            Some(&moved),
        )
        .await,
        StatusCode::NOT_FOUND,
        "urn:test",
        "update of another's",
    )
    .await;
    refused(
        send(
            &app,
            &s,
            "DELETE",
            &format!("Observation/{}", d.obs_b),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "urn:test",
        "delete",
    )
    .await;
    // moving its own resource to another patient is refused
    let mut mine = obs(&d.b);
    mine["id"] = json!(d.obs_a);
    refused(
        send(
            &app,
            &s,
            "PUT",
            &format!("Observation/{}", d.obs_a),
            Some(&mine),
        )
        .await,
        StatusCode::FORBIDDEN,
        "urn:test",
        "move",
    )
    .await;
    // shared definitions are readable, not writable; type and server history, Bundles
    // and the clinic's adherence need more than a patient
    let b: Value = send(&app, &s, "GET", "ActivityDefinition?_count=1", None)
        .await
        .json()
        .await
        .expect("bundle");
    assert!(b["total"].as_i64().is_some_and(|t| t > 0));
    for (method, path, body) in [
        (
            "POST",
            "ActivityDefinition".to_string(),
            Some(json!({"resourceType": "ActivityDefinition", "status": "draft"})),
        ),
        ("GET", "Patient/_history".into(), None),
        ("GET", "_history".into(), None),
        ("GET", "$adherence".into(), None),
        ("GET", "$rtm".into(), None),
        ("GET", "$export".into(), None),
        ("GET", "Patient/$export".into(), None),
        (
            "POST",
            "".into(),
            Some(json!({"resourceType": "Bundle", "type": "batch", "entry": []})),
        ),
    ] {
        refused(
            send(&app, &s, method, &path, body.as_ref()).await,
            StatusCode::FORBIDDEN,
            "urn:test",
            &format!("{method} {path}"),
        )
        .await;
    }
    // the other patient's data is untouched
    let b = json(s.get(&format!("Observation/{}", d.obs_b)).await).await;
    assert_eq!(b["meta"]["versionId"], "1");
    // a patient scope without a patient in context opens nothing
    let lost = client_with_token(&token(&s.database_url, "patient/*.rs", None));
    refused(
        send(&lost, &s, "GET", &format!("Patient/{}", d.a), None).await,
        StatusCode::FORBIDDEN,
        "urn:test",
        "no patient",
    )
    .await;
}

/// A freshly generated key pair of a client: its JWK (public) and a way to sign.
pub(crate) struct ClientKey {
    pub(crate) jwk: Value,
    encoding: jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: String,
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (its last field, an
/// OCTET STRING after the version and the algorithm).
fn pkcs1_of_pkcs8(der: &[u8]) -> &[u8] {
    // one DER element at `at`: (start of its content, end of it)
    fn element(der: &[u8], at: usize) -> (usize, usize) {
        let len_byte = der[at + 1] as usize;
        let (len, header) = if len_byte < 0x80 {
            (len_byte, 2)
        } else {
            let n = len_byte & 0x7f;
            let len = der[at + 2..at + 2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        };
        (at + header, at + header + len)
    }
    let (body, _) = element(der, 0);
    let (_, after_version) = element(der, body);
    let (_, after_algorithm) = element(der, after_version);
    let (key, end) = element(der, after_algorithm);
    &der[key..end]
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn ec_key(kid: &str) -> ClientKey {
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("EC key");
    let pkcs8 = pair.to_pkcs8v1().expect("pkcs8");
    let point = pair.public_key().as_ref().to_vec();
    // uncompressed point: 0x04, X (48 bytes), Y (48 bytes)
    let (x, y) = point[1..].split_at(48);
    ClientKey {
        jwk: json!({"kty": "EC", "crv": "P-384", "x": b64url(x), "y": b64url(y),
            "kid": kid, "alg": "ES384", "use": "sig"}),
        encoding: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        alg: jsonwebtoken::Algorithm::ES384,
        kid: kid.into(),
    }
}

pub(crate) fn rsa_key(kid: &str) -> ClientKey {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let pkcs8 = pair.as_der().expect("pkcs8");
    let public = pair.public_key();
    ClientKey {
        jwk: json!({"kty": "RSA", "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
            "kid": kid, "alg": "RS384", "use": "sig"}),
        encoding: jsonwebtoken::EncodingKey::from_rsa_der(pkcs1_of_pkcs8(pkcs8.as_ref())),
        alg: jsonwebtoken::Algorithm::RS384,
        kid: kid.into(),
    }
}

pub(crate) fn assertion(
    key: &ClientKey,
    client_id: &str,
    aud: &str,
    jti: &str,
    exp_in: i64,
) -> String {
    assertion_with_jku(key, client_id, aud, jti, exp_in, None)
}

/// An assertion whose header names where its key is (`jku`).
pub(crate) fn assertion_with_jku(
    key: &ClientKey,
    client_id: &str,
    aud: &str,
    jti: &str,
    exp_in: i64,
    jku: Option<&str>,
) -> String {
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.jku = jku.map(str::to_string);
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": jti,
        "exp": now + exp_in, "iat": now});
    jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
}

pub(crate) async fn token_request(s: &TestServer, scope: &str, assertion: &str) -> Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    Client::new()
        .post(s.base.replace("/fhir", "/auth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("form"))
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn backend_services_get_tokens_with_signed_assertions() {
    let s = start().await;
    let d = seed(&s).await;
    let aud = s.base.replace("/fhir", "/auth/token");
    // an EHR registered over HTTP by the clinic's administrator, with an EC key
    let ec = ec_key("ehr-1");
    let admin = client_with_token(&token(&s.database_url, "hep-admin", None));
    let res = admin
        .post(s.base.replace("/fhir", "/auth/clients"))
        .json(
            &json!({"name": "Clinic EHR", "scope": "system/Patient.rs system/Observation.rs",
            "jwks": {"keys": [ec.jwk.clone()]}}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), StatusCode::CREATED);
    let ehr = res.json::<Value>().await.expect("json")["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    // registering needs the admin scope
    let res = s
        .client
        .post(s.base.replace("/fhir", "/auth/clients"))
        .json(&json!({"name": "x", "scope": "system/*.rs", "jwks": {"keys": [ec.jwk.clone()]}}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = token_request(
        &s,
        "system/Patient.rs system/Task.rs",
        &assertion(&ec, &ehr, &aud, "j1", 240),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["token_type"], "bearer");
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(
        answer["scope"], "system/Patient.rs",
        "only what it was registered for"
    );
    let ehr_client = client_with_token(answer["access_token"].as_str().expect("token"));
    assert_eq!(
        send(&ehr_client, &s, "GET", &format!("Patient/{}", d.a), None)
            .await
            .status(),
        StatusCode::OK
    );
    refused(
        send(&ehr_client, &s, "POST", "Patient", Some(&patient("z"))).await,
        StatusCode::FORBIDDEN,
        "Secretname",
        "create",
    )
    .await;
    refused(
        send(&ehr_client, &s, "GET", "Task", None).await,
        StatusCode::FORBIDDEN,
        "Secretname",
        "Task",
    )
    .await;

    // refusals
    let other_key = ec_key("ehr-1");
    for (label, scope, a, status, error) in [
        (
            "replayed jti",
            "system/Patient.rs",
            assertion(&ec, &ehr, &aud, "j1", 240),
            401,
            "invalid_client",
        ),
        (
            "another key",
            "system/Patient.rs",
            assertion(&other_key, &ehr, &aud, "j2", 240),
            401,
            "invalid_client",
        ),
        (
            "wrong audience",
            "system/Patient.rs",
            assertion(&ec, &ehr, "https://elsewhere.example/token", "j3", 240),
            401,
            "invalid_client",
        ),
        (
            "expired",
            "system/Patient.rs",
            assertion(&ec, &ehr, &aud, "j4", -120),
            401,
            "invalid_client",
        ),
        (
            "too long",
            "system/Patient.rs",
            assertion(&ec, &ehr, &aud, "j5", 3600),
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            "system/Patient.rs",
            assertion(&ec, "nobody", &aud, "j6", 240),
            401,
            "invalid_client",
        ),
        (
            "scope not registered",
            "system/Task.rs",
            assertion(&ec, &ehr, &aud, "j7", 240),
            400,
            "invalid_scope",
        ),
        (
            "not a JWT",
            "system/Patient.rs",
            "abc".to_string(),
            401,
            "invalid_client",
        ),
    ] {
        let res = token_request(&s, scope, &a).await;
        assert_eq!(res.status().as_u16(), status, "{label}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], error, "{label}: {body}");
    }
    let res = Client::new()
        .post(&aud)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&scope=system%2F*.rs")
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "unsupported_grant_type"
    );

    // a tool registered on the command line, with an RSA key (RS384), in another clinic
    let rsa = rsa_key("tool-1");
    let registration = api::auth::clients::Registration {
        tenant: "other-clinic".into(),
        name: "Reporting tool".into(),
        scope: "system/*.rs".into(),
        jwks: Some(json!({"keys": [rsa.jwk.clone()]}).to_string()),
        jwks_url: None,
        kind: "backend".into(),
        redirect_uris: Vec::new(),
    };
    let (tool, _) =
        api::auth::clients::register_in(&s.database_url, &registration).expect("register");
    // recorded in that clinic's audit trail, by the command line
    let other_admin = client_with_token(
        &api::auth::tokens::dev_token(
            &s.database_url,
            &api::auth::tokens::DevToken {
                scope: "hep-admin".into(),
                patient: None,
                tenant: "other-clinic".into(),
                minutes: 60,
                force: false,
            },
            jiff::Timestamp::now().as_second(),
        )
        .expect("token"),
    );
    let trail = crate::audit::events(&other_admin, &s, "subtype=client", 1).await;
    let event = &trail[0];
    assert_eq!(event["action"], "C", "{trail:?}");
    assert_eq!(
        event["entity"][0]["what"]["identifier"]["value"],
        tool.client_id.as_str()
    );
    assert_eq!(
        event["agent"][0]["who"]["identifier"]["value"],
        api::auth::clients::COMMAND_LINE
    );
    let res = token_request(
        &s,
        "system/*.rs",
        &assertion(&rsa, &tool.client_id, &aud, "r1", 240),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.expect("json");
    let tool_client = client_with_token(answer["access_token"].as_str().expect("token"));
    // its clinic is not the default one: nothing of it shows
    refused(
        send(&tool_client, &s, "GET", &format!("Patient/{}", d.a), None).await,
        StatusCode::NOT_FOUND,
        "Secretname",
        "other clinic",
    )
    .await;
}

#[tokio::test]
async fn answers_carry_security_headers_and_cors_only_for_named_origins() {
    let s = start_with(
        |c| c.cors_allowed_origins = vec!["https://app.example.org".into()],
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let d = seed(&s).await;
    let res = s.get(&format!("Patient/{}", d.a)).await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            res.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    // a preflight from the named origin is answered; another origin gets no CORS headers
    let preflight = |origin: &str| {
        Client::new()
            .request(reqwest::Method::OPTIONS, s.url("Patient"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let ok = preflight("https://app.example.org")
        .await
        .expect("preflight");
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.example.org")
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // a server that names no origin sends no CORS headers at all
    let plain = start().await;
    let res = Client::new()
        .request(reqwest::Method::OPTIONS, plain.url("Patient"))
        .header("Origin", "https://app.example.org")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // a bad origin is refused at start
    let dir = tempfile::tempdir().expect("dir");
    let mut config =
        api::config::Config::for_database(&dir.path().join("x.db").display().to_string());
    config.bind = "127.0.0.1:0".into();
    config.cors_allowed_origins = vec!["*".into()];
    assert!(api::server::build(&config, std::sync::Arc::new(api::clock::SystemClock)).is_err());
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_to_wait() {
    let s = start_with(
        |c| {
            c.rate_limit_per_second = 2;
            c.rate_limit_burst = 5;
        },
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let res = s.get("Patient?_count=1").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let o = outcome(res, StatusCode::TOO_MANY_REQUESTS).await;
            assert_eq!(o["code"], "throttled");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n >= 1)));
    // another client has its own allowance
    let request = api::auth::tokens::DevToken {
        scope: "system/*.rs".into(),
        patient: None,
        tenant: "other-clinic".into(),
        minutes: 60,
        force: false,
    };
    let other = client_with_token(
        &api::auth::tokens::dev_token(
            &s.database_url,
            &request,
            jiff::Timestamp::now().as_second(),
        )
        .expect("token"),
    );
    assert_eq!(
        other
            .get(s.url("Patient?_count=1"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
}

/// Serves a JWKS document on a free loopback port (an identity provider's keys).
async fn serve_jwks(jwks: Value) -> String {
    serve_counted_jwks(jwks).await.0
}

/// Serves a JWKS document on a free loopback port, counting the requests it gets.
pub(crate) async fn serve_counted_jwks(
    jwks: Value,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let body = jwks.to_string();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(
            move |req: actix_web::HttpRequest| {
                let body = body.clone();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if req.path() != "/jwks" {
                        return actix_web::HttpResponse::NotFound().finish();
                    }
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/jwks"), hits)
}

#[tokio::test]
async fn tokens_of_a_configured_identity_provider_are_accepted() {
    let idp_key = ec_key("idp-1");
    let jwks_url = serve_jwks(json!({"keys": [idp_key.jwk.clone()]})).await;
    let issuer = "https://idp.clinic.example.org";
    let audience = "https://hep.clinic.example.org/fhir";
    let url = jwks_url.clone();
    let s = start_with(
        move |c| {
            c.oidc_issuer = Some(issuer.into());
            c.oidc_jwks_url = Some(url);
            c.oidc_audience = Some(audience.into());
        },
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let d = seed(&s).await;
    let now = jiff::Timestamp::now().as_second();
    let sign = |key: &ClientKey, claims: Value| {
        let mut header = jsonwebtoken::Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
    };
    let claims = |changes: Value| {
        let mut c = json!({"iss": issuer, "aud": audience, "sub": "therapist-7", "iat": now,
            "nbf": now - 10, "exp": now + 300, "scope": "openid fhirUser user/Patient.rs",
            "fhirUser": "Practitioner/p7", "tenant": "default"});
        if let (Value::Object(c), Value::Object(changes)) = (&mut c, changes) {
            for (k, v) in changes {
                if v.is_null() {
                    c.remove(&k);
                } else {
                    c.insert(k, v);
                }
            }
        }
        c
    };
    let user = client_with_token(&sign(&idp_key, claims(json!({}))));
    assert_eq!(
        send(&user, &s, "GET", &format!("Patient/{}", d.a), None)
            .await
            .status(),
        StatusCode::OK
    );
    refused(
        send(&user, &s, "GET", "Observation", None).await,
        StatusCode::FORBIDDEN,
        "Secretname",
        "scope",
    )
    .await;
    // a patient's app signed in at the provider
    let app = client_with_token(&sign(
        &idp_key,
        claims(json!({"scope": "patient/*.rs", "patient": d.a, "fhirUser": null})),
    ));
    assert_eq!(
        send(&app, &s, "GET", &format!("Observation/{}", d.obs_a), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, &s, "GET", &format!("Observation/{}", d.obs_b), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let other_key = ec_key("idp-1");
    for (label, token) in [
        (
            "wrong audience",
            sign(
                &idp_key,
                claims(json!({"aud": "https://elsewhere.example/fhir"})),
            ),
        ),
        ("expired", sign(&idp_key, claims(json!({"exp": now - 600})))),
        (
            "not yet valid",
            sign(&idp_key, claims(json!({"nbf": now + 600}))),
        ),
        ("no clinic", sign(&idp_key, claims(json!({"tenant": null})))),
        ("another key", sign(&other_key, claims(json!({})))),
        (
            "another issuer",
            sign(
                &idp_key,
                claims(json!({"iss": "https://idp.other.example"})),
            ),
        ),
    ] {
        let client = client_with_token(&token);
        refused(
            send(&client, &s, "GET", &format!("Patient/{}", d.a), None).await,
            StatusCode::UNAUTHORIZED,
            "Secretname",
            label,
        )
        .await;
    }
    // an issuer without its JWKS URL or audience does not start
    let dir = tempfile::tempdir().expect("dir");
    let mut config =
        api::config::Config::for_database(&dir.path().join("x.db").display().to_string());
    config.bind = "127.0.0.1:0".into();
    config.oidc_issuer = Some(issuer.into());
    config.oidc_jwks_url = Some("http://idp.example.org/jwks".into());
    config.oidc_audience = Some(audience.into());
    assert!(api::server::build(&config, std::sync::Arc::new(api::clock::SystemClock)).is_err());
}

#[tokio::test]
async fn an_administrator_lists_rotates_and_removes_clients() {
    let s = start().await;
    // the status of a token request of the client `id`, its assertion signed by `key`
    async fn token_status(s: &TestServer, key: &ClientKey, id: &str, jti: &str) -> StatusCode {
        let aud = s.base.replace("/fhir", "/auth/token");
        token_request(
            s,
            "system/Observation.rs",
            &assertion(key, id, &aud, jti, 240),
        )
        .await
        .status()
    }
    let clients_url = s.base.replace("/fhir", "/auth/clients");
    let admin = client_with_token(&token(&s.database_url, "hep-admin", None));
    let old_key = ec_key("k-old");
    let res = admin
        .post(&clients_url)
        .json(
            &json!({"name": "Lab system", "scope": "system/Observation.rs",
            "jwks": {"keys": [old_key.jwk.clone()]}}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    // listed, without its keys
    let list: Value = admin
        .get(&clients_url)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let listed = list["clients"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["client_id"] == id.as_str()))
        .cloned()
        .expect("listed");
    assert_eq!(listed["name"], "Lab system");
    assert!(
        !listed.to_string().contains("\"x\""),
        "no key material: {listed}"
    );
    // only an administrator lists, rotates or removes
    for res in [
        s.client.get(&clients_url).send().await.expect("list"),
        s.client
            .delete(format!("{clients_url}/{id}"))
            .send()
            .await
            .expect("remove"),
    ] {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(token_status(&s, &old_key, &id, "r1").await, StatusCode::OK);
    // new keys: the old key's assertions are refused, the new key's accepted
    let new_key = ec_key("k-new");
    let res = admin
        .put(format!("{clients_url}/{id}/keys"))
        .json(&json!({"jwks": {"keys": [new_key.jwk.clone()]}}))
        .send()
        .await
        .expect("rotate");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        token_status(&s, &old_key, &id, "r2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(token_status(&s, &new_key, &id, "r3").await, StatusCode::OK);
    // keys that check nothing are refused
    let res = admin
        .put(format!("{clients_url}/{id}/keys"))
        .json(&json!({"jwks": {"keys": []}}))
        .send()
        .await
        .expect("rotate");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // removed: no more tokens, and it is gone from the list
    let res = admin
        .delete(format!("{clients_url}/{id}"))
        .send()
        .await
        .expect("remove");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        token_status(&s, &new_key, &id, "r4").await,
        StatusCode::UNAUTHORIZED
    );
    let res = admin
        .delete(format!("{clients_url}/{id}"))
        .send()
        .await
        .expect("remove");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let list: Value = admin
        .get(&clients_url)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(!list.to_string().contains(&id));
    // each change is in the audit trail (the refused one is not), newest first
    let changes: Vec<(String, String, String)> =
        crate::audit::events(&admin, &s, "subtype=client", 3)
            .await
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap_or_default().to_string(),
                    r["subtype"][0]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    r["entity"][0]["what"]["identifier"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
    let expected: Vec<(String, String, String)> = ["D", "U", "C"]
        .iter()
        .map(|a| (a.to_string(), "110129".to_string(), id.clone()))
        .collect();
    assert_eq!(changes, expected);
}
