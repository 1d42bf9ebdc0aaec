//! The `Admin` gRPC service: object CRUD through the Raft store, members, and proxy status.

use crate::cluster::{Cluster, WriteError};
use crate::objects::{self, MAX_DOCUMENT_BYTES};
use crate::proxy_registry::ProxyRegistry;
use crate::store::{Command, CommandOutcome, Rejection, RejectionKind, StoredObject};
use crate::time::rfc3339;
use meshgress_proto::admin::admin_server::Admin;
use meshgress_proto::admin::{
    DeleteObjectResponse, ListMembersRequest, ListMembersResponse, ListObjectsRequest,
    ListObjectsResponse, Member, NameRequest, Object, StatusRequest, StatusResponse,
    WriteObjectRequest, WriteObjectResponse,
};
use tonic::{Request, Response, Status};

/// The `Admin` gRPC service.
pub struct AdminService {
    cluster: Cluster,
    proxies: ProxyRegistry,
}

impl AdminService {
    /// A service over `cluster`, reporting proxies from `proxies`.
    pub fn new(cluster: Cluster, proxies: ProxyRegistry) -> Self {
        AdminService { cluster, proxies }
    }

    /// Validates a document before it is proposed, so bad documents never enter the log.
    fn check_document(req: &WriteObjectRequest) -> Result<(), Status> {
        let len = req.spec_json.len();
        if len > MAX_DOCUMENT_BYTES {
            return Err(Status::invalid_argument(format!(
                "object document is {len} bytes; the limit is {MAX_DOCUMENT_BYTES}"
            )));
        }
        objects::parse_document(&req.spec_json).map_err(|e| Status::invalid_argument(e.message))?;
        Ok(())
    }

    /// Checks the document of `request`, then commits the command `make` builds from it.
    async fn write_object(
        &self,
        request: Request<WriteObjectRequest>,
        make: impl FnOnce(String) -> Command,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        let req = request.into_inner();
        Self::check_document(&req)?;
        match self
            .cluster
            .write(make(req.spec_json))
            .await
            .map_err(write_status)?
        {
            CommandOutcome::Written {
                object,
                revision,
                created,
            } => Ok(Response::new(WriteObjectResponse {
                object: Some(to_proto(object)),
                revision,
                created,
            })),
            CommandOutcome::Rejected(r) => Err(rejection_status(r)),
            other => Err(Status::internal(format!(
                "unexpected outcome of a write: {other:?}"
            ))),
        }
    }
}

fn to_proto(o: StoredObject) -> Object {
    Object {
        kind: o.kind,
        name: o.name,
        spec_json: o.spec_json,
        create_revision: o.create_revision,
        update_revision: o.update_revision,
    }
}

fn rejection_status(r: Rejection) -> Status {
    match r.kind {
        RejectionKind::Invalid => Status::invalid_argument(r.message),
        RejectionKind::AlreadyExists => Status::already_exists(r.message),
        RejectionKind::NotFound => Status::not_found(r.message),
        RejectionKind::KindChanged => Status::failed_precondition(r.message),
    }
}

