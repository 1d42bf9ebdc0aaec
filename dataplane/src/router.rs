//! The HTTPServer router: Easegress v1 route search (`mux.go SearchPath`) and path rewrites.
//!
//! Search: server ipFilter denies -> 403. Rules in order, skipped when the host does not match; a matching rule
//! whose ipFilter denies -> 403 at once. Paths in order: a path hits when any of path / pathPrefix / pathRegexp
//! hits (none given = every path); then the method must be listed (or none listed), then headers must match (if
//! any); a path ipFilter that denies -> 403 at once. Nothing found -> 404 when no path ever hit, else 405.

use crate::{error::DataplaneError, ipfilter::IpFilter};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use meshgress_spec::{HttpServerSpec, PathSpec, RuleSpec};
use regex::Regex;

/// A compiled router for one HTTPServer.
#[derive(Debug)]
pub struct Router {
    ip_filter: Option<IpFilter>,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    ip_filter: Option<IpFilter>,
    host: String,
    host_re: Option<Regex>,
    paths: Vec<Route>,
}

/// A path of a rule: how it matches, how it rewrites and which pipeline serves it.
#[derive(Debug)]
pub struct Route {
    ip_filter: Option<IpFilter>,
    path: String,
    prefix: String,
    path_re: Option<Regex>,
    rewrite_target: String,
    methods: Vec<Method>,
    headers: Vec<HeaderCond>,
    match_all_header: bool,
    backend: String,
}

#[derive(Debug)]
struct HeaderCond {
    name: HeaderName,
    values: Vec<String>,
    re: Option<Regex>,
}

/// The parts of a request the router looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Method.
    pub method: &'a Method,
    /// Host as sent (`Host` header or absolute-form authority), port included.
    pub host: &'a str,
    /// Path (no query).
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The client's real IP.
    pub real_ip: &'a str,
}

fn compile(object: &str, field: &str, re: &str) -> Result<Option<Regex>, DataplaneError> {
    if re.is_empty() {
        return Ok(None);
    }
    Regex::new(re).map(Some).map_err(|e| DataplaneError::Build {
        object: object.to_string(),
        message: format!("{field}: {e}"),
    })
}

impl Router {
    /// Compiles the rules of a server spec.
    pub fn new(spec: &HttpServerSpec) -> Result<Self, DataplaneError> {
        let object = format!("HTTPServer {:?}", spec.name);
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::new(&object, i, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            ip_filter: spec.ip_filter.as_ref().map(IpFilter::new),
            rules,
        })
    }

    /// Finds the route of a request, or the status to answer with (403, 404 or 405).
    pub fn search(&self, input: &RouteInput<'_>) -> Result<&Route, StatusCode> {
        if let Some(f) = &self.ip_filter
            && !f.allows(input.real_ip)
        {
            return Err(StatusCode::FORBIDDEN);
        }
        let host = strip_port(input.host);
        let mut path_matched = false;
        for rule in &self.rules {
            if !rule.host_matches(host) {
                continue;
            }
            if let Some(f) = &rule.ip_filter
                && !f.allows(input.real_ip)
            {
                return Err(StatusCode::FORBIDDEN);
            }
            for route in &rule.paths {
                if !route.path_matches(input.path) {
                    continue;
                }
                path_matched = true;
                if !route.methods.is_empty() && !route.methods.contains(input.method) {
                    continue;
                }
                if !route.headers.is_empty() && !route.headers_match(input.headers) {
                    continue;
                }
                if let Some(f) = &route.ip_filter
                    && !f.allows(input.real_ip)
                {
                    return Err(StatusCode::FORBIDDEN);
                }
                return Ok(route);
            }
        }
        Err(if path_matched {
            StatusCode::METHOD_NOT_ALLOWED
        } else {
            StatusCode::NOT_FOUND
        })
    }
}

impl Rule {
    fn new(object: &str, i: usize, spec: &RuleSpec) -> Result<Self, DataplaneError> {
        let at = format!("rules[{i}]");
        let paths = spec
            .paths
            .iter()
            .enumerate()
            .map(|(j, p)| Route::new(object, &format!("{at}.paths[{j}]"), p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            ip_filter: spec.ip_filter.as_ref().map(IpFilter::new),
            host: spec.host.clone(),
            host_re: compile(object, &format!("{at}.hostRegexp"), &spec.host_regexp)?,
            paths,
        })
    }

    fn host_matches(&self, host: &str) -> bool {
        if self.host.is_empty() && self.host_re.is_none() {
            return true;
        }
        (!self.host.is_empty() && self.host == host)
            || self.host_re.as_ref().is_some_and(|re| re.is_match(host))
    }
}

