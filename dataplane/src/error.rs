//! The crate's error type.

use std::net::SocketAddr;

/// Why a configuration could not be applied (the previous configuration keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// A resource of the snapshot is not a valid document.
    #[error("{kind} {name:?}: {message}")]
    InvalidObject {
        /// Kind as sent.
        kind: String,
        /// Name as sent.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Two objects of the snapshot share a name.
    #[error("object name {0:?} appears more than once in the snapshot")]
    DuplicateName(String),
    /// A listener could not be bound.
    #[error("HTTPServer {server:?}: cannot listen on {addr}: {source}")]
    Bind {
        /// Server name.
        server: String,
        /// Address it asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A router or pipeline could not be built from its spec.
    #[error("{object}: {message}")]
    Build {
        /// `HTTPServer NAME` or `Pipeline NAME/filter`.
        object: String,
        /// What failed.
        message: String,
    },
}
