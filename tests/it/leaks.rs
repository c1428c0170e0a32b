//! A patient-context token learns nothing of another patient's resources through its
//! writes: conditional matches, idempotency keys, identifier conflicts, reference checks
//! and ids all answer exactly as they would if the other patient's resource did not
//! exist. Each attack is sent twice, once aimed at the victim's data and once at values
//! that exist nowhere; the two answers must be the same, and no answer may carry the
//! victim's marker or ids.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// A word that only the victim's resources hold.
const MARKER: &str = "Victimmarker";

struct Victim {
    patient: String,
    ids: Vec<String>,
    plan: String,
    goal: String,
    observation: String,
    request: String,
    task: String,
}

/// Patient B and one resource of each HEP type in B's compartment, each with an
/// identifier and the marker.
async fn victim(s: &TestServer) -> Victim {
    let mut p = patient("victim-mrn");
    p["name"] = json!([{"family": MARKER}]);
    let patient = id_of(&s.create(p).await);
    let subject = json!({"reference": format!("Patient/{patient}")});
    let note = json!([{"text": MARKER}]);
    let plan = id_of(
        &s.create(
            json!({"resourceType": "CarePlan", "status": "draft", "intent": "plan",
            "identifier": [{"system": "urn:test:plan", "value": "victim-plan"}],
            "subject": subject, "note": note}),
        )
        .await,
    );
    let goal = id_of(
        &s.create(json!({"resourceType": "Goal", "lifecycleStatus": "active",
            "identifier": [{"system": "urn:test:goal", "value": "victim-goal"}],
            "description": {"text": MARKER}, "subject": subject}))
            .await,
    );
    let observation = id_of(
        &s.create(json!({"resourceType": "Observation", "status": "final",
            "identifier": [{"system": "urn:test:obs", "value": "victim-obs"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
            "subject": subject, "valueInteger": 7, "note": note}))
            .await,
    );
    let request = id_of(
        &s.create(json!({"resourceType": "ServiceRequest", "status": "active",
            "intent": "order",
            "identifier": [{"system": "urn:test:sr", "value": "victim-sr"}],
            "subject": subject, "note": note}))
            .await,
    );
    let task = id_of(
        &s.create(
            json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "identifier": [{"system": "urn:test:task", "value": "victim-task"}],
            "for": subject, "note": note}),
        )
        .await,
    );
    Victim {
        ids: vec![
            patient.clone(),
            plan.clone(),
            goal.clone(),
            observation.clone(),
            request.clone(),
            task.clone(),
        ],
        patient,
        plan,
        goal,
        observation,
        request,
        task,
    }
}

/// A server with the victim's data, and the attacker: a patient of the same clinic
/// and its app's client (`patient/*.cruds`).
async fn scene() -> (TestServer, Victim, String, Client) {
    let s = start().await;
    let v = victim(&s).await;
    let a = id_of(&s.create(patient("attacker-mrn")).await);
    let app = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&a)));
    (s, v, a, app)
}

/// An id that no resource has.
fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn send(
    client: &Client,
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&Value>,
) -> Response {
    let url = s.url(path);
    let mut req = match method {
        "POST" => client.post(url),
        "PUT" => client.put(url),
        "DELETE" => client.delete(url),
        "GET" => client.get(url),
        other => panic!("{other}"),
    };
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", FHIR_JSON).body(b.to_string());
    }
    req.send().await.expect("request")
}

/// What an answer shows a client: its status, whether it is a replay, and its body with
/// the value the request aimed at (the victim's, or the unknown one) written as `*`.
/// A created resource's own id and times differ between two creates, so of a success
/// only the status and the replay header count.
async fn shown(res: Response, aimed_at: &str) -> (StatusCode, bool, String) {
    let status = res.status();
    let replayed = res.headers().contains_key("idempotent-replayed");
    let body = res.text().await.unwrap_or_default();
    let body = if status.is_success() {
        String::new()
    } else {
        body.replace(aimed_at, "*")
    };
    (status, replayed, body)
}

