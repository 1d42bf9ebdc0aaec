//! Listeners: bind an HTTPServer's address, accept connections under `maxConnections`, and serve each
//! connection in its own task with a protocol-specific connection layer (HTTP/1.1 today). Accepting runs on the
//! caller's runtime; each accepted connection is served on one of the worker threads (see `crate::workers`),
//! in turn.
//!
//! `maxConnections`: like Easegress (Go's `LimitListener`) and nginx, a listener at its cap stops accepting;
//! further clients wait in the kernel's accept backlog until a connection closes (nothing is refused actively).
//! The cap can change without a restart.

use crate::{
    body,
    h1_guard::{GuardSettings, GuardedIo},
    service::{self, InflightGuard, PipelineMap, ServerConfig, TrackedBody},
};
use arc_swap::ArcSwap;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::Notify,
    task::JoinHandle,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

/// Largest request head (request line + headers); beyond it the answer is 431.
pub const MAX_HEADER_SIZE: usize = 64 * 1024;
/// Time allowed to receive a request head (and the first request of a new connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Listen backlog.
const BACKLOG: u32 = 1024;

/// The connection-serving layer. HTTP/2 and HTTP/3 are added here as variants; the router and pipelines only
/// see `http::Request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 and HTTP/1.1 over TCP.
    Http1,
}

/// A counting cap on open connections whose limit can change at any time.
#[derive(Debug)]
pub(crate) struct ConnLimit {
    active: AtomicUsize,
    limit: AtomicUsize,
    freed: Notify,
}

/// One open connection, counted until dropped.
pub(crate) struct ConnPermit(Arc<ListenerShared>);

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.0.limit.active.fetch_sub(1, Ordering::AcqRel);
        self.0.limit.freed.notify_one();
    }
}

impl ConnLimit {
    fn new(limit: usize) -> Self {
        Self {
            active: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.max(1)),
            freed: Notify::new(),
        }
    }

    fn try_take(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Release);
        self.freed.notify_one();
    }

    /// Open connections.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// What a listener's connections share: the current settings and router, and the pipelines.
pub(crate) struct ListenerShared {
    pub(crate) config: ArcSwap<ServerConfig>,
    pub(crate) pipelines: Arc<ArcSwap<PipelineMap>>,
    pub(crate) limit: ConnLimit,
}

async fn acquire(shared: &Arc<ListenerShared>) -> ConnPermit {
    loop {
        let freed = shared.limit.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if shared.limit.try_take() {
            return ConnPermit(Arc::clone(shared));
        }
        freed.await;
    }
}

/// A bound socket not yet accepting (built before a config swap; dropped if the swap is abandoned).
pub(crate) struct Bound {
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// Binds `addr` (with SO_REUSEADDR) and starts listening.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    let local_addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        local_addr,
    })
}

/// A running listener.
pub(crate) struct Listener {
    pub(crate) local_addr: SocketAddr,
    shared: Arc<ListenerShared>,
    /// Stop accepting and close connections once their in-flight requests are done.
    stop: CancellationToken,
    /// Close every connection now.
    force: CancellationToken,
    conns: TaskTracker,
    accept_task: JoinHandle<()>,
}

impl Listener {
    /// Starts accepting on a bound socket.
    pub(crate) fn start(
        bound: Bound,
        config: Arc<ServerConfig>,
        pipelines: Arc<ArcSwap<PipelineMap>>,
        protocol: Protocol,
    ) -> Self {
        let shared = Arc::new(ListenerShared {
            limit: ConnLimit::new(config.max_connections),
            config: ArcSwap::new(config),
            pipelines,
        });
        let stop = CancellationToken::new();
        let force = CancellationToken::new();
        let conns = TaskTracker::new();
        // Start the worker threads now rather than from the accept loop.
        let _ = crate::workers::get();
        let accept_task = tokio::spawn(accept_loop(
            bound.listener,
            Arc::clone(&shared),
            stop.clone(),
            force.clone(),
            conns.clone(),
            protocol,
        ));
        Self {
            local_addr: bound.local_addr,
            shared,
            stop,
            force,
            conns,
            accept_task,
        }
    }

