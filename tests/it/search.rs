//! Search by the element parameters the HEP flows use: references (`Type/id`, a bare id,
//! `:Type`), codes and codings; comma for OR, repetition for AND.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn ids(s: &TestServer, query: &str) -> Vec<String> {
    let res = s.get(query).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    let b: Value = res.json().await.expect("bundle");
    let mut ids: Vec<String> = b["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test]
async fn references_codes_and_their_combinations() {
    let s = start().await;
    let p1 = s.create(patient("s1")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let p2 = s.create(patient("s2")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let obs = |p: &str, code: &str, status: &str| {
        let mut o = observation(p, code);
        o["status"] = json!(status);
        o
    };
    let a = s.create(obs(&p1, PAIN, "final")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let b = s.create(obs(&p1, "8867-4", "final")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let c = s.create(obs(&p2, PAIN, "preliminary")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    assert_eq!(
        ids(&s, &format!("Observation?patient={p1}")).await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(&s, &format!("Observation?subject=Patient/{p1}")).await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(&s, &format!("Observation?subject:Patient={p2}")).await,
        vec![c.clone()]
    );
    assert_eq!(
        ids(
            &s,
            &format!("Observation?patient={p1}&code=http://loinc.org|72514-3")
        )
        .await,
        vec![a.clone()]
    );
    assert_eq!(
        ids(&s, "Observation?code=72514-3").await,
        sorted(vec![a.clone(), c.clone()])
    );
    assert_eq!(
        ids(&s, "Observation?code=http://snomed.info/sct|72514-3").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&s, &format!("Observation?patient={p1},{p2}&status=final")).await,
        sorted(vec![a.clone(), b.clone()])
    );
    // an update moves the index rows that changed and keeps the others
    let mut changed = json(s.get(&format!("Observation/{a}")).await).await;
    changed["status"] = json!("amended");
    changed["subject"] = json!({"reference": format!("Patient/{p2}")});
    assert_eq!(
        s.put_json(&format!("Observation/{a}"), &changed)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(ids(&s, "Observation?status=amended").await, vec![a.clone()]);
    assert_eq!(ids(&s, "Observation?status=final").await, vec![b.clone()]);
    assert_eq!(
        ids(&s, &format!("Observation?patient={p1}")).await,
        vec![b.clone()]
    );
    assert_eq!(
        ids(&s, &format!("Observation?patient={p2}")).await,
        sorted(vec![a.clone(), c.clone()])
    );
    assert_eq!(
        ids(&s, "Observation?code=72514-3").await,
        sorted(vec![a.clone(), c.clone()])
    );
    // unknown modifiers and parameters are refused
    outcome(
        s.get("Observation?patient:below=x").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        s.get("Observation?value-quantity=3").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // the CapabilityStatement lists them
    let cs = json(s.get("metadata").await).await;
    let observation = cs["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Observation"))
        .cloned()
        .expect("Observation");
    let names: Vec<&str> = observation["searchParam"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in [
        "patient",
        "subject",
        "code",
        "category",
        "status",
        "based-on",
        "derived-from",
    ] {
        assert!(names.contains(&n), "{n}");
    }
}

#[tokio::test]
async fn an_index_built_by_an_older_server_is_rebuilt_at_start() {
    use api::db::store::{self, Key};
    let dir = tempfile::tempdir().expect("dir");
    let url = dir.path().join("reindex.db").display().to_string();
    let clock = std::sync::Arc::new(api::clock::SystemClock);
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock.clone()).await;
    let p = s.create(patient("reindex")).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let o = id_of(&s.create(observation(&p, PAIN)).await);
    assert_eq!(
        ids(&s, &format!("Observation?patient={p}")).await,
        vec![o.clone()]
    );
    // as an older server left it: no values for this parameter, an older index version
    let db = api::db::Db::open(&url, 1).expect("db");
    let oid = o.clone();
    db.write(move |conn| {
        let key = Key {
            tenant: "default",
            res_type: "Observation",
            res_id: &oid,
        };
        store::replace_tokens(conn, key, &[])?;
        Ok::<_, api::error::ApiError>(store::set_setting(conn, "search-index-version", "1")?)
    })
    .expect("downgrade");
    assert_eq!(
        ids(&s, &format!("Observation?patient={p}")).await,
        Vec::<String>::new()
    );
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock).await;
    assert_eq!(ids(&s, &format!("Observation?patient={p}")).await, vec![o]);
}

#[tokio::test]
async fn bundles_state_the_instant_to_poll_from() {
    let clock = std::sync::Arc::new(api::clock::ManualClock::new(
        "2026-03-02T12:00:00Z".parse().expect("ts"),
    ));
    let s = start_with(|_| {}, clock.clone()).await;
    let p = s.create(patient("poll")).await;
    assert_eq!(p["meta"]["lastUpdated"], "2026-03-02T12:00:00.000000Z");
    clock.set("2026-03-02T12:10:00Z".parse().expect("ts"));
    for query in ["Patient?_id=x", "Patient/_history", "_history"] {
        let b = json(s.get(query).await).await;
        // five seconds before the read: every write stamped until then is in the answer
        assert_eq!(
            b["meta"]["lastUpdated"], "2026-03-02T12:09:55.000000Z",
            "{query}"
        );
    }
    let since = json(s.get("Patient?_lastUpdated=gt2026-03-02T11:59:59Z").await).await;
    assert_eq!(since["total"], 1);
}
