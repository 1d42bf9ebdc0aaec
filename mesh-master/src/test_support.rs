//! Helpers for tests that run a whole master in-process.

use crate::{MasterConfig, RaftTuning, RunningMaster, start};
use std::path::Path;
use std::time::Duration;

/// Starts a master on OS-assigned ports with its store in `dir`.
pub(crate) async fn start_master(dir: &Path) -> RunningMaster {
    start_master_with(dir, RaftTuning::default()).await
}

/// Starts a master on OS-assigned ports with its store in `dir` and the given Raft tuning.
pub(crate) async fn start_master_with(dir: &Path, raft: RaftTuning) -> RunningMaster {
    let config = MasterConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        peer_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        raft,
        ..MasterConfig::default()
    };
    start(config).await.unwrap()
}

/// The client URL of a running master.
pub(crate) fn url(master: &RunningMaster) -> String {
    format!("http://{}", master.client_addr())
}

/// Polls `check` until it holds (panics after 5 s).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
