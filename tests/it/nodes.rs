//! Two server processes on one database, as behind a load balancer: what is meant to
//! happen once happens once, whichever node each request reaches and whichever node's
//! background workers pick the work up (the missed-session job:
//! `adherence::two_servers_fail_each_missed_session_once`).

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::export::{files, ids, kick_off, manifest};
use crate::subscriptions::{receiver, subscription, wait_events};
use crate::support::*;

/// Two nodes on one database, with the workers of exports and deliveries running on
/// both.
async fn two_nodes() -> (TestServer, TestServer) {
    let allow = |c: &mut api::config::Config| c.subscription_allow_loopback = true;
    let one = start_with(allow, Arc::new(api::clock::SystemClock)).await;
    let url = one.database_url.clone();
    let two = start_with(
        move |c| {
            allow(c);
            c.database_url = url;
        },
        Arc::new(api::clock::SystemClock),
    )
    .await;
    (one, two)
}

/// The node of request `i`: every other request goes to the second node.
fn node(nodes: &(TestServer, TestServer), i: usize) -> &TestServer {
    if i.is_multiple_of(2) {
        &nodes.0
    } else {
        &nodes.1
    }
}

#[tokio::test]
async fn two_nodes_on_one_database_do_each_thing_once() {
    let nodes = two_nodes().await;

    // conditional creates of one identifier, at once on both nodes: one Patient
    let sends = (0..8).map(|i| {
        let s = node(&nodes, i);
        s.client
            .post(s.url("Patient"))
            .header("Content-Type", FHIR_JSON)
            .header("If-None-Exist", "identifier=urn:test:mrn|node-1")
            .body(patient("node-1").to_string())
            .send()
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut created = 0;
    let mut ids_seen = std::collections::BTreeSet::new();
    for a in answers {
        let a = a.expect("answer");
        match a.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("a conditional create answered {other}"),
        }
        ids_seen.insert(id_of(&a.json::<Value>().await.expect("Patient")));
    }
    assert_eq!(created, 1, "one of the eight creates");
    assert_eq!(ids_seen.len(), 1, "every answer names the same Patient");

    // one idempotency key sent to both nodes at once: one Patient, the same answer
    let sends = (0..6).map(|i| {
        let s = node(&nodes, i);
        s.client
            .post(s.url("Patient"))
            .header("Content-Type", FHIR_JSON)
            .header("Idempotency-Key", "node-key-1")
            .body(patient("node-2").to_string())
            .send()
    });
    let mut bodies = std::collections::BTreeSet::new();
    for a in futures_util::future::join_all(sends).await {
        let a = a.expect("answer");
        assert_eq!(a.status(), StatusCode::CREATED);
        bodies.insert(a.text().await.expect("body"));
    }
    assert_eq!(bodies.len(), 1, "the same answer from both nodes");
    let found = json(nodes.1.get("Patient?identifier=urn:test:mrn|node-2").await).await;
    assert_eq!(found["total"], 1);

    // a subscription made on one node; changes on both; each event delivered once
    let r = receiver().await;
    let sub = nodes
        .0
        .create(subscription("program", None, &r.url, "id-only"))
        .await;
    assert_eq!(sub["status"], "requested");
    r.wait_for(1).await; // the handshake
    let pid = id_of(&nodes.1.create(patient("node-3")).await);
    for i in 0..10 {
        node(&nodes, i).create(care_plan(&pid)).await;
    }
    let events = wait_events(&r, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events_then = wait_events(&r, 10).await;
    assert_eq!(
        events_then.len(),
        events.len(),
        "nothing delivered twice later"
    );
    let numbers: std::collections::BTreeSet<u64> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(events.len(), 10, "{events:?}");
    assert_eq!(numbers.len(), 10, "each event once: {events:?}");
    assert_eq!(
        numbers.iter().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );

    // an export kicked off on one node, its status read on the other, each resource once
    let status = kick_off(&nodes.0.client, &nodes.0, "Patient/$export?_type=Patient").await;
    let done = manifest(&nodes.1.client, &status).await;
    let exported = files(&nodes.1.client, &done).await;
    let exported = ids(exported.get("Patient"));
    let mut unique = exported.clone();
    unique.dedup();
    assert_eq!(unique.len(), exported.len(), "no Patient twice");
    assert_eq!(exported.len(), 3, "every Patient: {exported:?}");
}
