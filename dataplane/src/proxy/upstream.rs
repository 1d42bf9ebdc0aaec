//! Forwarding to an upstream server: hop-by-hop header removal and the upstream request (the connections are
//! `conn_pool`'s).

use super::pool::Server;
use crate::body::{self, Body, BoxError};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Uri, Version, header, uri::PathAndQuery};
use http_body::{Frame, SizeHint};
use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

/// Connect timeout to upstream servers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled upstream connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every header it names, `Proxy-Connection`,
/// `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
/// When `keep_te_trailers` and the TE header asked for trailers, `te: trailers` is kept.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    // Usually there is none: one pass over the names is cheaper than a dozen lookups.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let te_trailers = keep_te_trailers
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',').any(|t| {
                    t.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case("trailers")
                })
            })
        });
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<header::HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .filter_map(|t| header::HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
    headers.remove("keep-alive");
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::PROXY_AUTHENTICATE
        || *name == header::PROXY_AUTHORIZATION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || name.as_str() == "proxy-connection"
        || name.as_str() == "keep-alive"
}

/// Error of the client's request body, marked so a failed upstream call can be blamed on the client.
#[derive(Debug)]
pub struct ClientBodyError(pub BoxError);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the client's request body: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Wraps the client's body so its errors are recognisable as [`ClientBodyError`].
pub struct MarkedBody(pub Body);

impl http_body::Body for MarkedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(ClientBodyError(e))))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Whether an error's source chain holds a [`ClientBodyError`].
pub fn caused_by_client(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<ClientBodyError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Builds the upstream request with the origin-form target (`/path?query`) that goes on the wire: base path +
/// request path + `?query`; hop-by-hop headers removed; Host = the client's when the server url host is an IP or
/// keepHost, else the url's host.
/// With `take_headers`, the request's headers are moved into the upstream request (left empty) rather than
/// copied: for a caller that is the last one to need them.
pub(crate) fn origin_request(
    server: &Server,
    req: &mut Request<Body>,
    body: Body,
    take_headers: bool,
) -> Result<Request<Body>, String> {
    let target = Uri::from(upstream_path(server, req.uri())?);
    let headers = if take_headers {
        std::mem::take(req.headers_mut())
    } else {
        req.headers().clone()
    };
    Ok(upstream_request_with(server, req, headers, body, target))
}

/// Base path + request path + `?query`.
fn upstream_path(server: &Server, uri: &Uri) -> Result<PathAndQuery, String> {
    let path = uri.path();
    if server.base_path.is_empty()
        && path.starts_with('/')
        && let Some(pq) = uri.path_and_query()
    {
        // Nothing to add: share the request's own (already validated) path and query.
        return Ok(pq.clone());
    }
    let pq = crate::filters::join_path_query(&server.base_path, path, uri.query());
    PathAndQuery::try_from(pq).map_err(|e| format!("bad upstream url for {}: {e}", server.url))
}

/// The upstream request with `headers` (the client request's own, taken or copied).
fn upstream_request_with(
    server: &Server,
    req: &Request<Body>,
    mut headers: HeaderMap,
    body: Body,
    target: Uri,
) -> Request<Body> {
    remove_hop_by_hop(&mut headers, true);
    // 100-continue was already handled with the client.
    headers.remove(header::EXPECT);
    let host = match headers.get(header::HOST) {
        Some(h) if server.keep_client_host => h.clone(),
        None if server.keep_client_host => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or_else(|| server.host_header.clone()),
        _ => server.host_header.clone(),
    };
    headers.insert(header::HOST, host);
    let mut out = Request::new(body::boxed(MarkedBody(body)));
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = target;
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Secret , x-other"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic x"),
            ("proxy-authenticate", "Basic"),
            ("te", "trailers, deflate;q=0.5"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-keep", "yes"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        remove_hop_by_hop(&mut h, true);
        let names: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        assert_eq!(names, ["x-keep", "te"]);
        assert_eq!(h["te"], "trailers");
        let mut h2 = HeaderMap::new();
        h2.insert("te", HeaderValue::from_static("gzip"));
        remove_hop_by_hop(&mut h2, true);
        assert!(h2.is_empty());
    }

    #[test]
    fn client_error_detection() {
        let inner: BoxError = "boom".into();
        let marked = ClientBodyError(inner);
        assert!(caused_by_client(&marked));
        let io = std::io::Error::other("x");
        assert!(!caused_by_client(&io));
    }
}
