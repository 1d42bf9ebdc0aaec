//! The listener over raw TCP: malformed and smuggling requests, header limits, timeouts, connection caps,
//! and configuration swaps that keep connections and in-flight requests.

mod common;

use common::*;
use meshgress_dataplane::{DataplaneError, Runtime};
use std::time::Duration;
use tokio::{io::AsyncWriteExt, net::TcpStream};

async fn setup(extra: &str) -> (Runtime, u16, Backend) {
    let up = fixed("ok").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &proxied_server("s", port, "p", extra, &[up.url()]));
    (rt, port, up)
}

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn bad_requests_get_400_and_close() {
    let (_rt, port, up) = setup("").await;
    // A healthy kept-alive client, open across all the bad ones.
    let mut good = TcpStream::connect(addr(port)).await.unwrap();
    good.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut good).await.starts_with("HTTP/1.1 200"));

    let cases: &[(&str, &[u8])] = &[
        ("garbage", b"THIS IS NOT HTTP\r\n\r\n"),
        ("bad header", b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"),
        ("nul in header", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n"),
        ("cl + te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("te + cl", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"),
        ("conflicting cl", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
        ("duplicate cl", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),
        ("cl list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd"),
        ("te not chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabcd"),
        ("te chunked not last", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        ("te obfuscated", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        ("te on http/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ];
    let before = up.accepted();
    for (name, req) in cases {
        let (text, closed) = raw_exchange(addr(port), req, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 400"), "{name}: {text:?}");
        assert!(closed, "{name}: connection must close");
    }
    assert_eq!(up.accepted(), before, "no bad request reached the upstream");

    // The head is fine, the body is not: the request (forwarded, so it may open an upstream connection of
    // another worker) fails and the connection is closed.
    let (text, closed) = raw_exchange(
        addr(port),
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(closed, "bad chunk size: connection must close: {text:?}");

    // A good request pipelined before a smuggling one is answered; the bad one gets 400 and the close.
    let (text, closed) = raw_exchange(
        addr(port),
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert_eq!(text.matches("HTTP/1.1 400").count(), 1, "{text:?}");
    assert!(closed);

    // The healthy client still works.
    good.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut good).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn chunked_and_pipelined_requests_still_work() {
    let up = echo("e").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &proxied_server("s", port, "p", "", &[up.url()]));
    let mut s = TcpStream::connect(addr(port)).await.unwrap();
    s.write_all(
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n\
POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await
    .unwrap();
    let first = read_response(&mut s).await;
    assert!(
        first.starts_with("HTTP/1.1 200") && first.ends_with("body=wikipedia"),
        "{first:?}"
    );
    let second = read_response(&mut s).await;
    assert!(
        second.starts_with("HTTP/1.1 200") && second.ends_with("body=abc"),
        "{second:?}"
    );
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (_rt, port, _up) = setup("").await;
    let big = "a".repeat(70 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    let (text, closed) = raw_exchange(addr(port), req.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{:?}",
        &text[..text.len().min(100)]
    );
    assert!(closed);
    // Just under the limit is fine.
    let ok = "a".repeat(60 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: {ok}\r\n\r\n");
    let (text, _) = raw_exchange(addr(port), req.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}

#[tokio::test]
async fn keep_alive_timeout_closes_idle_connections() {
    let (_rt, port, _up) = setup("keepAliveTimeout: 300ms").await;
    let mut s = TcpStream::connect(addr(port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    let (rest, closed) = read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(
        closed && rest.is_empty(),
        "idle connection closed quietly: {rest:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "not before the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn keep_alive_false_closes_after_each_response() {
    let (_rt, port, _up) = setup("keepAlive: false").await;
    let (text, closed) = raw_exchange(
        addr(port),
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text:?}"
    );
    assert!(closed);
}

#[tokio::test]
async fn max_connections_holds_extra_clients_until_one_closes() {
    let (rt, port, _up) = setup("maxConnections: 1").await;
    let mut first = TcpStream::connect(addr(port)).await.unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    assert_eq!(rt.open_connections("s"), Some(1));

    let mut second = TcpStream::connect(addr(port)).await.unwrap();
    second
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (early, closed) = read_until_close(&mut second, Duration::from_millis(400)).await;
    assert!(
        early.is_empty() && !closed,
        "second client waits while the first holds the only slot: {early:?}"
    );

    drop(first);
    let (text, _) = read_until_close(&mut second, Duration::from_secs(5)).await;
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "served once a slot is free: {text:?}"
    );
}

#[tokio::test]
async fn config_swap_keeps_connections_and_in_flight_requests() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let slow = backend(move |_req| {
        let release_rx = std::sync::Arc::clone(&release_rx);
        async move {
            let rx = release_rx.lock().await.take();
            if let Some(rx) = rx {
                let _ = rx.await;
            }
            http::Response::new(meshgress_dataplane::body::full("slow-v1"))
        }
    })
    .await;
    let v1 = fixed("v1").await;
    let v2 = fixed("v2").await;
    let port = free_port();
    let rt = Runtime::new();
    let server = format!(
        "kind: HTTPServer\nname: s\nport: {port}\naddress: 127.0.0.1\nrules:\n  - paths:\n      - {{pathPrefix: /slow, backend: slow}}\n      - {{pathPrefix: /, backend: p}}\n"
    );
    apply(
        &rt,
        &format!(
            "{server}\n---\n{}\n---\n{}",
            proxy_pipeline("p", &[v1.url()]),
            proxy_pipeline("slow", &[slow.url()])
        ),
    );

    let mut kept = TcpStream::connect(addr(port)).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut kept).await.ends_with("v1"));

    // A request in flight on the old "slow" pipeline.
    let mut inflight = TcpStream::connect(addr(port)).await.unwrap();
    inflight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // New config: "p" goes to v2, "slow" is removed altogether.
    apply(
        &rt,
        &format!("{server}\n---\n{}", proxy_pipeline("p", &[v2.url()])),
    );

    kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut kept).await.ends_with("v2"),
        "same connection, new config"
    );

    release_tx.send(()).unwrap();
    assert!(
        read_response(&mut inflight).await.ends_with("slow-v1"),
        "in-flight request finished on its pipeline"
    );

    // The removed pipeline now answers 503 for new requests.
    inflight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut inflight)
            .await
            .starts_with("HTTP/1.1 503")
    );
}

#[tokio::test]
async fn unbindable_port_is_rejected_and_old_config_keeps_serving() {
    let (rt, port, _up) = setup("").await;
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    let v2 = fixed("v2").await;
    let err = rt
        .apply(objects(&format!(
            "{}\n---\n{}\n---\n{}",
            simple_server("s", port, "p", ""),
            simple_server("s2", taken, "p", ""),
            proxy_pipeline("p", &[v2.url()])
        )))
        .unwrap_err();
    assert!(matches!(err, DataplaneError::Bind { .. }), "{err}");
    assert!(err.to_string().contains("s2"), "{err}");
    let r = get(&client(), &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(r.body, "ok", "old pipeline still serves");
    assert_eq!(rt.server_addr("s2"), None);
}

#[tokio::test]
async fn server_may_exist_before_its_pipeline() {
    let up = fixed("late").await;
    let port = free_port();
    let rt = Runtime::new();
    apply(&rt, &simple_server("s", port, "p", ""));
    let c = client();
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port}/")).await.status,
        503
    );
    apply(&rt, &proxied_server("s", port, "p", "", &[up.url()]));
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
        "late"
    );
}

#[tokio::test]
async fn removed_server_stops_accepting_and_moved_port_works() {
    let (rt, port, up) = setup("").await;
    let new_port = free_port();
    apply(&rt, &proxied_server("s", new_port, "p", "", &[up.url()]));
    assert_eq!(rt.server_addr("s").unwrap().port(), new_port);
    let c = client();
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{new_port}/")).await.body,
        "ok"
    );
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr(port)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "old port no longer accepts");
}

#[tokio::test]
async fn shutdown_stops_listeners() {
    let (rt, port, _up) = setup("").await;
    let mut s = TcpStream::connect(addr(port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(5), rt.shutdown(Duration::from_secs(2)))
        .await
        .expect("shutdown is bounded");
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(2)).await;
    assert!(closed, "idle kept-alive connection closed by shutdown");
    assert!(TcpStream::connect(addr(port)).await.is_err());
}

/// Mutated and random requests (seeded, bounded): whatever arrives, the server answers or closes, never panics,
/// and a kept-alive client beside them keeps being served.
#[tokio::test]
async fn mutated_requests_never_break_the_server() {
    // Connection tasks run on the data plane's worker threads, where a panic would only close a socket: count them.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
    let (_rt, port, _up) = setup("").await;
    let mut good = TcpStream::connect(addr(port)).await.unwrap();
    let valid: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _batch in 0..6 {
        let mut cases = Vec::new();
        for _ in 0..50 {
            let mut bytes = valid[rng.usize(..valid.len())].to_vec();
            match rng.u8(..4) {
                0 => {
                    for _ in 0..rng.usize(1..6) {
                        let i = rng.usize(..bytes.len());
                        bytes[i] = rng.u8(..);
                    }
                }
                1 => bytes.truncate(rng.usize(..bytes.len())),
                2 => {
                    let i = rng.usize(..bytes.len());
                    let junk: Vec<u8> = (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect();
                    bytes.splice(i..i, junk);
                }
                _ => bytes = (0..rng.usize(1..512)).map(|_| rng.u8(..)).collect(),
            }
            cases.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(addr(port)).await.unwrap();
                // The peer may already have closed on an early refusal; that is an answer too.
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
                read_until_close(&mut s, Duration::from_secs(5)).await
            }));
        }
        for case in cases {
            let (text, closed) = case.await.expect("case task");
            assert!(
                closed,
                "every mutated request ends with a close, got {text:?}"
            );
            assert!(text.is_empty() || text.starts_with("HTTP/1.1 "), "{text:?}");
        }
        good.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        assert!(read_response(&mut good).await.starts_with("HTTP/1.1 200"));
    }
    let (text, _) = raw_exchange(
        addr(port),
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing a client sends may panic"
    );
}
