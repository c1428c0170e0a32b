//! Topic-based subscriptions (R4 Subscriptions Backport) delivered to a local HTTP
//! receiver: handshake, heartbeat, topics and filters, order, retries, recovery, no
//! event for a rolled-back write, delivery after a restart, and who may subscribe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use api::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::adherence::sessions;
use crate::support::*;

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";
const TOPICS: &str = "https://hep-fhir.org/fhir/SubscriptionTopic";
/// The two weeks of the program of `full_resources_heartbeats_and_sessions_missed_by_the_server`.
const MARCH: (&str, &str) = ("2026-03-02", "2026-03-15");

/// One notification the receiver took.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) body: Value,
    raw: String,
    authorization: Option<String>,
    signature: Option<String>,
    timestamp: Option<String>,
}

/// A local rest-hook endpoint that keeps what it receives, or fails on demand.
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail: Arc<AtomicBool>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

pub(crate) async fn receiver() -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicBool::new(false));
    let (g, f) = (got.clone(), fail.clone());
    let server = actix_web::HttpServer::new(move || {
        let (g, f) = (g.clone(), f.clone());
        actix_web::App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                if f.load(Ordering::SeqCst) {
                    return HttpResponse::ServiceUnavailable().finish();
                }
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let raw = String::from_utf8_lossy(&body).to_string();
                g.lock().expect("lock").push(Received {
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    raw,
                    authorization: header("authorization"),
                    signature: header("x-hep-signature"),
                    timestamp: header("x-hep-timestamp"),
                });
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
        fail,
        handle,
    }
}

impl Receiver {
    pub(crate) fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `n` notifications arrived.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{} notifications arrived, not {n}: {:?}",
            self.all().len(),
            self.all()
        );
    }
}

