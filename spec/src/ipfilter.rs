use crate::SpecError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Easegress's `ipFilter`: allow and block lists of IPs or CIDRs, decided on the request's real IP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpFilterSpec {
    /// Decision for an address in both lists, neither list, or unparsable: block when true.
    #[serde(default)]
    pub block_by_default: bool,
    /// Addresses or CIDRs allowed.
    #[serde(default, rename = "allowIPs")]
    pub allow_ips: Vec<String>,
    /// Addresses or CIDRs blocked.
    #[serde(default, rename = "blockIPs")]
    pub block_ips: Vec<String>,
}

impl IpFilterSpec {
    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        for (field, list) in [("allowIPs", &self.allow_ips), ("blockIPs", &self.block_ips)] {
            for (i, entry) in list.iter().enumerate() {
                Cidr::parse(entry).map_err(|m| SpecError::new(format!("{field}[{i}]"), m))?;
            }
        }
        Ok(())
    }

    /// Parsed allow list (entries were validated when the document was accepted; bad ones are skipped).
    pub fn allow_cidrs(&self) -> Vec<Cidr> {
        self.allow_ips
            .iter()
            .filter_map(|s| Cidr::parse(s).ok())
            .collect()
    }

    /// Parsed block list.
    pub fn block_cidrs(&self) -> Vec<Cidr> {
        self.block_ips
            .iter()
            .filter_map(|s| Cidr::parse(s).ok())
            .collect()
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`); a bare address is a single-host network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{s:?} has a bad prefix length (0..={max})")),
            },
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
