//! The adherence loop through HTTP only: a program is activated, the patient's app
//! completes or fails sessions, the clock passes (an injected clock: no waiting for real
//! time), the server fails missed sessions, the therapist changes a dose, and the
//! adherence figures match a calculation done by hand below.

use std::sync::Arc;

use api::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const NY: &str = "America/New_York"; // daylight saving starts on 2026-03-08
/// The two weeks of the programs below.
const MARCH: (&str, &str) = ("2026-03-02", "2026-03-15");

fn output(code: &str, value: Value) -> Value {
    let system = if code == "pain" {
        "http://loinc.org".to_string()
    } else {
        format!("{BASE}/CodeSystem/exercise-report")
    };
    let code = if code == "pain" { "72514-3" } else { code };
    let mut o = json!({"type": {"coding": [{"system": system, "code": code}]}});
    let key = if value.is_string() {
        "valueString"
    } else {
        "valueInteger"
    };
    o[key] = value;
    o
}

/// Every session Task, by (prescription id, local start date of its window).
pub(crate) async fn sessions(s: &TestServer) -> Vec<Value> {
    let bundle = json(s.get("Task?_count=500").await).await;
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

async fn session(s: &TestServer, rx: &str, day: &str) -> Value {
    sessions(s)
        .await
        .into_iter()
        .find(|t| {
            t["focus"]["reference"] == format!("ServiceRequest/{rx}")
                && t["restriction"]["period"]["start"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(day))
                && t["status"] != "cancelled"
        })
        .unwrap_or_else(|| panic!("no session of {rx} on {day}"))
}

/// Waits until the background job has failed the session (the job runs every 20 ms).
async fn failed_by_job(s: &TestServer, task: &Value) -> Value {
    let path = format!("Task/{}", task["id"].as_str().expect("id"));
    for _ in 0..400 {
        let t = json(s.get(&path).await).await;
        if t["status"] == "failed" {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} was not failed by the missed-session job");
}

fn find_part<'a>(parts: &'a Value, name: &str) -> &'a Value {
    parts
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn the_whole_adherence_loop() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z"))); // 07:00 in New York
    let s = start_with(|c| c.job_interval_ms = 20, clock.clone()).await;

    let mut p = patient("adh1");
    p["extension"] =
        json!([{"url": "http://hl7.org/fhir/StructureDefinition/tz-code", "valueCode": NY}]);
    let pid = s.create(p).await["id"].as_str().expect("id").to_string();
    // A: 3 x 10 every day; B: 2 x 10 on Monday, Wednesday and Friday; March 2 to 15
    let a = s.create(prescription(&pid, "Squat", 3, MARCH)).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut b = prescription(&pid, "Bridge", 2, MARCH);
    b["occurrenceTiming"]["repeat"]["dayOfWeek"] = json!(["mon", "wed", "fri"]);
    let b = s.create(b).await["id"].as_str().expect("id").to_string();
    let plan = s.create(program(&pid, &[&a, &b], MARCH)).await;
    let plan_id = plan["id"].as_str().expect("id").to_string();

    // activation made every session of the two weeks: 14 + 6
    let all = sessions(&s).await;
    assert_eq!(all.len(), 20);
    let first = session(&s, &a, "2026-03-02").await;
    assert_eq!(first["status"], "requested");
    assert_eq!(first["for"]["reference"], format!("Patient/{pid}"));
    assert_eq!(first["owner"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        first["basedOn"][0]["reference"],
        format!("CarePlan/{plan_id}")
    );
    assert_eq!(
        first["restriction"]["period"]["start"],
        "2026-03-02T00:00:00-05:00"
    );
    // the day daylight saving starts has 23 hours
    let dst = session(&s, &a, "2026-03-08").await;
    assert_eq!(
        dst["restriction"]["period"]["end"],
        "2026-03-09T00:00:00-04:00"
    );

    // Monday: A done with repetitions per set and pain 4 (JSON Patch), B done (PUT)
    let path = format!("Task/{}", first["id"].as_str().expect("id"));
    let done = json!([
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/executionPeriod", "value": {"start": "2026-03-02T08:00:00-05:00", "end": "2026-03-02T08:20:00-05:00"}},
        {"op": "add", "path": "/output", "value": [
            output("sets-done", json!(3)), output("reps-done", json!(10)), output("reps-done", json!(10)),
            output("reps-done", json!(8)), output("pain", json!(4)), output("note", json!("right knee a bit sore"))
        ]}
    ]);
    let res = s
        .client
        .patch(s.url(&path))
        .header("Content-Type", "application/json-patch+json")
        .body(done.to_string())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(res.status(), StatusCode::OK);
    let completed = json(res).await;
    assert_eq!(completed["status"], "completed");
    assert!(completed.get("extension").is_none(), "on time");
    let mut b_mon = session(&s, &b, "2026-03-02").await;
    b_mon["status"] = json!("completed");
    b_mon["executionPeriod"] = json!({"end": "2026-03-02T18:00:00-05:00"});
    b_mon["output"] = json!([output("sets-done", json!(2))]);
    let b_path = format!("Task/{}", b_mon["id"].as_str().expect("id"));
    assert_eq!(s.put_json(&b_path, &b_mon).await.status(), StatusCode::OK);
    // what the app may not do: change the window, report pain 12, complete it again
    let mut moved = session(&s, &a, "2026-03-03").await;
    moved["restriction"]["period"]["end"] = json!("2026-03-05T00:00:00-05:00");
    let moved_path = format!("Task/{}", moved["id"].as_str().expect("id"));
    let issue = outcome(
        s.put_json(&moved_path, &moved).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Task.restriction.period");
    let mut too_much = session(&s, &a, "2026-03-03").await;
    too_much["status"] = json!("completed");
    too_much["executionPeriod"] = json!({"end": "2026-03-03T09:00:00-05:00"});
    too_much["output"] = json!([output("pain", json!(12))]);
    outcome(
        s.put_json(&moved_path, &too_much).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let again = json(s.get(&b_path).await).await;
    outcome(
        s.put_json(&b_path, &again).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // the pain score is an Observation too
    let obs = json(s.get("Observation?code=http://loinc.org|72514-3").await).await;
    assert_eq!(obs["total"], 1);
    let o = &obs["entry"][0]["resource"];
    assert_eq!(o["code"]["coding"][0]["code"], "72514-3");
    assert_eq!(o["valueInteger"], 4);
    assert_eq!(o["basedOn"][0]["reference"], format!("ServiceRequest/{a}"));
    assert_eq!(o["derivedFrom"][0]["reference"], path);

    // Thursday 07:00: Tuesday and Wednesday passed
    clock.set(at("2026-03-05T12:00:00Z"));
    let a_tue = failed_by_job(&s, &session(&s, &a, "2026-03-03").await).await;
    assert_eq!(a_tue["statusReason"]["coding"][0]["code"], "not-performed");
    failed_by_job(&s, &session(&s, &a, "2026-03-04").await).await;
    failed_by_job(&s, &session(&s, &b, "2026-03-04").await).await;
    // the patient catches up on Tuesday's session late, and cannot do today's
    let mut late = a_tue.clone();
    late["status"] = json!("completed");
    late["executionPeriod"] = json!({"end": "2026-03-05T06:00:00-05:00"});
    late.as_object_mut().map(|t| t.remove("statusReason"));
    let late = json(
        s.put_json(&format!("Task/{}", late["id"].as_str().expect("id")), &late)
            .await,
    )
    .await;
    assert_eq!(
        late["extension"][0]["url"],
        format!("{BASE}/StructureDefinition/completed-late")
    );
    assert_eq!(late["extension"][0]["valueBoolean"], true);
    let mut a_thu = session(&s, &a, "2026-03-05").await;
    a_thu["status"] = json!("failed");
    let thu_path = format!("Task/{}", a_thu["id"].as_str().expect("id"));
    outcome(
        s.put_json(&thu_path, &a_thu).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await; // no reason
    a_thu["statusReason"] = json!({"coding": [{"system": format!("{BASE}/CodeSystem/session-status-reason"), "code": "could-not-do"}], "text": "knee swollen"});
    assert_eq!(s.put_json(&thu_path, &a_thu).await.status(), StatusCode::OK);
    let thu_version = json(s.get(&thu_path).await).await["meta"]["versionId"].clone();

    // the therapist changes A's dose: A is revoked, A2 (4 x 10) replaces it
    let mut revoked = json(s.get(&format!("ServiceRequest/{a}")).await).await;
    revoked["status"] = json!("revoked");
    assert_eq!(
        s.put_json(&format!("ServiceRequest/{a}"), &revoked)
            .await
            .status(),
        StatusCode::OK
    );
    let mut a2 = prescription(&pid, "Squat", 4, MARCH);
    a2["replaces"] = json!([{"reference": format!("ServiceRequest/{a}")}]);
    let a2 = s.create(a2).await["id"].as_str().expect("id").to_string();
    let mut changed = json(s.get(&format!("CarePlan/{plan_id}")).await).await;
    changed["activity"][0]["reference"]["reference"] = json!(format!("ServiceRequest/{a2}"));
    assert_eq!(
        s.put_json(&format!("CarePlan/{plan_id}"), &changed)
            .await
            .status(),
        StatusCode::OK
    );
    // A's future sessions are cancelled, its past ones untouched; A2 starts tomorrow
    // (today's window is A's, failed)
    let all = sessions(&s).await;
    let of = |rx: &str, status: &str| {
        all.iter()
            .filter(|t| {
                t["focus"]["reference"] == format!("ServiceRequest/{rx}") && t["status"] == status
            })
            .count()
    };
    assert_eq!(of(&a, "cancelled"), 10, "March 6 to 15");
    assert_eq!(of(&a2, "requested"), 10, "March 6 to 15");
    assert!(
        all.iter()
            .filter(|t| t["status"] == "cancelled")
            .all(|t| t["statusReason"]["coding"][0]["code"] == "prescription-changed")
    );
    assert_eq!(
        json(s.get(&thu_path).await).await["meta"]["versionId"],
        thu_version
    );
    let history = json(s.get(&format!("CarePlan/{plan_id}/_history")).await).await;
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(2),
        "both versions of the program"
    );

    // next Monday 08:00 (daylight time): Friday to Sunday passed
    clock.set(at("2026-03-09T12:00:00Z"));
    for (rx, day) in [
        (&a2, "2026-03-06"),
        (&a2, "2026-03-07"),
        (&a2, "2026-03-08"),
        (&b, "2026-03-06"),
    ] {
        failed_by_job(&s, &session(&s, rx, day).await).await;
    }
    let mut a2_mon = session(&s, &a2, "2026-03-09").await;
    a2_mon["status"] = json!("completed");
    a2_mon["executionPeriod"] = json!({"end": "2026-03-09T07:30:00-04:00"});
    a2_mon["output"] = json!([output("sets-done", json!(4)), output("pain", json!(1))]);
    assert_eq!(
        s.put_json(
            &format!("Task/{}", a2_mon["id"].as_str().expect("id")),
            &a2_mon
        )
        .await
        .status(),
        StatusCode::OK
    );
    let mut b_mon2 = session(&s, &b, "2026-03-09").await;
    b_mon2["status"] = json!("completed");
    b_mon2["executionPeriod"] = json!({"end": "2026-03-09T07:45:00-04:00"});
    b_mon2["output"] = json!([output("sets-done", json!(1))]);
    assert_eq!(
        s.put_json(
            &format!("Task/{}", b_mon2["id"].as_str().expect("id")),
            &b_mon2
        )
        .await
        .status(),
        StatusCode::OK
    );

    // By hand, from March 2 to 15 as of Monday March 9, 08:00 in New York:
    //   A  (3x10): 2nd done 28/30, 3rd done late 30/30, 4th missed, 5th could not do
    //   A2 (4x10): 6th, 7th, 8th missed; 9th done 40/40 (the rest not due yet)
    //   B  (2x10): 2nd done 20/20, 4th missed, 6th missed, 9th done 1 set 10/20
    //   due 12, completed 5, missed 7, late 1 -> exercise adherence 5/12 = 41.7 %
    //   dose (28+30+40+20+10) / (4x30 + 4x40 + 4x20) = 128/360 = 35.6 %
    //   days with sessions due: 2, 3, 4, 5, 6, 7, 8, 9; all done on 2, 3, 9 -> 3/8 = 37.5 %
    //   pain 4 (A on the 2nd) then 1 (A2 on the 9th): first 4, last 1, mean 2.5
    //   active days: completions on the 2nd, the 5th (the late one) and the 9th -> 3
    //   week 1 (2-8): due 10, completed 3; week 2 (9-15): due 2, completed 2
    let p = json(
        s.get(&format!(
            "CarePlan/{plan_id}/$adherence?start=2026-03-02&end=2026-03-15"
        ))
        .await,
    )
    .await;
    assert_eq!(p["resourceType"], "Parameters");
    let params = &p["parameter"];
    assert_eq!(find_part(params, "formulaVersion")["valueString"], "1");
    assert_eq!(
        find_part(params, "asOf")["valueDateTime"],
        "2026-03-09T08:00:00-04:00"
    );
    assert_eq!(
        find_part(params, "period")["valuePeriod"]["end"],
        "2026-03-16T00:00:00-04:00"
    );
    assert_eq!(find_part(params, "activeDays30")["valueInteger"], 3);
    let overall = &find_part(params, "overall")["part"];
    let int = |parts: &Value, n: &str| find_part(parts, n)["valueInteger"].clone();
    let pct = |parts: &Value, n: &str| find_part(parts, n)["valueQuantity"]["value"].clone();
    assert_eq!(
        [
            int(overall, "due"),
            int(overall, "completed"),
            int(overall, "missed"),
            int(overall, "late")
        ],
        [json!(12), json!(5), json!(7), json!(1)]
    );
    assert_eq!(pct(overall, "exerciseAdherence"), json!(41.7));
    assert_eq!(pct(overall, "doseAdherence"), json!(35.6));
    assert_eq!(pct(overall, "sessionAdherence"), json!(37.5));
    assert_eq!(
        [int(overall, "painFirst"), int(overall, "painLast")],
        [json!(4), json!(1)]
    );
    assert_eq!(find_part(overall, "painMean")["valueDecimal"], json!(2.5));
    let exercises: Vec<&Value> = params
        .as_array()
        .expect("params")
        .iter()
        .filter(|p| p["name"] == "exercise")
        .collect();
    assert_eq!(exercises.len(), 3);
    for (rx, due, completed) in [(&a, 4, 2), (&a2, 4, 1), (&b, 4, 2)] {
        let e = exercises
            .iter()
            .find(|e| {
                find_part(&e["part"], "prescription")["valueReference"]["reference"]
                    == format!("ServiceRequest/{rx}")
            })
            .expect("exercise");
        assert_eq!(
            [int(&e["part"], "due"), int(&e["part"], "completed")],
            [json!(due), json!(completed)]
        );
    }
    let weeks: Vec<&Value> = params
        .as_array()
        .expect("params")
        .iter()
        .filter(|p| p["name"] == "week")
        .collect();
    assert_eq!(weeks.len(), 2);
    assert_eq!(
        [
            int(&weeks[0]["part"], "due"),
            int(&weeks[0]["part"], "completed")
        ],
        [json!(10), json!(3)]
    );
    assert_eq!(
        [
            int(&weeks[1]["part"], "due"),
            int(&weeks[1]["part"], "completed")
        ],
        [json!(2), json!(2)]
    );
    assert_eq!(
        find_part(&weeks[1]["part"], "start")["valueDate"],
        "2026-03-09"
    );

    // the weekly summaries an EHR pulls with a plain search (the summary job keeps them
    // current within its interval)
    let mut weeks: Vec<Value> = Vec::new();
    for _ in 0..400 {
        let summaries = json(
            s.get(&format!(
                "Observation?patient={pid}&code={BASE}/CodeSystem/adherence-measure|weekly-exercise-adherence"
            ))
            .await,
        )
        .await;
        weeks = summaries["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        let settled = weeks.len() == 2
            && weeks
                .iter()
                .any(|w| w["valueQuantity"]["value"] == json!(100.0))
            && weeks.iter().any(|w| w["status"] == "final");
        if settled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(weeks.len(), 2);
    weeks.sort_by_key(|o| {
        o["effectivePeriod"]["start"]
            .as_str()
            .unwrap_or("")
            .to_string()
    });
    assert_eq!(
        weeks[0]["effectivePeriod"]["start"],
        "2026-03-02T00:00:00-05:00"
    );
    assert_eq!(weeks[0]["status"], "final");
    assert_eq!(weeks[0]["valueQuantity"]["value"], json!(30.0), "3 of 10");
    assert_eq!(
        weeks[0]["basedOn"][0]["reference"],
        format!("CarePlan/{plan_id}")
    );
    assert_eq!(weeks[1]["status"], "preliminary");
    assert_eq!(
        weeks[1]["valueQuantity"]["value"],
        json!(100.0),
        "2 of 2 so far"
    );

    // the same as CSV, and for the patient
    let res = s
        .client
        .get(s.url(&format!(
            "CarePlan/{plan_id}/$adherence?start=2026-03-02&end=2026-03-15"
        )))
        .header("Accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    let csv = res.text().await.expect("csv");
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("overall,,,,,12,5,7,1,41.7,37.5,35.6,4,1,2.5,")),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 1 + 3 + 2);
    let patient_view = json(
        s.get(&format!(
            "Patient/{pid}/$adherence?start=2026-03-02&end=2026-03-15"
        ))
        .await,
    )
    .await;
    assert_eq!(
        find_part(
            &find_part(&patient_view["parameter"], "overall")["part"],
            "completed"
        )["valueInteger"],
        5
    );
    // the errors
    outcome(
        s.get(&format!("CarePlan/{plan_id}/$adherence?start=March"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        s.get(&format!("CarePlan/{plan_id}/$adherence?colour=red"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        s.get("CarePlan/none/$adherence").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // on hold: the sessions to come are cancelled
    let mut hold = json(s.get(&format!("CarePlan/{plan_id}")).await).await;
    hold["status"] = json!("on-hold");
    assert_eq!(
        s.put_json(&format!("CarePlan/{plan_id}"), &hold)
            .await
            .status(),
        StatusCode::OK
    );
    let all = sessions(&s).await;
    assert_eq!(all.iter().filter(|t| t["status"] == "requested").count(), 0);
    assert!(
        all.iter()
            .any(|t| t["statusReason"]["coding"][0]["code"] == "program-on-hold")
    );
}

#[tokio::test]
async fn two_servers_fail_each_missed_session_once() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let one = start_with(|c| c.job_interval_ms = 5, clock.clone()).await;
    let url = one.database_url.clone();
    let two = start_with(
        move |c| {
            c.job_interval_ms = 5;
            c.database_url = url;
        },
        clock.clone(),
    )
    .await;
    let pid = one.create(patient("jobs1")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let rx = one.create(prescription(&pid, "Squat", 3, MARCH)).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    one.create(program(&pid, &[&rx], MARCH)).await;
    assert_eq!(sessions(&two).await.len(), 14);
    // ten days pass: both servers' jobs see the same ten overdue sessions
    clock.set(at("2026-03-12T12:00:00Z"));
    let mut failed = Vec::new();
    for _ in 0..500 {
        failed = sessions(&two)
            .await
            .into_iter()
            .filter(|t| t["status"] == "failed")
            .collect();
        if failed.len() == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(failed.len(), 10);
    for t in &failed {
        assert_eq!(t["meta"]["versionId"], "2", "written once: {}", t["id"]);
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let again: Vec<Value> = sessions(&one)
        .await
        .into_iter()
        .filter(|t| t["status"] == "failed")
        .collect();
    assert!(again.iter().all(|t| t["meta"]["versionId"] == "2"));
}

#[tokio::test]
async fn open_ended_programs_are_kept_ahead() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|c| c.job_interval_ms = 5, clock.clone()).await;
    let pid = s.create(patient("open1")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut open = prescription(&pid, "Walk", 1, MARCH);
    open["occurrenceTiming"]["repeat"]["boundsPeriod"] = json!({"start": "2026-03-02"});
    let rx = s.create(open).await["id"].as_str().expect("id").to_string();
    s.create(program(&pid, &[&rx], MARCH)).await;
    let last = |all: &[Value]| {
        all.iter()
            .filter_map(|t| {
                t["restriction"]["period"]["start"]
                    .as_str()
                    .map(|d| d[..10].to_string())
            })
            .max()
            .unwrap_or_default()
    };
    let first = sessions(&s).await;
    // today and the 14 days ahead
    assert_eq!(first.len(), 15);
    assert_eq!(last(&first), "2026-03-16");
    clock.set(at("2026-03-09T12:00:00Z"));
    for _ in 0..500 {
        if last(&sessions(&s).await) == "2026-03-23" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let later = sessions(&s).await;
    assert_eq!(last(&later), "2026-03-23", "kept 14 days ahead");
    // no window twice
    let mut starts: Vec<String> = later
        .iter()
        .filter_map(|t| {
            t["restriction"]["period"]["start"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let n = starts.len();
    starts.sort();
    starts.dedup();
    assert_eq!(starts.len(), n);
}

#[tokio::test]
async fn a_prescription_activated_after_its_program_gets_its_sessions() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|_| {}, clock).await;
    let pid = s.create(patient("late1")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let a = s.create(prescription(&pid, "Squat", 3, MARCH)).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut draft = prescription(&pid, "Bridge", 2, MARCH);
    draft["status"] = json!("draft");
    let b = s.create(draft).await;
    let bid = b["id"].as_str().expect("id").to_string();
    s.create(program(&pid, &[&a, &bid], MARCH)).await;
    let of = |all: &[Value], rx: &str| {
        all.iter()
            .filter(|t| t["focus"]["reference"] == format!("ServiceRequest/{rx}"))
            .count()
    };
    let all = sessions(&s).await;
    assert_eq!(
        (of(&all, &a), of(&all, &bid)),
        (14, 0),
        "a draft has no sessions"
    );
    let mut active = json(s.get(&format!("ServiceRequest/{bid}")).await).await;
    active["status"] = json!("active");
    assert_eq!(
        s.put_json(&format!("ServiceRequest/{bid}"), &active)
            .await
            .status(),
        StatusCode::OK
    );
    let all = sessions(&s).await;
    assert_eq!(of(&all, &bid), 14);
}
