//! End-to-end tests of the `meshctl` binary against an in-process fake Admin service.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use meshgress_proto::admin::admin_server::{Admin, AdminServer};
use meshgress_proto::admin::{
    DeleteObjectResponse, ListMembersRequest, ListMembersResponse, ListObjectsRequest,
    ListObjectsResponse, Member, NameRequest, Object, ProxyStatus, StatusRequest, StatusResponse,
    WriteObjectRequest, WriteObjectResponse,
};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    revision: u64,
    objects: BTreeMap<String, Object>,
    writes: usize,
}

/// Stores documents as given; rejects kind `Bad` like a validation error.
#[derive(Clone, Default)]
struct FakeAdmin(Arc<Mutex<State>>);

impl FakeAdmin {
    fn write(
        &self,
        spec_json: &str,
        create: bool,
        update: bool,
    ) -> Result<WriteObjectResponse, Status> {
        let doc: serde_json::Value = serde_json::from_str(spec_json)
            .map_err(|e| Status::invalid_argument(format!("bad JSON: {e}")))?;
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let name = doc["name"].as_str().unwrap_or_default().to_owned();
        if kind == "Bad" {
            return Err(Status::invalid_argument(
                "filters[0].kind: unknown filter kind \"Nope\"",
            ));
        }
        let mut state = self.0.lock().unwrap();
        state.writes += 1;
        let existing = state.objects.get(&name).cloned();
        match (&existing, create, update) {
            (Some(_), true, false) => {
                return Err(Status::already_exists(format!(
                    "object {name} already exists"
                )));
            }
            (None, false, true) => {
                return Err(Status::not_found(format!("object {name} not found")));
            }
            (Some(old), _, _) if old.kind != kind => {
                return Err(Status::failed_precondition(format!(
                    "object {name} is a {}, not a {kind}",
                    old.kind
                )));
            }
            _ => {}
        }
        state.revision += 1;
        let revision = state.revision;
        let object = Object {
            kind,
            name: name.clone(),
            spec_json: spec_json.to_owned(),
            create_revision: existing.as_ref().map_or(revision, |o| o.create_revision),
            update_revision: revision,
        };
        state.objects.insert(name, object.clone());
        Ok(WriteObjectResponse {
            object: Some(object),
            revision,
            created: existing.is_none(),
        })
    }
}

#[tonic::async_trait]
impl Admin for FakeAdmin {
    async fn create_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write(&request.into_inner().spec_json, true, false)
            .map(Response::new)
    }
    async fn update_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write(&request.into_inner().spec_json, false, true)
            .map(Response::new)
    }
    async fn apply_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write(&request.into_inner().spec_json, false, false)
            .map(Response::new)
    }
    async fn delete_object(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteObjectResponse>, Status> {
        let name = request.into_inner().name;
        let mut state = self.0.lock().unwrap();
        if state.objects.remove(&name).is_none() {
            return Err(Status::not_found(format!("object {name} not found")));
        }
        state.revision += 1;
        Ok(Response::new(DeleteObjectResponse {
            revision: state.revision,
        }))
    }
    async fn get_object(&self, request: Request<NameRequest>) -> Result<Response<Object>, Status> {
        let name = request.into_inner().name;
        let state = self.0.lock().unwrap();
        state
            .objects
            .get(&name)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("object {name} not found")))
    }
    async fn list_objects(
        &self,
        request: Request<ListObjectsRequest>,
    ) -> Result<Response<ListObjectsResponse>, Status> {
        let kind = request.into_inner().kind;
        let state = self.0.lock().unwrap();
        let objects = state
            .objects
            .values()
            .filter(|o| kind.is_empty() || o.kind == kind)
            .rev() // meshctl sorts by name itself
            .cloned()
            .collect();
        Ok(Response::new(ListObjectsResponse {
            objects,
            revision: state.revision,
        }))
    }
    async fn list_members(
        &self,
        _: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        Ok(Response::new(ListMembersResponse {
            members: vec![Member {
                name: "master-1".into(),
                id: 1,
                role: "leader".into(),
                client_address: "127.0.0.1:2381".into(),
                peer_address: "127.0.0.1:2380".into(),
                last_heartbeat: "2026-01-02T03:04:05Z".into(),
                healthy: true,
            }],
            leader_id: 1,
        }))
    }
    async fn proxy_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let node = request.into_inner().node_id;
        let proxies = [
            ProxyStatus {
                node_id: "gateway-master-1".into(),
                role: "gateway".into(),
                connected: true,
                acked_version: "7".into(),
                sent_version: "7".into(),
                ..Default::default()
            },
            ProxyStatus {
                node_id: "ingress-1".into(),
                role: "ingress".into(),
                connected: true,
                acked_version: "6".into(),
                sent_version: "7".into(),
                nacked_version: "7".into(),
                nack_error: "port 80 in use".into(),
                ..Default::default()
            },
        ];
        let proxies = proxies
            .into_iter()
            .filter(|p| node.is_empty() || p.node_id == node)
            .collect();
        Ok(Response::new(StatusResponse {
            proxies,
            revision: 7,
        }))
    }
}

struct Fake {
    addr: SocketAddr,
    admin: FakeAdmin,
    _runtime: tokio::runtime::Runtime,
}

fn start_fake() -> Fake {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let admin = FakeAdmin::default();
    let service = AdminServer::new(admin.clone());
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        addr
    });
    Fake {
        addr,
        admin,
        _runtime: runtime,
    }
}

