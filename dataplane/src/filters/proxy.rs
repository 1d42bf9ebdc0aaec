//! `Proxy`: forwards the request to a server of the first matching candidate pool, else of the main pool.
//! Bodies are streamed both ways. Any upstream status (5xx included) gives result `""`; no server ->
//! `internalError` 503; a request that cannot be built -> `internalError` 500; the upstream cannot be reached
//! or fails -> `serverError` 503; the client's body fails -> `clientError` 499.

use super::{Filter, FilterFuture};
use crate::{
    body::{self, status_response},
    pipeline::Context,
    proxy::{
        conn_pool::ConnPool,
        pool::{Matcher, Pool},
        upstream::{self, caused_by_client, remove_hop_by_hop},
    },
};
use http::StatusCode;
use meshgress_spec::ProxySpec;
use std::{any::Any, sync::Arc};

/// The built Proxy filter.
pub struct Proxy {
    main: Pool,
    candidates: Vec<(Matcher, Pool)>,
    clients: Arc<Clients>,
    max_idle_per_host: usize,
}

/// Upstream connection pools: one per worker thread (a request and its upstream connection stay on one thread),
/// and a shared one for requests handled elsewhere.
struct Clients {
    per_worker: Box<[ConnPool]>,
    shared: ConnPool,
}

impl Clients {
    fn new(max_idle_per_host: usize) -> Self {
        Self {
            per_worker: (0..crate::workers::count())
                .map(|_| ConnPool::new(max_idle_per_host))
                .collect(),
            shared: ConnPool::new(max_idle_per_host),
        }
    }

    #[inline]
    fn get(&self) -> &ConnPool {
        crate::workers::current()
            .and_then(|i| self.per_worker.get(i))
            .unwrap_or(&self.shared)
    }
}

impl Proxy {
    /// Builds it from its spec; keeps the connection pool of `previous` when it was a Proxy with the same
    /// idle-connection settings.
    pub fn new(spec: &ProxySpec, previous: Option<&dyn Filter>) -> Result<Self, String> {
        let main = Pool::new(spec.main_pool().ok_or("no main pool")?)
            .map_err(|e| format!("main pool: {e}"))?;
        let candidates = spec
            .candidate_pools()
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let f = p
                    .filter
                    .as_ref()
                    .ok_or_else(|| format!("candidate pool {i} has no filter"))?;
                Ok((
                    Matcher::new(f)?,
                    Pool::new(p).map_err(|e| format!("candidate pool {i}: {e}"))?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let max_idle_per_host = spec.max_idle_conns_per_host as usize;
        let inherited = previous
            .and_then(|p| p.as_any().downcast_ref::<Proxy>())
            .filter(|p| p.max_idle_per_host == max_idle_per_host)
            .map(|p| Arc::clone(&p.clients));
        let clients = inherited.unwrap_or_else(|| Arc::new(Clients::new(max_idle_per_host)));
        Ok(Self {
            main,
            candidates,
            clients,
            max_idle_per_host,
        })
    }

    /// Whether two proxies share one upstream connection pool (the pool is carried over config changes).
    pub fn shares_pool_with(&self, other: &Proxy) -> bool {
        Arc::ptr_eq(&self.clients, &other.clients)
    }

    fn pool_for(&self, ctx: &Context) -> &Pool {
        self.candidates
            .iter()
            .find(|(m, _)| m.matches(ctx))
            .map_or(&self.main, |(_, p)| p)
    }

    async fn forward(&self, ctx: &mut Context) -> &'static str {
        let Some(server) = self.pool_for(ctx).pick(ctx) else {
            ctx.response = Some(status_response(StatusCode::SERVICE_UNAVAILABLE));
            return "internalError";
        };
        let body = std::mem::replace(ctx.request.body_mut(), body::empty());
        let req = match upstream::origin_request(server, &mut ctx.request, body, ctx.last_filter) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build upstream request");
                ctx.response = Some(status_response(StatusCode::INTERNAL_SERVER_ERROR));
                return "internalError";
            }
        };
        match self.clients.get().request(&server.authority, req).await {
            Ok(rsp) => {
                let (mut parts, incoming) = rsp.into_parts();
                remove_hop_by_hop(&mut parts.headers, false);
                if let Some(prev) = ctx.response.take() {
                    let (prev_parts, _) = prev.into_parts();
                    let mut merged = prev_parts.headers;
                    for (name, value) in &parts.headers {
                        merged.append(name.clone(), value.clone());
                    }
                    parts.headers = merged;
                }
                ctx.response = Some(http::Response::from_parts(parts, incoming));
                ""
            }
            Err(e) => {
                if caused_by_client(&e) {
                    tracing::debug!(server = %server.url, error = %e, "client went away during upstream request");
                    ctx.response = Some(status_response(
                        StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                    ));
                    "clientError"
                } else {
                    tracing::warn!(server = %server.url, error = %e, "upstream request failed");
                    ctx.response = Some(status_response(StatusCode::SERVICE_UNAVAILABLE));
                    "serverError"
                }
            }
        }
    }
}

impl Filter for Proxy {
    fn handle<'a>(&'a self, ctx: &'a mut Context) -> FilterFuture<'a> {
        Box::pin(self.forward(ctx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
