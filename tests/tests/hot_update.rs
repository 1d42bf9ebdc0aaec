//! Configuration changes under load: no request fails while a pipeline is updated again and again and other
//! objects come and go; a configuration the proxy cannot apply is NACKed, visible in status, and the old one keeps serving.

mod common;

use common::{Master, Mirrors, free_port, http_client, ok, send, wait_for};
use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

fn pipeline(version: u32, backends: &[String]) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("      - url: http://{b}\n"))
        .collect();
    format!(
        "kind: HTTPPipeline\nname: pipe\nflow:\n  - filter: adapt\n  - filter: proxy\nfilters:\n  - name: adapt\n    kind: RequestAdaptor\n    header:\n      set:\n        X-Config: v{version}\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      servers:\n{servers}      loadBalance:\n        policy: roundRobin\n"
    )
}

fn server(name: &str, port: u16, backend: &str) -> String {
    format!(
        "kind: HTTPServer\nname: {name}\nport: {port}\nrules:\n  - paths:\n    - pathPrefix: /\n      backend: {backend}\n"
    )
}

/// A master with its gateway, `backends` mirrors, and server `srv` on a free port routing to `pipeline(version)`,
/// already answering 200. Returns the base URL of the server.
async fn serving(
    dir: &std::path::Path,
    backends: usize,
    version: u32,
) -> (Master, Mirrors, String) {
    let master = Master::start(dir, &[]).await;
    let mirrors = Mirrors::start(dir, backends);
    let port = free_port();
    let docs = format!(
        "{}---\n{}",
        server("srv", port, "pipe"),
        pipeline(version, &mirrors.addrs)
    );
    ok(master.meshctl(&["object", "create"], Some(&docs)));
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(&url, 15, |r| r.status == 200).await;
    (master, mirrors, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_under_load_fail_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (master, mirrors, base) = serving(dir.path(), 2, 0).await;
    let url = format!("{base}/load");

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let client = http_client();
            let (mut sent, mut failures, mut seen) = (0u32, Vec::new(), BTreeSet::new());
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && sent < 20_000 && Instant::now() < deadline {
                sent += 1;
                match send(
                    &client,
                    "POST",
                    &url,
                    &[("content-type", "text/plain")],
                    "payload",
                )
                .await
                {
                    Ok(r) if r.status == 200 && r.body.contains("Body  : payload") => {
                        if let Some(v) = r
                            .body
                            .split("X-Config:[")
                            .nth(1)
                            .and_then(|s| s.split(']').next())
                        {
                            seen.insert(v.to_string());
                        }
                    }
                    Ok(r) => failures.push(format!("{} {}", r.status, r.body)),
                    Err(e) => failures.push(e),
                }
            }
            (sent, failures, seen)
        }));
    }

    let other_port = free_port();
    for version in 1..=8u32 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        ok(master.meshctl(
            &["object", "update"],
            Some(&pipeline(version, &mirrors.addrs)),
        ));
        // Unrelated objects come and go beside it.
        if version % 2 == 1 {
            ok(master.meshctl(
                &["object", "apply"],
                Some(&server("other", other_port, "pipe")),
            ));
        } else {
            ok(master.meshctl(&["object", "delete", "other"], None));
        }
    }
    wait_for(&url, 15, |r| r.body.contains("X-Config:[v8]")).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    let mut versions = BTreeSet::new();
    for w in workers {
        let (sent, failures, seen) = w.await.expect("worker");
        assert!(
            failures.is_empty(),
            "{} of {sent} requests failed during updates, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        total += sent;
        versions.extend(seen);
    }
    assert!(total > 100, "load too light to prove anything: {total}");
    assert!(
        versions.len() >= 3,
        "requests saw the configuration change: {versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unapplicable_config_is_nacked_and_old_config_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (master, mirrors, base) = serving(dir.path(), 1, 1).await;
    let url = format!("{base}/");

    // Another process holds a port; a server on it cannot be applied.
    let blocker = std::net::TcpListener::bind("0.0.0.0:0").expect("bind blocker");
    let taken = blocker.local_addr().expect("addr").port();
    ok(master.meshctl(
        &["object", "create"],
        Some(&server("blocked", taken, "pipe")),
    ));
    ok(master.meshctl(&["object", "update"], Some(&pipeline(2, &mirrors.addrs))));

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = ok(master.meshctl(&["-o", "yaml", "status"], None));
        if status.contains(&taken.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "NACK not visible in status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The whole snapshot was refused: the old pipeline (v1) still serves.
    let r = send(&http_client(), "GET", &url, &[], "")
        .await
        .expect("old config serves");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("X-Config:[v1]"), "{}", r.body);

    // Once the port is free, the next snapshot applies.
    drop(blocker);
    ok(master.meshctl(&["object", "update"], Some(&pipeline(3, &mirrors.addrs))));
    wait_for(&url, 15, |r| r.body.contains("X-Config:[v3]")).await;
    wait_for(&format!("http://127.0.0.1:{taken}/"), 15, |r| {
        r.status == 200
    })
    .await;
}
