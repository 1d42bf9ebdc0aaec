//! Router, pipeline flow and filters, end to end over real sockets.

mod common;

use common::*;
use meshgress_dataplane::Runtime;

#[tokio::test]
async fn quick_start_proxy_and_hop_by_hop() {
    let up = echo("one").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &proxied_server(
            "server-demo",
            port,
            "pipeline-demo",
            "keepAlive: true",
            &[up.url()],
        ),
    );
    let c = client();
    let r = send(
        &c,
        "POST",
        &format!("http://127.0.0.1:{port}/pipeline/x?a=1&b=2"),
        &[
            ("connection", "x-hop, keep-alive"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("te", "trailers"),
            ("x-custom", "kept"),
        ],
        "payload",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.has_line("backend=one"), "{}", r.body);
    assert!(r.has_line("method=POST"));
    assert!(r.has_line("uri=/pipeline/x?a=1&b=2"), "{}", r.body);
    assert!(r.has_line("h:x-custom=kept"));
    assert!(
        r.has_line(&format!("h:host=127.0.0.1:{port}")),
        "client Host kept for an IP upstream: {}",
        r.body
    );
    assert!(r.has_line("h:te=trailers"));
    for gone in [
        "h:x-hop=",
        "h:keep-alive=",
        "h:proxy-authorization=",
        "h:connection=",
    ] {
        assert!(
            !r.body.lines().any(|l| l.starts_with(gone)),
            "{gone} leaked: {}",
            r.body
        );
    }
    assert!(r.body.ends_with("body=payload"));
    rt.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn response_hop_by_hop_removed() {
    let up = backend(|_req| async {
        let mut rsp = http::Response::new(meshgress_dataplane::body::full("ok"));
        let h = rsp.headers_mut();
        h.insert("connection", "x-up-hop".parse().unwrap());
        h.insert("x-up-hop", "1".parse().unwrap());
        h.insert("proxy-authenticate", "Basic".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        rsp
    })
    .await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &proxied_server("s", port, "p", "", &[up.url()]));
    let r = get(&client(), &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");
    assert_eq!(r.header("x-kept"), Some("1"));
    assert_eq!(r.header("x-up-hop"), None);
    assert_eq!(r.header("proxy-authenticate"), None);
}

#[tokio::test]
async fn router_statuses_and_empty_bodies() {
    let up = fixed("hello").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &format!(
            r#"kind: HTTPServer
name: s
port: {port}
address: 127.0.0.1
rules:
  - host: blocked.example
    ipFilter: {{blockByDefault: true, allowIPs: [10.0.0.1]}}
    paths:
      - pathPrefix: /
        backend: p
  - paths:
      - path: /get-only
        methods: [GET]
        backend: p
      - path: /hdr
        headers: [{{key: X-Env, values: [prod]}}]
        backend: p
      - path: /missing
        backend: nowhere
      - path: /nothing
        backend: empty
      - pathPrefix: /private
        ipFilter: {{blockIPs: [127.0.0.1]}}
        backend: p
---
{}
---
kind: HTTPPipeline
name: empty
filters:
  - name: adapt
    kind: RequestAdaptor
    header: {{set: {{X-A: b}}}}
"#,
            proxy_pipeline("p", &[up.url()])
        ),
    );
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    let r = get(&c, &format!("{base}/get-only")).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "hello"));
    for (method, path, headers, status) in [
        ("POST", "/get-only", vec![], 405),
        ("GET", "/hdr", vec![], 405),
        ("GET", "/hdr", vec![("x-env", "dev")], 405),
        ("GET", "/nope", vec![], 404),
        ("GET", "/missing", vec![], 503),
        ("GET", "/private/x", vec![], 403),
        (
            "GET",
            "/get-only",
            vec![("host", "blocked.example:99")],
            403,
        ),
    ] {
        let r = send(&c, method, &format!("{base}{path}"), &headers, "").await;
        assert_eq!(r.status.as_u16(), status, "{method} {path} {headers:?}");
        assert_eq!(r.body, "", "router error bodies are empty");
    }
    let r = send(&c, "GET", &format!("{base}/hdr"), &[("x-env", "prod")], "").await;
    assert_eq!(r.status, 200);
    let r = get(&c, &format!("{base}/nothing")).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (200, ""),
        "a pipeline that sets no response answers 200"
    );
}

#[tokio::test]
async fn rewrite_and_x_forwarded_for() {
    let up = echo("e").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &format!(
            r#"kind: HTTPServer
name: s
port: {port}
address: 127.0.0.1
xForwardedFor: true
rules:
  - paths:
      - {{path: /old, rewriteTarget: /new, backend: p}}
      - {{pathPrefix: /v1/, rewriteTarget: /api/v2/, backend: p}}
      - {{pathRegexp: "^/u/([a-z]+)$", rewriteTarget: "/users/$1", backend: p}}
---
{}"#,
            proxy_pipeline("p", &[up.url()])
        ),
    );
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    let r = get(&c, &format!("{base}/old?q=1")).await;
    assert!(r.has_line("uri=/new?q=1"), "{}", r.body);
    assert!(r.has_line("h:x-forwarded-for=127.0.0.1"), "{}", r.body);
    let r = get(&c, &format!("{base}/v1/items/3")).await;
    assert!(r.has_line("uri=/api/v2/items/3"), "{}", r.body);
    let r = send(
        &c,
        "GET",
        &format!("{base}/u/bob"),
        &[("x-forwarded-for", "8.8.8.8")],
        "",
    )
    .await;
    assert!(r.has_line("uri=/users/bob"), "{}", r.body);
    assert!(
        r.has_line("h:x-forwarded-for=8.8.8.8"),
        "existing XFF with the real IP is unchanged: {}",
        r.body
    );
    let r = send(
        &c,
        "GET",
        &format!("{base}/u/bob"),
        &[("x-real-ip", "9.9.9.9"), ("x-forwarded-for", "10.0.0.1")],
        "",
    )
    .await;
    assert!(
        r.has_line("h:x-forwarded-for=10.0.0.1,9.9.9.9"),
        "{}",
        r.body
    );
}

