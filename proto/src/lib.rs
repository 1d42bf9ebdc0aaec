//! Every gRPC contract of Meshgress. The code is generated at build time from `proto/`; never edit it by hand.

/// Admin API: object CRUD, members, proxy status.
pub mod admin {
    tonic::include_proto!("meshgress.admin.v1");
}

/// Config discovery stream (xDS-like snapshots with ACK/NACK).
pub mod discovery {
    tonic::include_proto!("meshgress.discovery.v1");
}

/// Raft transport between masters.
pub mod raft {
    tonic::include_proto!("meshgress.raft.v1");
}

/// Encoded file descriptor set of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("meshgress_descriptor");
