//! The config client: one discovery stream to a master at a time, snapshots applied through the [`Runtime`],
//! each ACKed or NACKed; fail-over across masters with exponential back-off and jitter. While no master
//! answers the last good configuration keeps serving.

use crate::{error::DataplaneError, runtime::Runtime};
use meshgress_proto::discovery::{
    DiscoveryRequest, DiscoveryResponse, Node, config_discovery_client::ConfigDiscoveryClient,
};
use meshgress_spec::Object;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Object kinds a gateway or ingress asks for.
pub const KINDS: &[&str] = &["HTTPServer", "HTTPPipeline", "Pipeline"];
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Largest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Who the proxy is and where the masters are.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Master addresses (`host:port` or `http://host:port`), tried in order.
    pub masters: Vec<String>,
    /// Node id.
    pub node_id: String,
    /// `gateway`, `ingress` or `sidecar`.
    pub role: String,
    /// Service name (sidecars).
    pub service: String,
}

/// Normalises a master address into an endpoint URL.
pub fn endpoint_url(master: &str) -> String {
    let m = master.trim();
    if m.starts_with("http://") || m.starts_with("https://") {
        m.to_string()
    } else {
        format!("http://{m}")
    }
}

/// Parses a snapshot's resources into objects; the first bad one fails the snapshot.
pub fn parse_snapshot(rsp: &DiscoveryResponse) -> Result<Vec<Object>, DataplaneError> {
    rsp.resources
        .iter()
        .map(|r| {
            let invalid = |message: String| DataplaneError::InvalidObject {
                kind: r.kind.clone(),
                name: r.name.clone(),
                message,
            };
            let doc: serde_json::Value = serde_json::from_str(&r.spec_json)
                .map_err(|e| invalid(format!("spec_json is not JSON: {e}")))?;
            meshgress_spec::parse_object(&doc).map_err(|e| invalid(e.to_string()))
        })
        .collect()
}

/// An error with its sources, `outer: inner: root`.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = e.source();
    }
    text
}

/// Runs until `cancel` fires.
pub async fn run(
    opts: ClientOptions,
    runtime: Runtime,
    applied: watch::Sender<String>,
    cancel: CancellationToken,
) {
    let masters: Vec<String> = opts
        .masters
        .iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| endpoint_url(m))
        .collect();
    if masters.is_empty() {
        tracing::error!("no master address given; serving without configuration updates");
        cancel.cancelled().await;
        return;
    }
    let mut backoff = BACKOFF_MIN;
    let mut index = 0usize;
    loop {
        let master = &masters[index % masters.len()];
        let got_snapshot = tokio::select! {
            _ = cancel.cancelled() => return,
            r = session(master, &opts, &runtime, &applied) => match r {
                Ok(got) => {
                    tracing::warn!(%master, "config stream closed by the master");
                    got
                }
                Err((got, e)) => {
                    tracing::warn!(%master, error = %e, "config stream failed");
                    got
                }
            },
        };
        if got_snapshot {
            backoff = BACKOFF_MIN;
        }
        index = index.wrapping_add(1);
        // Full jitter between half the delay and the delay.
        let half = backoff / 2;
        let delay = half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One stream to one master. Returns whether a snapshot was received (with the error when it failed).
async fn session(
    master: &str,
    opts: &ClientOptions,
    runtime: &Runtime,
    applied: &watch::Sender<String>,
) -> Result<bool, (bool, String)> {
    let endpoint = tonic::transport::Endpoint::from_shared(master.to_string())
        .map_err(|e| (false, format!("bad master address: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| (false, format!("connect: {}", chain(&e))))?;
    let mut client = ConfigDiscoveryClient::new(channel);
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(4);
    let first = DiscoveryRequest {
        node: Some(Node {
            id: opts.node_id.clone(),
            role: opts.role.clone(),
            service: opts.service.clone(),
            labels: Default::default(),
        }),
        kinds: KINDS.iter().map(|k| k.to_string()).collect(),
        version_info: applied.borrow().clone(),
        response_nonce: String::new(),
        error_detail: String::new(),
    };
    tx.send(first)
        .await
        .map_err(|_| (false, "request stream closed".to_string()))?;
    let mut stream = client
        .stream_config(ReceiverStream::new(rx))
        .await
        .map_err(|e| (false, format!("open stream: {e}")))?
        .into_inner();
    tracing::info!(%master, "config stream open");
    let mut got = false;
    loop {
        let rsp = match stream.message().await {
            Ok(Some(rsp)) => rsp,
            Ok(None) => return Ok(got),
            Err(status) => return Err((got, format!("stream: {status}"))),
        };
        got = true;
        let outcome = parse_snapshot(&rsp)
            .and_then(|objects| runtime.apply(objects))
            .map_err(|e| e.to_string());
        let previous = applied.borrow().clone();
        let answer = match outcome {
            Ok(()) => {
                tracing::info!(version = %rsp.version_info, objects = rsp.resources.len(), "applied config snapshot");
                applied.send_replace(rsp.version_info.clone());
                DiscoveryRequest {
                    version_info: rsp.version_info.clone(),
                    response_nonce: rsp.nonce.clone(),
                    ..Default::default()
                }
            }
            Err(e) => {
                tracing::warn!(version = %rsp.version_info, error = %e, "rejected config snapshot; keeping the previous one");
                DiscoveryRequest {
                    version_info: previous,
                    response_nonce: rsp.nonce.clone(),
                    error_detail: e,
                    ..Default::default()
                }
            }
        };
        tx.send(answer)
            .await
            .map_err(|_| (got, "request stream closed".to_string()))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_url("127.0.0.1:2381"), "http://127.0.0.1:2381");
        assert_eq!(endpoint_url(" http://m:1 "), "http://m:1");
    }
}