    /// Swaps the settings and router; open connections keep going and use them from their next request.
    pub(crate) fn update(&self, config: Arc<ServerConfig>) {
        self.shared.limit.set_limit(config.max_connections);
        self.shared.config.store(config);
    }

    /// The current settings.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.shared.config.load_full()
    }

    /// Open connections.
    pub(crate) fn open_connections(&self) -> usize {
        self.shared.limit.active()
    }

    /// Stops accepting; connections close after their in-flight requests; after `grace` they are closed anyway.
    /// Returns when every connection is gone.
    pub(crate) async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        self.conns.close();
        let _ = self.accept_task.await;
        if tokio::time::timeout(grace, self.conns.wait())
            .await
            .is_err()
        {
            tracing::info!(addr = %self.local_addr, "closing connections still open after the grace period");
            self.force.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.conns.wait()).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    stop: CancellationToken,
    force: CancellationToken,
    conns: TaskTracker,
    protocol: Protocol,
) {
    loop {
        let permit = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            p = acquire(&shared) => p,
        };
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let (stop, force) = (stop.clone(), force.clone());
                match crate::workers::get() {
                    // Hand the socket to a worker: it leaves this runtime's reactor and joins the worker's.
                    Some(workers) => match tcp.into_std() {
                        Ok(std_tcp) => {
                            conns.spawn_on(
                                async move {
                                    match TcpStream::from_std(std_tcp) {
                                        Ok(tcp) => {
                                            serve_connection(
                                                protocol, tcp, peer, permit, stop, force,
                                            )
                                            .await
                                        }
                                        Err(e) => {
                                            tracing::warn!(%peer, error = %e, "cannot register connection")
                                        }
                                    }
                                },
                                workers.next(),
                            );
                        }
                        Err(e) => tracing::warn!(%peer, error = %e, "cannot hand over connection"),
                    },
                    None => {
                        conns.spawn(serve_connection(protocol, tcp, peer, permit, stop, force));
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn serve_connection(
    protocol: Protocol,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: ConnPermit,
    stop: CancellationToken,
    force: CancellationToken,
) {
    match protocol {
        Protocol::Http1 => serve_http1(tcp, peer, permit, stop, force).await,
    }
}

async fn serve_http1(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: ConnPermit,
    stop: CancellationToken,
    force: CancellationToken,
) {
    let shared = Arc::clone(&permit.0);
    let config = shared.config.load_full();
    let inflight = Arc::new(AtomicUsize::new(0));
    let settings = GuardSettings {
        idle_timeout: config.keep_alive_timeout,
        header_timeout: HEADER_READ_TIMEOUT,
        max_head: MAX_HEADER_SIZE,
    };
    let io = TokioIo::new(GuardedIo::new(tcp, settings, Arc::clone(&inflight)));
    // The peer's IP as text, once per connection (the real IP of requests without forwarding headers).
    let peer_ip: Arc<str> = crate::realip::canonical(peer.ip()).to_string().into();
    let svc = service_fn(move |req: hyper::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let peer_ip = Arc::clone(&peer_ip);
        let guard = InflightGuard::new(&inflight);
        // No span at all unless debug logging is on (it is per request).
        let span = if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!("request", %peer, method = %req.method(), path = %req.uri().path())
        } else {
            tracing::Span::none()
        };
        async move {
            let config = shared.config.load_full();
            let rsp = service::serve_from(
                config,
                &shared.pipelines,
                req.map(body::boxed),
                peer,
                &peer_ip,
            )
            .await;
            Ok::<_, Infallible>(rsp.map(|b| TrackedBody::new(b, guard)))
        }
        .instrument(span)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(config.keep_alive)
        .max_header_size(MAX_HEADER_SIZE)
        .header_read_timeout(None)
        .writev(false)
        .timer(TokioTimer::new());
    drop(config);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = force.cancelled() => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    drop(permit);
}