fn flow_config(port: u16, up: &str, dead: &str) -> String {
    format!(
        r#"kind: HTTPServer
name: s
port: {port}
address: 127.0.0.1
rules:
  - paths:
      - {{pathPrefix: /ok, backend: flow}}
      - {{pathPrefix: /dead, backend: dead-nojump}}
      - {{pathPrefix: /fallback, backend: dead-jump}}
---
kind: HTTPPipeline
name: flow
flow:
  - filter: validator
    jumpIf: {{invalid: END}}
  - filter: request
  - filter: proxy
  - filter: response
filters:
  - name: validator
    kind: Validator
    headers:
      X-Token: {{values: [secret]}}
      X-Version: {{regexp: "^v[0-9]+$"}}
  - name: request
    kind: RequestAdaptor
    method: PUT
    path: {{addPrefix: /prefixed}}
    header:
      del: [X-Remove]
      set: {{X-Set: set-value}}
      add: {{X-Add: added}}
    body: replaced body
    host: rewritten.example
  - name: proxy
    kind: Proxy
    mainPool:
      loadBalance: {{policy: roundRobin}}
      servers: [{{url: "{up}"}}]
  - name: response
    kind: ResponseAdaptor
    header:
      set: {{X-Resp: adapted}}
      del: [X-Backend]
---
kind: HTTPPipeline
name: dead-nojump
filters:
  - name: proxy
    kind: Proxy
    mainPool:
      servers: [{{url: "{dead}"}}]
  - name: response
    kind: ResponseAdaptor
    header: {{set: {{X-Resp: should-not-run}}}}
---
kind: HTTPPipeline
name: dead-jump
flow:
  - filter: proxy
    jumpIf: {{serverError: fallback}}
  - filter: never
  - filter: fallback
filters:
  - name: proxy
    kind: Proxy
    mainPool:
      servers: [{{url: "{dead}"}}]
  - name: never
    kind: ResponseAdaptor
    header: {{set: {{X-Never: ran}}}}
  - name: fallback
    kind: ResponseAdaptor
    body: fallback body
"#
    )
}

#[tokio::test]
async fn pipeline_flow_jumps_and_filters() {
    let up = echo("flow").await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &flow_config(port, &up.url(), &dead));
    let c = client();
    let base = format!("http://127.0.0.1:{port}");

    // Validator fails -> 400, empty body, END: nothing later runs, the backend is not called.
    for headers in [
        vec![],
        vec![("x-token", "secret")],
        vec![("x-token", "nope"), ("x-version", "v1")],
        vec![("x-token", "secret"), ("x-version", "1")],
    ] {
        let r = send(&c, "GET", &format!("{base}/ok"), &headers, "").await;
        assert_eq!(r.status, 400, "{headers:?}");
        assert_eq!(r.body, "");
        assert_eq!(r.header("x-resp"), None);
    }
    assert_eq!(up.accepted(), 0);

    // Valid: RequestAdaptor, Proxy, ResponseAdaptor in order.
    let r = send(
        &c,
        "POST",
        &format!("{base}/ok/a?z=9"),
        &[
            ("x-token", "secret"),
            ("x-version", "v12"),
            ("x-remove", "1"),
            ("x-add", "orig"),
            ("content-encoding", "gzip"),
        ],
        "original",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.has_line("method=PUT"), "{}", r.body);
    assert!(r.has_line("uri=/prefixed/ok/a?z=9"), "{}", r.body);
    assert!(r.has_line("h:x-set=set-value"));
    assert!(
        r.has_line("h:x-add=orig") && r.has_line("h:x-add=added"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("h:x-remove="));
    assert!(!r.body.contains("h:content-encoding="));
    assert!(r.has_line("h:content-length=13"), "{}", r.body);
    assert!(r.has_line("h:host=rewritten.example"), "{}", r.body);
    assert!(r.body.ends_with("body=replaced body"));
    assert_eq!(r.header("x-resp"), Some("adapted"));
    assert_eq!(r.header("x-backend"), None);

    // serverError without jumpIf ends the pipeline: 503, later filters skipped.
    let r = get(&c, &format!("{base}/dead")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-resp"), None);

    // serverError with jumpIf skips to the target.
    let r = get(&c, &format!("{base}/fallback")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "fallback body");
    assert_eq!(r.header("x-never"), None);
}

#[tokio::test]
async fn upstream_5xx_is_passed_through_with_empty_result() {
    let up = backend(|_req| async {
        let mut rsp = http::Response::new(meshgress_dataplane::body::full("broken"));
        *rsp.status_mut() = http::StatusCode::BAD_GATEWAY;
        rsp
    })
    .await;
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &format!(
            r#"{}
---
kind: HTTPPipeline
name: p
filters:
  - name: proxy
    kind: Proxy
    mainPool:
      servers: [{{url: "{}"}}]
  - name: after
    kind: ResponseAdaptor
    header: {{set: {{X-After: ran}}}}
"#,
            simple_server("s", port, "p", ""),
            up.url()
        ),
    );
    let r = get(&client(), &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body, "broken");
    assert_eq!(
        r.header("x-after"),
        Some("ran"),
        "a 5xx is result \"\" so the next filter runs"
    );
}
