//! The state machine: the object map, applied into redb in the same commit as the last-applied log id,
//! plus snapshots (the encoded object map) kept on disk. Reads for the services come from memory.

use super::object_map::Change;
use super::{
    CommandOutcome, DbError, Entry, LogId, ObjectMap, SnapshotMeta, StorageError, StoredMembership,
    StoredObject, TypeConfig, blocking, io_err, read_json,
};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, Snapshot};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::watch;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const KEY_LAST_APPLIED: &str = "last_applied";
const KEY_MEMBERSHIP: &str = "last_membership";
const KEY_REVISION: &str = "revision";
const KEY_SNAPSHOT_META: &str = "meta";
const KEY_SNAPSHOT_DATA: &str = "data";

/// The state machine; cheap to clone (clones share state). Also the snapshot builder.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

struct Shared {
    db: Database,
    state: RwLock<SmState>,
    snapshot: Mutex<Option<StoredSnapshot>>,
    revision_tx: watch::Sender<u64>,
    snapshot_seq: AtomicU64,
}

#[derive(Default)]
struct SmState {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    objects: ObjectMap,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StateMachineStore {
    /// Opens (or creates) the state machine database at `path` and loads it into memory.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = super::open_database(path)?;
        let txn = db.begin_write()?;
        txn.open_table(OBJECTS)?;
        txn.open_table(META)?;
        txn.open_table(SNAPSHOT)?;
        txn.commit()?;

        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let last_applied: Option<LogId> = read_json(&meta, KEY_LAST_APPLIED)?;
        let last_membership: StoredMembership =
            read_json(&meta, KEY_MEMBERSHIP)?.unwrap_or_default();
        let revision: u64 = read_json(&meta, KEY_REVISION)?.unwrap_or(0);
        let mut objects = Vec::new();
        for item in txn.open_table(OBJECTS)?.iter()? {
            let (_, value) = item?;
            objects.push(serde_json::from_slice::<StoredObject>(value.value())?);
        }
        let snap = txn.open_table(SNAPSHOT)?;
        let snapshot = match (
            read_json::<SnapshotMeta, _>(&snap, KEY_SNAPSHOT_META)?,
            snap.get(KEY_SNAPSHOT_DATA)?,
        ) {
            (Some(meta), Some(data)) => Some(StoredSnapshot {
                meta,
                data: data.value().to_vec(),
            }),
            _ => None,
        };
        drop(txn);