impl Route {
    fn new(object: &str, at: &str, spec: &PathSpec) -> Result<Self, DataplaneError> {
        let headers = spec
            .headers
            .iter()
            .enumerate()
            .map(|(k, h)| {
                let name = HeaderName::from_bytes(h.key.as_bytes()).map_err(|e| {
                    DataplaneError::Build {
                        object: object.to_string(),
                        message: format!("{at}.headers[{k}].key: {e}"),
                    }
                })?;
                Ok(HeaderCond {
                    name,
                    values: h.values.clone(),
                    re: compile(object, &format!("{at}.headers[{k}].regexp"), &h.regexp)?,
                })
            })
            .collect::<Result<Vec<_>, DataplaneError>>()?;
        let methods = spec
            .methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.as_bytes()).map_err(|e| DataplaneError::Build {
                    object: object.to_string(),
                    message: format!("{at}.methods: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            ip_filter: spec.ip_filter.as_ref().map(IpFilter::new),
            path: spec.path.clone(),
            prefix: spec.path_prefix.clone(),
            path_re: compile(object, &format!("{at}.pathRegexp"), &spec.path_regexp)?,
            rewrite_target: spec.rewrite_target.clone(),
            methods,
            headers,
            match_all_header: spec.match_all_header,
            backend: spec.backend.clone(),
        })
    }

    /// Name of the pipeline that serves this route.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    fn path_matches(&self, path: &str) -> bool {
        if self.path.is_empty() && self.prefix.is_empty() && self.path_re.is_none() {
            return true;
        }
        (!self.path.is_empty() && self.path == path)
            || (!self.prefix.is_empty() && path.starts_with(&self.prefix))
            || self.path_re.as_ref().is_some_and(|re| re.is_match(path))
    }

    fn headers_match(&self, headers: &HeaderMap) -> bool {
        let ok = |h: &HeaderCond| {
            let value = crate::realip::first_str(headers, &h.name);
            h.values.iter().any(|v| v == value)
                || h.re.as_ref().is_some_and(|re| re.is_match(value))
        };
        if self.match_all_header {
            self.headers.iter().all(ok)
        } else {
            self.headers.iter().any(ok)
        }
    }

    /// The path after `rewriteTarget`, or `None` when it is unchanged. The first of exact path, prefix, regexp
    /// that matched decides how: whole path replaced; prefix replaced with the rest kept; replace-all with `$1`.
    pub fn rewrite(&self, path: &str) -> Option<String> {
        if self.rewrite_target.is_empty() {
            return None;
        }
        if !self.path.is_empty() && self.path == path {
            return Some(self.rewrite_target.clone());
        }
        if !self.prefix.is_empty()
            && let Some(rest) = path.strip_prefix(self.prefix.as_str())
        {
            return Some(format!("{}{rest}", self.rewrite_target));
        }
        if let Some(re) = &self.path_re
            && re.is_match(path)
        {
            return Some(
                re.replace_all(path, self.rewrite_target.as_str())
                    .into_owned(),
            );
        }
        None
    }
}

/// The host without its port, as Go's `net.SplitHostPort` would give it (unchanged when there is no port).
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((inner, tail)) if tail.is_empty() || tail.starts_with(':') => {
                if tail.is_empty() {
                    host
                } else {
                    inner
                }
            }
            _ => host,
        };
    }
    match host.split_once(':') {
        Some((h, port)) if !port.contains(':') => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn router(yaml: &str) -> Router {
        let obj = meshgress_spec::parse_object_str(yaml).unwrap();
        match obj {
            meshgress_spec::Object::HttpServer(s) => Router::new(&s).unwrap(),
            _ => panic!("not a server"),
        }
    }

    fn search<'r>(
        r: &'r Router,
        method: &str,
        host: &str,
        path: &str,
        hdrs: &[(&str, &str)],
        ip: &str,
    ) -> Result<&'r str, u16> {
        let mut headers = HeaderMap::new();
        for (k, v) in hdrs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let input = RouteInput {
            method: &method,
            host,
            path,
            headers: &headers,
            real_ip: ip,
        };
        r.search(&input)
            .map(|route| route.backend())
            .map_err(|s| s.as_u16())
    }

    const SERVER: &str = r#"
kind: HTTPServer
name: s
port: 10080
rules:
  - host: api.example.com
    paths:
      - path: /exact
        backend: exact-host
  - ipFilter: {blockIPs: [6.6.6.6]}
    paths:
      - path: /pipeline
        methods: [GET]
        backend: p-get
      - pathPrefix: /pipeline
        methods: [POST]
        backend: p-post
      - pathRegexp: "^/re/[0-9]+$"
        backend: p-re
      - pathPrefix: /hdr
        headers: [{key: X-Canary, values: [yes]}, {key: X-Group, regexp: "^g[0-9]$"}]
        backend: p-hdr
      - pathPrefix: /all
        MatchAllHeader: true
        headers: [{key: X-A, values: [a]}, {key: X-B, values: [b]}]
        backend: p-all
      - pathPrefix: /deny
        ipFilter: {blockByDefault: true, allowIPs: [1.1.1.1]}
        backend: p-deny
  - hostRegexp: "^.*\\.other\\.io$"
    paths:
      - backend: p-any
