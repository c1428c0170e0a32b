//! The starter library: loaded once into a new database, never over a clinic's changes.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn starter_library_is_loaded_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = dir.path().join("library.db").display().to_string();
    let clock = std::sync::Arc::new(api::clock::SystemClock);
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock.clone()).await;
    let found = json(s.get("ActivityDefinition?_count=0").await).await;
    assert!(found["total"].as_u64().is_some_and(|n| n >= 40), "{found}");
    let templates = json(s.get("PlanDefinition?_count=0").await).await;
    assert!(templates["total"].as_u64().is_some_and(|n| n >= 5));
    let quad = json(s.get("ActivityDefinition/quad-sets").await).await;
    assert_eq!(quad["meta"]["tag"][0]["code"], "starter");
    assert!(
        quad["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("1. "))
    );
    // a clinic edits one exercise and deletes another
    let mut edited = quad.clone();
    edited["title"] = json!("Quad sets (our version)");
    assert_eq!(
        s.put_json("ActivityDefinition/quad-sets", &edited)
            .await
            .status(),
        StatusCode::OK
    );
    let res = s
        .client
        .delete(s.url("ActivityDefinition/ankle-alphabet"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    drop(s);
    // after a restart both choices stand
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock.clone()).await;
    let quad = json(s.get("ActivityDefinition/quad-sets").await).await;
    assert_eq!(quad["title"], "Quad sets (our version)");
    assert_eq!(
        s.get("ActivityDefinition/ankle-alphabet").await.status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn the_library_can_be_turned_off() {
    let s = start_with(
        |c| c.starter_library = false,
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let found = json(s.get("ActivityDefinition?_count=0").await).await;
    assert_eq!(found["total"], 0);
    // the profiles are there all the same
    assert_eq!(
        s.get("StructureDefinition/hep-program").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_library_is_searched_by_region_and_status() {
    let s = start().await;
    let knee = json(s.get("ActivityDefinition?topic=knee&_count=100").await).await;
    let n = knee["total"].as_u64().expect("total");
    assert!(n >= 5, "{knee}");
    for e in knee["entry"].as_array().expect("entries") {
        assert!(
            e["resource"]["topic"].to_string().contains("\"knee\""),
            "{e}"
        );
    }
    let with_system = json(
        s.get("ActivityDefinition?topic=https://hep-fhir.org/fhir/CodeSystem/body-region|knee")
            .await,
    )
    .await;
    assert_eq!(with_system["total"], n);
    let neck_or_knee = json(s.get("ActivityDefinition?topic=knee,neck").await).await;
    assert!(neck_or_knee["total"].as_u64().expect("total") > n);
    let retired = json(s.get("PlanDefinition?status=retired").await).await;
    assert_eq!(retired["total"], 0);
    let active = json(s.get("PlanDefinition?status=active").await).await;
    assert_eq!(active["total"], 5);
    // other parameters are refused, not ignored
    outcome(
        s.get("ActivityDefinition?region=knee").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn apply_a_template_then_tailor_and_activate() {
    let s = start().await;
    let p = s.create(patient("apply1")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    let res = s
        .client
        .post(s.url(&format!(
            "PlanDefinition/knee-osteoarthritis/$apply?subject=Patient/{pid}"
        )))
        .send()
        .await
        .expect("apply");
    assert_eq!(res.status(), StatusCode::CREATED);
    let plan = json(res).await;
    assert_eq!(plan["resourceType"], "CarePlan");
    assert_eq!(plan["status"], "draft");
    assert_eq!(
        plan["instantiatesCanonical"][0],
        "https://hep-fhir.org/fhir/PlanDefinition/knee-osteoarthritis|1.0.0"
    );
    let activities = plan["activity"].as_array().expect("activities").clone();
    assert_eq!(activities.len(), 6);
    let div = plan["text"]["div"].as_str().expect("narrative");
    assert!(div.contains("Quadriceps sets: 3 sets of 10 repetitions, hold 5 seconds, both sides, twice a day, every day for 6 weeks."), "{div}");

    // the therapist tailors the first exercise (a draft may change) and activates everything
    let first = activities[0]["reference"]["reference"]
        .as_str()
        .expect("ref")
        .to_string();
    let mut rx = json(s.get(&first).await).await;
    assert_eq!(rx["status"], "draft");
    rx["extension"][0]["extension"][0]["valuePositiveInt"] = json!(2);
    let rx = json(s.put_json(&first, &rx).await).await;
    assert!(
        rx["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.contains("2 sets of 10"))
    );
    for a in &activities {
        let r = a["reference"]["reference"].as_str().expect("ref");
        let mut sr = json(s.get(r).await).await;
        sr["status"] = json!("active");
        assert_eq!(s.put_json(r, &sr).await.status(), StatusCode::OK);
    }
    let id = plan["id"].as_str().expect("id");
    let mut active = json(s.get(&format!("CarePlan/{id}")).await).await;
    active["status"] = json!("active");
    let active = json(s.put_json(&format!("CarePlan/{id}"), &active).await).await;
    assert_eq!(active["status"], "active");
    assert!(
        active["text"]["div"]
            .as_str()
            .is_some_and(|d| d.contains("Quadriceps sets: 2 sets of 10"))
    );
}

#[tokio::test]
async fn apply_one_exercise_and_the_errors() {
    let s = start().await;
    let p = s.create(patient("apply2")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    // the practitioner must exist like any reference
    let res = s
        .get(&format!(
            "ActivityDefinition/bridge/$apply?subject=Patient/{pid}&practitioner=Practitioner/t9"
        ))
        .await;
    outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    let t = s.create(practitioner()).await;
    let tid = t["id"].as_str().expect("id");
    let res = s
        .get(&format!(
            "ActivityDefinition/bridge/$apply?subject=Patient/{pid}&practitioner=Practitioner/{tid}"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sr = json(res).await;
    assert_eq!(sr["resourceType"], "ServiceRequest");
    assert_eq!(sr["requester"]["reference"], format!("Practitioner/{tid}"));
    assert!(
        sr["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.starts_with("Bridge: 3 sets of 10 repetitions, hold 3 seconds"))
    );
    // with a Parameters body
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "subject", "valueString": format!("Patient/{pid}")}]});
    let res = s.post_json("ActivityDefinition/bridge/$apply", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    outcome(
        s.get("ActivityDefinition/bridge/$apply").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        s.get("ActivityDefinition/bridge/$apply?subject=Patient/nobody")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    outcome(
        s.get(&format!(
            "ActivityDefinition/nothing/$apply?subject=Patient/{pid}"
        ))
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(
        s.get(&format!(
            "PlanDefinition/bridge/$apply?subject=Patient/{pid}&setting=home"
        ))
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let cs = json(s.get("metadata").await).await;
    let pd = cs["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "PlanDefinition"))
        .cloned()
        .expect("PD");
    assert_eq!(pd["operation"][0]["name"], "apply");
}

#[tokio::test]
async fn the_take_home_sheet() {
    let s = start().await;
    let mut p = patient("sheet1");
    p["name"] = json!([{"use": "official", "family": "Rivera", "given": ["Sam"]}]);
    let p = s.create(p).await;
    let pid = p["id"].as_str().expect("id").to_string();
    let t = s.create(practitioner()).await;
    let tid = t["id"].as_str().expect("id").to_string();
    let res = s
        .get(&format!("PlanDefinition/low-back-pain/$apply?subject=Patient/{pid}&practitioner=Practitioner/{tid}"))
        .await;
    let plan = json(res).await;
    let id = plan["id"].as_str().expect("id").to_string();

    let res = s
        .client
        .get(s.url(&format!("CarePlan/{id}/$handout")))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = res.text().await.expect("html");
    for expected in [
        "Low back pain: mobility and core control",
        "Sam Rivera",
        "Jordan Lee",
        "555-0142",
        "Pelvic tilt",
        "2 sets of 10 repetitions, hold 5 seconds, twice a day, every day for 6 weeks",
        "<li>Lie on your back with your knees bent and feet flat.</li>",
        "Produced on ",
        " to ",
    ] {
        assert!(
            html.contains(expected),
            "`{expected}` missing from the sheet"
        );
    }
    assert_eq!(html.matches("<section class=\"exercise\">").count(), 6);
    // The same sheet as PDF: its text, extracted, has the same content
    let res = s
        .client
        .get(s.url(&format!("CarePlan/{id}/$handout")))
        .header("Accept", "application/pdf")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.expect("pdf");
    let doc = lopdf::Document::load_mem(&pdf).expect("a PDF document");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert_eq!(pages.len(), 2, "six exercises, three a page");
    let text = doc.extract_text(&pages).expect("text");
    for expected in [
        "Low back pain: mobility and core control",
        "Patient: Sam Rivera",
        "Therapist: Jordan Lee",
        "Contact: 555-0142",
        "1. Pelvic tilt",
        "Lie on your back with your knees bent and feet flat.",
        "Produced on ",
        "Page 2 of 2.",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from the PDF: {text}"
        );
    }
    // the dose line may wrap: compare with whitespace folded
    let folded: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        folded.contains(
            "2 sets of 10 repetitions, hold 5 seconds, twice a day, every day for 6 weeks"
        )
    );
    if let Ok(path) = std::env::var("HEP_HANDOUT_PDF") {
        std::fs::write(path, &pdf).expect("write the sheet");
    }
    let res = s.get(&format!("CarePlan/{id}/$handout?_format=pdf")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    // Neither HTML nor PDF: said clearly
    let res = s
        .client
        .get(s.url(&format!("CarePlan/{id}/$handout")))
        .header("Accept", "image/png")
        .send()
        .await
        .expect("get");
    outcome(res, StatusCode::NOT_ACCEPTABLE).await;
    // only programs have sheets
    let other = s.create(care_plan(&pid)).await;
    let res = s
        .get(&format!(
            "CarePlan/{}/$handout",
            other["id"].as_str().expect("id")
        ))
        .await;
    outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    outcome(s.get("CarePlan/none/$handout").await, StatusCode::NOT_FOUND).await;

    // When a headless Chromium is installed (CI installs it), render the sheet as a
    // person would see it and check the text is on the page.
    if let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    {
        let dir = tempfile::tempdir().expect("dir");
        let page = dir.path().join("sheet.html");
        std::fs::write(&page, &html).expect("write");
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("Pelvic tilt") && dom.contains("Sam Rivera"),
            "rendered page: {dom}"
        );
        let shot = std::env::var("HEP_HANDOUT_SCREENSHOT").ok();
        if let Some(path) = shot {
            let status = std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--window-size=900,1300",
                ])
                .arg(format!(
                    "--user-data-dir={}",
                    dir.path().join("profile2").display()
                ))
                .arg(format!("--screenshot={path}"))
                .arg(format!("file://{}", page.display()))
                .status()
                .expect("chromium runs");
            assert!(status.success());
        }
    }
}
