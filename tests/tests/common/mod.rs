//! Shared harness of the cross-process tests: locate the built binaries, start them on free loopback ports,
//! wait for them to be ready, and talk to them over HTTP and gRPC. Every process is killed when dropped.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use meshgress_proto::admin::{ListMembersRequest, admin_client::AdminClient};
use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Directory holding the workspace's built binaries (the test executable lives in its `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of a workspace binary; the test command builds them all first (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A child process killed (SIGKILL) and reaped when dropped; its output goes to a log file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    /// Starts `bin` with `args`, output to `<dir>/<name>.log`.
    pub fn spawn(name: &str, bin: &Path, args: &[String], dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let child = Command::new(bin)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Proc {
            child,
            log,
            name: name.to_string(),
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (like `kill -9`) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to 10 s for the exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- log of {} -----\n{}", self.name, self.log_text());
        }
    }
}

/// A mesh-master process on free loopback ports.
pub struct Master {
    pub proc: Proc,
    pub client: String,
    pub peer: String,
    pub data_dir: PathBuf,
    pub dir: PathBuf,
    extra: Vec<String>,
}

impl Master {
    /// Starts a master with its embedded gateway (unless `extra` has `--no-gateway`) and waits until it leads.
    pub async fn start(dir: &Path, extra: &[&str]) -> Master {
        let data_dir = dir.join("data");
        let client = format!("127.0.0.1:{}", free_port());
        let peer = format!("127.0.0.1:{}", free_port());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let proc = Self::spawn_proc(dir, &data_dir, &client, &peer, &extra);
        let master = Master {
            proc,
            client,
            peer,
            data_dir,
            dir: dir.to_path_buf(),
            extra,
        };
        master.wait_ready().await;
        master
    }

    fn spawn_proc(dir: &Path, data_dir: &Path, client: &str, peer: &str, extra: &[String]) -> Proc {
        let mut args = vec![
            "--listen".to_string(),
            client.to_string(),
            "--peer-listen".to_string(),
            peer.to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        Proc::spawn("mesh-master", &bin("mesh-master"), &args, dir)
    }

    /// Restarts the master on the same ports and data dir (after a kill) and waits until it leads.
    pub async fn restart(&mut self) {
        self.proc.kill9();
        let log_keep = self.dir.join(format!(
            "mesh-master.{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::rename(&self.proc.log, log_keep);
        self.proc = Self::spawn_proc(
            &self.dir,
            &self.data_dir,
            &self.client,
            &self.peer,
            &self.extra,
        );
        self.wait_ready().await;
    }

    /// Waits until the admin API answers and a leader is known.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = AdminClient::connect(format!("http://{}", self.client)).await
                && let Ok(r) = c.list_members(ListMembersRequest {}).await
                && r.get_ref().leader_id != 0
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "master did not become ready:\n{}",
                self.proc.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An admin gRPC client.
    pub async fn admin(&self) -> AdminClient<tonic::transport::Channel> {
        AdminClient::connect(format!("http://{}", self.client))
            .await
            .expect("connect admin")
    }

    /// Runs meshctl against this master.
    pub fn meshctl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        meshctl(&self.client, args, stdin)
    }
}

/// Runs meshctl with `--server`, feeding `stdin`.
pub fn meshctl(server: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin("meshctl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start meshctl");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write meshctl stdin");
    }
    child.wait_with_output().expect("meshctl output")
}

/// meshctl's output, asserting success.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "meshctl failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// meshctl's stderr, asserting failure.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "meshctl should have failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Mirror echo backends (the `mirror` binary), one per listen address.
pub struct Mirrors {
    pub proc: Proc,
    pub addrs: Vec<String>,
}

impl Mirrors {
    /// Starts one mirror process serving `n` listeners on free ports.
    pub fn start(dir: &Path, n: usize) -> Mirrors {
        let mut args = Vec::new();
        for _ in 0..n {
            args.push("--listen".to_string());
            args.push("127.0.0.1:0".to_string());
        }
        let name = format!("mirror-{}", free_port());
        let proc = Proc::spawn(&name, &bin("mirror"), &args, dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addrs: Vec<String> = BufReader::new(File::open(&proc.log).expect("mirror log"))
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    l.split("mirror listening on ")
                        .nth(1)
                        .map(|a| a.trim().to_string())
                })
                .collect();
            if addrs.len() == n {
                return Mirrors { proc, addrs };
            }
            assert!(
                Instant::now() < deadline,
                "mirror did not start:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An HTTP response, body read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// A keep-alive HTTP/1.1 client.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A new keep-alive HTTP/1.1 client.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request and reads the whole response.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Resp, String> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// GET with a fresh client.
pub async fn get(url: &str) -> Result<Resp, String> {
    send(&http_client(), "GET", url, &[], "").await
}

/// Polls `url` until `pred` holds on a response, or panics after `secs`.
pub async fn wait_for<F: Fn(&Resp) -> bool>(url: &str, secs: u64, pred: F) -> Resp {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last;
    loop {
        match send(&client, "GET", url, &[], "").await {
            Ok(r) if pred(&r) => return r,
            Ok(r) => last = format!("{} {}", r.status, r.body),
            Err(e) => last = e,
        }
        assert!(
            Instant::now() < deadline,
            "{url} never met the condition; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
