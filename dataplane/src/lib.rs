//! Meshgress data plane: listeners (HTTP/1.1), the HTTPServer router, pipelines and filters, load balancing,
//! and the config client that keeps it in step with the masters.
//!
//! [`start`] runs the whole thing from a master's config stream; [`Runtime`] applies configurations directly
//! (the config client goes through the same [`Runtime::apply`]).

pub mod body;
pub mod config_client;
mod error;
pub mod filters;
pub mod fnv;
mod h1_guard;
pub mod ipfilter;
pub mod listener;
pub mod pipeline;
pub mod proxy;
pub mod realip;
pub mod router;
pub mod runtime;
pub mod service;
mod workers;

pub use error::DataplaneError;
pub use runtime::Runtime;

use std::time::Duration;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// How long [`ProxyHandle::shutdown`] lets in-flight requests finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What [`start`] needs to know.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Master addresses, `host:port` or `http://host:port`, tried in order for fail-over.
    pub masters: Vec<String>,
    /// This proxy's node id.
    pub node_id: String,
    /// `gateway` or `ingress`.
    pub role: String,
    /// Service name (empty for gateways and ingresses).
    pub service: String,
}

/// A running data plane.
pub struct ProxyHandle {
    runtime: Runtime,
    applied: watch::Receiver<String>,
    cancel: CancellationToken,
    client: JoinHandle<()>,
}

impl ProxyHandle {
    /// Watch the last applied snapshot version ("" before the first).
    pub fn applied_version(&self) -> watch::Receiver<String> {
        self.applied.clone()
    }

    /// The runtime (servers' addresses, built pipelines).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stop the config client and every listener (in-flight requests may finish, bounded by a short grace period).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.client.await;
        self.runtime.shutdown(SHUTDOWN_GRACE).await;
        tracing::info!("data plane stopped");
    }
}

/// Starts the config client and the runtime on the current tokio runtime.
pub fn start(opts: ProxyOptions) -> ProxyHandle {
    let runtime = Runtime::new();
    let (tx, rx) = watch::channel(String::new());
    let cancel = CancellationToken::new();
    let client_opts = config_client::ClientOptions {
        masters: opts
            .masters
            .iter()
            .flat_map(|m| m.split(','))
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
        node_id: opts.node_id,
        role: opts.role,
        service: opts.service,
    };
    let client = tokio::spawn(config_client::run(
        client_opts,
        runtime.clone(),
        tx,
        cancel.clone(),
    ));
    ProxyHandle {
        runtime,
        applied: rx,
        cancel,
        client,
    }
}
