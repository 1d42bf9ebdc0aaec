//! Starting and stopping a master: open the store, start Raft, bind and serve the peer and client gRPC ports.

use crate::admin_service::AdminService;
use crate::cluster::Cluster;
use crate::config::MasterConfig;
use crate::discovery_service::DiscoveryService;
use crate::error::Error;
use crate::peers::{Liveness, MAX_RAFT_MESSAGE_BYTES, PeerChannels};
use crate::proxy_registry::ProxyRegistry;
use crate::raft_network::Network;
use crate::raft_service::RaftTransportService;
use crate::store::log::LogStore;
use crate::store::state_machine::StateMachineStore;
use crate::store::{MasterNode, OpenFlag, Raft};
use meshgress_proto::admin::admin_server::AdminServer;
use meshgress_proto::discovery::config_discovery_server::ConfigDiscoveryServer;
use meshgress_proto::raft::raft_transport_server::RaftTransportServer;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

/// Largest client gRPC message accepted, in bytes.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long a new single-node cluster may take to elect itself before `start` returns anyway.
const ELECTION_WAIT: Duration = Duration::from_secs(5);
/// How long shutdown waits for a server to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

type ServerTask = JoinHandle<()>;

/// A running master. Call [`RunningMaster::shutdown`] to stop it cleanly; dropping it only stops serving.
pub struct RunningMaster {
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    cluster: Cluster,
    proxies: ProxyRegistry,
    shutdown_tx: watch::Sender<bool>,
    failures: mpsc::Receiver<String>,
    files: Vec<OpenFlag>,
    client_server: ServerTask,
    peer_server: ServerTask,
}

/// Starts a master: opens (or initializes) the store in `config.data_dir`, binds both ports and serves them.
/// Returns once both listeners are bound and serving.
pub async fn start(config: MasterConfig) -> Result<RunningMaster, Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let log_path = config.data_dir.join("raft-log.redb");
    let log = LogStore::open(&log_path).map_err(|source| Error::Store {
        path: log_path,
        source,
    })?;
    let sm_path = config.data_dir.join("state.redb");
    let state = StateMachineStore::open(&sm_path).map_err(|source| Error::Store {
        path: sm_path,
        source,
    })?;
    let files = vec![log.open_flag(), state.open_flag()];

    let peer_listener = bind("raft peer gRPC", config.peer_listen).await?;
    let client_listener = bind("client gRPC", config.listen).await?;
    let peer_addr = local_addr("raft peer gRPC", config.peer_listen, &peer_listener)?;
    let client_addr = local_addr("client gRPC", config.listen, &client_listener)?;
    let node = MasterNode {
        name: config.name.clone(),
        client_addr: client_addr.to_string(),
        peer_addr: peer_addr.to_string(),
    };

    let raft_config = Arc::new(
        config
            .raft
            .to_openraft()
            .validate()
            .map_err(|e| Error::RaftConfig(Box::new(e)))?,
    );
    let channels = PeerChannels::default();
    let liveness = Liveness::default();
    let network = Network::new(channels.clone(), liveness.clone());
    let raft = Raft::new(config.node_id, raft_config, network, log, state.clone())
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (failure_tx, failures) = mpsc::channel(4);

    let transport =
        RaftTransportServer::new(RaftTransportService::new(raft.clone(), liveness.clone()))
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
    let peer_server = spawn_server(
        "raft peer gRPC",
        Server::builder()
            .add_service(transport)
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(peer_listener),
                stopped(shutdown_rx.clone()),
            ),
        failure_tx.clone(),
    );

    if let Err(e) = bootstrap(&raft, config.node_id, &node).await {
        let _ = shutdown_tx.send(true);
        let _ = raft.shutdown().await;
        return Err(e);
    }
    watch_raft(&raft, failure_tx.clone());

    let cluster = Cluster::new(
        raft,
        state.clone(),
        config.node_id,
        node,
        channels,
        liveness,
    );
    let proxies = ProxyRegistry::default();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AdminServer<AdminService>>().await;
    health
        .set_serving::<ConfigDiscoveryServer<DiscoveryService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(meshgress_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let admin = AdminServer::new(AdminService::new(cluster.clone(), proxies.clone()))
        .max_decoding_message_size(MAX_CLIENT_MESSAGE_BYTES);
    let discovery = ConfigDiscoveryServer::new(DiscoveryService::new(
        state,
        proxies.clone(),
        shutdown_rx.clone(),
    ))
    .max_decoding_message_size(MAX_CLIENT_MESSAGE_BYTES);
    let client_server = spawn_server(
        "client gRPC",
        Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(admin)
            .add_service(discovery)
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(client_listener),
                stopped(shutdown_rx),
            ),
        failure_tx,
    );

    tracing::info!("mesh-master raft peer gRPC listening on {peer_addr}");
    tracing::info!("mesh-master client gRPC listening on {client_addr}");
    Ok(RunningMaster {
        client_addr,
        peer_addr,
        cluster,
        proxies,
        shutdown_tx,
        failures,
        files,
        client_server,
        peer_server,
    })
}