fn param<'a>(notification: &'a Value, name: &str) -> Option<&'a Value> {
    notification["entry"][0]["resource"]["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

pub(crate) fn kind(n: &Value) -> String {
    param(n, "type")
        .and_then(|p| p["valueCode"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The (event number, focus) of each event of a notification.
pub(crate) fn events(n: &Value) -> Vec<(u64, String)> {
    n["entry"][0]["resource"]["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "notification-event")
        .map(|p| {
            let part = |name: &str| {
                p["part"]
                    .as_array()
                    .and_then(|parts| parts.iter().find(|x| x["name"] == name))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            (
                part("event-number")["valueString"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                part("focus")["valueReference"]["reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

pub(crate) fn subscription(
    topic: &str,
    filter: Option<&str>,
    endpoint: &str,
    content: &str,
) -> Value {
    let mut s = json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "the EHR follows its patients' programs",
        "criteria": format!("{TOPICS}/{topic}"),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": format!("{BACKPORT}/backport-payload-content"), "valueCode": content}]},
            "header": ["Authorization: Bearer receiver-secret"]
        }
    });
    if let Some(f) = filter {
        s["_criteria"] = json!({"extension": [{"url": format!("{BACKPORT}/backport-filter-criteria"), "valueString": f}]});
    }
    s
}

fn titled_plan(patient: &str, title: &str) -> Value {
    let mut plan = care_plan(patient);
    plan["title"] = json!(title);
    plan
}

fn loopback(c: &mut api::config::Config) {
    c.subscription_allow_loopback = true;
}

async fn subscription_status(s: &TestServer, id: &str) -> String {
    json(s.get(&format!("Subscription/{id}")).await).await["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Waits until the Subscription shows `status` (or gives up after 3 s), returning the
/// status it shows last.
async fn wait_status(s: &TestServer, id: &str, status: &str) -> String {
    let mut shown = String::new();
    for _ in 0..300 {
        shown = subscription_status(s, id).await;
        if shown == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shown
}

/// Waits until `n` events arrived in event notifications: their (number, focus).
pub(crate) async fn wait_events(r: &Receiver, n: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    for _ in 0..1000 {
        seen = r
            .all()
            .iter()
            .filter(|x| kind(&x.body) == "event-notification")
            .flat_map(|x| events(&x.body))
            .collect();
        if seen.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

#[tokio::test]
async fn handshake_then_each_matching_event_in_order() {
    let s = start_with(
        |c| {
            loopback(c);
            c.subscription_signing_key = Some("shared-with-the-ehr".into());
        },
        Arc::new(api::clock::SystemClock),
    )
    .await;
    let r = receiver().await;
    let a = id_of(&s.create(patient("a")).await);
    let b = id_of(&s.create(patient("b")).await);
    let sub = s
        .create(subscription(
            "program",
            Some(&format!("CarePlan?patient=Patient/{a}")),
            &r.url,
            "id-only",
        ))
        .await;
    assert_eq!(sub["status"], "requested");
    let sid = id_of(&sub);
    let got = r.wait_for(1).await;
    assert_eq!(kind(&got[0].body), "handshake");
    assert_eq!(got[0].body["type"], "history");
    assert_eq!(
        got[0].authorization.as_deref(),
        Some("Bearer receiver-secret")
    );
    // signed: HMAC-SHA256 of timestamp, dot, body, with the configured key
    let (sig, ts) = (got[0].signature.clone(), got[0].timestamp.clone());
    assert_eq!(
        sig.as_deref(),
        Some(
            api::subscriptions::signature(
                b"shared-with-the-ehr",
                ts.as_deref().expect("timestamp"),
                &got[0].raw
            )
            .as_str()
        )
    );
    assert_eq!(wait_status(&s, &sid, "active").await, "active");

    let plan_a = id_of(&s.create(titled_plan(&a, "first")).await);
    s.create(titled_plan(&b, "another patient's")).await;
    let mut changed = json(s.get(&format!("CarePlan/{plan_a}")).await).await;
    changed["title"] = json!("second");
    assert_eq!(
        s.put_json(&format!("CarePlan/{plan_a}"), &changed)
            .await
            .status(),
        StatusCode::OK
    );
    let plan_a2 = id_of(&s.create(titled_plan(&a, "third")).await);
    let seen = wait_events(&r, 3).await;
    assert_eq!(
        seen,
        vec![
            (1, format!("CarePlan/{plan_a}")),
            (2, format!("CarePlan/{plan_a}")),
            (3, format!("CarePlan/{plan_a2}"))
        ],
        "in order, each once, only patient a's"
    );
    let last = r.all().last().cloned().expect("notification");
    assert_eq!(
        param(&last.body, "events-since-subscription-start").map(|p| p["valueString"].clone()),
        Some(json!("3"))
    );
    // id-only: the focus as an entry without the resource
    let entries = last.body["entry"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .skip(1)
            .any(|e| e["fullUrl"].as_str().is_some_and(|u| u.ends_with(&plan_a2)))
    );
    assert!(entries.iter().skip(1).all(|e| e["resource"].is_null()));

    // $status and $events
    let st = json(s.get(&format!("Subscription/{sid}/$status")).await).await;
    let params = &st["entry"][0]["resource"]["parameter"];
    assert!(params.as_array().is_some_and(|p| {
        p.iter()
            .any(|x| x["name"] == "type" && x["valueCode"] == "query-status")
    }));
    let ev = json(
        s.get(&format!(
            "Subscription/{sid}/$events?eventsSinceNumber=2&content=full-resource"
        ))
        .await,
    )
    .await;
    assert_eq!(kind(&ev), "query-event");
    assert_eq!(
        events(&ev).iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(
        ev["entry"][1]["resource"]["title"], "second",
        "the version of the event"
    );
    assert_eq!(ev["entry"][2]["resource"]["title"], "third");

    // turned off: nothing more
    let mut off = json(s.get(&format!("Subscription/{sid}")).await).await;
    off["status"] = json!("off");
    assert_eq!(
        s.put_json(&format!("Subscription/{sid}"), &off)
            .await
            .status(),
        StatusCode::OK
    );
    let before = r.all().len();
    s.create(titled_plan(&a, "fourth")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.all().len(), before);
}

#[tokio::test]
async fn full_resources_heartbeats_and_sessions_missed_by_the_server() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(
        |c| {
            loopback(c);
            c.job_interval_ms = 5;
        },
        clock.clone(),
    )
    .await;
    let r = receiver().await;
    let p = id_of(&s.create(patient("hb")).await);
    let rx = id_of(&s.create(prescription(&p, "Squat", 3, MARCH)).await);
    let plan = id_of(&s.create(program(&p, &[&rx], MARCH)).await);
    let mut sub = subscription(
        "session-outcome",
        Some(&format!(
            "Task?patient=Patient/{p}&careplan=CarePlan/{plan}"
        )),
        &r.url,
        "full-resource",
    );
    sub["channel"]["extension"] = json!([
        {"url": format!("{BACKPORT}/backport-heartbeat-period"), "valueUnsignedInt": 60}
    ]);
    s.create(sub).await;
    r.wait_for(1).await;
    // a minute with nothing to say: a heartbeat
    clock.set(at("2026-03-02T12:01:30Z"));
    let got = r.wait_for(2).await;
    assert_eq!(kind(&got[1].body), "heartbeat");
    // two days pass: the server fails the missed sessions, each an event with the Task
    clock.set(at("2026-03-04T12:00:00Z"));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        tasks = r
            .all()
            .iter()
            .filter(|n| kind(&n.body) == "event-notification")
            .flat_map(|n| {
                n.body["entry"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .skip(1)
                    .map(|e| e["resource"].clone())
            })
            .collect();
        if tasks.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tasks.len(), 2, "the sessions of the 2nd and 3rd of March");
    assert!(
        tasks
            .iter()
            .all(|t| t["resourceType"] == "Task" && t["status"] == "failed")
    );
    let failed = sessions(&s)
        .await
        .into_iter()
        .filter(|t| t["status"] == "failed")
        .count();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_resume_with_every_missed_event() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(
        |c| {
            loopback(c);
            c.subscription_max_failures = 2;
            c.subscription_max_backoff_secs = 60;
        },
        clock.clone(),
    )
    .await;
    let r = receiver().await;
    let p = id_of(&s.create(patient("retry")).await);
    let sid = id_of(
        &s.create(subscription("program", None, &r.url, "id-only"))
            .await,
    );
    r.wait_for(1).await;
    r.fail.store(true, Ordering::SeqCst);
    let mut plans = Vec::new();
    for i in 0..3 {
        plans.push(id_of(
            &s.create(titled_plan(&p, &format!("plan {i}"))).await,
        ));
    }
    // attempts fail; after two the subscription is in error
    for minute in 1..=3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        clock.set(at(&format!("2026-03-02T12:0{minute}:00Z")));
    }
    assert_eq!(wait_status(&s, &sid, "error").await, "error");
    let st = json(s.get(&format!("Subscription/{sid}/$status")).await).await;
    assert!(st.to_string().contains("answered 503"), "{st}");
    // the endpoint is back: the next attempt sends the three events, in order
    r.fail.store(false, Ordering::SeqCst);
    clock.set(at("2026-03-02T12:10:00Z"));
    let seen = wait_events(&r, 3).await;
    let expected: Vec<(u64, String)> = plans
        .iter()
        .enumerate()
        .map(|(i, id)| (i as u64 + 1, format!("CarePlan/{id}")))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(wait_status(&s, &sid, "active").await, "active");
}

#[tokio::test]
async fn no_event_for_a_rolled_back_write_and_delivery_after_a_restart() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    // this server commits events but delivers none (it stops before it could)
    let first = start_with(
        |c| {
            loopback(c);
            c.subscription_workers = 0;
        },
        clock.clone(),
    )
    .await;
    let r = receiver().await;
    let p = id_of(&first.create(patient("rb")).await);
    first
        .create(subscription("program", None, &r.url, "id-only"))
        .await;
    // a transaction that fails after its CarePlan entry: no CarePlan, no event
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        post_entry(titled_plan(&p, "rolled back")),
        post_entry(observation("does-not-exist", PAIN))
    ]});
    let res = first.post_json("", &bundle).await;
    assert!(res.status().is_client_error());
    let kept = id_of(&first.create(titled_plan(&p, "kept")).await);
    first.stop().await;
    // its background threads end with the last of its state
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let (url, dir) = (first.database_url.clone(), first.export_dir.clone());
    let second = start_with(
        move |c| {
            loopback(c);
            c.database_url = url;
            c.export_dir = dir.display().to_string();
        },
        clock.clone(),
    )
    .await;
    let got = r.wait_for(2).await;
    assert_eq!(kind(&got[0].body), "handshake");
    let seen: Vec<(u64, String)> = got.iter().flat_map(|n| events(&n.body)).collect();
    assert_eq!(seen, vec![(1, format!("CarePlan/{kept}"))]);
    drop(second);
}

#[tokio::test]
async fn who_may_subscribe_and_to_which_endpoints() {
    let s = start_with(loopback, Arc::new(api::clock::SystemClock)).await;
    let a = id_of(&s.create(patient("a")).await);
    let b = id_of(&s.create(patient("b")).await);
    // endpoints inside the network, or not https, are refused
    for endpoint in [
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://ehr.example.org/hook",
        "https://[fe80::1]/hook",
    ] {
        let res = s
            .post_json(
                "Subscription",
                &subscription("program", None, endpoint, "id-only"),
            )
            .await;
        let issue = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            issue["expression"][0], "Subscription.channel.endpoint",
            "{endpoint}"
        );
    }
    // an unknown topic, a filter the topic does not have
    let mut bad = subscription(
        "program",
        Some("CarePlan?status=active"),
        "https://ehr.example.org/h",
        "id-only",
    );
    outcome(
        s.post_json("Subscription", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    bad["criteria"] = json!("http://example.org/other-topic");
    outcome(
        s.post_json("Subscription", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // a token that cannot read the topic's resources
    let narrow = client_with_token(&token(&s.database_url, "system/Subscription.cruds", None));
    let res = narrow
        .post(s.url("Subscription"))
        .header("Content-Type", FHIR_JSON)
        .body(subscription("program", None, "https://ehr.example.org/h", "id-only").to_string())
        .send()
        .await
        .expect("post");
    outcome(res, StatusCode::FORBIDDEN).await;
    // a patient's app does not subscribe (a Subscription is outside its compartment)
    let app = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&a)));
    for (filter, status) in [
        (None, StatusCode::FORBIDDEN),
        (
            Some(format!("CarePlan?patient=Patient/{b}")),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(format!("CarePlan?patient=Patient/{a}")),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let res = app
            .post(s.url("Subscription"))
            .header("Content-Type", FHIR_JSON)
            .body(
                subscription(
                    "program",
                    filter.as_deref(),
                    "https://ehr.example.org/h",
                    "id-only",
                )
                .to_string(),
            )
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), status, "{filter:?}");
    }
    // the topics are in the CapabilityStatement
    let cap = json(
        Client::new()
            .get(s.url("metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    let sub = cap["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Subscription"))
        .cloned()
        .expect("Subscription");
    let topics: Vec<&str> = sub["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["valueCanonical"].as_str())
        .collect();
    assert_eq!(topics.len(), 6);
    for t in ["session-outcome", "communication", "outcome-score"] {
        assert!(
            topics.contains(&format!("https://hep-fhir.org/fhir/SubscriptionTopic/{t}").as_str()),
            "{t}"
        );
    }
}

use reqwest::Client;

#[tokio::test]
async fn a_referral_task_notifies_each_status_it_takes() {
    let s = start_with(loopback, Arc::new(api::clock::SystemClock)).await;
    let r = receiver().await;
    s.create(subscription(
        "referral-status",
        None,
        &r.url,
        "full-resource",
    ))
    .await;
    r.wait_for(1).await;
    crate::referrals::clinic(&s).await;
    let answer = json(s.post_json("", &referral()).await).await;
    let task_ref = crate::referrals::local(&answer["entry"][6]);
    let mut task = json(s.get(&task_ref).await).await;
    task["status"] = json!("accepted");
    assert_eq!(
        crate::referrals::put(&s, &task).await.status(),
        StatusCode::OK
    );
    // a change that keeps the status: no event
    let mut task = json(s.get(&task_ref).await).await;
    task["note"] = json!([{"text": "first visit booked"}]);
    assert_eq!(
        crate::referrals::put(&s, &task).await.status(),
        StatusCode::OK
    );
    let mut statuses = Vec::new();
    for _ in 0..500 {
        statuses = r
            .all()
            .iter()
            .filter(|n| kind(&n.body) == "event-notification")
            .flat_map(|n| {
                n.body["entry"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .skip(1)
                    .map(|e| e["resource"]["status"].as_str().unwrap_or("").to_string())
            })
            .collect();
        if statuses.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all: Vec<(u64, String)> = r.all().iter().flat_map(|n| events(&n.body)).collect();
    assert_eq!(statuses, vec!["requested", "accepted"]);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|(_, focus)| *focus == task_ref));
}
