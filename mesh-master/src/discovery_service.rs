//! The `ConfigDiscovery` service: one bidirectional stream per proxy, a full snapshot of the wanted kinds
//! whenever the store revision differs from what the proxy has, and ACK/NACK bookkeeping.

use crate::objects;
use crate::proxy_registry::ProxyRegistry;
use crate::store::state_machine::StateMachineStore;
use meshgress_proto::discovery::config_discovery_server::ConfigDiscovery;
use meshgress_proto::discovery::{DiscoveryRequest, DiscoveryResponse, Resource};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Roles a proxy may announce.
pub const ROLES: &[&str] = &["sidecar", "ingress", "gateway"];

/// The `ConfigDiscovery` gRPC service.
pub struct DiscoveryService {
    state: StateMachineStore,
    registry: ProxyRegistry,
    shutdown: watch::Receiver<bool>,
}

impl DiscoveryService {
    /// Serves snapshots of `state`, records proxies in `registry`, and ends every stream when `shutdown` turns true.
    pub fn new(
        state: StateMachineStore,
        registry: ProxyRegistry,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        DiscoveryService {
            state,
            registry,
            shutdown,
        }
    }
}

#[tonic::async_trait]
impl ConfigDiscovery for DiscoveryService {
    type StreamConfigStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream_config(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamConfigStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let session = Session {
            state: self.state.clone(),
            registry: self.registry.clone(),
            shutdown: self.shutdown.clone(),
            tx,
        };
        tokio::spawn(session.run(request.into_inner()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// One proxy's stream.
struct Session {
    state: StateMachineStore,
    registry: ProxyRegistry,
    shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
}

/// What the proxy announced in its first request.
struct Subscription {
    node_id: String,
    role: String,
    service: String,
    kinds: Vec<String>,
    version: String,
}

/// Per-stream send state.
struct Sent {
    /// The registry's id of this stream.
    stream: u64,
    /// The version the proxy has, or was last sent.
    version: String,
    /// The nonce of the last snapshot sent (0: none yet).
    nonce: u64,
}

/// The proxy went away.
struct Closed;

impl Session {
    async fn run(mut self, mut inbound: Streaming<DiscoveryRequest>) {
        let sub = match self.subscribe(&mut inbound).await {
            Ok(Some(sub)) => sub,
            Ok(None) => return,
            Err(status) => {
                let _ = self.tx.send(Err(status)).await;
                return;
            }
        };
        let stream = self
            .registry
            .connect(&sub.node_id, &sub.role, &sub.service, &sub.version);
        tracing::info!(node = %sub.node_id, role = %sub.role, version = %sub.version, kinds = ?sub.kinds, "proxy subscribed");
        // Subscribe before reading the store, so no change between the two is missed.
        let mut revisions = self.state.subscribe();
        let mut sent = Sent {
            stream,
            version: sub.version.clone(),
            nonce: 0,
        };
        if self.push_if_changed(&sub, &mut sent).await.is_ok() {
            self.serve(&sub, &mut sent, &mut inbound, &mut revisions)
                .await;
        }
        self.registry.disconnect(&sub.node_id, stream);
        tracing::info!(node = %sub.node_id, "proxy disconnected");
    }

    async fn serve(
        &mut self,
        sub: &Subscription,
        sent: &mut Sent,
        inbound: &mut Streaming<DiscoveryRequest>,
        revisions: &mut watch::Receiver<u64>,
    ) {
        loop {
            if *self.shutdown.borrow_and_update() {
                return;
            }
            tokio::select! {
                stopped = self.shutdown.changed() => {
                    if stopped.is_err() {
                        return;
                    }
                }
                changed = revisions.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    revisions.borrow_and_update();
                    if self.push_if_changed(sub, sent).await.is_err() {
                        return;
                    }
                }
                msg = inbound.message() => match msg {
                    Ok(Some(req)) => self.on_request(sub, sent, req),
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(node = %sub.node_id, %status, "config stream failed");
                        return;
                    }
                },
            }
        }
    }

    /// Reads and checks the first request; `None` when the stream ends first.
    async fn subscribe(
        &mut self,
        inbound: &mut Streaming<DiscoveryRequest>,
    ) -> Result<Option<Subscription>, Status> {
        if *self.shutdown.borrow_and_update() {
            return Ok(None);
        }
        let first = tokio::select! {
            _ = self.shutdown.changed() => return Ok(None),
            msg = inbound.message() => match msg {
                Ok(Some(m)) => m,
                Ok(None) | Err(_) => return Ok(None),
            },
        };
        let node = first
            .node
            .ok_or_else(|| Status::invalid_argument("the first request must carry node"))?;
        if node.id.is_empty() {
            return Err(Status::invalid_argument("node.id is required"));
        }
        if !ROLES.contains(&node.role.as_str()) {
            return Err(Status::invalid_argument(format!(
                "node.role {:?} is not one of {}",
                node.role,
                ROLES.join(", ")
            )));
        }
        let kinds = if first.kinds.is_empty() {
            objects::default_kinds()
        } else {
            first.kinds
        };
        Ok(Some(Subscription {
            node_id: node.id,
            role: node.role,
            service: node.service,
            kinds,
            version: first.version_info,
        }))
    }

    /// Sends a snapshot if the store's version differs from what the proxy has or was last sent.
    async fn push_if_changed(&self, sub: &Subscription, sent: &mut Sent) -> Result<(), Closed> {
        let (revision, objects) = self
            .state
            .select(|kind| objects::kind_wanted(&sub.kinds, kind));
        let version = revision.to_string();
        if version == sent.version {
            return Ok(());
        }
        sent.nonce += 1;
        sent.version = version.clone();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: objects
                .into_iter()
                .map(|o| Resource {
                    kind: o.kind,
                    name: o.name,
                    spec_json: o.spec_json,
                    update_revision: o.update_revision,
                })
                .collect(),
            nonce: sent.nonce.to_string(),
        };
        self.registry.sent(&sub.node_id, sent.stream, &version);
        tracing::debug!(node = %sub.node_id, %version, nonce = sent.nonce, "snapshot sent");
        // A proxy that stops reading must not hold the session past shutdown.
        let mut stop = self.shutdown.clone();
        tokio::select! {
            sent = self.tx.send(Ok(response)) => sent.map_err(|_| Closed),
            _ = stop.wait_for(|stop| *stop) => Err(Closed),
        }
    }

    /// Handles an ACK or NACK; answers to anything but the last snapshot are stale and ignored.
    fn on_request(&self, sub: &Subscription, sent: &Sent, req: DiscoveryRequest) {
        if sent.nonce == 0 || req.response_nonce != sent.nonce.to_string() {
            tracing::debug!(node = %sub.node_id, nonce = %req.response_nonce, "stale or unsolicited request ignored");
            self.registry.seen(&sub.node_id, sent.stream);
            return;
        }
        if req.error_detail.is_empty() {
            let version = if req.version_info.is_empty() {
                &sent.version
            } else {
                &req.version_info
            };
            self.registry.ack(&sub.node_id, sent.stream, version);
        } else {
            tracing::warn!(node = %sub.node_id, version = %sent.version, error = %req.error_detail, "proxy refused a snapshot");
            self.registry
                .nack(&sub.node_id, sent.stream, &sent.version, &req.error_detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::object_map::tests::{pipeline, server};
    use crate::test_support::{eventually, start_master, url};
    use meshgress_proto::admin::admin_client::AdminClient;
    use meshgress_proto::admin::{ProxyStatus, StatusRequest, WriteObjectRequest};
    use meshgress_proto::discovery::config_discovery_client::ConfigDiscoveryClient;
    use meshgress_proto::discovery::{DiscoveryRequest, DiscoveryResponse, Node};
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tonic::Streaming;
    use tonic::transport::Channel;

    /// A proxy's end of a config stream.
    struct Proxy {
        tx: mpsc::Sender<DiscoveryRequest>,
        rx: Streaming<DiscoveryResponse>,
    }

    impl Proxy {
        async fn connect(url: &str, id: &str, kinds: &[&str], version: &str) -> Proxy {
            let mut client = ConfigDiscoveryClient::connect(url.to_owned())
                .await
                .unwrap();
            let (tx, out) = mpsc::channel(8);
            tx.send(DiscoveryRequest {
                node: Some(Node {
                    id: id.into(),
                    role: "gateway".into(),
                    ..Default::default()
                }),
                kinds: kinds.iter().map(|k| k.to_string()).collect(),
                version_info: version.into(),
                ..Default::default()
            })
            .await
            .unwrap();
            let rx = client
                .stream_config(ReceiverStream::new(out))
                .await
                .unwrap()
                .into_inner();
            Proxy { tx, rx }
        }

        async fn next(&mut self) -> DiscoveryResponse {
            tokio::time::timeout(Duration::from_secs(5), self.rx.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        }

        async fn nothing_within(&mut self, wait: Duration) {
            if let Ok(msg) = tokio::time::timeout(wait, self.rx.message()).await {
                panic!("unexpected message {msg:?}");
            }
        }

        async fn answer(&self, nonce: &str, version: &str, error: &str) {
            let req = DiscoveryRequest {
                version_info: version.into(),
                response_nonce: nonce.into(),
                error_detail: error.into(),
                ..Default::default()
            };
            self.tx.send(req).await.unwrap();
        }
    }

    async fn status(admin: &AdminClient<Channel>, id: &str) -> ProxyStatus {
        let mut admin = admin.clone();
        let resp = admin
            .proxy_status(StatusRequest { node_id: id.into() })
            .await
            .unwrap()
            .into_inner();
        resp.proxies.into_iter().next().unwrap()
    }

    async fn wait_status(
        admin: &AdminClient<Channel>,
        id: &str,
        what: &str,
        check: impl Fn(&ProxyStatus) -> bool,
    ) {
        eventually(what, || async { check(&status(admin, id).await) }).await;
    }

    fn names(resp: &DiscoveryResponse) -> Vec<&str> {
        resp.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshots_acks_nacks_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let url = url(&master);
        let mut admin = AdminClient::connect(url.clone()).await.unwrap();
        let write = |spec_json: String| WriteObjectRequest { spec_json };
        admin
            .create_object(write(pipeline(
                "HTTPPipeline",
                "pipeline-demo",
                "http://127.0.0.1:9095",
            )))
            .await
            .unwrap();

        // Snapshot on subscribe.
        let mut proxy = Proxy::connect(&url, "gw-1", &[], "").await;
        let first = proxy.next().await;
        assert_eq!(
            (first.version_info.as_str(), first.nonce.as_str()),
            ("1", "1")
        );
        assert_eq!(names(&first), ["pipeline-demo"]);
        assert_eq!(first.resources[0].update_revision, 1);
        proxy.answer("1", "1", "").await;
        wait_status(&admin, "gw-1", "ACK of version 1", |s| {
            s.connected && s.acked_version == "1"
        })
        .await;

        // A write brings a new snapshot with a new nonce.
        admin
            .create_object(write(server("server-demo", 10080)))
            .await
            .unwrap();
        let second = proxy.next().await;
        assert_eq!(
            (second.version_info.as_str(), second.nonce.as_str()),
            ("2", "2")
        );
        assert_eq!(names(&second), ["pipeline-demo", "server-demo"]);
        let doc: serde_json::Value = serde_json::from_str(&second.resources[1].spec_json).unwrap();
        assert_eq!(doc["port"], 10080);

        // NACK is recorded; a stale answer (old nonce) is ignored.
        proxy.answer("2", "1", "filter proxy: bad pool").await;
        proxy.answer("1", "1", "").await;
        wait_status(&admin, "gw-1", "NACK of version 2", |s| {
            s.nacked_version == "2" && s.nack_error == "filter proxy: bad pool"
        })
        .await;
        let s = status(&admin, "gw-1").await;
        assert_eq!(
            (s.acked_version.as_str(), s.sent_version.as_str()),
            ("1", "2")
        );

        // The end of the stream marks the proxy disconnected.
        drop(proxy);
        wait_status(&admin, "gw-1", "disconnect", |s| !s.connected).await;

        // Resuming at the current version gets nothing until the next change.
        let mut proxy = Proxy::connect(&url, "gw-1", &[], "2").await;
        proxy.nothing_within(Duration::from_millis(300)).await;
        wait_status(&admin, "gw-1", "reconnect", |s| s.connected).await;
        admin
            .create_object(write(server("server-b", 10081)))
            .await
            .unwrap();
        let third = proxy.next().await;
        assert_eq!(
            (third.version_info.as_str(), third.nonce.as_str()),
            ("3", "1")
        );
        assert_eq!(names(&third), ["pipeline-demo", "server-b", "server-demo"]);
        proxy.answer("1", "3", "").await;
        wait_status(&admin, "gw-1", "ACK of version 3", |s| {
            s.acked_version == "3" && s.nacked_version.is_empty() && s.nack_error.is_empty()
        })
        .await;

        // A proxy asking for one kind gets only that kind; a stale version gets the current snapshot.
        let mut servers_only = Proxy::connect(&url, "gw-2", &["HTTPServer"], "1").await;
        let snap = servers_only.next().await;
        assert_eq!(snap.version_info, "3");
        assert_eq!(names(&snap), ["server-b", "server-demo"]);

        master.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_without_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let mut client = ConfigDiscoveryClient::connect(url(&master)).await.unwrap();
        let req = DiscoveryRequest {
            kinds: vec!["HTTPServer".into()],
            ..Default::default()
        };
        let mut rx = client
            .stream_config(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let err = rx.message().await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), "the first request must carry node");
        master.shutdown().await.unwrap();
    }
}
