//! Helpers shared by the integration tests: backends, clients, raw sockets, configs. Loopback only.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use meshgress_dataplane::{Runtime, body::Body};
use meshgress_spec::Object;
use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parses YAML documents separated by `---`.
pub fn objects(yaml: &str) -> Vec<Object> {
    yaml.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            meshgress_spec::parse_object_str(d)
                .unwrap_or_else(|e| panic!("bad test document: {e}\n{d}"))
        })
        .collect()
}

/// Applies YAML documents to a runtime, panicking on error.
pub fn apply(rt: &Runtime, yaml: &str) {
    rt.apply(objects(yaml))
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
}

/// A test upstream server.
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Backend {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a backend answering with `handler`.
pub async fn backend<F, Fut>(handler: F) -> Backend
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        let conns = tokio_util::task::TaskTracker::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                break;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Backend {
        addr,
        accepted,
        task,
    }
}

/// A backend that describes what it received: `backend=NAME`, `method=`, `uri=`, one `h:NAME=VALUE` line per
/// header, then `body=` with the body.
pub async fn echo(name: &'static str) -> Backend {
    backend(move |req: Request<Incoming>| async move {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut text = format!(
            "backend={name}\nmethod={}\nuri={}\n",
            parts.method, parts.uri
        );
        for (k, v) in &parts.headers {
            text.push_str(&format!("h:{}={}\n", k, v.to_str().unwrap_or("?")));
        }
        text.push_str("body=");
        text.push_str(&String::from_utf8_lossy(&body));
        let mut rsp = Response::new(meshgress_dataplane::body::full(text));
        rsp.headers_mut().insert("x-backend", name.parse().unwrap());
        rsp
    })
    .await
}

/// A fixed-answer backend.
pub async fn fixed(name: &'static str) -> Backend {
    backend(move |_req| async move { Response::new(meshgress_dataplane::body::full(name)) }).await
}

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn has_line(&self, line: &str) -> bool {
        self.body.lines().any(|l| l == line)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request (headers as pairs) and collects the response, with a 10 s bound.
pub async fn send(
    c: &TestClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let fut = async {
        let rsp = c.request(req).await.expect("request failed");
        let (parts, body) = rsp.into_parts();
        let body = body.collect().await.expect("body failed").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("request timed out")
}

pub async fn get(c: &TestClient, url: &str) -> Reply {
    send(c, "GET", url, &[], "").await
}

/// Writes raw bytes and reads until the peer closes (bounded); returns what was read and whether it closed.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_until_close(&mut s, wait).await
}

/// Reads until EOF or `wait` elapses; returns the text and whether EOF was seen.
pub async fn read_until_close(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body from a kept-alive socket (bounded).
pub async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let fut = async {
        loop {
            if let Some(end) = find(&out, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if out.len() >= end + 4 + len {
                    return String::from_utf8_lossy(&out).into_owned();
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed while reading a response: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("response timed out")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A server document on 127.0.0.1:`port` with one path prefix `/` to `backend` plus extra fields.
pub fn simple_server(name: &str, port: u16, backend: &str, extra: &str) -> String {
    format!(
        "kind: HTTPServer\nname: {name}\nport: {port}\naddress: 127.0.0.1\n{extra}\nrules:\n  - paths:\n      - pathPrefix: /\n        backend: {backend}\n"
    )
}

/// A pipeline with one Proxy filter to `urls` (roundRobin).
pub fn proxy_pipeline(name: &str, urls: &[String]) -> String {
    let servers: String = urls
        .iter()
        .map(|u| format!("          - url: {u}\n"))
        .collect();
    format!(
        "kind: HTTPPipeline\nname: {name}\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      loadBalance: {{policy: roundRobin}}\n      servers:\n{servers}"
    )
}

/// An HTTPServer `server` on `port` sending every path to `pipeline`, and that pipeline: one Proxy over `urls`.
pub fn proxied_server(
    server: &str,
    port: u16,
    pipeline: &str,
    extra: &str,
    urls: &[String],
) -> String {
    format!(
        "{}\n---\n{}",
        simple_server(server, port, pipeline, extra),
        proxy_pipeline(pipeline, urls)
    )
}
