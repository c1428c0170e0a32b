//! Outcome measures through HTTP only: a program assigns measures, their due Tasks
//! appear, the patient answers with their own token (invalid answers refused with
//! locations, nothing stored), the score Observation is written in the same
//! transaction with the change from baseline and the MCID flag, `$outcomes` reports
//! the series, the program's end asks for the discharge answer, and an unanswered
//! measure is failed when its window passes.

use std::sync::Arc;

use api::clock::{Clock, ManualClock};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const Q: &str = "https://hep-fhir.org/fhir/Questionnaire";

fn measure_activity(id: &str, every_weeks: Option<u32>, at_discharge: bool) -> Value {
    let mut detail = json!({"kind": "Task", "status": "scheduled",
        "instantiatesCanonical": [format!("{Q}/{id}")]});
    if let Some(n) = every_weeks {
        detail["scheduledTiming"] =
            json!({"repeat": {"frequency": 1, "period": n, "periodUnit": "wk"}});
    }
    if at_discharge {
        detail["extension"] = json!([{"url": format!("{BASE}/StructureDefinition/measure-at-discharge"), "valueBoolean": true}]);
    }
    json!({"detail": detail})
}

fn nprs(patient: &str, plan: &str, value: Value, authored: &str) -> Value {
    json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": format!("{Q}/nprs|1.0.0"),
        "basedOn": [{"reference": format!("CarePlan/{plan}")}],
        "subject": {"reference": format!("Patient/{patient}")},
        "authored": authored,
        "item": [{"linkId": "pain", "answer": [value]}]})
}

/// The outcome-measure Tasks of the patient, as stored.
async fn measure_tasks(c: &Client, s: &TestServer, patient: &str) -> Vec<Value> {
    let url = s.url(&format!(
        "Task?patient=Patient/{patient}&code={BASE}/CodeSystem/outcome-measure|answer-measure&_count=100"
    ));
    let bundle = json(c.get(url).send().await.expect("GET")).await;
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn of_measure<'a>(tasks: &'a [Value], id: &str) -> Vec<&'a Value> {
    tasks
        .iter()
        .filter(|t| t["input"][0]["valueCanonical"] == format!("{Q}/{id}"))
        .collect()
}

