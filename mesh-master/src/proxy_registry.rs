//! What the master knows of each proxy on its config stream: versions sent, acknowledged and refused.

use crate::time::rfc3339;
use meshgress_proto::admin::ProxyStatus;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// One proxy's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRecord {
    /// Node id the proxy announced.
    pub node_id: String,
    /// sidecar, ingress or gateway.
    pub role: String,
    /// Service the proxy belongs to (sidecars).
    pub service: String,
    /// Whether a stream of this proxy is open.
    pub connected: bool,
    /// Last version acknowledged as applied.
    pub acked_version: String,
    /// Last version sent.
    pub sent_version: String,
    /// Last version refused (empty after an ACK).
    pub nacked_version: String,
    /// Why it was refused (empty after an ACK).
    pub nack_error: String,
    /// Last time the proxy was heard from.
    pub last_seen: SystemTime,
    /// The stream that owns the record (a reconnect takes it over).
    stream: u64,
}

impl ProxyRecord {
    /// The record as the admin API reports it.
    pub fn to_proto(&self) -> ProxyStatus {
        ProxyStatus {
            node_id: self.node_id.clone(),
            role: self.role.clone(),
            service: self.service.clone(),
            connected: self.connected,
            acked_version: self.acked_version.clone(),
            sent_version: self.sent_version.clone(),
            nacked_version: self.nacked_version.clone(),
            nack_error: self.nack_error.clone(),
            last_seen: rfc3339(self.last_seen),
        }
    }
}

/// Every proxy's record, by node id; cheap to clone. Locks are held only for map updates.
#[derive(Clone, Default)]
pub struct ProxyRegistry {
    records: Arc<Mutex<BTreeMap<String, ProxyRecord>>>,
    next_stream: Arc<AtomicU64>,
}

impl ProxyRegistry {
    /// Records a new stream of `node_id` and returns the stream's id. `version` is what the proxy says it runs.
    pub fn connect(&self, node_id: &str, role: &str, service: &str, version: &str) -> u64 {
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed) + 1;
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let record = records
            .entry(node_id.to_owned())
            .or_insert_with(|| ProxyRecord {
                node_id: node_id.to_owned(),
                role: String::new(),
                service: String::new(),
                connected: false,
                acked_version: String::new(),
                sent_version: String::new(),
                nacked_version: String::new(),
                nack_error: String::new(),
                last_seen: SystemTime::now(),
                stream,
            });
        record.role = role.to_owned();
        record.service = service.to_owned();
        record.connected = true;
        record.last_seen = SystemTime::now();
        record.stream = stream;
        if !version.is_empty() {
            record.acked_version = version.to_owned();
        }
        stream
    }

    fn update(&self, node_id: &str, stream: u64, f: impl FnOnce(&mut ProxyRecord)) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = records.get_mut(node_id).filter(|r| r.stream == stream) {
            f(record);
        }
    }

    /// Records that `version` was sent on `stream`.
    pub fn sent(&self, node_id: &str, stream: u64, version: &str) {
        self.update(node_id, stream, |r| r.sent_version = version.to_owned());
    }

    /// Records a message from the proxy.
    pub fn seen(&self, node_id: &str, stream: u64) {
        self.update(node_id, stream, |r| r.last_seen = SystemTime::now());
    }

    /// Records an ACK of `version`.
    pub fn ack(&self, node_id: &str, stream: u64, version: &str) {
        self.update(node_id, stream, |r| {
            r.acked_version = version.to_owned();
            r.nacked_version.clear();
            r.nack_error.clear();
            r.last_seen = SystemTime::now();
        });
    }

    /// Records a NACK of `version` with the proxy's `error`.
    pub fn nack(&self, node_id: &str, stream: u64, version: &str, error: &str) {
        self.update(node_id, stream, |r| {
            r.nacked_version = version.to_owned();
            r.nack_error = error.to_owned();
            r.last_seen = SystemTime::now();
        });
    }

    /// Marks the proxy disconnected, unless a newer stream of it took over.
    pub fn disconnect(&self, node_id: &str, stream: u64) {
        self.update(node_id, stream, |r| {
            r.connected = false;
            r.last_seen = SystemTime::now();
        });
    }

    /// Every record (or only `node_id`'s when not empty), sorted by node id.
    pub fn list(&self, node_id: &str) -> Vec<ProxyRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .values()
            .filter(|r| node_id.is_empty() || r.node_id == node_id)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_newest_stream() {
        let reg = ProxyRegistry::default();
        let s1 = reg.connect("gw-1", "gateway", "", "");
        reg.sent("gw-1", s1, "3");
        reg.nack("gw-1", s1, "3", "bad filter");
        let r = &reg.list("gw-1")[0];
        assert_eq!(
            (r.nacked_version.as_str(), r.nack_error.as_str()),
            ("3", "bad filter")
        );
        reg.ack("gw-1", s1, "3");
        let r = &reg.list("")[0];
        assert_eq!(
            (
                r.acked_version.as_str(),
                r.nacked_version.as_str(),
                r.nack_error.as_str()
            ),
            ("3", "", "")
        );

        // A reconnect takes the record over; the old stream's end does not mark it disconnected.
        let s2 = reg.connect("gw-1", "gateway", "", "3");
        reg.disconnect("gw-1", s1);
        assert!(reg.list("gw-1")[0].connected);
        reg.disconnect("gw-1", s2);
        assert!(!reg.list("gw-1")[0].connected);
        assert!(reg.list("other").is_empty());
        assert!(reg.list("gw-1")[0].to_proto().last_seen.ends_with('Z'));
    }
}
