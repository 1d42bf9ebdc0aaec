//! Connections to other masters' Raft peer services, and when each was last heard from.

use crate::store::NodeId;
use meshgress_proto::raft::raft_transport_client::RaftTransportClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tonic::transport::{Channel, Endpoint};

/// Largest Raft transport message accepted or sent (log batches and snapshot chunks), in bytes.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Lazily connected gRPC channels to peers, by peer address; cheap to clone.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerChannels {
    /// A Raft transport client for the peer at `addr` (`host:port`); connects on first use.
    pub fn client(
        &self,
        addr: &str,
    ) -> Result<RaftTransportClient<Channel>, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let channel = Endpoint::from_shared(format!("http://{addr}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_lazy();
                channels.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES))
    }
}

/// When each peer was last heard from (a reply to our RPC, or an RPC from the leader); cheap to clone.
#[derive(Clone, Default)]
pub struct Liveness {
    seen: Arc<Mutex<HashMap<NodeId, SystemTime>>>,
}

impl Liveness {
    /// Records that `node` was heard from now.
    pub fn seen(&self, node: NodeId) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node, SystemTime::now());
    }

    /// When `node` was last heard from.
    pub fn last_seen(&self, node: NodeId) -> Option<SystemTime> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&node)
            .copied()
    }
}
