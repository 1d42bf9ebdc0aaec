use crate::{GoDuration, IpFilterSpec, SpecError, error::check_regex};
use serde::{Deserialize, Serialize};

/// `kind: HTTPServer`: a listener and its routing rules onto pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpServerSpec {
    /// Always `HTTPServer`.
    pub kind: String,
    /// Object name, unique across kinds.
    pub name: String,
    /// TCP port to listen on (required, 1..=65535).
    pub port: u16,
    /// Address to bind; empty = every interface, as Easegress v1 does.
    #[serde(default)]
    pub address: String,
    /// HTTP keep-alive (Easegress's code default is true).
    #[serde(default = "yes")]
    pub keep_alive: bool,
    /// Idle timeout of a kept-alive connection.
    #[serde(default = "default_keep_alive_timeout")]
    pub keep_alive_timeout: GoDuration,
    /// Cap on simultaneously open client connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Route-lookup cache size (accepted for compatibility; our router needs no cache).
    #[serde(default)]
    pub cache_size: u32,
    /// TLS; not supported by this release (rejected when true).
    #[serde(default)]
    pub https: bool,
    /// HTTP/3; not supported by this release (rejected when true).
    #[serde(default)]
    pub http3: bool,
    /// Append the client's real IP to `X-Forwarded-For`.
    #[serde(default)]
    pub x_forwarded_for: bool,
    /// Server-wide IP filter (403 when denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<IpFilterSpec>,
    /// Routing rules, searched in order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One rule: a host condition and its paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSpec {
    /// Rule IP filter (403 at once when denied, v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<IpFilterSpec>,
    /// Exact host (port stripped, case-sensitive); empty = any.
    #[serde(default)]
    pub host: String,
    /// Host regular expression; empty = any.
    #[serde(default)]
    pub host_regexp: String,
    /// Paths of this rule, searched in order. No paths = the rule matches nothing.
    #[serde(default)]
    pub paths: Vec<PathSpec>,
}

/// One path of a rule and the pipeline it leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathSpec {
    /// Path IP filter (403 at once when denied, v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_filter: Option<IpFilterSpec>,
    /// Exact path.
    #[serde(default)]
    pub path: String,
    /// Path prefix.
    #[serde(default)]
    pub path_prefix: String,
    /// Path regular expression (unanchored search).
    #[serde(default)]
    pub path_regexp: String,
    /// Rewrite of the matched part (exact: whole path; prefix: the prefix; regexp: replace-all with `$1`).
    #[serde(default)]
    pub rewrite_target: String,
    /// Allowed methods; empty = all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header conditions (any one must hold, or all with `matchAllHeader`).
    #[serde(default)]
    pub headers: Vec<HeaderMatchSpec>,
    /// Every header condition must hold (spelled `MatchAllHeader` in Easegress v1.5, `matchAllHeader` in v2).
    #[serde(default, alias = "MatchAllHeader")]
    pub match_all_header: bool,
    /// Name of the pipeline that handles the request (required).
    pub backend: String,
}

/// A header condition of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMatchSpec {
    /// Header name.
    pub key: String,
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Accepted values as a regular expression.
    #[serde(default)]
    pub regexp: String,
}

fn yes() -> bool {
    true
}
fn default_keep_alive_timeout() -> GoDuration {
    GoDuration::from_secs(60)
}
fn default_max_connections() -> u32 {
    10240
}

/// Methods a path may list (Easegress's schema enum).
pub(crate) const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

impl HttpServerSpec {
    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        if self.port == 0 {
            return Err(SpecError::new("port", "must be between 1 and 65535"));
        }
        if self.https {
            return Err(SpecError::new(
                "https",
                "TLS listeners are not supported by this release yet",
            ));
        }
        if self.http3 {
            return Err(SpecError::new(
                "http3",
                "HTTP/3 listeners are not supported by this release yet",
            ));
        }
        if !self.address.is_empty() && self.address.parse::<std::net::IpAddr>().is_err() {
            return Err(SpecError::new(
                "address",
                format!("{:?} is not an IP address", self.address),
            ));
        }
        if self.max_connections == 0 {
            return Err(SpecError::new("maxConnections", "must be at least 1"));
        }
        if let Some(f) = &self.ip_filter {
            f.validate().map_err(|e| e.within("ipFilter"))?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| e.within(&format!("rules[{i}]")))?;
        }
        Ok(())
    }
}

impl RuleSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if let Some(f) = &self.ip_filter {
            f.validate().map_err(|e| e.within("ipFilter"))?;
        }
        if !self.host_regexp.is_empty() {
            check_regex("hostRegexp", &self.host_regexp)?;
        }
        for (i, path) in self.paths.iter().enumerate() {
            path.validate()
                .map_err(|e| e.within(&format!("paths[{i}]")))?;
        }
        Ok(())
    }
}

impl PathSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if let Some(f) = &self.ip_filter {
            f.validate().map_err(|e| e.within("ipFilter"))?;
        }
        if !self.path.is_empty() && !self.path.starts_with('/') {
            return Err(SpecError::new("path", "must start with /"));
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            return Err(SpecError::new("pathPrefix", "must start with /"));
        }
        if !self.path_regexp.is_empty() {
            check_regex("pathRegexp", &self.path_regexp)?;
        }
        if !self.rewrite_target.is_empty()
            && self.path.is_empty()
            && self.path_prefix.is_empty()
            && self.path_regexp.is_empty()
        {
            return Err(SpecError::new(
                "rewriteTarget",
                "needs one of path, pathPrefix or pathRegexp to rewrite",
            ));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if !METHODS.contains(&m.as_str()) {
                return Err(SpecError::new(
                    format!("methods[{i}]"),
                    format!("unknown method {m:?}; one of {}", METHODS.join(", ")),
                ));
            }
        }
        for (i, h) in self.headers.iter().enumerate() {
            let at = format!("headers[{i}]");
            if crate::filters::http_header_name_invalid(&h.key) {
                return Err(SpecError::new(
                    format!("{at}.key"),
                    format!("{:?} is not a valid header name", h.key),
                ));
            }
            if h.values.is_empty() && h.regexp.is_empty() {
                return Err(SpecError::new(at, "needs values or regexp"));
            }
            if !h.regexp.is_empty() {
                check_regex(&format!("{at}.regexp"), &h.regexp)?;
            }
        }
        if self.backend.is_empty() {
            return Err(SpecError::new(
                "backend",
                "is required (the name of a pipeline)",
            ));
        }
        Ok(())
    }
}
