//! The embedded gateway: a data plane inside the master that serves HTTPServer/Pipeline objects,
//! fed by this master's own config stream like any other proxy (same snapshots, ACK/NACK and status).

use meshgress_dataplane::{ProxyHandle, ProxyOptions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Starts the embedded gateway against the master's client gRPC address `client_addr`.
/// Its node id is `<master name>-gateway`, as shown by `meshctl status`.
pub fn start(client_addr: SocketAddr, node_name: &str) -> ProxyHandle {
    let target = dialable(client_addr);
    tracing::info!(master = %target, node = %node_name, "starting the embedded gateway");
    meshgress_dataplane::start(ProxyOptions {
        masters: vec![target.to_string()],
        node_id: format!("{node_name}-gateway"),
        role: "gateway".to_string(),
        service: String::new(),
    })
}

/// The address to dial for a listen address: a wildcard listen address is reached on loopback.
fn dialable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_dialed_on_loopback() {
        assert_eq!(
            dialable("0.0.0.0:2381".parse().unwrap()),
            "127.0.0.1:2381".parse().unwrap()
        );
        assert_eq!(
            dialable("[::]:2381".parse().unwrap()),
            "[::1]:2381".parse().unwrap()
        );
        assert_eq!(
            dialable("127.0.0.2:1".parse().unwrap()),
            "127.0.0.2:1".parse().unwrap()
        );
    }
}
