//! A lean HTTP/1.1 keep-alive connection pool to upstream servers, on hyper's low-level client connections.
//!
//! One pool per worker thread (see `crate::workers`): a request, its upstream connection task and the wakeups
//! between them stay on one thread. An idle connection is taken back when the response body has been read to its
//! end (nothing spawned per request); a pooled connection closed in the meantime is skipped, and a request that
//! could not be written on a reused connection is retried on another one (like hyper-util's legacy client with
//! `retry_canceled_requests`). Idle connections are dropped after [`POOL_IDLE_TIMEOUT`] (between it and 4/3 of it)
//! and beyond `max_idle_per_host` per server.

use super::upstream::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT};
use crate::body::{Body, BoxError};
use bytes::Bytes;
use http::{Request, Response, uri::Authority};
use http_body::{Frame, SizeHint};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use std::{
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};
use tokio::net::TcpStream;

/// Why an upstream request failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be opened.
    Connect(std::io::Error),
    /// The HTTP exchange failed.
    Http(hyper::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e),
            Self::Http(e) => Some(e),
        }
    }
}

use crate::fnv::FnvMap;

struct Idle {
    tx: SendRequest<Body>,
    epoch: u64,
}

struct Inner {
    max_idle_per_host: usize,
    idle: Mutex<FnvMap<Authority, Vec<Idle>>>,
    /// Advanced by the reaper every third of the idle timeout.
    epoch: AtomicU64,
    reaper: AtomicBool,
}

/// The pool (one per worker and Proxy filter).
pub(crate) struct ConnPool {
    inner: Arc<Inner>,
}

/// Epochs an idle connection may sit out (each a third of the idle timeout, plus the one it was pooled in).
const IDLE_EPOCHS: u64 = 4;

impl ConnPool {
    pub(crate) fn new(max_idle_per_host: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_idle_per_host,
                idle: Mutex::new(FnvMap::default()),
                epoch: AtomicU64::new(0),
                reaper: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `req` (origin-form URI, Host set) to `authority` on a pooled or new connection.
    pub(crate) async fn request(
        &self,
        authority: &Authority,
        mut req: Request<Body>,
    ) -> Result<Response<Body>, UpstreamError> {
        loop {
            let (mut tx, reused) = match self.checkout(authority).await {
                Some(tx) => (tx, true),
                // Boxed: the (rare) connect path would otherwise make every request's future larger.
                None => (Box::pin(connect(authority)).await?, false),
            };
            match tx.try_send_request(req).await {
                Ok(rsp) => {
                    let back = Returning {
                        tx,
                        pool: Arc::clone(&self.inner),
                        key: authority.clone(),
                    };
                    return Ok(rsp.map(|incoming| {
                        crate::body::boxed(PooledBody {
                            inner: incoming,
                            back: Some(back),
                            done: false,
                        })
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written on a connection that was closed meanwhile: try another one.
                    Some(r) if reused => req = r,
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }

    /// The most recently pooled open connection to `authority`, ready for a request.
    async fn checkout(&self, authority: &Authority) -> Option<SendRequest<Body>> {
        loop {
            let idle = {
                let mut map = self
                    .inner
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                map.get_mut(authority)?.pop()?
            };
            let mut tx = idle.tx;
            if tx.is_closed() {
                continue;
            }
            if tx.ready().await.is_ok() {
                return Some(tx);
            }
        }
    }
}

impl Inner {
    fn put(self: &Arc<Self>, key: Authority, tx: SendRequest<Body>) {
        if self.max_idle_per_host == 0 || tx.is_closed() {
            return;
        }
        let epoch = self.epoch.load(Ordering::Relaxed);
        {
            let mut map = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let list = map.entry(key).or_default();
            if list.len() >= self.max_idle_per_host {
                return;
            }
            list.push(Idle { tx, epoch });
        }
        if !self.reaper.load(Ordering::Relaxed) {
            self.start_reaper();
        }
    }

    /// Drops idle connections older than the idle timeout, while the pool lives (one task per pool).
    fn start_reaper(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.reaper.swap(true, Ordering::AcqRel) {
            return;
        }
        /// Lets a later request start a new reaper if this one's runtime goes away.
        struct Running(Weak<Inner>);
        impl Drop for Running {
            fn drop(&mut self) {
                if let Some(inner) = self.0.upgrade() {
                    inner.reaper.store(false, Ordering::Release);
                }
            }
        }
        let running = Running(Arc::downgrade(self));
        handle.spawn(async move {
            let tick = POOL_IDLE_TIMEOUT / 3;
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = running.0.upgrade() else {
                    return;
                };
                let now = inner.epoch.fetch_add(1, Ordering::Relaxed) + 1;
                let mut map = inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
                map.retain(|_, list| {
                    list.retain(|i| now - i.epoch < IDLE_EPOCHS && !i.tx.is_closed());
                    !list.is_empty()
                });
            }
        });
    }
}

async fn connect(authority: &Authority) -> Result<SendRequest<Body>, UpstreamError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, open(authority))
        .await
        .map_err(|_| {
            UpstreamError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {authority} timed out"),
            ))
        })?
        .map_err(UpstreamError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (tx, conn) = http1::Builder::new()
        .writev(false)
        .handshake::<_, Body>(TokioIo::new(tcp))
        .await
        .map_err(UpstreamError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(tx)
}

/// Resolves `authority` (port 80 when none) and connects to its addresses in turn.
async fn open(authority: &Authority) -> std::io::Result<TcpStream> {
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

/// Where a connection goes back when its response is done.
struct Returning {
    tx: SendRequest<Body>,
    pool: Arc<Inner>,
    key: Authority,
}

/// The upstream response body; when read to its end, its connection goes back to the pool.
struct PooledBody {
    inner: Incoming,
    back: Option<Returning>,
    done: bool,
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.back = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some(back) = self.back.take()
            && (self.done || http_body::Body::is_end_stream(&self.inner))
        {
            back.pool.put(back.key, back.tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend answering each connection's first request, then closing it (as a keep-alive timeout would).
    async fn one_shot_backend() -> (Authority, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = Authority::try_from(listener.local_addr().unwrap().to_string()).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tcp
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (authority, accepted)
    }

    fn get(authority: &Authority) -> Request<Body> {
        Request::builder()
            .uri("/")
            .header(http::header::HOST, authority.as_str())
            .body(crate::body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn reuses_and_replaces_closed_connections() {
        let (authority, accepted) = one_shot_backend().await;
        let pool = ConnPool::new(8);
        for i in 0..4 {
            let rsp = pool.request(&authority, get(&authority)).await.unwrap();
            let body = rsp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok", "request {i}");
            if i % 2 == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn keeps_connections_alive() {
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = Authority::try_from(backend.local_addr().unwrap().to_string()).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = backend.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(crate::body::full("hi")))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        let pool = ConnPool::new(8);
        for _ in 0..5 {
            let rsp = pool.request(&authority, get(&authority)).await.unwrap();
            let body = rsp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hi");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // An unread body does not put its connection back.
        let rsp = pool.request(&authority, get(&authority)).await.unwrap();
        drop(rsp);
        let rsp = pool.request(&authority, get(&authority)).await.unwrap();
        assert_eq!(
            &rsp.into_body().collect().await.unwrap().to_bytes()[..],
            b"hi"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // Nobody listening: a connect error.
        let gone = Authority::from_static("127.0.0.1:1");
        assert!(matches!(
            pool.request(&gone, get(&gone)).await,
            Err(UpstreamError::Connect(_))
        ));
    }
}
