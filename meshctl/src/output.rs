//! Formatting of results: documents as YAML or JSON, and aligned tables.

use anyhow::{Context, Result};
use meshgress_proto::admin::{Member, Object, ProxyStatus};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

/// Shown in a table cell that has no value.
const EMPTY_CELL: &str = "-";

/// Between two table columns.
const COLUMN_GAP: &str = "  ";

/// Turns an object's stored `spec_json` into an ordered document: `kind` and `name` first, then the
/// other fields in the order the master wrote them. Falls back to the object's own kind and name when
/// the document lacks them, so the result is always something `object update -f` accepts.
pub fn object_document(object: &Object) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_str(&object.spec_json);
    let stored = Value::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .with_context(|| {
            format!(
                "the master returned an invalid document for {}",
                object.name
            )
        })?;
    let Value::Mapping(mut fields) = stored else {
        anyhow::bail!(
            "the master returned a document for {} that is not a JSON object",
            object.name
        );
    };
    let mut document = Mapping::with_capacity(fields.len() + 2);
    for (key, fallback) in [("kind", &object.kind), ("name", &object.name)] {
        let value = fields
            .shift_remove(key)
            .unwrap_or_else(|| Value::String(fallback.clone()));
        document.insert(Value::String(key.to_owned()), value);
    }
    document.extend(fields);
    Ok(Value::Mapping(document))
}

/// Renders any value as YAML (no leading `---`, ends with a newline).
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_yaml::to_string(value).context("cannot render YAML")
}

/// Renders any value as pretty-printed JSON, ending with a newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    text.push('\n');
    Ok(text)
}

/// A table with a header line; columns are left-aligned and separated by two spaces.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles and no rows.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; an empty cell shows as `-`, line breaks become spaces.
    pub fn push(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| {
                if c.is_empty() {
                    EMPTY_CELL.to_owned()
                } else {
                    c.replace(['\r', '\n', '\t'], " ")
                }
            })
            .collect();
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending with a newline, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str(COLUMN_GAP);
                }
                line.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Objects as a table: NAME KIND CREATE-REV UPDATE-REV.
pub fn objects_table(objects: &[Object]) -> String {
    let mut table = Table::new(&["NAME", "KIND", "CREATE-REV", "UPDATE-REV"]);
    for o in objects {
        table.push(vec![
            o.name.clone(),
            o.kind.clone(),
            o.create_revision.to_string(),
            o.update_revision.to_string(),
        ]);
    }
    table.render()
}

/// One cluster member as printed by `-o yaml|json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// Member name.
    pub name: String,
    /// Raft node id.
    pub id: u64,
    /// leader, follower, candidate or learner.
    pub role: String,
    /// Client (admin gRPC) address.
    pub client_address: String,
    /// Raft peer address.
    pub peer_address: String,
    /// RFC 3339 time of the last heartbeat.
    pub last_heartbeat: String,
    /// Whether the member is considered healthy.
    pub healthy: bool,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            name: m.name.clone(),
            id: m.id,
            role: m.role.clone(),
            client_address: m.client_address.clone(),
            peer_address: m.peer_address.clone(),
            last_heartbeat: m.last_heartbeat.clone(),
            healthy: m.healthy,
        }
    }
}

/// Members as a table: NAME ID ROLE CLIENT PEER LAST-HEARTBEAT HEALTHY.
pub fn members_table(members: &[Member]) -> String {
    let mut table = Table::new(&[
        "NAME",
        "ID",
        "ROLE",
        "CLIENT",
        "PEER",
        "LAST-HEARTBEAT",
        "HEALTHY",
    ]);
    for m in members {
        table.push(vec![
            m.name.clone(),
            m.id.to_string(),
            m.role.clone(),
            m.client_address.clone(),
            m.peer_address.clone(),
            m.last_heartbeat.clone(),
            m.healthy.to_string(),
        ]);
    }
    table.render()
}

/// One proxy's config-stream status as printed by `-o yaml|json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatusView {
    /// Proxy node id.
    pub node_id: String,
    /// sidecar, ingress or gateway.
    pub role: String,
    /// Service the proxy stands beside (sidecars).
    pub service: String,
    /// Whether its config stream is open.
    pub connected: bool,
    /// Last snapshot version the proxy applied.
    pub acked_version: String,
    /// Last version sent to it.
    pub sent_version: String,
    /// Last version it refused; empty when its last answer was an ACK.
    pub nacked_version: String,
    /// Why it refused `nackedVersion`.
    pub nack_error: String,
    /// When the master last heard from it.
    pub last_seen: String,
}

impl From<&ProxyStatus> for ProxyStatusView {
    fn from(p: &ProxyStatus) -> Self {
        Self {
            node_id: p.node_id.clone(),
            role: p.role.clone(),
            service: p.service.clone(),
            connected: p.connected,
            acked_version: p.acked_version.clone(),
            sent_version: p.sent_version.clone(),
            nacked_version: p.nacked_version.clone(),
            nack_error: p.nack_error.clone(),
            last_seen: p.last_seen.clone(),
        }
    }
}

