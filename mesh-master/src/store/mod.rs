//! The replicated object store: openraft type configuration, commands and outcomes, and the
//! redb-backed log ([`log::LogStore`]) and state machine ([`state_machine::StateMachineStore`]).

pub mod log;
pub mod object_map;
pub mod state_machine;
#[cfg(test)]
mod suite_test;

use serde::{Deserialize, Serialize};
use std::io::Cursor;

pub use object_map::{ObjectMap, StoredObject};

openraft::declare_raft_types!(
    /// openraft type configuration of the master store.
    pub TypeConfig:
        D = Command,
        R = CommandOutcome,
        NodeId = NodeId,
        Node = MasterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Raft id of a master.
pub type NodeId = u64;
/// The Raft node of a master.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Membership with the log id that set it.
pub type StoredMembership = openraft::StoredMembership<NodeId, MasterNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, MasterNode>;
/// openraft's storage error.
pub type StorageError = openraft::StorageError<NodeId>;

/// What the cluster knows of one master: carried in the Raft membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterNode {
    /// Human name (`--name`).
    pub name: String,
    /// Address of the client gRPC service (admin, config discovery).
    pub client_addr: String,
    /// Address of the Raft peer gRPC service.
    pub peer_addr: String,
}

/// A change proposed to the store. Documents are the user's JSON text, re-validated when applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create an object; fails if the name is taken.
    Create {
        /// The JSON document.
        doc: String,
    },
    /// Replace an existing object of the same kind.
    Update {
        /// The JSON document.
        doc: String,
    },
    /// Create or update.
    Apply {
        /// The JSON document.
        doc: String,
    },
    /// Delete an object by name.
    Delete {
        /// The object's name.
        name: String,
    },
}

/// The result of applying one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The entry carried no command (blank or membership entry).
    Noop,
    /// An object was created or updated.
    Written {
        /// The object as stored.
        object: StoredObject,
        /// The store revision of the change.
        revision: u64,
        /// True when the object did not exist before.
        created: bool,
    },
    /// An object was deleted.
    Deleted {
        /// The deleted object's name.
        name: String,
        /// The store revision of the change.
        revision: u64,
    },
    /// The command was refused; nothing changed.
    Rejected(Rejection),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The class of failure.
    pub kind: RejectionKind,
    /// A message for the user.
    pub message: String,
}

/// Classes of refused commands (each maps to one gRPC status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionKind {
    /// The document, or the store it would make, is invalid.
    Invalid,
    /// Create of a name that exists.
    AlreadyExists,
    /// Update or delete of a name that does not exist.
    NotFound,
    /// Update that would change an object's kind.
    KindChanged,
}

/// Errors of the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed.
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    /// A stored value could not be encoded or decoded.
    #[error("encoding: {0}")]
    Codec(#[from] serde_json::Error),
    /// A blocking storage task failed.
    #[error("storage task failed: {0}")]
    Task(String),
}

macro_rules! redb_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(e.into())
            }
        }
    )*};
}
redb_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Tells whether a store's database is still open somewhere in the process.
#[derive(Clone)]
pub struct OpenFlag(std::sync::Weak<dyn std::any::Any + Send + Sync>);

impl OpenFlag {
    /// Watches the database held by `db`.
    pub(crate) fn new<T: std::any::Any + Send + Sync>(db: &std::sync::Arc<T>) -> Self {
        let any: std::sync::Arc<dyn std::any::Any + Send + Sync> = db.clone();
        OpenFlag(std::sync::Arc::downgrade(&any))
    }

    /// Whether any handle to the database is still alive.
    pub fn is_open(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// Runs blocking storage work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, DbError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, DbError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
}

/// Opens a redb database file, creating it if absent.
pub(crate) fn open_database(path: &std::path::Path) -> Result<redb::Database, DbError> {
    Ok(redb::Database::create(path)?)
}

/// Reads one JSON value from a `&str -> bytes` table.
pub(crate) fn read_json<T, Tbl>(table: &Tbl, key: &str) -> Result<Option<T>, DbError>
where
    T: serde::de::DeserializeOwned,
    Tbl: redb::ReadableTable<&'static str, &'static [u8]>,
{
    match table.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

/// Converts a storage failure into openraft's error, naming what was being done.
pub(crate) fn io_err(
    verb: openraft::ErrorVerb,
    subject: openraft::ErrorSubject<NodeId>,
    e: &DbError,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(e)).into()
}
