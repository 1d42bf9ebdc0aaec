//! The embedded gateway: a data plane inside the master that serves HTTPServer/Pipeline objects,
//! fed by this master's own config stream like any other proxy.

use std::net::SocketAddr;

/// Starts the embedded gateway against the master's client gRPC address `client_addr`.
pub fn spawn(client_addr: SocketAddr, node_name: &str) -> tokio::task::JoinHandle<()> {
    let node_name = node_name.to_owned();
    tokio::spawn(async move {
        tracing::info!(%client_addr, node = %node_name, "embedded gateway not wired yet");
    })
}
