//! Meshgress control plane: a Raft-replicated object store (openraft over redb), the admin gRPC service,
//! the config discovery stream for proxies, and the embedded gateway hook.
//!
//! [`start`] runs a whole master in-process (tests use port 0); the `mesh-master` binary is a thin CLI on it.

pub mod admin_service;
pub mod cluster;
pub mod config;
pub mod discovery_service;
pub mod error;
pub mod gateway;
pub mod objects;
pub mod peers;
pub mod proxy_registry;
pub mod raft_network;
pub mod raft_service;
pub mod server;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod time;

pub use config::{MasterConfig, RaftTuning};
pub use error::Error;
pub use server::{RunningMaster, start};