fn part<'a>(parts: &'a Value, name: &str) -> &'a Value {
    parts
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn post_as(c: &Client, s: &TestServer, body: &Value) -> reqwest::Response {
    c.post(s.url(body["resourceType"].as_str().expect("type")))
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn measures_are_assigned_answered_scored_and_reported() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|c| c.job_interval_ms = 20, clock.clone()).await;
    let pid = id_of(&s.create(patient("outcome-1")).await);
    let rx = id_of(
        &s.create(prescription(
            &pid,
            "Bridge",
            3,
            ("2026-03-02", "2026-04-30"),
        ))
        .await,
    );
    let mut plan = program(&pid, &[&rx], ("2026-03-02", "2026-04-30"));
    if let Some(acts) = plan["activity"].as_array_mut() {
        acts.push(measure_activity("nprs", Some(2), true));
        acts.push(measure_activity("lefs", None, false));
    }
    // a measure the server cannot score is refused, at its activity
    let mut unknown = plan.clone();
    unknown["activity"][1]["detail"]["instantiatesCanonical"] =
        json!(["https://example.org/Questionnaire/odi"]);
    let oo = outcome(
        s.post_json("CarePlan", &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        oo["expression"][0], "CarePlan.activity[1].detail.instantiatesCanonical",
        "{oo}"
    );
    let plan_id = id_of(&s.create(plan.clone()).await);

    // the due Tasks: NPRS now and in two weeks (the horizon), LEFS now
    let own = client_with_token(&token_at(
        &s.database_url,
        "patient/*.cruds",
        Some(&pid),
        clock.now().as_second(),
    ));
    let tasks = measure_tasks(&own, &s, &pid).await;
    let nprs_tasks = of_measure(&tasks, "nprs");
    assert_eq!(nprs_tasks.len(), 2, "{tasks:?}");
    assert_eq!(of_measure(&tasks, "lefs").len(), 1);
    let baseline = nprs_tasks
        .iter()
        .find(|t| t["reasonCode"]["coding"][0]["code"] == "baseline")
        .expect("a baseline Task");
    assert_eq!(baseline["status"], "requested");
    assert_eq!(baseline["for"]["reference"], format!("Patient/{pid}"));
    // the patient cannot complete it by hand
    let mut forged = (*baseline).clone();
    forged["status"] = json!("completed");
    let res = own
        .put(s.url(&format!("Task/{}", id_of(baseline))))
        .header("Content-Type", "application/fhir+json")
        .body(forged.to_string())
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // invalid answers: each refused at its place, nothing stored
    let count = |v: Value| v["total"].as_u64();
    let before = count(json(s.get("QuestionnaireResponse?_summary=count").await).await);
    for (answer, at) in [
        (
            json!({"valueInteger": 11}),
            "QuestionnaireResponse.item[0].answer[0]",
        ),
        (
            json!({"valueString": "7"}),
            "QuestionnaireResponse.item[0].answer[0]",
        ),
    ] {
        let res = post_as(
            &own,
            &s,
            &nprs(&pid, &plan_id, answer, "2026-03-02T13:00:00Z"),
        )
        .await;
        let oo = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            oo["expression"][0]
                .as_str()
                .is_some_and(|e| e.starts_with(at)),
            "{oo}"
        );
    }
    let mut missing = nprs(
        &pid,
        &plan_id,
        json!({"valueInteger": 1}),
        "2026-03-02T13:00:00Z",
    );
    missing["item"] = json!([{"linkId": "not-a-question", "answer": [{"valueInteger": 1}]}]);
    let oo = outcome(
        post_as(&own, &s, &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        oo.to_string()
            .contains("QuestionnaireResponse.item[0].linkId"),
        "{oo}"
    );
    assert_eq!(
        count(json(s.get("QuestionnaireResponse?_summary=count").await).await),
        before
    );

    // the baseline: 7 of 10
    let res = post_as(
        &own,
        &s,
        &nprs(
            &pid,
            &plan_id,
            json!({"valueInteger": 7}),
            "2026-03-02T13:00:00Z",
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first = json(res).await;
    let task = json(
        own.get(s.url(&format!("Task/{}", id_of(baseline))))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(
        task["output"][0]["valueReference"]["reference"],
        format!("QuestionnaireResponse/{}", id_of(&first))
    );
    let obs_ref = task["output"][1]["valueReference"]["reference"]
        .as_str()
        .expect("score")
        .to_string();
    let obs = json(own.get(s.url(&obs_ref)).send().await.expect("GET")).await;
    assert_eq!(obs["code"]["coding"][0]["code"], "72514-3");
    assert_eq!(
        obs["derivedFrom"][0]["reference"],
        format!("QuestionnaireResponse/{}", id_of(&first))
    );
    assert!(
        obs.get("interpretation").is_none(),
        "a baseline reaches no MCID: {obs}"
    );

    // two weeks on: 4 of 10, 3 points better (lower is better, MCID 2)
    clock.set(at("2026-03-16T12:30:00Z"));
    let res = post_as(
        &own,
        &s,
        &nprs(
            &pid,
            &plan_id,
            json!({"valueInteger": 4}),
            "2026-03-16T12:30:00Z",
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let second = json(res).await;
    let scored = json(
        s.get(&format!(
            "Observation?derived-from=QuestionnaireResponse/{}",
            id_of(&second)
        ))
        .await,
    )
    .await;
    let obs = &scored["entry"][0]["resource"];
    assert_eq!(
        obs["interpretation"][0]["coding"][0]["code"], "mcid-reached",
        "{scored}"
    );
    assert_eq!(obs["component"][0]["valueInteger"], -3, "{obs}");

    // $outcomes of the program, as Parameters and CSV
    let out = json(
        own.get(s.url(&format!("CarePlan/{plan_id}/$outcomes")))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    let measure = out["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "measure"))
        .expect("a measure");
    assert_eq!(
        part(&measure["part"], "baseline")["valueDecimal"],
        7.0,
        "{out}"
    );
    assert_eq!(part(&measure["part"], "latest")["valueDecimal"], 4.0);
    assert_eq!(part(&measure["part"], "change")["valueDecimal"], -3.0);
    assert_eq!(part(&measure["part"], "mcidReached")["valueBoolean"], true);
    let csv = s
        .client
        .get(s.url(&format!("Patient/{pid}/$outcomes?_format=csv")))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("CSV");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines()
            .nth(2)
            .is_some_and(|l| l.contains(",4,-3,true,")),
        "{csv}"
    );
    // $adherence carries the measure's summary for the EHR
    let adherence = json(s.get(&format!("CarePlan/{plan_id}/$adherence")).await).await;
    let summary = adherence["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "outcome"))
        .unwrap_or_else(|| panic!("no outcome in {adherence}"));
    assert_eq!(part(&summary["part"], "latest")["valueDecimal"], 4.0);
    assert_eq!(part(&summary["part"], "mcidReached")["valueBoolean"], true);
    assert!(
        part(&summary["part"], "score").is_null(),
        "a summary, not the scores"
    );
    // another patient's program is not found
    let other = id_of(&s.create(patient("outcome-2")).await);
    let theirs = client_with_token(&token_at(
        &s.database_url,
        "patient/*.rs",
        Some(&other),
        clock.now().as_second(),
    ));
    let res = theirs
        .get(s.url(&format!("CarePlan/{plan_id}/$outcomes")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // the LEFS baseline was not answered within its week: failed by the job
    let lefs = of_measure(&measure_tasks(&s.client, &s, &pid).await, "lefs")[0].clone();
    let mut status = String::new();
    for _ in 0..300 {
        let t = json(s.get(&format!("Task/{}", id_of(&lefs))).await).await;
        status = t["status"].as_str().unwrap_or("").to_string();
        if status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, "failed");

    // the program ends: open measures cancelled, the discharge NPRS due
    let mut done = json(s.get(&format!("CarePlan/{plan_id}")).await).await;
    done["status"] = json!("completed");
    let res = s.put_json(&format!("CarePlan/{plan_id}"), &done).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tasks = measure_tasks(&s.client, &s, &pid).await;
    let discharge: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["reasonCode"]["coding"][0]["code"] == "discharge")
        .collect();
    assert_eq!(discharge.len(), 1, "{tasks:?}");
    assert_eq!(discharge[0]["status"], "requested");
    assert!(
        tasks
            .iter()
            .all(|t| t["reasonCode"]["coding"][0]["code"] == "discharge"
                || t["status"] != "requested"),
        "{tasks:?}"
    );
    s.stop().await;
}
