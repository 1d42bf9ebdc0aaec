//! The runtime: the objects in force, their built pipelines and routers, and the listeners.
//!
//! Applying a snapshot builds everything new first (pipelines, routers, newly needed sockets bound) and only
//! then swaps it in; if anything fails nothing changes. Unchanged pipelines keep their built instance; a server
//! whose address and port are unchanged keeps its listener and open connections (only its settings and router
//! are swapped); a removed server stops accepting and its connections close once idle. Requests hold the
//! pipeline they started on until they finish.

use crate::{
    error::DataplaneError,
    listener::{self, Bound, Listener, Protocol},
    pipeline::Pipeline,
    router::Router,
    service::{PipelineMap, ServerConfig},
};
use arc_swap::ArcSwap;
use meshgress_spec::{HttpServerSpec, Object, PipelineSpec};
use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

/// How long connections of a removed server may finish their requests before they are closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The data plane's state; cheap to clone (clones share it).
#[derive(Clone, Default)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pipelines: Arc<ArcSwap<PipelineMap>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Listeners by the address they were asked to bind.
    listeners: HashMap<SocketAddr, Listener>,
    /// Server name -> listener key.
    servers: HashMap<String, SocketAddr>,
    closed: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

fn bind_addr(spec: &HttpServerSpec) -> SocketAddr {
    let ip = spec
        .address
        .parse::<IpAddr>()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    SocketAddr::new(ip, spec.port)
}

impl Runtime {
    /// An empty runtime (no servers, no pipelines).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole configuration with `objects` (a state-of-the-world snapshot). Must be called inside a
    /// tokio runtime. On error nothing changes and the previous configuration keeps serving.
    pub fn apply(&self, objects: Vec<Object>) -> Result<(), DataplaneError> {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return Ok(());
        }
        let mut names = HashSet::new();
        let mut servers: Vec<HttpServerSpec> = Vec::new();
        let mut pipeline_specs: Vec<PipelineSpec> = Vec::new();
        for obj in objects {
            if !names.insert(obj.name().to_string()) {
                return Err(DataplaneError::DuplicateName(obj.name().to_string()));
            }
            match obj {
                Object::HttpServer(s) => servers.push(s),
                Object::Pipeline(p) => pipeline_specs.push(p),
            }
        }

        // 1. Pipelines: reuse unchanged ones, build the others beside the old.
        let old = self.inner.pipelines.load_full();
        let mut pipelines =
            PipelineMap::with_capacity_and_hasher(pipeline_specs.len(), Default::default());
        for spec in &pipeline_specs {
            let previous = old.get(&spec.name);
            let built = match previous {
                Some(p) if p.spec() == spec => Arc::clone(p),
                _ => Arc::new(Pipeline::build(spec, previous.map(Arc::as_ref))?),
            };
            pipelines.insert(spec.name.clone(), built);
        }

        // 2. Routers and settings.
        let mut configs = Vec::with_capacity(servers.len());
        for s in &servers {
            let config = ServerConfig {
                name: s.name.clone(),
                router: Router::new(s)?,
                keep_alive: s.keep_alive,
                keep_alive_timeout: s.keep_alive_timeout.get(),
                max_connections: s.max_connections as usize,
                x_forwarded_for: s.x_forwarded_for,
            };
            configs.push((bind_addr(s), Arc::new(config)));
        }

        // 3. Sockets for addresses not already listened on.
        let mut seen = HashSet::new();
        let mut bound: HashMap<SocketAddr, Bound> = HashMap::new();
        for (addr, config) in &configs {
            if !seen.insert(*addr) {
                return Err(DataplaneError::Build {
                    object: format!("HTTPServer {:?}", config.name),
                    message: format!("{addr} is used by another HTTPServer of the snapshot"),
                });
            }
            if state.listeners.contains_key(addr) {
                continue;
            }
            let b = listener::bind(*addr).map_err(|source| DataplaneError::Bind {
                server: config.name.clone(),
                addr: *addr,
                source,
            })?;
            bound.insert(*addr, b);
        }

        // 4. Swap: nothing below can fail.
        self.inner.pipelines.store(Arc::new(pipelines));
        let mut server_names = HashMap::with_capacity(configs.len());
        for (addr, config) in configs {
            server_names.insert(config.name.clone(), addr);
            match bound.remove(&addr) {
                Some(b) => {
                    tracing::info!(server = %config.name, %addr, "listening");
                    let l = Listener::start(
                        b,
                        config,
                        Arc::clone(&self.inner.pipelines),
                        Protocol::Http1,
                    );
                    state.listeners.insert(addr, l);
                }
                None => {
                    if let Some(l) = state.listeners.get(&addr) {
                        l.update(config);
                    }
                }
            }
        }
        let gone: Vec<SocketAddr> = state
            .listeners
            .keys()
            .filter(|a| !seen.contains(*a))
            .copied()
            .collect();
        for addr in gone {
            if let Some(l) = state.listeners.remove(&addr) {
                tracing::info!(server = %l.config().name, %addr, "stopped listening");
                tokio::spawn(l.shutdown(DRAIN_TIMEOUT));
            }
        }
        state.servers = server_names;
        Ok(())
    }

    /// The address an HTTPServer is listening on.
    pub fn server_addr(&self, name: &str) -> Option<SocketAddr> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = state.servers.get(name)?;
        state.listeners.get(key).map(|l| l.local_addr)
    }

    /// Open client connections of an HTTPServer.
    pub fn open_connections(&self, name: &str) -> Option<usize> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = state.servers.get(name)?;
        state.listeners.get(key).map(Listener::open_connections)
    }

    /// The built pipeline of that name.
    pub fn pipeline(&self, name: &str) -> Option<Arc<Pipeline>> {
        self.inner.pipelines.load().get(name).cloned()
    }

    /// Stops every listener: no new connections; open ones finish their in-flight requests, bounded by `grace`.
    /// Later `apply` calls do nothing.
    pub async fn shutdown(&self, grace: Duration) {
        let listeners: Vec<Listener> = {
            let mut state = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.closed = true;
            state.servers.clear();
            state.listeners.drain().map(|(_, l)| l).collect()
        };
        futures_util::future::join_all(listeners.into_iter().map(|l| l.shutdown(grace))).await;
        self.inner.pipelines.store(Arc::new(PipelineMap::default()));
    }
}
