//! The Raft log and vote, persisted in redb. Every write commits with `Durability::Immediate`
//! before it is acknowledged (the vote before `save_vote` returns, entries before the append callback).

use super::{DbError, Entry, LogId, NodeId, StorageError, TypeConfig, blocking, io_err, read_json};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("log_meta");
const KEY_VOTE: &str = "vote";
const KEY_LAST_PURGED: &str = "last_purged";
const KEY_COMMITTED: &str = "committed";

/// The Raft log store; cheap to clone (clones share the database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Opens (or creates) the log database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = super::open_database(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOGS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(LogStore { db: Arc::new(db) })
    }

    /// A flag that turns false once every clone of this store is dropped (the file is closed).
    pub fn open_flag(&self) -> super::OpenFlag {
        super::OpenFlag::new(&self.db)
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        read_json(&table, key)
    }

    /// Runs `f` in one durable write transaction, off the async threads.
    async fn write<F>(&self, f: F) -> Result<(), DbError>
    where
        F: FnOnce(&redb::WriteTransaction) -> Result<(), DbError> + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Result<Vec<Entry>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let mut out = Vec::new();
        for item in table.range(range)? {
            let (_, value) = item?;
            out.push(serde_json::from_slice(value.value())?);
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        match table.last()? {
            Some((_, value)) => {
                let entry: Entry = serde_json::from_slice(value.value())?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

fn put_meta<T: serde::Serialize>(
    txn: &redb::WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), DbError> {
    let bytes = serde_json::to_vec(value)?;
    let mut table = txn.open_table(META)?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range)
            .map_err(|e| io_err(ErrorVerb::Read, ErrorSubject::Logs, &e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let read = || -> Result<_, DbError> {
            let last_purged: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
            let last = self.last_log_id()?.or(last_purged);
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last,
            })
        };
        read().map_err(|e| io_err(ErrorVerb::Read, ErrorSubject::Logs, &e))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let vote = *vote;
        self.write(move |txn| put_meta(txn, KEY_VOTE, &vote))
            .await
            .map_err(|e| io_err(ErrorVerb::Write, ErrorSubject::Vote, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(KEY_VOTE)
            .map_err(|e| io_err(ErrorVerb::Read, ErrorSubject::Vote, &e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not fsynced on its own: a later durable commit persists it; losing it only delays re-applying.
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            put_meta(&txn, KEY_COMMITTED, &committed)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| io_err(ErrorVerb::Write, ErrorSubject::Store, &e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta::<Option<LogId>>(KEY_COMMITTED)
            .map(Option::flatten)
            .map_err(|e| io_err(ErrorVerb::Read, ErrorSubject::Store, &e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let encoded = entries
            .into_iter()
            .map(|e| serde_json::to_vec(&e).map(|bytes| (e.log_id.index, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_err(ErrorVerb::Write, ErrorSubject::Logs, &DbError::Codec(e)));
        let encoded = match encoded {
            Ok(v) => v,
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                return Err(e);
            }
        };
        let result = self
            .write(move |txn| {
                let mut table = txn.open_table(LOGS)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(ErrorVerb::Write, ErrorSubject::Logs, &e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let since = log_id.index;
        self.write(move |txn| {
            let mut table = txn.open_table(LOGS)?;
            table.retain_in(since.., |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| io_err(ErrorVerb::Delete, ErrorSubject::Logs, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write(move |txn| {
            put_meta(txn, KEY_LAST_PURGED, &log_id)?;
            let mut table = txn.open_table(LOGS)?;
            table.retain_in(..=log_id.index, |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| io_err(ErrorVerb::Delete, ErrorSubject::Logs, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Command;
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64, name: &str) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Command::Delete { name: name.into() }),
        }
    }

    async fn append(store: &mut LogStore, entries: Vec<Entry>) {
        store.blocking_append(entries).await.unwrap();
    }

    #[tokio::test]
    async fn survives_reopen_with_truncate_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let mut store = LogStore::open(&path).unwrap();
            store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
            append(
                &mut store,
                (1..=10).map(|i| entry(3, i, &format!("o{i}"))).collect(),
            )
            .await;
            store
                .truncate(LogId::new(CommittedLeaderId::new(3, 1), 9))
                .await
                .unwrap();
            store
                .purge(LogId::new(CommittedLeaderId::new(3, 1), 4))
                .await
                .unwrap();
        }
        let mut store = LogStore::open(&path).unwrap();
        assert_eq!(
            store.read_vote().await.unwrap(),
            Some(Vote::new_committed(3, 1))
        );
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(4));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(8));
        let got = store.try_get_log_entries(0..100).await.unwrap();
        let indexes: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, vec![5, 6, 7, 8]);
        assert_eq!(
            got[0].payload,
            EntryPayload::Normal(Command::Delete { name: "o5".into() })
        );

        // Purging everything leaves the purged id as the last log id.
        store
            .purge(LogId::new(CommittedLeaderId::new(3, 1), 8))
            .await
            .unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(8));
        assert!(store.try_get_log_entries(0..100).await.unwrap().is_empty());
    }
}
