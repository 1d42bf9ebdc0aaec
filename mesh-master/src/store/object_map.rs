//! The object map: the state machine's data and the deterministic rules of every command.

use super::{Command, CommandOutcome, Rejection, RejectionKind};
use crate::objects::{self, Object};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An object as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Kind as written by the user (`HTTPServer`, `HTTPPipeline`, `Pipeline`).
    pub kind: String,
    /// Unique name (across kinds).
    pub name: String,
    /// Canonical JSON document (defaults filled in).
    pub spec_json: String,
    /// Revision at which the object was created.
    pub create_revision: u64,
    /// Revision of the object's last change.
    pub update_revision: u64,
}

/// A change to persist after applying a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store this object (insert or replace).
    Put(StoredObject),
    /// Remove the object of this name.
    Remove(String),
}

/// Every object by name, the global revision, and a cache of the parsed objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectMap {
    revision: u64,
    objects: BTreeMap<String, StoredObject>,
    parsed: BTreeMap<String, Object>,
}

/// The serialized form of an [`ObjectMap`] (snapshots).
#[derive(Serialize, Deserialize)]
struct ObjectMapData {
    revision: u64,
    objects: Vec<StoredObject>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Create,
    Update,
    Apply,
}

impl ObjectMap {
    /// Rebuilds a map from stored objects.
    pub fn from_parts(revision: u64, objects: impl IntoIterator<Item = StoredObject>) -> Self {
        let mut map = ObjectMap {
            revision,
            ..Default::default()
        };
        for obj in objects {
            match objects::parse_stored(&obj.spec_json) {
                Some(parsed) => {
                    map.parsed.insert(obj.name.clone(), parsed);
                }
                None => {
                    tracing::warn!(name = %obj.name, "stored object no longer parses; it is kept but not validated")
                }
            }
            map.objects.insert(obj.name.clone(), obj);
        }
        map
    }

    /// The store revision: the number of successful changes so far.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The object of this name.
    pub fn get(&self, name: &str) -> Option<&StoredObject> {
        self.objects.get(name)
    }

    /// Every object, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &StoredObject> {
        self.objects.values()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the map holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Encodes the map for a snapshot.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&ObjectMapData {
            revision: self.revision,
            objects: self.objects.values().cloned().collect(),
        })
    }

    /// Decodes a map from a snapshot.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let data: ObjectMapData = serde_json::from_slice(bytes)?;
        Ok(Self::from_parts(data.revision, data.objects))
    }

    /// Applies a command. A refused command changes nothing; a successful one bumps the revision by one.
    pub fn apply(&mut self, cmd: &Command) -> (CommandOutcome, Option<Change>) {
        match cmd {
            Command::Create { doc } => self.write(doc, WriteMode::Create),
            Command::Update { doc } => self.write(doc, WriteMode::Update),
            Command::Apply { doc } => self.write(doc, WriteMode::Apply),
            Command::Delete { name } => self.delete(name),
        }
    }

    fn write(&mut self, doc: &str, mode: WriteMode) -> (CommandOutcome, Option<Change>) {
        if doc.len() > objects::MAX_DOCUMENT_BYTES {
            let message = format!(
                "object document is {} bytes; the limit is {}",
                doc.len(),
                objects::MAX_DOCUMENT_BYTES
            );
            return rejected(RejectionKind::Invalid, message);
        }
        let parsed = match objects::parse_document(doc) {
            Ok(p) => p,
            Err(e) => return rejected(RejectionKind::Invalid, e.message),
        };
        let name = parsed.object.name().to_owned();
        let kind = parsed.object.kind().to_owned();
        let existing = self.objects.get(&name);
        match (mode, existing) {
            (WriteMode::Create, Some(_)) => {
                return rejected(
                    RejectionKind::AlreadyExists,
                    format!("object {name} already exists"),
                );
            }
            (WriteMode::Update, None) => {
                return rejected(RejectionKind::NotFound, format!("object {name} not found"));
            }
            (WriteMode::Update | WriteMode::Apply, Some(old))
                if !objects::same_kind(&old.kind, &kind) =>
            {
                return rejected(
                    RejectionKind::KindChanged,
                    format!(
                        "object {name} is of kind {}; an update cannot change its kind to {kind} (delete it first)",
                        old.kind
                    ),
                );
            }
            _ => {}
        }
        let create_revision = existing.map(|o| o.create_revision);
        let would_be: Vec<Object> = self
            .parsed
            .iter()
            .filter(|(n, _)| **n != name)
            .map(|(_, o)| o.clone())
            .chain(std::iter::once(parsed.object.clone()))
            .collect();
        if let Err(e) = objects::validate_set(&would_be) {
            return rejected(RejectionKind::Invalid, format!("{name}: {e}"));
        }
        self.revision += 1;
        let stored = StoredObject {
            kind,
            name: name.clone(),
            spec_json: parsed.canonical_json,
            create_revision: create_revision.unwrap_or(self.revision),
            update_revision: self.revision,
        };
        self.objects.insert(name.clone(), stored.clone());
        self.parsed.insert(name, parsed.object);
        (
            CommandOutcome::Written {
                object: stored.clone(),
                revision: self.revision,
                created: create_revision.is_none(),
            },
            Some(Change::Put(stored)),
        )
    }

    fn delete(&mut self, name: &str) -> (CommandOutcome, Option<Change>) {
        if !self.objects.contains_key(name) {
            return rejected(RejectionKind::NotFound, format!("object {name} not found"));
        }
        let would_be: Vec<Object> = self
            .parsed
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .map(|(_, o)| o.clone())
            .collect();
        if let Err(e) = objects::validate_set(&would_be) {
            return rejected(RejectionKind::Invalid, format!("{name}: {e}"));
        }
        self.revision += 1;
        self.objects.remove(name);
        self.parsed.remove(name);
        (
            CommandOutcome::Deleted {
                name: name.to_owned(),
                revision: self.revision,
            },
            Some(Change::Remove(name.to_owned())),
        )
    }
}