"#;

    #[test]
    fn search_order_and_statuses() {
        let r = router(SERVER);
        assert_eq!(
            search(&r, "GET", "api.example.com:8080", "/exact", &[], "1.1.1.1"),
            Ok("exact-host")
        );
        assert_eq!(
            search(&r, "GET", "localhost", "/exact", &[], "1.1.1.1"),
            Err(404)
        );
        assert_eq!(
            search(&r, "GET", "h", "/pipeline", &[], "1.1.1.1"),
            Ok("p-get")
        );
        assert_eq!(
            search(&r, "POST", "h", "/pipeline", &[], "1.1.1.1"),
            Ok("p-post")
        );
        assert_eq!(
            search(&r, "POST", "h", "/pipeline/x", &[], "1.1.1.1"),
            Ok("p-post")
        );
        assert_eq!(
            search(&r, "DELETE", "h", "/pipeline", &[], "1.1.1.1"),
            Err(405)
        );
        assert_eq!(search(&r, "GET", "h", "/re/12", &[], "1.1.1.1"), Ok("p-re"));
        assert_eq!(search(&r, "GET", "h", "/re/12x", &[], "1.1.1.1"), Err(404));
        assert_eq!(search(&r, "GET", "h", "/nothing", &[], "1.1.1.1"), Err(404));
        // Rule ipFilter denies at once -> 403, even though a later rule would match.
        assert_eq!(
            search(&r, "GET", "x.other.io", "/pipeline", &[], "6.6.6.6"),
            Err(403)
        );
        assert_eq!(
            search(&r, "GET", "x.other.io", "/anything", &[], "1.1.1.1"),
            Ok("p-any")
        );
    }

    #[test]
    fn headers_any_and_all() {
        let r = router(SERVER);
        assert_eq!(
            search(&r, "GET", "h", "/hdr", &[("x-canary", "yes")], "1.1.1.1"),
            Ok("p-hdr")
        );
        assert_eq!(
            search(&r, "GET", "h", "/hdr", &[("x-group", "g7")], "1.1.1.1"),
            Ok("p-hdr")
        );
        assert_eq!(
            search(&r, "GET", "h", "/hdr", &[("x-group", "g77")], "1.1.1.1"),
            Err(405)
        );
        assert_eq!(search(&r, "GET", "h", "/hdr", &[], "1.1.1.1"), Err(405));
        // Only the first value counts.
        assert_eq!(
            search(
                &r,
                "GET",
                "h",
                "/hdr",
                &[("x-canary", "no"), ("x-canary", "yes")],
                "1.1.1.1"
            ),
            Err(405)
        );
        assert_eq!(
            search(&r, "GET", "h", "/all", &[("x-a", "a")], "1.1.1.1"),
            Err(405)
        );
        assert_eq!(
            search(
                &r,
                "GET",
                "h",
                "/all",
                &[("x-a", "a"), ("x-b", "b")],
                "1.1.1.1"
            ),
            Ok("p-all")
        );
    }

    #[test]
    fn path_ip_filter_is_final() {
        let r = router(SERVER);
        assert_eq!(search(&r, "GET", "h", "/deny", &[], "2.2.2.2"), Err(403));
        assert_eq!(
            search(&r, "GET", "h", "/deny", &[], "1.1.1.1"),
            Ok("p-deny")
        );
    }

    #[test]
    fn server_ip_filter_and_empty_rules() {
        let r = router(
            "kind: HTTPServer\nname: s\nport: 1\nipFilter: {blockIPs: [9.9.9.9]}\nrules:\n  - paths: []\n",
        );
        assert_eq!(search(&r, "GET", "h", "/", &[], "9.9.9.9"), Err(403));
        assert_eq!(search(&r, "GET", "h", "/", &[], "8.8.8.8"), Err(404));
    }

    #[test]
    fn rewrites() {
        let r = router(
            r#"
kind: HTTPServer
name: s
port: 1
rules:
  - paths:
      - {path: /old, rewriteTarget: /new, backend: a}
      - {pathPrefix: /v1/, rewriteTarget: /api/v2/, backend: b}
      - {pathRegexp: "^/u/([a-z]+)/(\\d+)$", rewriteTarget: "/users/$2/$1", backend: c}
      - {pathPrefix: /keep, backend: d}
"#,
        );
        let routes = &r.rules[0].paths;
        assert_eq!(routes[0].rewrite("/old").as_deref(), Some("/new"));
        assert_eq!(
            routes[1].rewrite("/v1/items/3").as_deref(),
            Some("/api/v2/items/3")
        );
        assert_eq!(
            routes[2].rewrite("/u/bob/42").as_deref(),
            Some("/users/42/bob")
        );
        assert_eq!(routes[3].rewrite("/keep/x"), None);
    }

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("example.com:80"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
    }
}
