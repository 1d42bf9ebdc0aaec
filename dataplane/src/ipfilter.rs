//! Compiled `ipFilter`: allow and block lists decided on the request's real IP.

use crate::realip::canonical;
use meshgress_spec::{Cidr, IpFilterSpec};
use std::net::IpAddr;

/// An `ipFilter` ready to decide.
#[derive(Debug, Clone)]
pub struct IpFilter {
    block_by_default: bool,
    allow: Vec<Cidr>,
    block: Vec<Cidr>,
}

impl IpFilter {
    /// Compiles a spec.
    pub fn new(spec: &IpFilterSpec) -> Self {
        Self {
            block_by_default: spec.block_by_default,
            allow: spec.allow_cidrs(),
            block: spec.block_cidrs(),
        }
    }

    /// Whether the real IP may pass: allow-listed only -> yes; block-listed only -> no; in both, in neither or
    /// not an IP -> `!blockByDefault`.
    pub fn allows(&self, real_ip: &str) -> bool {
        let Ok(ip) = real_ip.trim().parse::<IpAddr>() else {
            return !self.block_by_default;
        };
        let ip = canonical(ip);
        let allowed = self.allow.iter().any(|c| c.contains(ip));
        let blocked = self.block.iter().any(|c| c.contains(ip));
        match (allowed, blocked) {
            (true, false) => true,
            (false, true) => false,
            _ => !self.block_by_default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(block_by_default: bool, allow: &[&str], block: &[&str]) -> IpFilter {
        IpFilter::new(&IpFilterSpec {
            block_by_default,
            allow_ips: allow.iter().map(|s| s.to_string()).collect(),
            block_ips: block.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn decisions() {
        let f = filter(false, &["10.0.0.0/8"], &["10.1.0.0/16", "192.168.0.1"]);
        assert!(f.allows("10.2.3.4"));
        assert!(!f.allows("192.168.0.1"));
        assert!(f.allows("10.1.2.3"), "in both lists -> !blockByDefault");
        assert!(f.allows("8.8.8.8"), "in neither -> !blockByDefault");
        assert!(f.allows("garbage"));
        let f = filter(true, &["127.0.0.1"], &[]);
        assert!(f.allows("127.0.0.1"));
        assert!(f.allows("::ffff:127.0.0.1"));
        assert!(!f.allows("127.0.0.2"));
        assert!(!f.allows(""));
    }
}
