//! openraft's network over the `RaftTransport` gRPC service: each request is openraft's own message as JSON.

use crate::peers::{Liveness, PeerChannels};
use crate::store::{MasterNode, NodeId, TypeConfig};
use meshgress_proto::raft::RaftPayload;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Encodes a transport payload.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<RaftPayload, serde_json::Error> {
    Ok(RaftPayload {
        data: serde_json::to_vec(value)?,
    })
}

/// Decodes a transport payload.
pub(crate) fn decode<T: DeserializeOwned>(payload: &RaftPayload) -> Result<T, serde_json::Error> {
    serde_json::from_slice(&payload.data)
}

/// Creates a [`PeerConnection`] per replication target.
#[derive(Clone)]
pub struct Network {
    channels: PeerChannels,
    liveness: Liveness,
}

impl Network {
    /// A network over `channels`, recording replies in `liveness`.
    pub fn new(channels: PeerChannels, liveness: Liveness) -> Self {
        Network { channels, liveness }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &MasterNode) -> PeerConnection {
        PeerConnection {
            target,
            addr: node.peer_addr.clone(),
            channels: self.channels.clone(),
            liveness: self.liveness.clone(),
        }
    }
}

/// The client side of the Raft transport to one peer.
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    channels: PeerChannels,
    liveness: Liveness,
}

/// Which transport rpc to call.
#[derive(Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, MasterNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self
            .channels
            .client(&self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let call = async {
            match rpc {
                Rpc::AppendEntries => client.append_entries(payload).await,
                Rpc::Vote => client.vote(payload).await,
                Rpc::InstallSnapshot => client.install_snapshot(payload).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Ok(Err(status)) => return Err(RPCError::Network(NetworkError::new(&status))),
            Err(elapsed) => return Err(RPCError::Network(NetworkError::new(&elapsed))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.liveness.seen(self.target);
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, MasterNode, RaftError<NodeId>>>
    {
        self.call(Rpc::AppendEntries, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, MasterNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Rpc::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, MasterNode, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl()).await
    }
}
