//! The admin surface against a real mesh-master: meshctl verbs, every bad-input case (rejected whole, field named,
//! nothing stored), gRPC reflection and health for clients other than meshctl.

mod common;

use common::{Master, fails, ok};
use meshgress_proto::admin::{ListObjectsRequest, WriteObjectRequest};

const SERVER: &str = "kind: HTTPServer\nname: server-a\nport: 18080\nrules:\n  - paths:\n    - pathPrefix: /\n      backend: pipe-a\n";
const PIPELINE: &str = "kind: HTTPPipeline\nname: pipe-a\nfilters:\n  - name: proxy\n    kind: Proxy\n    mainPool:\n      servers:\n      - url: http://127.0.0.1:9\n";

async fn names(master: &Master) -> Vec<String> {
    let mut admin = master.admin().await;
    let list = admin
        .list_objects(ListObjectsRequest {
            kind: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    list.objects.into_iter().map(|o| o.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_conflicts_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &["--no-gateway"]).await;

    ok(master.meshctl(
        &["object", "create"],
        Some(&format!("{SERVER}---\n{PIPELINE}")),
    ));
    assert_eq!(names(&master).await, vec!["pipe-a", "server-a"]);

    // Create of an existing name fails, whatever the kind.
    let err = fails(master.meshctl(&["object", "create"], Some(SERVER)));
    assert!(err.contains("server-a") && err.contains("exists"), "{err}");
    let err = fails(master.meshctl(
        &["object", "create"],
        Some(&PIPELINE.replace("pipe-a", "server-a")),
    ));
    assert!(err.contains("exists"), "{err}");

    // Update of a missing object fails; apply creates it.
    let other = SERVER
        .replace("server-a", "server-b")
        .replace("18080", "18081");
    let err = fails(master.meshctl(&["object", "update"], Some(&other)));
    assert!(
        err.contains("server-b") && err.contains("not found"),
        "{err}"
    );
    ok(master.meshctl(&["object", "apply"], Some(&other)));
    ok(master.meshctl(&["object", "apply"], Some(&other.replace("18081", "18082"))));

    // A kind change is refused.
    let err = fails(master.meshctl(
        &["object", "update"],
        Some(&PIPELINE.replace("pipe-a", "server-b")),
    ));
    assert!(err.to_lowercase().contains("kind"), "{err}");

    // get output feeds back to update unchanged, and the revisions move.
    let yaml = ok(master.meshctl(&["object", "get", "server-a"], None));
    assert!(
        yaml.contains("keepAliveTimeout: 60s"),
        "defaults are filled in: {yaml}"
    );
    ok(master.meshctl(&["object", "update"], Some(&yaml)));
    let json = ok(master.meshctl(&["-o", "json", "object", "get", "server-a"], None));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("get -o json is JSON");
    assert_eq!(doc["port"], 18080);
    let mut admin = master.admin().await;
    let obj = admin
        .get_object(meshgress_proto::admin::NameRequest {
            name: "server-a".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(obj.update_revision > obj.create_revision, "{obj:?}");

    // List by kind; HTTPPipeline and Pipeline are one kind.
    let list = ok(master.meshctl(&["object", "list", "Pipeline"], None));
    assert!(
        list.contains("pipe-a") && !list.contains("server-a"),
        "{list}"
    );

    // Delete, then delete again fails.
    ok(master.meshctl(&["object", "delete", "server-b"], None));
    let err = fails(master.meshctl(&["object", "delete", "server-b"], None));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(names(&master).await, vec!["pipe-a", "server-a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_whole_and_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &["--no-gateway"]).await;
    ok(master.meshctl(
        &["object", "create"],
        Some(&format!("{SERVER}---\n{PIPELINE}")),
    ));
    let before = names(&master).await;

    let cases: Vec<(String, &str)> = vec![
        ("kind: Gateway\nname: x\n".into(), "kind"),
        (
            SERVER
                .replace("server-a", "s2")
                .replace("18080", "18090")
                .replace("rules:", "bogus: 1\nrules:"),
            "bogus",
        ),
        (
            SERVER
                .replace("server-a", "s2")
                .replace("18080", "'eighteen'"),
            "port",
        ),
        ("kind: HTTPServer\nname: s2\n".into(), "port"),
        (
            PIPELINE
                .replace("pipe-a", "p2")
                .replace("filters:", "flow:\n  - filter: ghost\nfilters:"),
            "flow[0].filter",
        ),
        (
            PIPELINE.replace("pipe-a", "p2").replace(
                "filters:",
                "flow:\n  - filter: proxy\n    jumpIf: {serverError: nowhere}\nfilters:",
            ),
            "flow[0].jumpIf.serverError",
        ),
        (
            SERVER
                .replace("server-a", "s2")
                .replace("18080", "18091")
                .replace("pathPrefix: /", "pathRegexp: '(unclosed'"),
            "rules[0].paths[0].pathRegexp",
        ),
        (
            PIPELINE
                .replace("pipe-a", "p2")
                .replace("http://127.0.0.1:9", "not-a-url"),
            "filters[0].mainPool.servers[0].url",
        ),
        (
            SERVER.replace("server-a", "s2"),
            "port 18080 is already used",
        ),
        ("just a string".into(), "mapping"),
        ("kind: HTTPServer\nname: [oops\n".into(), ""),
    ];
    let mut admin = master.admin().await;
    for (doc, field) in cases {
        let err = fails(master.meshctl(&["object", "create"], Some(&doc)));
        assert!(err.starts_with("Error:"), "meshctl prints the error: {err}");
        assert!(
            err.contains(field),
            "error for {doc:?} should name {field:?}: {err}"
        );
        // The master applies the same rules itself, whatever client sends the document.
        if let Ok(value) = serde_yaml::from_str::<serde_json::Value>(&doc) {
            let status = admin
                .create_object(WriteObjectRequest {
                    spec_json: value.to_string(),
                })
                .await
                .expect_err("the master rejects it too");
            assert!(
                status.message().contains(field),
                "server error for {doc:?} should name {field:?}: {status:?}"
            );
        }
    }
    // A file whose second document is bad creates nothing.
    let two = format!(
        "{}---\nkind: HTTPServer\nname: s4\nport: 0\n",
        SERVER.replace("server-a", "s3").replace("18080", "18093")
    );
    fails(master.meshctl(&["object", "create"], Some(&two)));
    assert_eq!(
        names(&master).await,
        before,
        "nothing is stored after rejected documents"
    );

    // Oversized requests are refused with a clear error, through gRPC directly.
    let huge = format!(
        "{{\"kind\":\"HTTPServer\",\"name\":\"big\",\"port\":1,\"address\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let status = admin
        .create_object(WriteObjectRequest { spec_json: huge })
        .await
        .expect_err("oversized");
    assert!(
        status.message().contains("limit") || status.message().contains("too large"),
        "{status:?}"
    );
    let huge = "y".repeat(8 << 20);
    let status = admin
        .create_object(WriteObjectRequest { spec_json: huge })
        .await
        .expect_err("oversized");
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument | tonic::Code::OutOfRange
        ),
        "{status:?}"
    );
    assert_eq!(names(&master).await, before);

    // meshctl reports an unreachable master and exits non-zero.
    let err = fails(common::meshctl("127.0.0.1:1", &["object", "list"], None));
    assert!(err.contains("Error"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_and_health_serve_other_clients() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &["--no-gateway"]).await;
    let url = format!("http://{}", master.client);

    let channel = tonic::transport::Channel::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "meshgress.admin.v1.Admin"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check");
        assert_eq!(
            r.into_inner().status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflect")
        .into_inner();
    let resp = stream
        .message()
        .await
        .expect("reflection answer")
        .expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected {resp:?}")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "meshgress.admin.v1.Admin",
        "meshgress.discovery.v1.ConfigDiscovery",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == want),
            "{want} missing from {services:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_list_shows_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &["--no-gateway"]).await;
    let yaml = ok(master.meshctl(&["-o", "yaml", "member", "list"], None));
    assert!(
        yaml.contains("master-1") && yaml.contains("leader"),
        "{yaml}"
    );
    assert!(
        yaml.contains(&master.client) && yaml.contains(&master.peer),
        "addresses shown: {yaml}"
    );
}
