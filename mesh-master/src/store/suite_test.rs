//! Runs openraft's own storage test suite against the redb log and state machine.

use super::log::LogStore;
use super::state_machine::StateMachineStore;
use super::{DbError, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb};
use tempfile::TempDir;

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let err = |e: DbError| super::io_err(ErrorVerb::Write, ErrorSubject::Store, &e);
        let dir = tempfile::tempdir().map_err(|e| err(DbError::Task(e.to_string())))?;
        let log = LogStore::open(&dir.path().join("log.redb")).map_err(err)?;
        let sm = StateMachineStore::open(&dir.path().join("sm.redb")).map_err(err)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(RedbBuilder).unwrap();
}
