//! The server side of the Raft transport: hands peers' messages to the local Raft node, and runs
//! writes forwarded by followers.

use crate::peers::Liveness;
use crate::raft_network::{decode, encode};
use crate::store::{Command, Raft, TypeConfig};
use meshgress_proto::raft::RaftPayload;
use meshgress_proto::raft::raft_transport_server::RaftTransport;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tonic::{Request, Response, Status};

/// The `RaftTransport` gRPC service of one master.
pub struct RaftTransportService {
    raft: Raft,
    liveness: Liveness,
}

impl RaftTransportService {
    /// A service feeding `raft`; RPCs from a leader are recorded in `liveness`.
    pub fn new(raft: Raft, liveness: Liveness) -> Self {
        RaftTransportService { raft, liveness }
    }
}

fn bad_payload(what: &str, e: serde_json::Error) -> Status {
    Status::invalid_argument(format!("malformed {what} payload: {e}"))
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    encode(value)
        .map(Response::new)
        .map_err(|e| Status::internal(format!("cannot encode the reply: {e}")))
}

#[tonic::async_trait]
impl RaftTransport for RaftTransportService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode(request.get_ref()).map_err(|e| bad_payload("append-entries", e))?;
        if rpc.vote.is_committed()
            && let Some(leader) = rpc.vote.leader_id().voted_for()
        {
            self.liveness.seen(leader);
        }
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: VoteRequest<u64> =
            decode(request.get_ref()).map_err(|e| bad_payload("vote", e))?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> =
            decode(request.get_ref()).map_err(|e| bad_payload("install-snapshot", e))?;
        reply(&self.raft.install_snapshot(rpc).await)
    }

    async fn client_write(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let cmd: Command = decode(request.get_ref()).map_err(|e| bad_payload("client-write", e))?;
        reply(&self.raft.client_write(cmd).await)
    }
}

#[cfg(test)]
mod tests {
    use crate::RaftTuning;
    use crate::raft_network::{decode, encode};
    use crate::store::object_map::tests::server;
    use crate::store::{Command, CommandOutcome, MasterNode, NodeId, TypeConfig};
    use crate::test_support::{eventually, start_master, start_master_with};
    use meshgress_proto::raft::RaftPayload;
    use meshgress_proto::raft::raft_transport_client::RaftTransportClient;
    use openraft::error::{ClientWriteError, RaftError};
    use openraft::raft::ClientWriteResponse;

    type WriteResult = Result<
        ClientWriteResponse<TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, MasterNode>>,
    >;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forwarded_writes_are_committed_by_the_leader() {
        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let mut peer = RaftTransportClient::connect(format!("http://{}", master.peer_addr()))
            .await
            .unwrap();

        let payload = encode(&Command::Create {
            doc: server("fwd", 10080),
        })
        .unwrap();
        let reply = peer.client_write(payload).await.unwrap().into_inner();
        let result: WriteResult = decode(&reply).unwrap();
        match result.unwrap().data {
            CommandOutcome::Written {
                object,
                revision: 1,
                created: true,
            } => assert_eq!(object.name, "fwd"),
            other => panic!("{other:?}"),
        }
        assert!(master.cluster().state().get("fwd").is_some());

        let err = peer
            .client_write(RaftPayload {
                data: b"{oops".to_vec(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        master.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshots_bound_the_log_and_restart_recovers_from_them() {
        let dir = tempfile::tempdir().unwrap();
        let tuning = RaftTuning {
            snapshot_every: 10,
            keep_behind_snapshot: 2,
            ..RaftTuning::default()
        };
        let master = start_master_with(dir.path(), tuning.clone()).await;
        for i in 0..40u16 {
            let out = master
                .cluster()
                .write(Command::Create {
                    doc: server(&format!("s{i}"), 10000 + i),
                })
                .await;
            assert!(matches!(out, Ok(CommandOutcome::Written { .. })), "{out:?}");
        }
        let raft = master.cluster().raft().clone();
        eventually("a snapshot and a purge", || {
            let m = raft.metrics().borrow().clone();
            async move {
                m.snapshot.is_some_and(|s| s.index >= 30) && m.purged.is_some_and(|p| p.index >= 20)
            }
        })
        .await;
        master.shutdown().await.unwrap();

        let master = start_master_with(dir.path(), tuning).await;
        let state = master.cluster().state();
        assert_eq!(state.revision(), 40);
        assert_eq!(state.select(|_| true).1.len(), 40);
        let out = master
            .cluster()
            .write(Command::Delete { name: "s0".into() })
            .await
            .unwrap();
        assert_eq!(
            out,
            CommandOutcome::Deleted {
                name: "s0".into(),
                revision: 41
            }
        );
        master.shutdown().await.unwrap();
    }
}
