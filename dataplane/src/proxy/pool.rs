//! Server pools and the request matchers that pick a candidate pool.

use super::{fnv1a32, load_balance::LoadBalancer};
use crate::{pipeline::Context, realip::first_str};
use http::{HeaderName, HeaderValue, Method, uri::Authority};
use meshgress_spec::{PoolSpec, RequestMatcherSpec, ServerSpec, StringMatcherSpec};
use regex::Regex;

/// One upstream server, parsed once.
#[derive(Debug)]
pub struct Server {
    /// The url as written.
    pub url: String,
    /// `host:port` of the url.
    pub authority: Authority,
    /// Base path of the url without a trailing `/` ("" for none).
    pub base_path: String,
    /// Host header to send when the client's is not kept (the url's `host[:port]`).
    pub host_header: HeaderValue,
    /// Send the client's Host: the url host is an IP, or `keepHost` is set.
    pub keep_client_host: bool,
}

impl Server {
    fn new(spec: &ServerSpec) -> Result<Self, String> {
        let url =
            url::Url::parse(&spec.url).map_err(|e| format!("server url {:?}: {e}", spec.url))?;
        let host = url
            .host()
            .ok_or_else(|| format!("server url {:?} has no host", spec.url))?;
        let host_is_ip = !matches!(host, url::Host::Domain(_));
        let host_str = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let authority = Authority::try_from(host_str.as_str())
            .map_err(|e| format!("server url {:?}: {e}", spec.url))?;
        let host_header = HeaderValue::from_str(&host_str)
            .map_err(|e| format!("server url {:?}: {e}", spec.url))?;
        let base_path = url.path().trim_end_matches('/').to_string();
        Ok(Self {
            url: spec.url.clone(),
            authority,
            base_path,
            host_header,
            keep_client_host: host_is_ip || spec.keep_host,
        })
    }
}

/// A pool: its selected servers and its load balancer.
#[derive(Debug)]
pub struct Pool {
    servers: Vec<Server>,
    weights: Vec<u32>,
    balancer: LoadBalancer,
}

impl Pool {
    /// Builds the pool from the servers `serverTags` selects.
    pub fn new(spec: &PoolSpec) -> Result<Self, String> {
        let selected = spec.selected_servers();
        let servers = selected
            .iter()
            .map(|s| Server::new(s))
            .collect::<Result<Vec<_>, _>>()?;
        let weights: Vec<u32> = selected.iter().map(|s| s.weight).collect();
        let balancer = LoadBalancer::new(&spec.load_balance, &weights)?;
        Ok(Self {
            servers,
            weights,
            balancer,
        })
    }

    /// The server for this request, or `None` when the pool is empty.
    pub fn pick(&self, ctx: &Context) -> Option<&Server> {
        self.balancer
            .choose(&self.weights, ctx)
            .and_then(|i| self.servers.get(i))
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }
}

#[derive(Debug)]
struct StringMatcher {
    exact: String,
    prefix: String,
    re: Option<Regex>,
    empty: bool,
}

impl StringMatcher {
    fn new(spec: &StringMatcherSpec) -> Result<Self, String> {
        let re = if spec.regex.is_empty() {
            None
        } else {
            Some(Regex::new(&spec.regex).map_err(|e| e.to_string())?)
        };
        Ok(Self {
            exact: spec.exact.clone(),
            prefix: spec.prefix.clone(),
            re,
            empty: spec.empty,
        })
    }

    fn matches(&self, value: &str) -> bool {
        (self.empty && value.is_empty())
            || (!self.exact.is_empty() && value == self.exact)
            || (!self.prefix.is_empty() && value.starts_with(&self.prefix))
            || self.re.as_ref().is_some_and(|re| re.is_match(value))
    }
}

#[derive(Debug)]
enum SharePolicy {
    IpHash,
    HeaderHash(HeaderName),
    Random,
}

/// Which requests a candidate pool takes (Easegress `httpfilter`).
#[derive(Debug)]
pub struct Matcher(MatcherKind);

#[derive(Debug)]
enum MatcherKind {
    /// Header conditions (any, or all), refined by URL rules (one must match; methods empty = any).
    Headers {
        headers: Vec<(HeaderName, StringMatcher)>,
        match_all: bool,
        urls: Vec<(Vec<Method>, StringMatcher)>,
    },
    /// A share of the requests, per mille.
    Share { policy: SharePolicy, permil: u32 },
}