/// Sends one attack aimed at the victim and the same aimed at nothing; both answers
/// must be alike and carry nothing of the victim. Returns the status.
#[allow(clippy::too_many_arguments)]
async fn alike(
    what: &str,
    client: &Client,
    s: &TestServer,
    v: &Victim,
    method: &str,
    (victim_value, unknown_value): (&str, &str),
    request: impl Fn(&str) -> (String, Vec<(&'static str, String)>, Option<Value>),
) -> StatusCode {
    let (path, headers, body) = request(victim_value);
    let attacked = send(client, s, method, &path, &headers, body.as_ref()).await;
    let attacked_text_check = attacked.headers().get("location").cloned();
    let (status, replayed, text) = shown(attacked, victim_value).await;
    assert!(
        !text.contains(MARKER),
        "{what}: the answer shows the victim: {text}"
    );
    for id in &v.ids {
        if id != victim_value {
            assert!(
                !text.contains(id.as_str()),
                "{what}: the answer names {id}: {text}"
            );
        }
    }
    if let Some(location) = attacked_text_check {
        let location = location.to_str().unwrap_or_default().to_string();
        assert!(
            !v.ids.iter().any(|id| location.contains(id.as_str())),
            "{what}: Location names the victim's resource: {location}"
        );
    }
    let (path, headers, body) = request(unknown_value);
    let control = send(client, s, method, &path, &headers, body.as_ref()).await;
    let control = shown(control, unknown_value).await;
    assert_eq!(
        (status, replayed, text),
        control,
        "{what}: the answer differs from the one for data that does not exist"
    );
    status
}

#[tokio::test]
async fn conditional_creates_and_updates_match_only_what_the_token_can_read() {
    let (s, v, a, app) = scene().await;
    let cases: [(&str, &str, &str, Value); 4] = [
        (
            "Observation",
            "urn:test:obs",
            "victim-obs",
            observation(&a, PAIN),
        ),
        (
            "ServiceRequest",
            "urn:test:sr",
            "victim-sr",
            service_request(&a),
        ),
        ("Task", "urn:test:task", "victim-task", task(&a)),
        ("Patient", "urn:test:mrn", "victim-mrn", patient("new-mrn")),
    ];
    for (t, system, value, body) in &cases {
        let status = alike(
            &format!("POST {t} If-None-Exist"),
            &app,
            &s,
            &v,
            "POST",
            (value, "nobody-has-this"),
            |x| {
                (
                    t.to_string(),
                    vec![("If-None-Exist", format!("identifier={system}|{x}"))],
                    Some(body.clone()),
                )
            },
        )
        .await;
        // a new resource of its own (or, for a Patient, a refusal), never the match
        let expected = if *t == "Patient" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, expected, "{t}");
    }
    // conditional update by another patient's identifier, and with another patient's id
    // in the body
    let mut own = patient("attacker-mrn");
    own["id"] = json!(a);
    alike(
        "PUT Patient?identifier",
        &app,
        &s,
        &v,
        "PUT",
        ("victim-mrn", "nobody-has-this"),
        |x| {
            (
                format!("Patient?identifier=urn:test:mrn|{x}"),
                vec![],
                Some(patient("x")),
            )
        },
    )
    .await;
    alike(
        "PUT Observation?identifier with the victim's id",
        &app,
        &s,
        &v,
        "PUT",
        (&v.observation, &unknown_id()),
        |x| {
            let mut body = observation(&a, PAIN);
            body["id"] = json!(x);
            (
                "Observation?identifier=urn:test:obs|nothing".to_string(),
                vec![],
                Some(body),
            )
        },
    )
    .await;
    // the victim's resources are untouched
    for id in [&v.observation, &v.patient] {
        let t = if id == &v.patient {
            "Patient"
        } else {
            "Observation"
        };
        let r = json(s.get(&format!("{t}/{id}")).await).await;
        assert_eq!(r["meta"]["versionId"], "1", "{r}");
    }
}

#[tokio::test]
async fn updates_and_deletes_by_id_tell_nothing_of_other_patients_ids() {
    let (s, v, a, app) = scene().await;
    let unknown = unknown_id();
    let status = alike(
        "PUT Observation/[id]",
        &app,
        &s,
        &v,
        "PUT",
        (&v.observation, &unknown),
        |x| {
            let mut body = observation(&a, PAIN);
            body["id"] = json!(x);
            (
                format!("Observation/{x}"),
                vec![("If-Match", "W/\"1\"".into())],
                Some(body),
            )
        },
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = alike(
        "DELETE Observation/[id] with If-Match",
        &app,
        &s,
        &v,
        "DELETE",
        (&v.observation, &unknown),
        |x| {
            (
                format!("Observation/{x}"),
                vec![("If-Match", "W/\"9\"".into())],
                None,
            )
        },
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // a deleted resource of the victim answers as one that never existed
    let deleted = id_of(&s.create(observation(&v.patient, PAIN)).await);
    assert!(
        s.client
            .delete(s.url(&format!("Observation/{deleted}")))
            .send()
            .await
            .expect("delete")
            .status()
            .is_success()
    );
    alike(
        "DELETE of a deleted Observation",
        &app,
        &s,
        &v,
        "DELETE",
        (&deleted, &unknown),
        |x| (format!("Observation/{x}"), vec![], None),
    )
    .await;
    // its own deleted resource deletes again without complaint
    let body = observation(&a, PAIN);
    let mine = json(send(&app, &s, "POST", "Observation", &[], Some(&body)).await).await;
    let path = format!("Observation/{}", id_of(&mine));
    for _ in 0..2 {
        let res = send(&app, &s, "DELETE", &path, &[], None).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn references_to_other_patients_resources_answer_as_unknown_ones() {
    let (s, v, a, app) = scene().await;
    let unknown = unknown_id();
    let targets = [
        ("CarePlan", &v.plan),
        ("Goal", &v.goal),
        ("Observation", &v.observation),
        ("ServiceRequest", &v.request),
        ("Task", &v.task),
        ("Patient", &v.patient),
    ];
    for (t, id) in targets {
        let status = alike(
            &format!("an Observation referencing {t}"),
            &app,
            &s,
            &v,
            "POST",
            (id, &unknown),
            |x| {
                let mut body = observation(&a, PAIN);
                body["focus"] = json!([{"reference": format!("{t}/{x}")}]);
                ("Observation".to_string(), vec![], Some(body))
            },
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{t}");
    }
    for (t, field, value) in [
        ("CarePlan", "goal", json!([{"reference": "Goal/*"}])),
        ("Task", "focus", json!({"reference": "ServiceRequest/*"})),
        (
            "ServiceRequest",
            "basedOn",
            json!([{"reference": "CarePlan/*"}]),
        ),
        (
            "CarePlan",
            "basedOn",
            json!([{"reference": "ServiceRequest/*"}]),
        ),
    ] {
        let target = if value.to_string().contains("Goal/") {
            &v.goal
        } else if value.to_string().contains("ServiceRequest/") {
            &v.request
        } else {
            &v.plan
        };
        let base = match t {
            "CarePlan" => care_plan(&a),
            "Task" => task(&a),
            _ => service_request(&a),
        };
        let status = alike(
            &format!("a {t} with {field} to the victim's"),
            &app,
            &s,
            &v,
            "POST",
            (target, &unknown),
            |x| {
                let mut body = base.clone();
                body[field] =
                    serde_json::from_str(&value.to_string().replace('*', x)).expect("json");
                (t.to_string(), vec![], Some(body))
            },
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{t}.{field}");
    }
    // its own resources and the clinic's shared ones still resolve
    let mut body = observation(&a, PAIN);
    body["performer"] = json!([{"reference": format!("Patient/{a}")}]);
    let own = json(send(&app, &s, "POST", "Observation", &[], Some(&body)).await).await;
    let mut body = observation(&a, PAIN);
    body["hasMember"] = json!([{"reference": format!("Observation/{}", id_of(&own))}]);
    let res = send(&app, &s, "POST", "Observation", &[], Some(&body)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org = id_of(
        &s.create(json!({"resourceType": "Organization", "name": "Clinic"}))
            .await,
    );
    let mut body = observation(&a, PAIN);
    body["performer"] = json!([{"reference": format!("Organization/{org}")}]);
    let res = send(&app, &s, "POST", "Observation", &[], Some(&body)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn identifiers_tell_nothing_and_are_assigned_by_the_clinic() {
    let (s, v, a, app) = scene().await;
    for (t, system, value) in [
        ("ServiceRequest", "urn:test:sr", "victim-sr"),
        ("Task", "urn:test:task", "victim-task"),
    ] {
        let status = alike(
            &format!("a {t} with the victim's identifier"),
            &app,
            &s,
            &v,
            "POST",
            (value, "nobody-has-this"),
            |x| {
                let mut body = if t == "Task" {
                    task(&a)
                } else {
                    service_request(&a)
                };
                body["identifier"] = json!([{"system": system, "value": x}]);
                (t.to_string(), vec![], Some(body))
            },
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{t}");
    }
    // its own Patient keeps the identifiers it has
    let mut own = json(s.get(&format!("Patient/{a}")).await).await;
    own["gender"] = json!("female");
    let res = send(&app, &s, "PUT", &format!("Patient/{a}"), &[], Some(&own)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // a system client is told which resource holds the identifier
    let mut sr = service_request(&a);
    sr["identifier"] = json!([{"system": "urn:test:sr", "value": "victim-sr"}]);
    let issue = outcome(
        s.post_json("ServiceRequest", &sr).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains(&v.request)),
        "{issue}"
    );
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_sender_and_replay_after_authorization() {
    let (s, v, a, app) = scene().await;
    let victim_app =
        client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&v.patient)));
    let key = ("Idempotency-Key", "shared-key-1".to_string());
    // the clinic's system writes the victim's Observation with the key
    let body_b = observation(&v.patient, PAIN);
    let first = send(
        &s.client,
        &s,
        "POST",
        "Observation",
        std::slice::from_ref(&key),
        Some(&body_b),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json(first).await;
    // the same body and key from the attacker: refused before any replay
    let res = send(
        &app,
        &s,
        "POST",
        "Observation",
        std::slice::from_ref(&key),
        Some(&body_b),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.headers().contains_key("idempotent-replayed"));
    let text = res.text().await.unwrap_or_default();
    assert!(
        !text.contains(first["id"].as_str().unwrap_or("-")),
        "{text}"
    );
    // its own body with the key: a write of its own, not the system's answer, and not
    // told that the key is in use
    for client in [&app, &victim_app] {
        let patient = if std::ptr::eq(client, &app) {
            &a
        } else {
            &v.patient
        };
        let res = send(
            client,
            &s,
            "POST",
            "Observation",
            std::slice::from_ref(&key),
            Some(&observation(patient, PAIN)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(!res.headers().contains_key("idempotent-replayed"));
        let made = json(res).await;
        assert_ne!(made["id"], first["id"]);
        // and its own retry is a replay of its own answer
        let res = send(
            client,
            &s,
            "POST",
            "Observation",
            std::slice::from_ref(&key),
            Some(&observation(patient, PAIN)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().contains_key("idempotent-replayed"));
        assert_eq!(json(res).await["id"], made["id"]);
    }
    // the system's own retry still replays its answer
    let res = send(&s.client, &s, "POST", "Observation", &[key], Some(&body_b)).await;
    assert!(res.headers().contains_key("idempotent-replayed"));
    assert_eq!(json(res).await["id"], first["id"]);
}