/// Proxies as a table: NODE ROLE SERVICE CONNECTED ACKED SENT NACKED ERROR LAST-SEEN.
pub fn status_table(proxies: &[ProxyStatus]) -> String {
    let mut table = Table::new(&[
        "NODE",
        "ROLE",
        "SERVICE",
        "CONNECTED",
        "ACKED",
        "SENT",
        "NACKED",
        "ERROR",
        "LAST-SEEN",
    ]);
    for p in proxies {
        table.push(vec![
            p.node_id.clone(),
            p.role.clone(),
            p.service.clone(),
            p.connected.to_string(),
            p.acked_version.clone(),
            p.sent_version.clone(),
            p.nacked_version.clone(),
            truncate(&p.nack_error, 60),
            p.last_seen.clone(),
        ]);
    }
    table.render()
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_documents;

    fn object(kind: &str, name: &str, spec_json: &str) -> Object {
        Object {
            kind: kind.into(),
            name: name.into(),
            spec_json: spec_json.into(),
            create_revision: 3,
            update_revision: 7,
        }
    }

    #[test]
    fn document_puts_kind_and_name_first_and_keeps_order() {
        let o = object(
            "HTTPServer",
            "server-demo",
            r#"{"port":10080,"https":false,"name":"server-demo","kind":"HTTPServer","rules":[{"paths":[{"pathPrefix":"/pipeline","backend":"pipeline-demo"}]}],"keepAlive":true}"#,
        );
        let doc = object_document(&o).unwrap();
        let yaml = to_yaml(&doc).unwrap();
        assert_eq!(
            yaml,
            "kind: HTTPServer\nname: server-demo\nport: 10080\nhttps: false\nrules:\n\
             - paths:\n  - pathPrefix: /pipeline\n    backend: pipeline-demo\nkeepAlive: true\n"
        );
        let json = to_json(&doc).unwrap();
        assert!(json.starts_with(
            "{\n  \"kind\": \"HTTPServer\",\n  \"name\": \"server-demo\",\n  \"port\": 10080"
        ));
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn printed_documents_read_back_unchanged() {
        let o = object(
            "HTTPPipeline",
            "p",
            r#"{"kind":"HTTPPipeline","name":"p","flow":[{"filter":"proxy","jumpIf":{"fail":"END"}}],"version":"1.0","count":0,"ratio":0.5,"timeout":"500ms","empty":null,"flag":"true"}"#,
        );
        let doc = object_document(&o).unwrap();
        for text in [to_yaml(&doc).unwrap(), to_json(&doc).unwrap()] {
            let parsed = parse_documents(&text).unwrap();
            assert_eq!(parsed.len(), 1);
            let back: serde_json::Value = serde_json::from_str(&parsed[0].spec_json).unwrap();
            let orig: serde_json::Value = serde_json::from_str(&o.spec_json).unwrap();
            assert_eq!(back, orig, "{text}");
        }
        // A list printed with -o yaml reads back as its documents.
        let list = Value::Sequence(vec![doc.clone(), doc]);
        assert_eq!(parse_documents(&to_yaml(&list).unwrap()).unwrap().len(), 2);
    }

    #[test]
    fn document_without_kind_or_name_uses_the_object_fields() {
        let doc = object_document(&object("Mock", "m", r#"{"rules":[]}"#)).unwrap();
        assert_eq!(to_yaml(&doc).unwrap(), "kind: Mock\nname: m\nrules: []\n");
        assert!(object_document(&object("Mock", "m", "[1]")).is_err());
        assert!(object_document(&object("Mock", "m", "{} {}")).is_err());
        assert!(object_document(&object("Mock", "m", "not json")).is_err());
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["NAME", "KIND", "X"]);
        t.push(vec!["server-demo".into(), "HTTPServer".into(), "".into()]);
        t.push(vec!["p".into(), "Pipeline".into(), "multi\nline".into()]);
        assert_eq!(
            t.render(),
            "NAME         KIND        X\n\
             server-demo  HTTPServer  -\n\
             p            Pipeline    multi line\n"
        );
    }

    #[test]
    fn objects_members_and_status_tables() {
        let objects = [object("HTTPServer", "server-demo", "{}")];
        assert_eq!(
            objects_table(&objects),
            "NAME         KIND        CREATE-REV  UPDATE-REV\nserver-demo  HTTPServer  3           7\n"
        );
        assert_eq!(objects_table(&[]), "NAME  KIND  CREATE-REV  UPDATE-REV\n");

        let member = Member {
            name: "master-1".into(),
            id: 1,
            role: "leader".into(),
            client_address: "127.0.0.1:2381".into(),
            peer_address: "127.0.0.1:2380".into(),
            last_heartbeat: "2026-01-02T03:04:05Z".into(),
            healthy: true,
        };
        let text = members_table(std::slice::from_ref(&member));
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(
            "NAME      ID  ROLE    CLIENT          PEER            LAST-HEARTBEAT        HEALTHY\n"
        ));
        assert!(text.ends_with(
            "master-1  1   leader  127.0.0.1:2381  127.0.0.1:2380  2026-01-02T03:04:05Z  true\n"
        ));
        let yaml = to_yaml(&[MemberView::from(&member)]).unwrap();
        assert!(yaml.contains("clientAddress: 127.0.0.1:2381"), "{yaml}");

        let proxy = ProxyStatus {
            node_id: "ingress-1".into(),
            role: "ingress".into(),
            connected: true,
            acked_version: "4".into(),
            sent_version: "5".into(),
            nacked_version: "5".into(),
            nack_error: "x".repeat(100),
            ..Default::default()
        };
        let text = status_table(std::slice::from_ref(&proxy));
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.starts_with("ingress-1  ingress  -        true       4      5     5       xxx"),
            "{row}"
        );
        assert!(row.contains('…'));
        let json = to_json(&[ProxyStatusView::from(&proxy)]).unwrap();
        assert!(json.contains("\"nackedVersion\": \"5\""), "{json}");
    }
}
