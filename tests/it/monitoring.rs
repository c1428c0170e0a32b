//! Messages between patient and therapist (Communication: the patient's own, read
//! receipts, the `communication` topic) and remote therapeutic monitoring: `$rtm`
//! periods counted by hand below, with a daylight-saving change and a patient in
//! another time zone, through HTTP only.

use std::sync::Arc;

use api::clock::{Clock, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::subscriptions::{receiver, subscription, wait_events};
use crate::support::*;

const TZ: &str = "http://hl7.org/fhir/StructureDefinition/tz-code";

fn patient_in(mrn: &str, tz: &str) -> Value {
    let mut p = patient(mrn);
    p["extension"] = json!([{"url": TZ, "valueCode": tz}]);
    p
}

/// A draft program of `patient` with a monitoring episode from `start`.
fn monitored_program(patient: &str, start: &str) -> Value {
    let mut plan = program(patient, &[], ("2026-02-20", "2026-05-31"));
    plan["status"] = json!("draft");
    plan["extension"] = json!([{"url": format!("{BASE}/StructureDefinition/rtm-episode"),
                                "valuePeriod": {"start": start}}]);
    plan
}

/// A reading of the patient's device at `when`.
fn device_reading(patient: &str, device: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "55423-8", "display": "Number of steps"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "device": {"reference": format!("Device/{device}")},
        "effectiveDateTime": when, "valueQuantity": {"value": 1200, "unit": "steps", "system": "http://unitsofmeasure.org", "code": "{steps}"}})
}

