//! What each command does: read input, call the master, print the result.

use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use meshgress_proto::admin::admin_client::AdminClient;
use meshgress_proto::admin::{
    ListMembersRequest, ListObjectsRequest, NameRequest, Object, StatusRequest, WriteObjectRequest,
};
use serde_yaml::Value;
use tonic::transport::Channel;

use crate::cli::{
    Cli, Command, MemberCommand, ObjectCommand, OutputFormat, WriteArgs, kind_and_name,
};
use crate::client::{connect, status_error};
use crate::documents::parse_documents;
use crate::output::{
    MemberView, ProxyStatusView, members_table, object_document, objects_table, status_table,
    to_json, to_yaml,
};

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let session = Session {
        servers: cli.server,
        timeout: Duration::from_secs(cli.timeout.max(1)),
    };
    let format = cli.output;
    match cli.command {
        Command::Object(ObjectCommand::Create(args)) => {
            write(&session, WriteOp::Create, &args).await
        }
        Command::Object(ObjectCommand::Update(args)) => {
            write(&session, WriteOp::Update, &args).await
        }
        Command::Object(ObjectCommand::Apply(args)) => write(&session, WriteOp::Apply, &args).await,
        Command::Object(ObjectCommand::Get { args }) => {
            let (kind, name) = kind_and_name(&args);
            get(&session, kind, name, format.unwrap_or(OutputFormat::Yaml)).await
        }
        Command::Object(ObjectCommand::List { kind }) => {
            list(
                &session,
                kind.as_deref(),
                format.unwrap_or(OutputFormat::Table),
            )
            .await
        }
        Command::Object(ObjectCommand::Delete { args }) => {
            let (kind, name) = kind_and_name(&args);
            delete(&session, kind, name).await
        }
        Command::Member(MemberCommand::List) => {
            members(&session, format.unwrap_or(OutputFormat::Table)).await
        }
        Command::Status { node } => {
            status(
                &session,
                node.as_deref(),
                format.unwrap_or(OutputFormat::Table),
            )
            .await
        }
    }
}

struct Session {
    servers: String,
    timeout: Duration,
}

impl Session {
    async fn client(&self) -> Result<AdminClient<Channel>> {
        connect(&self.servers, self.timeout).await
    }
}

#[derive(Debug, Clone, Copy)]
enum WriteOp {
    Create,
    Update,
    Apply,
}

async fn write(session: &Session, op: WriteOp, args: &WriteArgs) -> Result<()> {
    let (source, input) = read_input(args.file.as_deref())?;
    let documents = parse_documents(&input).with_context(|| source.clone())?;
    // Validate every document with the master's own rules before sending the first one, so a file with a
    // bad document changes nothing (the master validates again; this only saves a half-applied file).
    for document in &documents {
        let value: serde_json::Value = serde_json::from_str(&document.spec_json)
            .with_context(|| format!("{source}: {}", document.label))?;
        if let Err(e) = meshgress_spec::parse_object(&value) {
            bail!(
                "{source}: {} ({} {}): {e}",
                document.label,
                document.kind,
                document.name
            );
        }
    }
    let mut client = session.client().await?;
    for document in documents {
        let request = WriteObjectRequest {
            spec_json: document.spec_json,
        };
        let response = match op {
            WriteOp::Create => client.create_object(request).await,
            WriteOp::Update => client.update_object(request).await,
            WriteOp::Apply => client.apply_object(request).await,
        }
        .map_err(status_error)?
        .into_inner();
        let verb = match op {
            WriteOp::Create => "created",
            WriteOp::Update => "updated",
            WriteOp::Apply if response.created => "created",
            WriteOp::Apply => "updated",
        };
        let (kind, name) = match &response.object {
            Some(o) => (o.kind.as_str(), o.name.as_str()),
            None => (document.kind.as_str(), document.name.as_str()),
        };
        emit(&format!("{verb} {kind} {name}\n"))?;
    }
    Ok(())
}

async fn get(
    session: &Session,
    kind: Option<&str>,
    name: &str,
    format: OutputFormat,
) -> Result<()> {
    let mut client = session.client().await?;
    let object = fetch(&mut client, kind, name).await?;
    let text = match format {
        OutputFormat::Yaml => to_yaml(&object_document(&object)?)?,
        OutputFormat::Json => to_json(&object_document(&object)?)?,
        OutputFormat::Table => objects_table(std::slice::from_ref(&object)),
    };
    emit(&text)
}

