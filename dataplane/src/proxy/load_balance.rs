//! Load-balancing policies: roundRobin, random, weightedRandom, ipHash, headerHash.

use super::fnv1a32;
use crate::{pipeline::Context, realip::first_str};
use http::HeaderName;
use meshgress_spec::LoadBalanceSpec;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A policy with its state.
#[derive(Debug)]
pub enum LoadBalancer {
    /// The first request goes to the first server, then the next, in turn.
    RoundRobin(AtomicUsize),
    /// Uniformly random.
    Random,
    /// Random by `weight` (sum of weights > 0).
    WeightedRandom(u32),
    /// FNV-1a 32 of the real IP, modulo the number of servers.
    IpHash,
    /// FNV-1a 32 of the first value of the header, modulo the number of servers.
    HeaderHash(HeaderName),
}

impl LoadBalancer {
    /// Builds the policy for servers with these weights. Unknown policy names fall back to roundRobin.
    pub fn new(spec: &LoadBalanceSpec, weights: &[u32]) -> Result<Self, String> {
        Ok(match spec.policy.as_str() {
            "random" => Self::Random,
            "weightedRandom" => {
                let total: u32 = weights.iter().sum();
                if total == 0 {
                    Self::Random
                } else {
                    Self::WeightedRandom(total)
                }
            }
            "ipHash" => Self::IpHash,
            "headerHash" => Self::HeaderHash(
                HeaderName::from_bytes(spec.header_hash_key.as_bytes())
                    .map_err(|e| format!("loadBalance.headerHashKey: {e}"))?,
            ),
            _ => Self::RoundRobin(AtomicUsize::new(0)),
        })
    }

    /// Index of the server to use among `weights.len()` servers (`None` when there is none).
    pub fn choose(&self, weights: &[u32], ctx: &Context) -> Option<usize> {
        let n = weights.len();
        if n == 0 {
            return None;
        }
        Some(match self {
            Self::RoundRobin(next) => next.fetch_add(1, Ordering::Relaxed) % n,
            Self::Random => fastrand::usize(..n),
            Self::WeightedRandom(total) => {
                let mut r = fastrand::u32(..*total);
                let mut chosen = n - 1;
                for (i, w) in weights.iter().enumerate() {
                    if r < *w {
                        chosen = i;
                        break;
                    }
                    r -= w;
                }
                chosen
            }
            Self::IpHash => fnv1a32(ctx.real_ip.as_bytes()) as usize % n,
            Self::HeaderHash(name) => {
                fnv1a32(first_str(ctx.request.headers(), name).as_bytes()) as usize % n
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;

    fn ctx(ip: &str, header: Option<(&'static str, &'static str)>) -> Context {
        let mut req = http::Request::new(body::empty());
        if let Some((k, v)) = header {
            req.headers_mut()
                .insert(k, http::HeaderValue::from_static(v));
        }
        Context::new(req, ip.to_string(), "127.0.0.1:1".parse().unwrap())
    }

    fn lb(policy: &str, key: &str, weights: &[u32]) -> LoadBalancer {
        LoadBalancer::new(
            &LoadBalanceSpec {
                policy: policy.to_string(),
                header_hash_key: key.to_string(),
            },
            weights,
        )
        .unwrap()
    }

    #[test]
    fn round_robin_starts_at_first() {
        let w = [0, 0, 0];
        let b = lb("roundRobin", "", &w);
        let c = ctx("1.1.1.1", None);
        let picks: Vec<_> = (0..7).map(|_| b.choose(&w, &c).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(b.choose(&[], &c), None);
    }

    #[test]
    fn weighted_random_follows_weights() {
        let w = [1, 0, 9];
        let b = lb("weightedRandom", "", &w);
        let c = ctx("1.1.1.1", None);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[b.choose(&w, &c).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[0] > 600 && counts[0] < 1500, "{counts:?}");
        assert!(counts[2] > 8500, "{counts:?}");
    }

    #[test]
    fn hashes_are_stable() {
        let w = [0; 5];
        let b = lb("ipHash", "", &w);
        let c = ctx("203.0.113.9", None);
        let first = b.choose(&w, &c).unwrap();
        assert_eq!(first, fnv1a32(b"203.0.113.9") as usize % 5);
        assert!((0..20).all(|_| b.choose(&w, &c) == Some(first)));
        let b = lb("headerHash", "X-User", &w);
        let c = ctx("1.1.1.1", Some(("x-user", "alice")));
        assert_eq!(b.choose(&w, &c), Some(fnv1a32(b"alice") as usize % 5));
        let c = ctx("1.1.1.1", None);
        assert_eq!(b.choose(&w, &c), Some(fnv1a32(b"") as usize % 5));
    }

    #[test]
    fn random_covers_all() {
        let w = [0; 3];
        let b = lb("random", "", &w);
        let c = ctx("1.1.1.1", None);
        let mut seen = [false; 3];
        for _ in 0..500 {
            seen[b.choose(&w, &c).unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
