//! Serving one request, whatever the wire protocol: route, X-Forwarded-For, rewrite, pipeline.

use crate::{
    body::{self, Body, BoxError},
    pipeline::{Context, Pipeline},
    realip,
    router::{RouteInput, Router},
};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{self, Poll},
    time::Duration,
};

/// Pipelines by name, looked up at request time (FNV: the names are short and come from config).
pub type PipelineMap = crate::fnv::FnvMap<String, Arc<Pipeline>>;

/// The settings of one HTTPServer that requests and new connections read (swapped whole on change).
#[derive(Debug)]
pub struct ServerConfig {
    /// Server name.
    pub name: String,
    /// Its router.
    pub router: Router,
    /// Keep connections open between requests.
    pub keep_alive: bool,
    /// Idle timeout of a kept-alive connection.
    pub keep_alive_timeout: Duration,
    /// Cap on simultaneous connections.
    pub max_connections: usize,
    /// Append the real IP to X-Forwarded-For.
    pub x_forwarded_for: bool,
}

/// Routes and runs one request. Router errors and a missing pipeline answer with an empty body; a pipeline that
/// sets no response answers 200 with an empty body (Easegress v1).
pub async fn serve(
    config: Arc<ServerConfig>,
    pipelines: &arc_swap::ArcSwap<PipelineMap>,
    req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let peer_ip = realip::canonical(peer.ip()).to_string();
    serve_from(config, pipelines, req, peer, &peer_ip).await
}

/// [`serve`] with the peer's IP already formatted (`peer_ip`, done once per connection).
pub(crate) async fn serve_from(
    config: Arc<ServerConfig>,
    pipelines: &arc_swap::ArcSwap<PipelineMap>,
    mut req: Request<Body>,
    peer: SocketAddr,
    peer_ip: &str,
) -> Response<Body> {
    let real_ip = realip::real_ip_or(req.headers(), peer_ip);
    let pipeline = {
        let host = match req.uri().authority() {
            Some(a) => a.as_str(),
            None => req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        };
        let input = RouteInput {
            method: req.method(),
            host,
            path: req.uri().path(),
            headers: req.headers(),
            real_ip: &real_ip,
        };
        let route = match config.router.search(&input) {
            Ok(route) => route,
            Err(status) => return body::status_response(status),
        };
        let Some(pipeline) = pipelines.load().get(route.backend()).cloned() else {
            tracing::debug!(server = %config.name, backend = route.backend(), "backend pipeline not found");
            return body::status_response(StatusCode::SERVICE_UNAVAILABLE);
        };
        if config.x_forwarded_for {
            realip::append_x_forwarded_for(req.headers_mut(), &real_ip);
        }
        if let Some(path) = route.rewrite(req.uri().path())
            && let Some(uri) = crate::filters::with_path(req.uri(), &path)
        {
            *req.uri_mut() = uri;
        }
        pipeline
    };
    let mut ctx = Context::new(req, real_ip, peer);
    let result = pipeline.handle(&mut ctx).await;
    let rsp = ctx.response.unwrap_or_else(|| Response::new(body::empty()));
    tracing::debug!(pipeline = %pipeline.spec().name, result, status = rsp.status().as_u16(), "served");
    rsp
}

/// Counts a request of a connection as in flight until its response body is finished or dropped.
pub(crate) struct InflightGuard(Arc<AtomicUsize>);

impl InflightGuard {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight.
pub(crate) struct TrackedBody {
    inner: Body,
    _guard: InflightGuard,
}

impl TrackedBody {
    pub(crate) fn new(inner: Body, guard: InflightGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
