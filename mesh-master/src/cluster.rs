//! The handle the services use: writes through Raft (forwarded to the leader when this node is not it),
//! reads from the local state machine, and the member list.

use crate::peers::{Liveness, PeerChannels};
use crate::raft_network::{decode, encode};
use crate::store::state_machine::StateMachineStore;
use crate::store::{Command, CommandOutcome, MasterNode, NodeId, Raft, TypeConfig};
use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use std::time::{Duration, Instant, SystemTime};

/// How long a write waits for a leader to be elected before failing.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How many times a write follows "forward to leader" answers.
const MAX_FORWARD_HOPS: usize = 3;
/// Pause before retrying a write that found no usable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How long a write may wait for its commit (e.g. without a quorum) before failing.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

type WriteResult = Result<
    ClientWriteResponse<TypeConfig>,
    RaftError<NodeId, ClientWriteError<NodeId, MasterNode>>,
>;

/// Why a write could not be committed (a refused command is not an error: see [`CommandOutcome::Rejected`]).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No leader is known, even after waiting for an election.
    #[error("no leader is elected; try again later")]
    NoLeader,
    /// The leader could not be reached.
    #[error("cannot reach leader {leader} at {addr}: {message}")]
    Forward {
        /// The leader's id.
        leader: NodeId,
        /// Its peer address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The Raft node failed or is shutting down.
    #[error("the store is unavailable: {0}")]
    Raft(String),
    /// The write was not committed in time; it may still be committed later.
    #[error("the write was not committed within {0:?}; it may still take effect")]
    Timeout(Duration),
}

/// One member of the cluster as reported by [`Cluster::members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Raft id.
    pub id: NodeId,
    /// Its addresses and name.
    pub node: MasterNode,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: &'static str,
    /// Last time it was heard from (now for the node answering).
    pub last_heartbeat: Option<SystemTime>,
    /// Whether it is running and recently heard from.
    pub healthy: bool,
}

/// Shared handle to the local master's store; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    raft: Raft,
    state: StateMachineStore,
    id: NodeId,
    node: MasterNode,
    channels: PeerChannels,
    liveness: Liveness,
    stale_after: Duration,
}

impl Cluster {
    /// A handle over a running Raft node `raft` whose state machine is `state`.
    pub fn new(
        raft: Raft,
        state: StateMachineStore,
        id: NodeId,
        node: MasterNode,
        channels: PeerChannels,
        liveness: Liveness,
    ) -> Self {
        let stale_after =
            Duration::from_millis(raft.config().election_timeout_max.saturating_mul(2));
        Cluster {
            raft,
            state,
            id,
            node,
            channels,
            liveness,
            stale_after,
        }
    }

    /// The local state machine (reads and the revision feed).
    pub fn state(&self) -> &StateMachineStore {
        &self.state
    }

    /// The Raft node.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Commits `cmd` through the leader and returns its outcome.
    pub async fn write(&self, cmd: Command) -> Result<CommandOutcome, WriteError> {
        tokio::time::timeout(COMMIT_TIMEOUT, self.propose(cmd))
            .await
            .unwrap_or(Err(WriteError::Timeout(COMMIT_TIMEOUT)))
    }

    async fn propose(&self, cmd: Command) -> Result<CommandOutcome, WriteError> {
        let deadline = Instant::now() + LEADER_WAIT;
        let mut hops = 0;
        let mut result = self.raft.client_write(cmd.clone()).await;
        loop {
            let forward = match result {
                Ok(resp) => return Ok(resp.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f,
                Err(RaftError::APIError(e @ ClientWriteError::ChangeMembershipError(_))) => {
                    return Err(WriteError::Raft(e.to_string()));
                }
                Err(RaftError::Fatal(e)) => return Err(WriteError::Raft(e.to_string())),
            };
            match (forward.leader_id, forward.leader_node) {
                (Some(leader), Some(node)) if leader != self.id && hops < MAX_FORWARD_HOPS => {
                    hops += 1;
                    result = self.forward(leader, &node.peer_addr, &cmd).await?;
                }
                _ => {
                    if !self.wait_for_leader(deadline).await {
                        return Err(WriteError::NoLeader);
                    }
                    // The leader may be known before it accepts writes (or is this node, still starting).
                    tokio::time::sleep(RETRY_PAUSE).await;
                    result = self.raft.client_write(cmd.clone()).await;
                }
            }
        }
    }

    /// Sends `cmd` to the leader's `ClientWrite` rpc.
    async fn forward(
        &self,
        leader: NodeId,
        addr: &str,
        cmd: &Command,
    ) -> Result<WriteResult, WriteError> {
        let fail = |message: String| WriteError::Forward {
            leader,
            addr: addr.to_owned(),
            message,
        };
        tracing::debug!(leader, addr, "forwarding a write to the leader");
        let payload = encode(cmd).map_err(|e| fail(e.to_string()))?;
        let mut client = self
            .channels
            .client(addr)
            .map_err(|e| fail(e.to_string()))?;
        let reply = client
            .client_write(payload)
            .await
            .map_err(|s| fail(s.message().to_owned()))?;
        decode(reply.get_ref()).map_err(|e| fail(format!("malformed reply: {e}")))
    }

    /// Waits until some leader is known; false if none is by `deadline`.
    async fn wait_for_leader(&self, deadline: Instant) -> bool {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return false;
        }
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is elected")
            .await
            .is_ok()
    }

    /// Every member of the cluster, sorted by id, and the leader's id if one is known.
    pub fn members(&self) -> (Vec<MemberInfo>, Option<NodeId>) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let now = SystemTime::now();
        let mut members: Vec<MemberInfo> = membership
            .nodes()
            .map(|(&id, node)| {
                let role = if Some(id) == metrics.current_leader {
                    "leader"
                } else if id == self.id {
                    match metrics.state {
                        ServerState::Leader => "leader",
                        ServerState::Candidate => "candidate",
                        ServerState::Learner => "learner",
                        ServerState::Follower | ServerState::Shutdown => "follower",
                    }
                } else if voters.contains(&id) {
                    "follower"
                } else {
                    "learner"
                };
                if id == self.id {
                    // Report the addresses this process is bound to right now.
                    return MemberInfo {
                        id,
                        node: self.node.clone(),
                        role,
                        last_heartbeat: Some(now),
                        healthy: metrics.running_state.is_ok(),
                    };
                }
                let last = self.liveness.last_seen(id);
                let healthy = last
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age <= self.stale_after);
                MemberInfo {
                    id,
                    node: node.clone(),
                    role,
                    last_heartbeat: last,
                    healthy,
                }
            })
            .collect();
        members.sort_by_key(|m| m.id);
        (members, metrics.current_leader)
    }
}