fn write_status(e: WriteError) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write_object(request, |doc| Command::Create { doc })
            .await
    }

    async fn update_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write_object(request, |doc| Command::Update { doc })
            .await
    }

    async fn apply_object(
        &self,
        request: Request<WriteObjectRequest>,
    ) -> Result<Response<WriteObjectResponse>, Status> {
        self.write_object(request, |doc| Command::Apply { doc })
            .await
    }

    async fn delete_object(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<DeleteObjectResponse>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        match self
            .cluster
            .write(Command::Delete { name })
            .await
            .map_err(write_status)?
        {
            CommandOutcome::Deleted { revision, .. } => {
                Ok(Response::new(DeleteObjectResponse { revision }))
            }
            CommandOutcome::Rejected(r) => Err(rejection_status(r)),
            other => Err(Status::internal(format!(
                "unexpected outcome of a delete: {other:?}"
            ))),
        }
    }

    async fn get_object(&self, request: Request<NameRequest>) -> Result<Response<Object>, Status> {
        let name = request.into_inner().name;
        match self.cluster.state().get(&name) {
            Some(o) => Ok(Response::new(to_proto(o))),
            None => Err(Status::not_found(format!("object {name} not found"))),
        }
    }

    async fn list_objects(
        &self,
        request: Request<ListObjectsRequest>,
    ) -> Result<Response<ListObjectsResponse>, Status> {
        let kind = request.into_inner().kind;
        let (revision, objects) = self
            .cluster
            .state()
            .select(|k| kind.is_empty() || objects::same_kind(&kind, k));
        Ok(Response::new(ListObjectsResponse {
            objects: objects.into_iter().map(to_proto).collect(),
            revision,
        }))
    }

    async fn list_members(
        &self,
        _request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let (members, leader) = self.cluster.members();
        Ok(Response::new(ListMembersResponse {
            members: members
                .into_iter()
                .map(|m| Member {
                    name: m.node.name,
                    id: m.id,
                    role: m.role.to_owned(),
                    client_address: m.node.client_addr,
                    peer_address: m.node.peer_addr,
                    last_heartbeat: m.last_heartbeat.map(rfc3339).unwrap_or_default(),
                    healthy: m.healthy,
                })
                .collect(),
            leader_id: leader.unwrap_or(0),
        }))
    }

    async fn proxy_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let node_id = request.into_inner().node_id;
        let proxies: Vec<_> = self
            .proxies
            .list(&node_id)
            .iter()
            .map(|r| r.to_proto())
            .collect();
        if !node_id.is_empty() && proxies.is_empty() {
            return Err(Status::not_found(format!("proxy {node_id} not found")));
        }
        Ok(Response::new(StatusResponse {
            proxies,
            revision: self.cluster.state().revision(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::object_map::tests::{pipeline, server};
    use crate::test_support::{start_master, url};
    use meshgress_proto::admin::admin_client::AdminClient;
    use meshgress_proto::admin::{
        ListMembersRequest, ListObjectsRequest, NameRequest, StatusRequest, WriteObjectRequest,
    };
    use tonic::Code;

    fn doc(spec_json: String) -> WriteObjectRequest {
        WriteObjectRequest { spec_json }
    }

    fn name(name: &str) -> NameRequest {
        NameRequest { name: name.into() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admin_rpcs_over_grpc() {
        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let mut admin = AdminClient::connect(url(&master)).await.unwrap();

        let created = admin
            .create_object(doc(pipeline(
                "HTTPPipeline",
                "pipeline-demo",
                "http://127.0.0.1:9095",
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((created.revision, created.created), (1, true));
        let obj = created.object.unwrap();
        assert_eq!(
            (obj.kind.as_str(), obj.name.as_str(), obj.create_revision),
            ("HTTPPipeline", "pipeline-demo", 1)
        );
        let created = admin
            .create_object(doc(server("server-demo", 10080)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.revision, 2);

        let err = admin
            .create_object(doc(server("pipeline-demo", 10090)))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::AlreadyExists, "object pipeline-demo already exists")
        );
        let err = admin
            .create_object(doc(server("server-2", 10080)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with("server-2: port: "),
            "{}",
            err.message()
        );
        let err = admin
            .create_object(doc(
                r#"{"kind":"HTTPServer","name":"bad","port":"x"}"#.into()
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with("bad: port: "),
            "{}",
            err.message()
        );
        let big = format!(
            r#"{{"kind":"HTTPServer","name":"big","pad":"{}"}}"#,
            "x".repeat(1024 * 1024)
        );
        let err = admin.create_object(doc(big.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(
            err.message(),
            format!(
                "object document is {} bytes; the limit is 1048576",
                big.len()
            )
        );

        let err = admin
            .update_object(doc(server("pipeline-demo", 10090)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = admin
            .update_object(doc(server("nope", 10090)))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::NotFound, "object nope not found")
        );
        let applied = admin
            .apply_object(doc(server("server-demo", 10081)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((applied.revision, applied.created), (3, false));
        let applied = applied.object.unwrap();
        assert_eq!((applied.create_revision, applied.update_revision), (2, 3));

        let got = admin
            .get_object(name("server-demo"))
            .await
            .unwrap()
            .into_inner();
        let spec: serde_json::Value = serde_json::from_str(&got.spec_json).unwrap();
        assert_eq!(spec["port"], 10081);
        let err = admin.get_object(name("nope")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);

        let listed = admin
            .list_objects(ListObjectsRequest {
                kind: "Pipeline".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed
                .objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            ["pipeline-demo"]
        );
        assert_eq!(listed.revision, 3);
        let listed = admin
            .list_objects(ListObjectsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed
                .objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            ["pipeline-demo", "server-demo"]
        );

        let deleted = admin
            .delete_object(name("server-demo"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(deleted.revision, 4);
        let err = admin.delete_object(name("server-demo")).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (Code::NotFound, "object server-demo not found")
        );

        let members = admin
            .list_members(ListMembersRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(members.leader_id, 1);
        assert_eq!(members.members.len(), 1);
        let me = &members.members[0];
        assert_eq!(
            (me.name.as_str(), me.id, me.role.as_str(), me.healthy),
            ("master-1", 1, "leader", true)
        );
        assert_eq!(me.client_address, master.client_addr().to_string());
        assert_eq!(me.peer_address, master.peer_addr().to_string());
        assert!(me.last_heartbeat.ends_with('Z'));

        let status = admin
            .proxy_status(StatusRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(status.proxies.is_empty());
        assert_eq!(status.revision, 4);

        master.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_and_reflection_are_served() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let channel = tonic::transport::Endpoint::from_shared(url(&master))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel.clone());
        for service in [
            "",
            "meshgress.admin.v1.Admin",
            "meshgress.discovery.v1.ConfigDiscovery",
        ] {
            let resp = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(resp.status, ServingStatus::Serving as i32, "{service}");
        }

        let mut reflection = ServerReflectionClient::new(channel);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = reflection
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("unexpected reflection reply {reply:?}");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "meshgress.admin.v1.Admin",
            "meshgress.discovery.v1.ConfigDiscovery",
            "grpc.health.v1.Health",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        master.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_writes_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let master = start_master(dir.path()).await;
        let mut admin = AdminClient::connect(url(&master)).await.unwrap();
        for i in 0..5u16 {
            admin
                .create_object(doc(server(&format!("s{i}"), 10080 + i)))
                .await
                .unwrap();
        }
        admin.delete_object(name("s0")).await.unwrap();
        master.shutdown().await.unwrap();

        let master = start_master(dir.path()).await;
        let mut admin = AdminClient::connect(url(&master)).await.unwrap();
        let listed = admin
            .list_objects(ListObjectsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.revision, 6);
        assert_eq!(
            listed
                .objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            ["s1", "s2", "s3", "s4"]
        );
        // The restarted node leads again and takes writes.
        let created = admin
            .create_object(doc(server("s5", 10090)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.revision, 7);
        master.shutdown().await.unwrap();
    }
}
