//! An acknowledged write survives `kill -9`: writes race a SIGKILL, and after a restart on the same data dir
//! every object the master acknowledged is there, with its revisions.

mod common;

use common::Master;
use meshgress_proto::admin::{ListObjectsRequest, NameRequest, WriteObjectRequest};
use std::{collections::BTreeMap, time::Duration};

fn server_doc(i: u32, port: u32) -> String {
    serde_json::json!({"kind": "HTTPServer", "name": format!("srv-{i}"), "port": port}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = Master::start(dir.path(), &["--no-gateway"]).await;

    // Writers run until the kill; every acknowledged write is recorded with its revision.
    let mut admin = master.admin().await;
    let writer = tokio::spawn(async move {
        let mut acked = BTreeMap::new();
        for i in 0..2000u32 {
            match admin
                .create_object(WriteObjectRequest {
                    spec_json: server_doc(i, 20000 + i),
                })
                .await
            {
                Ok(r) => {
                    acked.insert(format!("srv-{i}"), r.into_inner().revision);
                }
                Err(_) => break,
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    master.proc.kill9();
    let acked = writer.await.expect("writer");
    assert!(
        acked.len() >= 5,
        "too few writes before the kill to prove anything: {}",
        acked.len()
    );

    master.restart().await;
    let mut admin = master.admin().await;
    let list = admin
        .list_objects(ListObjectsRequest {
            kind: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    let stored: BTreeMap<String, u64> = list
        .objects
        .iter()
        .map(|o| (o.name.clone(), o.create_revision))
        .collect();
    for (name, revision) in &acked {
        assert_eq!(
            stored.get(name),
            Some(revision),
            "acknowledged {name} at revision {revision} was lost"
        );
    }
    // The store keeps working after recovery and revisions keep growing.
    let r = admin
        .create_object(WriteObjectRequest {
            spec_json: server_doc(99999, 19999),
        })
        .await
        .expect("write after restart");
    assert!(r.into_inner().revision > list.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_updates_then_kill_9_recover_from_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = Master::start(dir.path(), &["--no-gateway"]).await;
    let mut admin = master.admin().await;
    // More writes than the snapshot interval, so recovery goes through a snapshot plus the log after it.
    let mut last = 0;
    for i in 0..1200u32 {
        let r = admin
            .apply_object(WriteObjectRequest {
                spec_json: server_doc(1, 30000 + (i % 1000)),
            })
            .await
            .expect("apply");
        last = r.into_inner().revision;
    }
    master.proc.kill9();
    master.restart().await;
    let mut admin = master.admin().await;
    let obj = admin
        .get_object(NameRequest {
            name: "srv-1".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(obj.update_revision, last);
    let doc: serde_json::Value = serde_json::from_str(&obj.spec_json).expect("json");
    assert_eq!(doc["port"], 30000 + (1199 % 1000));
}