        let objects = ObjectMap::from_parts(revision, objects);
        let (revision_tx, _) = watch::channel(revision);
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                db,
                state: RwLock::new(SmState {
                    last_applied,
                    last_membership,
                    objects,
                }),
                snapshot: Mutex::new(snapshot),
                revision_tx,
                snapshot_seq: AtomicU64::new(0),
            }),
        })
    }

    /// A flag that turns false once every clone of this store is dropped (the file is closed).
    pub fn open_flag(&self) -> super::OpenFlag {
        super::OpenFlag::new(&self.shared)
    }

    fn read<T>(&self, f: impl FnOnce(&SmState) -> T) -> T {
        let guard = self
            .shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// The store revision.
    pub fn revision(&self) -> u64 {
        self.read(|s| s.objects.revision())
    }

    /// The object of this name.
    pub fn get(&self, name: &str) -> Option<StoredObject> {
        self.read(|s| s.objects.get(name).cloned())
    }

    /// The objects whose kind satisfies `keep`, sorted by name, with the revision they are at.
    pub fn select(&self, keep: impl Fn(&str) -> bool) -> (u64, Vec<StoredObject>) {
        self.read(|s| {
            (
                s.objects.revision(),
                s.objects
                    .iter()
                    .filter(|o| keep(&o.kind))
                    .cloned()
                    .collect(),
            )
        })
    }

    /// A receiver of the store revision, updated after each applied change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.revision_tx.subscribe()
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.read(|s| s.last_applied)
    }

    fn publish_revision(&self) {
        let revision = self.revision();
        self.shared.revision_tx.send_if_modified(|current| {
            let changed = *current != revision;
            *current = revision;
            changed
        });
    }

    /// Applies entries in memory, then persists their effects and the last-applied id in one durable commit.
    fn apply_blocking(&self, entries: Vec<Entry>) -> Result<Vec<CommandOutcome>, DbError> {
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut changes = Vec::new();
        let (last_applied, membership, revision) = {
            let mut state = self
                .shared
                .state
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for entry in entries {
                state.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => outcomes.push(CommandOutcome::Noop),
                    EntryPayload::Normal(cmd) => {
                        let (outcome, change) = state.objects.apply(&cmd);
                        changes.extend(change);
                        outcomes.push(outcome);
                    }
                    EntryPayload::Membership(m) => {
                        state.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        outcomes.push(CommandOutcome::Noop);
                    }
                }
            }
            (
                state.last_applied,
                state.last_membership.clone(),
                state.objects.revision(),
            )
        };

        let mut txn = self.shared.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut objects = txn.open_table(OBJECTS)?;
            for change in changes {
                match change {
                    Change::Put(obj) => {
                        let bytes = serde_json::to_vec(&obj)?;
                        objects.insert(obj.name.as_str(), bytes.as_slice())?;
                    }
                    Change::Remove(name) => {
                        objects.remove(name.as_str())?;
                    }
                }
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(
                KEY_LAST_APPLIED,
                serde_json::to_vec(&last_applied)?.as_slice(),
            )?;
            meta.insert(KEY_MEMBERSHIP, serde_json::to_vec(&membership)?.as_slice())?;
            meta.insert(KEY_REVISION, serde_json::to_vec(&revision)?.as_slice())?;
        }
        txn.commit()?;
        self.publish_revision();
        Ok(outcomes)
    }

    fn build_snapshot_blocking(&self) -> Result<StoredSnapshot, DbError> {
        let (data, last_applied, last_membership) = self.read(|s| {
            (
                s.objects.to_bytes(),
                s.last_applied,
                s.last_membership.clone(),
            )
        });
        let data = data?;
        let seq = self.shared.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match &last_applied {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("--{seq}"),
        };
        let snapshot = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: last_applied,
                last_membership,
                snapshot_id,
            },
            data,
        };
        self.save_snapshot(&snapshot, None)?;
        Ok(snapshot)
    }

    /// Persists `snapshot` as the current one; with `install`, also replaces the state machine by it.
    fn save_snapshot(
        &self,
        snapshot: &StoredSnapshot,
        install: Option<&ObjectMap>,
    ) -> Result<(), DbError> {
        let mut txn = self.shared.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut snap = txn.open_table(SNAPSHOT)?;
            snap.insert(
                KEY_SNAPSHOT_META,
                serde_json::to_vec(&snapshot.meta)?.as_slice(),
            )?;
            snap.insert(KEY_SNAPSHOT_DATA, snapshot.data.as_slice())?;
            if let Some(map) = install {
                let mut objects = txn.open_table(OBJECTS)?;
                objects.retain(|_, _| false)?;
                for obj in map.iter() {
                    objects.insert(obj.name.as_str(), serde_json::to_vec(obj)?.as_slice())?;
                }
                let mut meta = txn.open_table(META)?;
                meta.insert(
                    KEY_LAST_APPLIED,
                    serde_json::to_vec(&snapshot.meta.last_log_id)?.as_slice(),
                )?;
                meta.insert(
                    KEY_MEMBERSHIP,
                    serde_json::to_vec(&snapshot.meta.last_membership)?.as_slice(),
                )?;
                meta.insert(
                    KEY_REVISION,
                    serde_json::to_vec(&map.revision())?.as_slice(),
                )?;
            }
        }
        txn.commit()?;
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
        Ok(())
    }

    fn install_blocking(&self, snapshot: StoredSnapshot) -> Result<(), DbError> {
        let map = ObjectMap::from_bytes(&snapshot.data)?;
        self.save_snapshot(&snapshot, Some(&map))?;
        {
            let mut state = self
                .shared
                .state
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            *state = SmState {
                last_applied: snapshot.meta.last_log_id,
                last_membership: snapshot.meta.last_membership.clone(),
                objects: map,
            };
        }
        self.publish_revision();
        Ok(())
    }
}

