//! Errors of starting and stopping a master.

use crate::store::DbError;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a master could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A store file could not be opened.
    #[error("cannot open the store {path}: {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: DbError,
    },
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The Raft configuration is invalid.
    #[error("invalid raft configuration: {0}")]
    RaftConfig(Box<openraft::ConfigError>),
    /// The Raft node failed.
    #[error("raft: {0}")]
    Raft(String),
    /// The reflection service could not be built.
    #[error("grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A gRPC server failed.
    #[error("{0}")]
    Server(String),
}
