//! `hep-server backup`: a consistent copy of a live SQLite database.

use std::sync::{Arc, Mutex};

use api::db::store::{self, Key};

use crate::support::*;

#[tokio::test]
async fn a_backup_under_writes_holds_every_write_acknowledged_before_it_began() {
    let s = Arc::new(start().await);
    if s.database_url.starts_with("postgres") {
        return; // pg_dump's business (README, Backups)
    }
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (s, acknowledged, stop) = (s.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let created = s.create(patient(&format!("backup-{w}-{i}"))).await;
                if let Some(id) = created["id"].as_str() {
                    acknowledged.lock().expect("lock").push(id.to_string());
                }
                i += 1;
            }
        }));
    }
    while acknowledged.lock().expect("lock").len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<String> = acknowledged.lock().expect("lock").clone();
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("copy.db");
    let (url, to) = (s.database_url.clone(), copy.clone());
    let written = tokio::task::spawn_blocking(move || api::db::backup(&url, &to))
        .await
        .expect("backup task")
        .expect("backup");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let after = acknowledged.lock().expect("lock").len();
    assert!(after > before.len(), "writes went on during the backup");
    assert!(written.bytes > 0);

    let db = api::db::Db::open(&copy.display().to_string(), 1).expect("open the copy");
    let missing = db
        .read(move |conn| {
            let mut missing = Vec::new();
            for id in &before {
                let key = Key {
                    tenant: "default",
                    res_type: "Patient",
                    res_id: id,
                };
                if !store::current(conn, key)?.is_some_and(|c| !c.deleted && c.body.is_some()) {
                    missing.push(id.clone());
                }
            }
            Ok(missing)
        })
        .await
        .expect("read the copy");
    assert!(missing.is_empty(), "lost in the copy: {missing:?}");

    // a backup never writes over a file
    let (url, to) = (s.database_url.clone(), copy.clone());
    let again = tokio::task::spawn_blocking(move || api::db::backup(&url, &to))
        .await
        .expect("backup task");
    assert!(again.is_err());
}
