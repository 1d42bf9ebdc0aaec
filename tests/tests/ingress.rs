//! mesh-ingress follows the master's config stream, keeps serving its last good configuration while no master
//! answers, and reconnects (with back-off) when one returns.

mod common;

use common::{Master, Mirrors, Proc, bin, free_port, ok, wait_for};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_survives_master_loss_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut master = Master::start(dir.path(), &["--no-gateway"]).await;
    let mirrors = Mirrors::start(dir.path(), 1);
    // A dead master first in the list: the ingress fails over to the live one.
    let dead = format!("127.0.0.1:{}", free_port());
    let args = vec![
        "--master".to_string(),
        format!("{dead},{}", master.client),
        "--node-id".to_string(),
        "edge-1".to_string(),
    ];
    let _ingress = Proc::spawn("mesh-ingress", &bin("mesh-ingress"), &args, dir.path());

    let port = free_port();
    let doc = |body: &str| {
        format!(
            "kind: HTTPServer\nname: edge\nport: {port}\nrules:\n  - paths:\n    - pathPrefix: /\n      backend: edge-pipe\n---\nkind: Pipeline\nname: edge-pipe\nfilters:\n  - name: proxy\n    kind: Proxy\n    pools:\n    - servers:\n      - url: http://{}\n  - name: adapt\n    kind: ResponseAdaptor\n    header:\n      set:\n        X-Edge: {body}\n",
            mirrors.addrs[0]
        )
    };
    ok(master.meshctl(&["object", "apply"], Some(&doc("one"))));
    let url = format!("http://127.0.0.1:{port}/x");
    wait_for(&url, 15, |r| r.status == 200).await;

    let status = ok(master.meshctl(&["-o", "yaml", "status", "edge-1"], None));
    assert!(
        status.contains("edge-1"),
        "the ingress shows in status: {status}"
    );

    // No master: the last good configuration keeps serving.
    master.proc.kill9();
    for _ in 0..10 {
        let r = wait_for(&url, 5, |r| r.status == 200).await;
        assert!(r.body.contains("URL   : /x"), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The master returns on the same address; the ingress reconnects and follows new changes.
    master.restart().await;
    ok(master.meshctl(&["object", "apply"], Some(&doc("two"))));
    wait_for(&url, 20, |r| {
        r.headers.get("x-edge").is_some_and(|v| v == "two")
    })
    .await;
}
