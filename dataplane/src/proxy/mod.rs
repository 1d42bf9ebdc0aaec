//! Upstream side of the Proxy filter: server pools, load balancing, the connection pool and forwarding.

pub(crate) mod conn_pool;
pub mod load_balance;
pub mod pool;
pub mod upstream;

/// FNV-1a, 32 bits (Easegress v1 `hashtool.Hash32`).
pub fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_vectors() {
        assert_eq!(super::fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(super::fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(super::fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
