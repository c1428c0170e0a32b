//! Request logs carry the request's shape, never patient data.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::support::*;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(|| Capture)
            .with_max_level(tracing::Level::TRACE)
            .try_init();
    });
}

#[tokio::test]
async fn logs_hold_no_patient_data() {
    capture_logs();
    let s = start().await;
    let mut p = patient("MRN-LOGCHECK-977");
    p["name"][0]["family"] = serde_json::json!("Quillfeatherby");
    let created = s.create(p).await;
    let id = created["id"].as_str().expect("id").to_string();
    s.get(&format!("Patient/{id}")).await;
    s.get("Patient?identifier=urn:test:mrn|MRN-LOGCHECK-977")
        .await;
    let bad = serde_json::json!({"resourceType": "Patient", "name": [{"family": "Quillfeatherby", "nick": 1}]});
    s.post_json("Patient", &bad).await;
    let res = s
        .client
        .get(s.url("Patient/nope"))
        .header("X-Request-Id", "trace-me-123")
        .send()
        .await
        .expect("get");
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");

    let text = String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(
        text.contains("request completed"),
        "request spans are logged"
    );
    assert!(text.contains("trace-me-123"));
    assert!(
        text.contains("/fhir/{type}/{id}"),
        "route templates are logged"
    );
    for secret in [
        "Quillfeatherby",
        "MRN-LOGCHECK-977",
        id.as_str(),
        "1970-01-01",
    ] {
        assert!(!text.contains(secret), "`{secret}` reached the logs");
    }
}