/// Gets one object; with `kind`, fails unless the object is of that kind.
async fn fetch(
    client: &mut AdminClient<Channel>,
    kind: Option<&str>,
    name: &str,
) -> Result<Object> {
    let object = client
        .get_object(NameRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if let Some(kind) = kind
        && !same_kind(kind, &object.kind)
    {
        bail!(
            "object {name} is a {}, not a {}",
            object.kind,
            canonical_kind(kind)
        );
    }
    Ok(object)
}

async fn list(session: &Session, kind: Option<&str>, format: OutputFormat) -> Result<()> {
    let mut client = session.client().await?;
    let request = ListObjectsRequest {
        kind: kind.map(canonical_kind).unwrap_or_default(),
    };
    let mut objects = client
        .list_objects(request)
        .await
        .map_err(status_error)?
        .into_inner()
        .objects;
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    let text = match format {
        OutputFormat::Table => objects_table(&objects),
        OutputFormat::Yaml | OutputFormat::Json => {
            let documents = objects
                .iter()
                .map(object_document)
                .collect::<Result<Vec<Value>>>()?;
            if format == OutputFormat::Yaml {
                to_yaml(&documents)?
            } else {
                to_json(&documents)?
            }
        }
    };
    emit(&text)
}

async fn delete(session: &Session, kind: Option<&str>, name: &str) -> Result<()> {
    let mut client = session.client().await?;
    if kind.is_some() {
        fetch(&mut client, kind, name).await?;
    }
    client
        .delete_object(NameRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(status_error)?;
    emit(&format!("deleted {name}\n"))
}

async fn members(session: &Session, format: OutputFormat) -> Result<()> {
    let mut client = session.client().await?;
    let response = client
        .list_members(ListMembersRequest {})
        .await
        .map_err(status_error)?;
    let members = response.into_inner().members;
    let text = match format {
        OutputFormat::Table => members_table(&members),
        OutputFormat::Yaml => to_yaml(&members.iter().map(MemberView::from).collect::<Vec<_>>())?,
        OutputFormat::Json => to_json(&members.iter().map(MemberView::from).collect::<Vec<_>>())?,
    };
    emit(&text)
}

async fn status(session: &Session, node: Option<&str>, format: OutputFormat) -> Result<()> {
    let mut client = session.client().await?;
    let request = StatusRequest {
        node_id: node.unwrap_or_default().to_owned(),
    };
    let mut proxies = client
        .proxy_status(request)
        .await
        .map_err(status_error)?
        .into_inner()
        .proxies;
    if let Some(node) = node
        && proxies.is_empty()
    {
        bail!("no proxy with node id {node} is known to the master");
    }
    proxies.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let text = match format {
        OutputFormat::Table => status_table(&proxies),
        OutputFormat::Yaml => to_yaml(
            &proxies
                .iter()
                .map(ProxyStatusView::from)
                .collect::<Vec<_>>(),
        )?,
        OutputFormat::Json => to_json(
            &proxies
                .iter()
                .map(ProxyStatusView::from)
                .collect::<Vec<_>>(),
        )?,
    };
    emit(&text)
}

/// Reads the documents: from `file`, or standard input when `file` is absent or `-`.
/// Returns a name for the source (for error messages) and the text.
fn read_input(file: Option<&Path>) -> Result<(String, String)> {
    let mut text = String::new();
    match file {
        Some(path) if path.as_os_str() != "-" => {
            let source = path.display().to_string();
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
            text =
                String::from_utf8(bytes).with_context(|| format!("{source} is not UTF-8 text"))?;
            Ok((source, text))
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("meshctl: reading objects from standard input (end with Ctrl-D)");
            }
            stdin
                .lock()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            Ok(("standard input".to_owned(), text))
        }
    }
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Known kinds, to accept any letter case and the egctl short names on the command line.
const KINDS: &[&str] = &[
    "HTTPServer",
    "HTTPPipeline",
    "Pipeline",
    "MeshService",
    "MeshIngress",
    "IngressController",
    "ServiceInstance",
    "EurekaServiceRegistry",
    "ConsulServiceRegistry",
    "EtcdServiceRegistry",
    "ZookeeperServiceRegistry",
    "AutoCertManager",
];

/// The spelling of a known kind (`httpserver`, `hs` -> `HTTPServer`; `pl` -> `Pipeline`); others unchanged.
fn canonical_kind(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "hs" => "httpserver",
        "pl" => "pipeline",
        other => other,
    };
    KINDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(lower))
        .map_or_else(|| kind.to_owned(), |k| (*k).to_owned())
}

/// Whether a kind given on the command line names `actual`; HTTPPipeline and Pipeline are one kind.
fn same_kind(given: &str, actual: &str) -> bool {
    fn key(kind: &str) -> String {
        let canonical = canonical_kind(kind).to_ascii_lowercase();
        if canonical == "httppipeline" {
            "pipeline".to_owned()
        } else {
            canonical
        }
    }
    key(given) == key(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_the_command_line() {
        assert_eq!(canonical_kind("httpserver"), "HTTPServer");
        assert_eq!(canonical_kind("hs"), "HTTPServer");
        assert_eq!(canonical_kind("PL"), "Pipeline");
        assert_eq!(canonical_kind("httppipeline"), "HTTPPipeline");
        assert_eq!(canonical_kind("SomethingNew"), "SomethingNew");
        assert!(same_kind("pipeline", "HTTPPipeline"));
        assert!(same_kind("HTTPPipeline", "Pipeline"));
        assert!(same_kind("hs", "HTTPServer"));
        assert!(!same_kind("hs", "Pipeline"));
    }

    #[test]
    fn reads_files() {
        let dir = std::env::temp_dir().join(format!("meshctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("objects.yaml");
        std::fs::write(&path, "kind: A\nname: a\n").unwrap();
        let (source, text) = read_input(Some(&path)).unwrap();
        assert_eq!(source, path.display().to_string());
        assert_eq!(text, "kind: A\nname: a\n");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read_input(Some(&path)).is_err());
        let missing = dir.join("missing.yaml");
        let err = read_input(Some(&missing)).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