impl Matcher {
    /// Compiles a pool filter.
    pub fn new(spec: &RequestMatcherSpec) -> Result<Self, String> {
        if let Some((policy, permil, key)) = spec.share() {
            let policy = match policy {
                "ipHash" => SharePolicy::IpHash,
                "headerHash" => SharePolicy::HeaderHash(
                    HeaderName::from_bytes(key.as_bytes())
                        .map_err(|e| format!("filter headerHashKey: {e}"))?,
                ),
                _ => SharePolicy::Random,
            };
            return Ok(Self(MatcherKind::Share { policy, permil }));
        }
        let headers = spec
            .headers
            .iter()
            .map(|(k, m)| {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| format!("filter headers.{k}: {e}"))?;
                Ok((
                    name,
                    StringMatcher::new(m).map_err(|e| format!("filter headers.{k}: {e}"))?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let urls = spec
            .urls
            .iter()
            .map(|u| {
                let methods = u
                    .methods
                    .iter()
                    .map(|m| {
                        Method::from_bytes(m.as_bytes())
                            .map_err(|e| format!("filter urls methods: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((methods, StringMatcher::new(&u.url)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self(MatcherKind::Headers {
            headers,
            match_all: spec.match_all_headers,
            urls,
        }))
    }

    /// Whether this request belongs to the pool.
    pub fn matches(&self, ctx: &Context) -> bool {
        match &self.0 {
            MatcherKind::Headers {
                headers,
                match_all,
                urls,
            } => {
                let h = ctx.request.headers();
                let header_ok = |(name, m): &(HeaderName, StringMatcher)| {
                    let mut values = h.get_all(name).iter().peekable();
                    if values.peek().is_none() {
                        return m.empty;
                    }
                    values.any(|v| m.matches(std::str::from_utf8(v.as_bytes()).unwrap_or("")))
                };
                let matched = if *match_all {
                    headers.iter().all(header_ok)
                } else {
                    headers.iter().any(header_ok)
                };
                if !matched || urls.is_empty() {
                    return matched;
                }
                let method = ctx.request.method();
                let path = ctx.request.uri().path();
                urls.iter().any(|(methods, m)| {
                    (methods.is_empty() || methods.contains(method)) && m.matches(path)
                })
            }
            MatcherKind::Share { policy, permil } => {
                let n = match policy {
                    SharePolicy::IpHash => fnv1a32(ctx.real_ip.as_bytes()),
                    SharePolicy::HeaderHash(name) => {
                        fnv1a32(first_str(ctx.request.headers(), name).as_bytes())
                    }
                    SharePolicy::Random => fastrand::u32(..1000),
                };
                n % 1000 < *permil
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;

    fn matcher(yaml: &str) -> Matcher {
        let v: serde_json::Value = serde_json::from_str(yaml).unwrap();
        let spec: RequestMatcherSpec = serde_json::from_value(v).unwrap();
        Matcher::new(&spec).unwrap()
    }

    fn ctx(
        method: &str,
        path: &str,
        headers: &[(&'static str, &'static str)],
        ip: &str,
    ) -> Context {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(body::empty())
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().append(*k, HeaderValue::from_static(v));
        }
        Context::new(req, ip.to_string(), "127.0.0.1:1".parse().unwrap())
    }

    #[test]
    fn header_modes() {
        let any = matcher(
            r#"{"headers": {"X-A": {"exact": "1"}, "X-B": {"prefix": "be", "empty": true}}}"#,
        );
        assert!(any.matches(&ctx("GET", "/", &[("x-a", "1")], "")));
        assert!(
            any.matches(&ctx("GET", "/", &[], "")),
            "absent X-B matches empty"
        );
        assert!(!any.matches(&ctx("GET", "/", &[("x-a", "2"), ("x-b", "zz")], "")));
        assert!(
            any.matches(&ctx("GET", "/", &[("x-b", "zz"), ("x-b", "beta")], "")),
            "any value counts"
        );
        let all = matcher(
            r#"{"headers": {"X-A": {"regex": "^v[0-9]$"}, "X-B": {"exact": "b"}}, "matchAllHeaders": true,
                "urls": [{"methods": ["GET"], "url": {"prefix": "/api"}}]}"#,
        );
        assert!(all.matches(&ctx("GET", "/api/x", &[("x-a", "v1"), ("x-b", "b")], "")));
        assert!(!all.matches(&ctx("GET", "/api/x", &[("x-a", "v1")], "")));
        assert!(!all.matches(&ctx("POST", "/api/x", &[("x-a", "v1"), ("x-b", "b")], "")));
        assert!(!all.matches(&ctx("GET", "/other", &[("x-a", "v1"), ("x-b", "b")], "")));
    }

    #[test]
    fn shares() {
        let all = matcher(r#"{"policy": "random", "permil": 1000}"#);
        assert!((0..50).all(|_| all.matches(&ctx("GET", "/", &[], ""))));
        let v1 = matcher(r#"{"probability": {"perMill": 1, "policy": "random"}}"#);
        let hits = (0..2000)
            .filter(|_| v1.matches(&ctx("GET", "/", &[], "")))
            .count();
        assert!(hits < 30, "{hits}");
        let ip = matcher(r#"{"policy": "ipHash", "permil": 500}"#);
        let expect = fnv1a32(b"198.51.100.7") % 1000 < 500;
        assert!((0..10).all(|_| ip.matches(&ctx("GET", "/", &[], "198.51.100.7")) == expect));
        let hh = matcher(r#"{"policy": "headerHash", "permil": 500, "headerHashKey": "X-User"}"#);
        let expect = fnv1a32(b"bob") % 1000 < 500;
        assert_eq!(
            hh.matches(&ctx("GET", "/", &[("x-user", "bob")], "")),
            expect
        );
    }

    #[test]
    fn server_urls() {
        let s = Server::new(&ServerSpec {
            url: "http://127.0.0.1:9095/base/".into(),
            tags: vec![],
            weight: 0,
            keep_host: false,
        })
        .unwrap();
        assert_eq!(s.authority.as_str(), "127.0.0.1:9095");
        assert_eq!(s.base_path, "/base");
        assert!(s.keep_client_host);
        let s = Server::new(&ServerSpec {
            url: "http://svc.local".into(),
            tags: vec![],
            weight: 0,
            keep_host: false,
        })
        .unwrap();
        assert_eq!(s.authority.as_str(), "svc.local");
        assert_eq!(s.host_header, "svc.local");
        assert_eq!(s.base_path, "");
        assert!(!s.keep_client_host);
        let s = Server::new(&ServerSpec {
            url: "http://[::1]:8080".into(),
            tags: vec![],
            weight: 0,
            keep_host: true,
        })
        .unwrap();
        assert_eq!(s.authority.as_str(), "[::1]:8080");
        assert!(s.keep_client_host);
    }
}
