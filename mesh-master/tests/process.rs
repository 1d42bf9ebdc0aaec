//! Runs the `mesh-master` binary: port 0 discovery from its log, acknowledged writes surviving `kill -9`,
//! and a clean exit on SIGTERM.

use meshgress_proto::admin::admin_client::AdminClient;
use meshgress_proto::admin::{ListObjectsRequest, WriteObjectRequest};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PREFIX: &str = "client gRPC listening on ";

/// A running `mesh-master` process, killed when dropped.
struct Master {
    child: Child,
    addr: String,
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &Path) -> Master {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-master"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--peer-listen",
            "127.0.0.1:0",
            "--no-gateway",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find(PREFIX) {
                let addr = line[i + PREFIX.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no listening line in the log");
    Master { child, addr }
}

fn server(name: &str, port: u16) -> WriteObjectRequest {
    let doc = serde_json::json!({"kind": "HTTPServer", "name": name, "port": port, "rules": []});
    WriteObjectRequest {
        spec_json: doc.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let master = spawn(dir.path());
    let mut admin = AdminClient::connect(format!("http://{}", master.addr))
        .await
        .unwrap();
    for i in 0..20u16 {
        admin
            .create_object(server(&format!("s{i}"), 20000 + i))
            .await
            .unwrap();
    }
    drop(admin);
    drop(master); // SIGKILL

    let mut master = spawn(dir.path());
    let mut admin = AdminClient::connect(format!("http://{}", master.addr))
        .await
        .unwrap();
    let listed = admin
        .list_objects(ListObjectsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.revision, 20);
    assert_eq!(listed.objects.len(), 20);
    admin
        .create_object(server("after-restart", 21000))
        .await
        .unwrap();
    drop(admin);

    let pid = master.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = master.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.expect("mesh-master did not exit on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}
