//! The config client against an in-process fake master: subscribe, ACK, NACK, resume, fail-over, shutdown.

mod common;

use common::*;
use meshgress_dataplane::{ProxyOptions, start};
use meshgress_proto::discovery::{
    DiscoveryRequest, DiscoveryResponse, Resource,
    config_discovery_server::{ConfigDiscovery, ConfigDiscoveryServer},
};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

type Session = (
    Streaming<DiscoveryRequest>,
    mpsc::Sender<Result<DiscoveryResponse, Status>>,
);

struct Fake {
    sessions: mpsc::UnboundedSender<Session>,
}

#[tonic::async_trait]
impl ConfigDiscovery for Fake {
    type StreamConfigStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream_config(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamConfigStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let _ = self.sessions.send((req.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn fake_master() -> (
    u16,
    mpsc::UnboundedReceiver<Session>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(ConfigDiscoveryServer::new(Fake { sessions: tx }))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    (port, rx, task)
}

fn snapshot(version: &str, nonce: &str, yaml: &str) -> DiscoveryResponse {
    let resources = objects(yaml)
        .into_iter()
        .map(|o| Resource {
            kind: o.kind().to_string(),
            name: o.name().to_string(),
            spec_json: o.to_json().to_string(),
            update_revision: 1,
        })
        .collect();
    DiscoveryResponse {
        version_info: version.into(),
        resources,
        nonce: nonce.into(),
    }
}

async fn next_session(rx: &mut mpsc::UnboundedReceiver<Session>) -> Session {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("client must connect")
        .unwrap()
}

async fn next_request(s: &mut Streaming<DiscoveryRequest>) -> DiscoveryRequest {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("client must answer")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn subscribes_acks_nacks_resumes_and_fails_over() {
    let (master_port, mut sessions, master) = fake_master().await;
    let dead = free_port();
    let handle = start(ProxyOptions {
        masters: vec![
            format!("127.0.0.1:{dead}"),
            format!("http://127.0.0.1:{master_port}"),
        ],
        node_id: "gw-1".into(),
        role: "gateway".into(),
        service: String::new(),
    });
    let mut applied = handle.applied_version();
    assert_eq!(*applied.borrow(), "");

    let (mut reqs, tx) = next_session(&mut sessions).await;
    let first = next_request(&mut reqs).await;
    let node = first.node.expect("first request names the node");
    assert_eq!((node.id.as_str(), node.role.as_str()), ("gw-1", "gateway"));
    assert_eq!(first.kinds, ["HTTPServer", "HTTPPipeline", "Pipeline"]);
    assert_eq!(first.version_info, "");

    // A good snapshot: applied and ACKed.
    let up = fixed("from-master").await;
    let port = free_port();
    let good = format!(
        "{}\n---\n{}",
        simple_server("s", port, "p", ""),
        proxy_pipeline("p", &[up.url()])
    );
    tx.send(Ok(snapshot("5", "n1", &good))).await.unwrap();
    let ack = next_request(&mut reqs).await;
    assert_eq!(
        (
            ack.version_info.as_str(),
            ack.response_nonce.as_str(),
            ack.error_detail.as_str()
        ),
        ("5", "n1", "")
    );
    tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|v| v == "5"))
        .await
        .unwrap()
        .unwrap();
    let c = client();
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
        "from-master"
    );

    // A snapshot that cannot be applied (port taken): NACK with the version still in force.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    let bad = format!("{good}\n---\n{}", simple_server("s2", taken, "p", ""));
    tx.send(Ok(snapshot("6", "n2", &bad))).await.unwrap();
    let nack = next_request(&mut reqs).await;
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("5", "n2")
    );
    assert!(nack.error_detail.contains("s2"), "{}", nack.error_detail);
    assert_eq!(*applied.borrow(), "5");
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
        "from-master"
    );

    // An invalid document: NACK too.
    let mut broken = snapshot("7", "n3", &good);
    broken.resources[0].spec_json = "{\"kind\":\"HTTPServer\",\"name\":\"s\",\"port\":0}".into();
    tx.send(Ok(broken)).await.unwrap();
    let nack = next_request(&mut reqs).await;
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("5", "n3")
    );
    assert!(nack.error_detail.contains("port"), "{}", nack.error_detail);

    // The master ends the stream: the client comes back and resumes from version 5.
    drop(tx);
    drop(reqs);
    let (mut reqs, tx) = next_session(&mut sessions).await;
    let resume = next_request(&mut reqs).await;
    assert_eq!(resume.version_info, "5");
    assert!(resume.node.is_some());

    // Every master gone: the last good configuration keeps serving.
    drop(tx);
    drop(reqs);
    master.abort();
    let _ = master.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port}/")).await.body,
        "from-master"
    );

    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("shutdown is bounded");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "listener closed by shutdown"
    );
}