fn rejected(kind: RejectionKind, message: String) -> (CommandOutcome, Option<Change>) {
    (CommandOutcome::Rejected(Rejection { kind, message }), None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An HTTPServer document on `port`.
    pub(crate) fn server(name: &str, port: u16) -> String {
        serde_json::json!({
            "kind": "HTTPServer", "name": name, "port": port, "keepAlive": true, "https": false,
            "rules": [{"paths": [{"pathPrefix": "/pipeline", "backend": "pipeline-demo"}]}]
        })
        .to_string()
    }

    /// A pipeline document (`kind` is `HTTPPipeline` or `Pipeline`) proxying to `url`.
    pub(crate) fn pipeline(kind: &str, name: &str, url: &str) -> String {
        serde_json::json!({
            "kind": kind, "name": name,
            "flow": [{"filter": "proxy"}],
            "filters": [{"name": "proxy", "kind": "Proxy",
                "mainPool": {"servers": [{"url": url}], "loadBalance": {"policy": "roundRobin"}}}]
        })
        .to_string()
    }

    fn create(doc: String) -> Command {
        Command::Create { doc }
    }

    fn rejection(outcome: &CommandOutcome) -> (RejectionKind, String) {
        match outcome {
            CommandOutcome::Rejected(r) => (r.kind, r.message.clone()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn create_bumps_revision_and_refuses_duplicates_across_kinds() {
        let mut map = ObjectMap::default();
        let (out, change) = map.apply(&create(pipeline(
            "HTTPPipeline",
            "pipeline-demo",
            "http://127.0.0.1:9095",
        )));
        match &out {
            CommandOutcome::Written {
                object,
                revision,
                created,
            } => {
                assert_eq!((*revision, *created), (1, true));
                assert_eq!((object.create_revision, object.update_revision), (1, 1));
                assert_eq!(object.kind, "HTTPPipeline");
                let doc: serde_json::Value = serde_json::from_str(&object.spec_json).unwrap();
                assert_eq!(doc["name"], "pipeline-demo");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(change, Some(Change::Put(_))));

        // Same name, other kind: names are unique across kinds.
        let (out, change) = map.apply(&create(server("pipeline-demo", 10080)));
        assert_eq!(
            rejection(&out),
            (
                RejectionKind::AlreadyExists,
                "object pipeline-demo already exists".into()
            )
        );
        assert!(change.is_none());
        assert_eq!(map.revision(), 1);
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn update_keeps_create_revision_and_refuses_kind_change() {
        let mut map = ObjectMap::default();
        map.apply(&create(pipeline(
            "HTTPPipeline",
            "p",
            "http://127.0.0.1:9095",
        )));
        map.apply(&create(server("s", 10080)));

        let (out, _) = map.apply(&Command::Update {
            doc: pipeline("Pipeline", "p", "http://127.0.0.1:9096"),
        });
        match out {
            CommandOutcome::Written {
                object,
                revision,
                created,
            } => {
                assert_eq!((revision, created), (3, false));
                assert_eq!((object.create_revision, object.update_revision), (1, 3));
                assert_eq!(object.kind, "Pipeline");
                assert!(object.spec_json.contains("9096"));
            }
            other => panic!("{other:?}"),
        }

        let (out, _) = map.apply(&Command::Update {
            doc: server("p", 10081),
        });
        let (kind, msg) = rejection(&out);
        assert_eq!(kind, RejectionKind::KindChanged);
        assert!(msg.contains("object p is of kind Pipeline"), "{msg}");

        let (out, _) = map.apply(&Command::Update {
            doc: server("absent", 10081),
        });
        assert_eq!(
            rejection(&out),
            (RejectionKind::NotFound, "object absent not found".into())
        );
        assert_eq!(map.revision(), 3);
    }

    #[test]
    fn apply_creates_then_updates() {
        let mut map = ObjectMap::default();
        let (out, _) = map.apply(&Command::Apply {
            doc: server("s", 10080),
        });
        assert!(matches!(
            out,
            CommandOutcome::Written {
                created: true,
                revision: 1,
                ..
            }
        ));
        let (out, _) = map.apply(&Command::Apply {
            doc: server("s", 10081),
        });
        assert!(matches!(
            out,
            CommandOutcome::Written {
                created: false,
                revision: 2,
                ..
            }
        ));
        assert_eq!(
            map.get("s").map(|o| (o.create_revision, o.update_revision)),
            Some((1, 2))
        );
        let (out, _) = map.apply(&Command::Apply {
            doc: pipeline("Pipeline", "s", "http://a:1"),
        });
        assert_eq!(rejection(&out).0, RejectionKind::KindChanged);
    }

    #[test]
    fn set_rules_and_invalid_documents_change_nothing() {
        let mut map = ObjectMap::default();
        map.apply(&create(server("a", 10080)));
        let before = map.clone();

        let (out, _) = map.apply(&create(server("b", 10080)));
        let (kind, msg) = rejection(&out);
        assert_eq!(kind, RejectionKind::Invalid);
        assert!(msg.starts_with("b: port: "), "{msg}");

        let (out, _) = map.apply(&create(
            r#"{"kind":"HTTPServer","name":"c","port":"oops"}"#.into(),
        ));
        let (kind, msg) = rejection(&out);
        assert_eq!(kind, RejectionKind::Invalid);
        assert!(msg.starts_with("c: port: "), "{msg}");
        assert_eq!(map, before);

        // Moving `a` off the port frees it for `b`.
        map.apply(&Command::Update {
            doc: server("a", 10081),
        });
        let (out, _) = map.apply(&create(server("b", 10080)));
        assert!(matches!(out, CommandOutcome::Written { revision: 3, .. }));
    }

    #[test]
    fn delete_removes_and_bumps() {
        let mut map = ObjectMap::default();
        map.apply(&create(server("a", 10080)));
        let (out, change) = map.apply(&Command::Delete { name: "a".into() });
        assert_eq!(
            out,
            CommandOutcome::Deleted {
                name: "a".into(),
                revision: 2
            }
        );
        assert_eq!(change, Some(Change::Remove("a".into())));
        assert!(map.is_empty());
        let (out, _) = map.apply(&Command::Delete { name: "a".into() });
        assert_eq!(
            rejection(&out),
            (RejectionKind::NotFound, "object a not found".into())
        );
        assert_eq!(map.revision(), 2);
        // The name is free again; the new object gets fresh revisions.
        let (out, _) = map.apply(&create(server("a", 10080)));
        assert!(matches!(
            out,
            CommandOutcome::Written {
                revision: 3,
                created: true,
                ..
            }
        ));
    }

    #[test]
    fn oversized_documents_are_refused_even_when_forwarded() {
        let mut map = ObjectMap::default();
        let doc = format!(
            r#"{{"kind":"HTTPServer","name":"big","pad":"{}"}}"#,
            "x".repeat(1024 * 1024)
        );
        let (out, _) = map.apply(&create(doc.clone()));
        let expected = format!(
            "object document is {} bytes; the limit is 1048576",
            doc.len()
        );
        assert_eq!(rejection(&out), (RejectionKind::Invalid, expected));
        assert_eq!(map.revision(), 0);
    }

    #[test]
    fn bytes_round_trip() {
        let mut map = ObjectMap::default();
        map.apply(&create(server("a", 10080)));
        map.apply(&create(pipeline("Pipeline", "p", "http://127.0.0.1:1")));
        let again = ObjectMap::from_bytes(&map.to_bytes().unwrap()).unwrap();
        assert_eq!(again, map);
    }
}