fn to_snapshot(s: StoredSnapshot) -> Snapshot<TypeConfig> {
    Snapshot {
        meta: s.meta,
        snapshot: Box::new(Cursor::new(s.data)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let this = self.clone();
        let snapshot = blocking(move || this.build_snapshot_blocking())
            .await
            .map_err(|e| io_err(ErrorVerb::Write, ErrorSubject::Snapshot(None), &e))?;
        Ok(to_snapshot(snapshot))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(self.read(|s| (s.last_applied, s.last_membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let this = self.clone();
        blocking(move || this.apply_blocking(entries))
            .await
            .map_err(|e| io_err(ErrorVerb::Write, ErrorSubject::StateMachine, &e))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let this = self.clone();
        blocking(move || this.install_blocking(stored))
            .await
            .map_err(|e| {
                io_err(
                    ErrorVerb::Write,
                    ErrorSubject::Snapshot(Some(meta.signature())),
                    &e,
                )
            })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(current.map(to_snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::object_map::tests::{pipeline, server};
    use crate::store::{Command, MasterNode};
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    fn normal(index: u64, cmd: Command) -> Entry {
        Entry {
            log_id: log_id(index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn membership_entry(index: u64) -> Entry {
        let nodes = BTreeMap::from([(
            1,
            MasterNode {
                name: "m1".into(),
                ..Default::default()
            },
        )]);
        Entry {
            log_id: log_id(index),
            payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], nodes)),
        }
    }

    #[tokio::test]
    async fn applied_state_and_objects_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm.redb");
        {
            let mut sm = StateMachineStore::open(&path).unwrap();
            let mut revisions = sm.subscribe();
            let out = sm
                .apply(vec![
                    membership_entry(1),
                    normal(
                        2,
                        Command::Create {
                            doc: server("a", 10080),
                        },
                    ),
                    normal(
                        3,
                        Command::Create {
                            doc: server("b", 10080),
                        },
                    ),
                    normal(
                        4,
                        Command::Create {
                            doc: pipeline("Pipeline", "p", "http://127.0.0.1:1"),
                        },
                    ),
                    normal(5, Command::Delete { name: "p".into() }),
                ])
                .await
                .unwrap();
            assert_eq!(out.len(), 5);
            assert_eq!(out[0], CommandOutcome::Noop);
            assert!(matches!(out[2], CommandOutcome::Rejected(_)));
            assert!(revisions.has_changed().unwrap());
            assert_eq!(*revisions.borrow_and_update(), 3);
        }
        let mut sm = StateMachineStore::open(&path).unwrap();
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(5)));
        assert_eq!(membership.log_id(), &Some(log_id(1)));
        assert_eq!(sm.revision(), 3);
        assert!(sm.get("a").is_some());
        assert!(sm.get("p").is_none());
        // The set rules still see `a` after the reopen.
        let out = sm
            .apply(vec![normal(
                6,
                Command::Create {
                    doc: server("c", 10080),
                },
            )])
            .await
            .unwrap();
        assert!(matches!(out[0], CommandOutcome::Rejected(_)));
    }

    #[tokio::test]
    async fn snapshot_build_and_install_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut leader = StateMachineStore::open(&dir.path().join("leader.redb")).unwrap();
        leader
            .apply(vec![
                membership_entry(1),
                normal(
                    2,
                    Command::Create {
                        doc: server("a", 10080),
                    },
                ),
                normal(
                    3,
                    Command::Create {
                        doc: pipeline("HTTPPipeline", "p", "http://127.0.0.1:1"),
                    },
                ),
            ])
            .await
            .unwrap();
        let snap = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(3)));
        let current = leader.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);

        let follower_path = dir.path().join("follower.redb");
        {
            let mut follower = StateMachineStore::open(&follower_path).unwrap();
            // Something the snapshot must replace.
            follower
                .apply(vec![normal(
                    1,
                    Command::Create {
                        doc: server("stale", 9999),
                    },
                )])
                .await
                .unwrap();
            let revisions = follower.subscribe();
            let mut data = follower.begin_receiving_snapshot().await.unwrap();
            *data = *current.snapshot;
            follower
                .install_snapshot(&current.meta, data)
                .await
                .unwrap();
            assert!(revisions.has_changed().unwrap());
            assert_eq!(follower.revision(), 2);
            assert!(follower.get("stale").is_none());
        }
        // Installed state and the snapshot itself are durable.
        let mut follower = StateMachineStore::open(&follower_path).unwrap();
        assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(3)));
        assert_eq!(follower.revision(), 2);
        let (rev, objs) = follower.select(|_| true);
        assert_eq!(rev, 2);
        assert_eq!(
            objs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "p"]
        );
        assert_eq!(leader.get("a"), follower.get("a"));
        let snap = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(snap.meta, current.meta);
    }
}