/// Treatment-management time the therapist logs.
fn time_spent(patient: &str, therapist: &str, start: &str, end: &str, what: &str) -> Value {
    json!({"resourceType": "Procedure", "status": "completed",
        "code": {"coding": [{"system": format!("{BASE}/CodeSystem/monitoring-activity"), "code": "treatment-management"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "performedPeriod": {"start": start, "end": end},
        "performer": [{"actor": {"reference": format!("Practitioner/{therapist}")}}],
        "note": [{"text": what}]})
}

fn message(from: &str, to: &str, about: &str, sent: &str, text: &str) -> Value {
    json!({"resourceType": "Communication", "status": "completed",
        "subject": {"reference": about},
        "sender": {"reference": from}, "recipient": [{"reference": to}],
        "sent": sent, "payload": [{"contentString": text}]})
}

fn part<'a>(parts: &'a Value, name: &str) -> &'a Value {
    parts
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The first period of a patient in a `$rtm` answer: (days with data, minutes,
/// interactive, codes).
fn first_period(answer: &Value, patient: &str) -> (u64, u64, bool, Vec<String>) {
    let row = answer["parameter"]
        .as_array()
        .and_then(|ps| {
            ps.iter().find(|p| {
                p["name"] == "patient"
                    && part(&p["part"], "patient")["valueReference"]["reference"]
                        == format!("Patient/{patient}")
            })
        })
        .unwrap_or_else(|| panic!("no row of Patient/{patient}: {answer}"));
    let period = part(&row["part"], "period");
    assert_eq!(part(&period["part"], "number")["valuePositiveInt"], 1);
    let codes = period["part"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "code")
        .map(|c| {
            part(&c["part"], "coding")["valueCoding"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    (
        part(&period["part"], "daysWithData")["valueUnsignedInt"]
            .as_u64()
            .unwrap_or(99),
        part(&period["part"], "minutes")["valueUnsignedInt"]
            .as_u64()
            .unwrap_or(99),
        part(&period["part"], "interactiveCommunication")["valueBoolean"] == true,
        codes,
    )
}

#[tokio::test]
async fn rtm_periods_match_a_count_by_hand() {
    let clock = Arc::new(ManualClock::new(at("2026-03-25T12:00:00Z")));
    let s = start_with(|_| {}, clock.clone()).await;
    let therapist = id_of(&s.create(practitioner()).await);
    let ny = id_of(&s.create(patient_in("rtm-ny", "America/New_York")).await);
    let tokyo = id_of(&s.create(patient_in("rtm-tokyo", "Asia/Tokyo")).await);
    for (p, d) in [(&ny, "d1"), (&tokyo, "d2")] {
        s.create(monitored_program(p, "2026-02-20")).await;
        let res = s
            .put_json(
                &format!("Device/{d}"),
                &json!({"resourceType": "Device", "id": d,
                "patient": {"reference": format!("Patient/{p}")}}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // Period 1 of both: 2026-02-20 to 2026-03-21 (30 days; February 2026 has 28).
    //
    // New York (daylight saving starts on 2026-03-08): readings at 23:30 on the 7th
    // (04:30 UTC on the 8th), 23:30 on the 8th after the change (03:30 UTC on the 9th),
    // 00:30 and 10:00 on the 9th: local dates 7, 8, 9 = 3 days with data.
    // One on 2026-03-22 is in period 2.
    for when in [
        "2026-03-07T23:30:00-05:00",
        "2026-03-08T23:30:00-04:00",
        "2026-03-09T00:30:00-04:00",
        "2026-03-09T10:00:00-04:00",
        "2026-03-22T10:00:00-04:00",
    ] {
        s.create(device_reading(&ny, "d1", when)).await;
    }
    // 12 + 9 = 21 minutes, a message each way and a call: >= 20 minutes with a
    // real-time interactive communication.
    s.create(time_spent(
        &ny,
        &therapist,
        "2026-03-03T15:00:00Z",
        "2026-03-03T15:12:00Z",
        "Reviewed readings",
    ))
    .await;
    s.create(time_spent(
        &ny,
        &therapist,
        "2026-03-10T15:00:00Z",
        "2026-03-10T15:09:59Z",
        "Adjusted the program",
    ))
    .await;
    let (me, them) = (format!("Patient/{ny}"), format!("Practitioner/{therapist}"));
    s.create(message(
        &them,
        &me,
        &me,
        "2026-03-04T14:00:00Z",
        "How is the knee?",
    ))
    .await;
    s.create(message(
        &me,
        &them,
        &me,
        "2026-03-04T18:00:00Z",
        "Better, thanks",
    ))
    .await;
    let mut call = message(&them, &me, &me, "2026-03-11T15:00:00Z", "Phone review");
    call["medium"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "PHONE"}]}]);
    s.create(call).await;

    // Tokyo (UTC+9): 15 readings at 12:00 UTC on 2026-03-01..15 (local days 1..15), and
    // one at 15:30 UTC on 2026-03-15 (00:30 on the 16th in Tokyo): 16 local days, 15 UTC
    // days. 10 minutes, and messages both ways but no call: an interactive
    // communication some payers accept, not the real-time one the codes need.
    for day in 1..=15 {
        s.create(device_reading(
            &tokyo,
            "d2",
            &format!("2026-03-{day:02}T12:00:00Z"),
        ))
        .await;
    }
    s.create(device_reading(&tokyo, "d2", "2026-03-15T15:30:00Z"))
        .await;
    s.create(time_spent(
        &tokyo,
        &therapist,
        "2026-03-05T01:00:00Z",
        "2026-03-05T01:10:00Z",
        "Reviewed readings",
    ))
    .await;
    let (me_t, them_t) = (
        format!("Patient/{tokyo}"),
        format!("Practitioner/{therapist}"),
    );
    s.create(message(
        &them_t,
        &me_t,
        &me_t,
        "2026-03-06T01:00:00Z",
        "Keep it up",
    ))
    .await;
    s.create(message(
        &me_t,
        &them_t,
        &me_t,
        "2026-03-06T02:00:00Z",
        "Will do",
    ))
    .await;

    let res = s.get("$rtm?start=2026-03-01&end=2026-03-21").await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    assert_eq!(
        part(&answer["parameter"], "rulesYear")["valueInteger"],
        2026
    );
    let (days, minutes, interactive, codes) = first_period(&answer, &ny);
    assert_eq!((days, minutes, interactive), (3, 21, true), "{answer}");
    // 2-15 days of data (musculoskeletal), set-up in the first period, 20 minutes with
    // an interactive communication
    for c in ["98985", "98975", "98980"] {
        assert!(codes.contains(&c.to_string()), "{c} in {codes:?}: {answer}");
    }
    assert!(!codes.contains(&"98977".to_string()), "{codes:?}");
    let (days, minutes, interactive, codes) = first_period(&answer, &tokyo);
    assert_eq!((days, minutes, interactive), (16, 10, true), "{answer}");
    assert!(codes.contains(&"98977".to_string()), "16 days: {codes:?}");
    for c in ["98985", "98979", "98980"] {
        assert!(!codes.contains(&c.to_string()), "{c} in {codes:?}");
    }

    // the same as CSV, one line per patient period
    let csv = s
        .client
        .get(s.url("$rtm?start=2026-03-01&end=2026-03-21&_format=csv"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("Patient/{ny},")))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(line.contains(",3,21,true,true,"), "{line}");

    // a Group's: its members only
    let group = s
        .create(
            json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{tokyo}")}}]}),
        )
        .await;
    let of_group = json(
        s.get(&format!(
            "Group/{}/$rtm?start=2026-03-01&end=2026-03-21",
            id_of(&group)
        ))
        .await,
    )
    .await;
    let rows = of_group["parameter"]
        .as_array()
        .map_or(0, |p| p.iter().filter(|p| p["name"] == "patient").count());
    assert_eq!(rows, 1, "{of_group}");
    assert_eq!(first_period(&of_group, &tokyo).0, 16);
    // a patient sees their own periods, not the clinic's
    let own = client_with_token(&token_at(
        &s.database_url,
        "patient/*.rs",
        Some(&ny),
        clock.now().as_second(),
    ));
    let res = own
        .get(s.url(&format!(
            "Patient/{ny}/$rtm?start=2026-03-01&end=2026-03-21"
        )))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    let mine = json(res).await;
    assert_eq!(first_period(&mine, &ny).0, 3);
    let res = own
        .get(s.url(&format!("Patient/{tokyo}/$rtm")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = own.get(s.url("$rtm")).send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // a bad date is a 400
    outcome(s.get("$rtm?start=March").await, StatusCode::BAD_REQUEST).await;
    s.stop().await;
}

#[tokio::test]
async fn a_message_thread_with_read_receipts_and_notices() {
    let hook = receiver().await;
    let s = start_with(
        |c| c.subscription_allow_loopback = true,
        Arc::new(api::clock::SystemClock),
    )
    .await;
    let therapist = id_of(&s.create(practitioner()).await);
    let pid = id_of(&s.create(patient("msg-1")).await);
    let other = id_of(&s.create(patient("msg-2")).await);
    let sub = s
        .create(subscription(
            "communication",
            Some(&format!("Communication?patient=Patient/{pid}")),
            &hook.url,
            "id-only",
        ))
        .await;
    assert_eq!(sub["status"], "requested");
    let (me, them) = (
        format!("Patient/{pid}"),
        format!("Practitioner/{therapist}"),
    );
    let first = s
        .create(message(
            &them,
            &me,
            &me,
            "2026-03-04T14:00:00Z",
            "How is the knee?",
        ))
        .await;
    // another patient's thread is not notified to this subscription
    let not_mine = format!("Patient/{other}");
    s.create(message(
        &them,
        &not_mine,
        &not_mine,
        "2026-03-04T14:00:00Z",
        "Hello",
    ))
    .await;

    // the patient reads their messages and answers with their own token
    let own = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&pid)));
    let bundle = json(
        own.get(s.url(&format!("Communication?recipient=Patient/{pid}")))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(
        bundle["total"].as_u64().or(Some(
            bundle["entry"].as_array().map_or(0, |e| e.len() as u64)
        )),
        Some(1),
        "{bundle}"
    );
    let mut read = first.clone();
    read["received"] = json!("2026-03-04T15:00:00Z");
    let res = own
        .put(s.url(&format!("Communication/{}", id_of(&first))))
        .header("Content-Type", "application/fhir+json")
        .body(read.to_string())
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), StatusCode::OK, "a read receipt");
    let mut reply = message(&me, &them, &me, "2026-03-04T18:00:00Z", "Better, thanks");
    reply["inResponseTo"] = json!([{"reference": format!("Communication/{}", id_of(&first))}]);
    let res = own
        .post(s.url("Communication"))
        .header("Content-Type", "application/fhir+json")
        .body(reply.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::CREATED, "the patient's reply");
    // ... but cannot write as someone else's thread
    let forged = message(
        &them,
        &not_mine,
        &not_mine,
        "2026-03-04T18:00:00Z",
        "Forged",
    );
    let res = own
        .post(s.url("Communication"))
        .header("Content-Type", "application/fhir+json")
        .body(forged.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // nor in the clinic's name inside its own compartment, nor log the clinic's time
    let as_therapist = message(&them, &me, &me, "2026-03-04T19:00:00Z", "Forged praise");
    let time = time_spent(
        &pid,
        &therapist,
        "2026-03-04T10:00:00Z",
        "2026-03-04T11:00:00Z",
        "Forged",
    );
    for body in [as_therapist, time] {
        let t = body["resourceType"].as_str().unwrap_or("").to_string();
        let res = own
            .post(s.url(&t))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{t}");
    }
    let mut resent = first.clone();
    resent["sender"] = json!({"reference": me});
    let res = own
        .put(s.url(&format!("Communication/{}", id_of(&first))))
        .header("Content-Type", "application/fhir+json")
        .body(resent.to_string())
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "the sender of a message stays"
    );
    // the message, its read receipt and the reply: three events
    let events = wait_events(&hook, 3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|(_, focus)| focus.starts_with("Communication/")),
        "{events:?}"
    );
    // everything of the thread is in the patient's $everything
    let everything = json(
        own.get(s.url(&format!("Patient/{pid}/$everything")))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    let comms = everything["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "Communication")
        .count();
    assert_eq!(comms, 2, "{everything}");
    s.stop().await;
}

#[tokio::test]
async fn data_stored_before_the_server_kept_monitoring_events_counts_after_a_restart() {
    let clock = Arc::new(ManualClock::new(at("2026-03-10T12:00:00Z")));
    let s = start_with(|_| {}, clock.clone()).await;
    let pid = id_of(&s.create(patient_in("rtm-old", "Europe/Paris")).await);
    s.create(monitored_program(&pid, "2026-03-01")).await;
    let res = s
        .put_json(
            "Device/d9",
            &json!({"resourceType": "Device", "id": "d9", "patient": {"reference": format!("Patient/{pid}")}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let obs = id_of(
        &s.create(device_reading(&pid, "d9", "2026-03-05T09:00:00+01:00"))
            .await,
    );
    let days = |answer: &Value| first_period(answer, &pid).0;
    let path = format!("Patient/{pid}/$rtm?start=2026-03-01&end=2026-03-10");
    assert_eq!(days(&json(s.get(&path).await).await), 1);

    // as a database of an earlier release holds it: the reading without its event
    let db = api::db::Db::open(&s.database_url, 1).expect("database");
    let id = obs.clone();
    db.write(move |conn| {
        api::db::outcomes::put_event(conn, "default", "Observation", &id, None)?;
        api::db::store::set_setting(conn, "monitoring-events-version", "0")?;
        Ok::<_, api::error::ApiError>(())
    })
    .expect("write");
    assert_eq!(days(&json(s.get(&path).await).await), 0);

    // a server started on it records the events of what it holds
    let url = s.database_url.clone();
    let again = start_with(move |c| c.database_url = url, clock.clone()).await;
    assert_eq!(days(&json(again.get(&path).await).await), 1);
    // a deleted reading no longer counts
    let res = again
        .client
        .delete(again.url(&format!("Observation/{obs}")))
        .send()
        .await
        .expect("DELETE");
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(days(&json(again.get(&path).await).await), 0);
    again.stop().await;
    s.stop().await;
}
