//! Configuration of one master process.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// Human name of this member.
    pub name: String,
    /// Raft id of this member.
    pub node_id: u64,
    /// Client gRPC address (admin, config discovery, health, reflection); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Raft peer gRPC address; port 0 picks a free port.
    pub peer_listen: SocketAddr,
    /// Directory of the on-disk store.
    pub data_dir: PathBuf,
    /// Raft tuning.
    pub raft: RaftTuning,
}

/// Raft timing and log-compaction settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftTuning {
    /// Leader heartbeat interval, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Election timeout range, in milliseconds.
    pub election_timeout_ms: (u64, u64),
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the last snapshot (the rest is purged).
    pub keep_behind_snapshot: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        RaftTuning {
            heartbeat_interval_ms: 100,
            election_timeout_ms: (400, 800),
            snapshot_every: 500,
            keep_behind_snapshot: 100,
        }
    }
}

impl RaftTuning {
    /// The openraft configuration (not yet validated).
    pub fn to_openraft(&self) -> openraft::Config {
        openraft::Config {
            cluster_name: "meshgress".to_owned(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_ms.0,
            election_timeout_max: self.election_timeout_ms.1,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            max_payload_entries: 64,
            snapshot_max_chunk_size: 1024 * 1024,
            ..openraft::Config::default()
        }
    }
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            name: "master-1".to_owned(),
            node_id: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 2381)),
            peer_listen: SocketAddr::from(([127, 0, 0, 1], 2380)),
            data_dir: PathBuf::from("./data"),
            raft: RaftTuning::default(),
        }
    }
}