/// Initializes a new single-node cluster when the store is empty, and waits (a bounded time) for a leader.
async fn bootstrap(raft: &Raft, id: u64, node: &MasterNode) -> Result<(), Error> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
    if initialized {
        tracing::info!(id, "recovered the store from disk");
    } else {
        raft.initialize(BTreeMap::from([(id, node.clone())]))
            .await
            .map_err(|e| Error::Raft(format!("cannot initialize the cluster: {e}")))?;
        tracing::info!(id, name = %node.name, "initialized a new single-node cluster");
    }
    let sole_voter = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        voters == [id]
    };
    if sole_voter
        && let Err(e) = raft
            .wait(Some(ELECTION_WAIT))
            .metrics(|m| m.current_leader == Some(id), "self-election")
            .await
    {
        tracing::warn!(error = %e, "no leader elected yet; writes wait for one");
    }
    Ok(())
}

/// Reports a fatal Raft error (e.g. a storage failure) as a failure of the master.
fn watch_raft(raft: &Raft, failures: mpsc::Sender<String>) {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        loop {
            let fatal = metrics
                .borrow_and_update()
                .running_state
                .as_ref()
                .err()
                .map(ToString::to_string);
            if let Some(e) = fatal {
                let _ = failures.send(format!("raft stopped: {e}")).await;
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    addr: SocketAddr,
    listener: &TcpListener,
) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|source| Error::Bind { what, addr, source })
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn spawn_server<F>(what: &'static str, serve: F, failures: mpsc::Sender<String>) -> ServerTask
where
    F: std::future::Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "{what} server failed");
            let _ = failures.send(format!("{what} server failed: {e}")).await;
        }
    })
}

impl RunningMaster {
    /// The bound client gRPC address (admin, config discovery, health, reflection).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The bound Raft peer gRPC address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The store handle (reads, writes, members).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The config-stream proxy records.
    pub fn proxies(&self) -> &ProxyRegistry {
        &self.proxies
    }

    /// Resolves when a server or the Raft node fails, with what happened.
    pub async fn failed(&mut self) -> Error {
        match self.failures.recv().await {
            Some(message) => Error::Server(message),
            None => Error::Server("every server task ended".to_owned()),
        }
    }

    /// Stops serving (ending config streams), stops Raft, and waits for everything to finish and the store
    /// files to be closed (so the data directory can be opened again).
    pub async fn shutdown(self) -> Result<(), Error> {
        let RunningMaster {
            cluster,
            shutdown_tx,
            files,
            client_server,
            peer_server,
            ..
        } = self;
        let _ = shutdown_tx.send(true);
        drain("client gRPC", client_server).await;
        let raft_result = cluster.raft().shutdown().await;
        drain("raft peer gRPC", peer_server).await;
        drop(cluster);
        raft_result.map_err(|e| Error::Raft(format!("raft did not stop cleanly: {e}")))?;
        // Background tasks (Raft's state-machine worker, config streams) let go of the store shortly after.
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while files.iter().any(OpenFlag::is_open) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("the store files are still in use after shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("mesh-master stopped");
        Ok(())
    }
}

async fn drain(what: &str, mut task: ServerTask) {
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut task)
        .await
        .is_err()
    {
        tracing::warn!("{what} server did not drain in {DRAIN_TIMEOUT:?}; closing it");
        task.abort();
        let _ = task.await;
    }
}