fn meshctl(server: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        .env("MESHCTL_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

const SERVER: &str = "\
kind: HTTPServer
name: server-demo
port: 10080
keepAlive: true
https: false
rules:
  - paths:
    - pathPrefix: /pipeline
      backend: pipeline-demo
";

const PIPELINE: &str = "\
name: pipeline-demo
kind: HTTPPipeline
flow:
  - filter: proxy
filters:
  - name: proxy
    kind: Proxy
    mainPool:
      servers:
      - url: http://127.0.0.1:9095
      loadBalance:
        policy: roundRobin
";

#[test]
fn create_get_update_list_delete() {
    let fake = start_fake();
    let server = fake.addr.to_string();

    let out = meshctl(
        &server,
        &["object", "create"],
        &format!("{SERVER}---\n{PIPELINE}---\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created HTTPServer server-demo\ncreated HTTPPipeline pipeline-demo\n"
    );

    // get prints the document, kind and name first, and update accepts it unchanged.
    let out = meshctl(
        &format!("http://{server}"),
        &["o", "get", "pipeline-demo"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.starts_with("kind: HTTPPipeline\nname: pipeline-demo\nflow:\n- filter: proxy\n"),
        "{yaml}"
    );
    let out = meshctl(&server, &["object", "update", "-f", "-"], &yaml);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "updated HTTPPipeline pipeline-demo\n");

    let out = meshctl(&server, &["object", "get", "server-demo", "-o", "json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["port"], 10080);
    assert!(
        text(&out.stdout)
            .starts_with("{\n  \"kind\": \"HTTPServer\",\n  \"name\": \"server-demo\"")
    );

    let out = meshctl(&server, &["object", "list"], "");
    assert_eq!(
        text(&out.stdout),
        "NAME           KIND          CREATE-REV  UPDATE-REV\n\
         pipeline-demo  HTTPPipeline  2           3\n\
         server-demo    HTTPServer    1           1\n"
    );
    let out = meshctl(&server, &["object", "list", "httpserver", "-o", "yaml"], "");
    assert!(
        text(&out.stdout).starts_with("- kind: HTTPServer\n  name: server-demo\n"),
        "{}",
        text(&out.stdout)
    );
    let out = meshctl(&server, &["object", "list", "-o", "json"], "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // The list output applies back as its documents.
    let out = meshctl(
        &server,
        &["object", "apply"],
        &text(&meshctl(&server, &["object", "list", "-o", "yaml"], "").stdout),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);

    let out = meshctl(
        &server,
        &["object", "delete", "Pipeline", "server-demo"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: object server-demo is a HTTPServer, not a Pipeline\n"
    );
    let out = meshctl(&server, &["object", "delete", "hs", "server-demo"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("deleted server-demo\n"));
    let out = meshctl(&server, &["object", "get", "server-demo"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: object server-demo not found (NOT_FOUND)\n"
    );
}

#[test]
fn failures_stop_and_bad_input_sends_nothing() {
    let fake = start_fake();
    let server = fake.addr.to_string();

    // A bad third document: nothing is sent.
    let input = format!("{SERVER}---\n{PIPELINE}---\nkind: HTTPServer\n");
    let out = meshctl(&server, &["object", "create"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: standard input: document 3: missing `name`\n"
    );
    assert_eq!(fake.admin.0.lock().unwrap().writes, 0);

    // Every document is validated locally before the first is sent: a bad kind sends nothing.
    let input = format!("{SERVER}---\nkind: Bad\nname: b\n---\n{PIPELINE}");
    let out = meshctl(&server, &["object", "create"], &input);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("Error: standard input: document 2 (Bad b): kind: unknown kind"),
        "{err}"
    );
    assert_eq!(fake.admin.0.lock().unwrap().writes, 0);

    // The first server error stops the run.
    let out = meshctl(&server, &["object", "apply"], PIPELINE);
    assert_eq!(text(&out.stdout), "created HTTPPipeline pipeline-demo\n");
    let input = format!(
        "{SERVER}---\n{PIPELINE}---\n{}",
        SERVER.replace("server-demo", "never-sent")
    );
    let out = meshctl(&server, &["object", "create"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "created HTTPServer server-demo\n");
    assert_eq!(
        text(&out.stderr),
        "Error: object pipeline-demo already exists (ALREADY_EXISTS)\n"
    );
    assert_eq!(
        fake.admin.0.lock().unwrap().writes,
        3,
        "the third document was never sent"
    );

    let out = meshctl(&server, &["object", "create"], SERVER);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: object server-demo already exists (ALREADY_EXISTS)\n"
    );
    let out = meshctl(
        &server,
        &["object", "update"],
        &PIPELINE.replace("pipeline-demo", "absent"),
    );
    assert_eq!(
        text(&out.stderr),
        "Error: object absent not found (NOT_FOUND)\n"
    );
}

#[test]
fn members_and_status() {
    let fake = start_fake();
    let server = fake.addr.to_string();

    let out = meshctl(&server, &["member", "list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME      ID  ROLE    CLIENT"), "{table}");
    assert!(
        table.contains("master-1  1   leader  127.0.0.1:2381"),
        "{table}"
    );
    let out = meshctl(&server, &["member", "list", "-o", "yaml"], "");
    assert!(text(&out.stdout).contains("- name: master-1\n  id: 1\n  role: leader\n"));

    let out = meshctl(&server, &["status"], "");
    let table = text(&out.stdout);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("port 80 in use"), "{table}");
    let out = meshctl(&server, &["status", "ingress-1", "-o", "json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["nackError"], "port 80 in use");
    let out = meshctl(&server, &["status", "nobody"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: no proxy with node id nobody is known to the master\n"
    );
}

#[test]
fn unreachable_master() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = meshctl(&addr, &["object", "list"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("Error: cannot reach master at {addr}: ")),
        "{err}"
    );
}
