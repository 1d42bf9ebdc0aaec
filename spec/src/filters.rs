//! Filter specs: Proxy, Validator, RequestAdaptor, ResponseAdaptor.

use crate::{
    SpecError,
    error::{check_regex, from_value},
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One filter of a pipeline, by kind. Adding a kind adds a variant, its struct and a line in [`FilterSpec::parse`].
#[derive(Debug, Clone, PartialEq)]
pub enum FilterSpec {
    /// Forwards to upstream servers.
    Proxy(ProxySpec),
    /// Rejects requests whose headers do not validate.
    Validator(ValidatorSpec),
    /// Rewrites the request.
    RequestAdaptor(RequestAdaptorSpec),
    /// Rewrites the response.
    ResponseAdaptor(ResponseAdaptorSpec),
}

/// Filter kinds this release knows.
pub(crate) const FILTER_KINDS: &[&str] =
    &["Proxy", "Validator", "RequestAdaptor", "ResponseAdaptor"];

impl FilterSpec {
    /// Parses one filter document (with `name` and `kind`) and validates it.
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, SpecError> {
        let kind = value
            .get("kind")
            .ok_or_else(|| SpecError::new("kind", "is required"))?
            .as_str()
            .ok_or_else(|| SpecError::new("kind", "must be a string"))?;
        let spec = match kind {
            "Proxy" => FilterSpec::Proxy(from_value(value)?),
            "Validator" => FilterSpec::Validator(from_value(value)?),
            "RequestAdaptor" => FilterSpec::RequestAdaptor(from_value(value)?),
            "ResponseAdaptor" => FilterSpec::ResponseAdaptor(from_value(value)?),
            other => {
                return Err(SpecError::new(
                    "kind",
                    format!(
                        "unknown filter kind {other:?}; known kinds: {}",
                        FILTER_KINDS.join(", ")
                    ),
                ));
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        match self {
            FilterSpec::Proxy(s) => &s.name,
            FilterSpec::Validator(s) => &s.name,
            FilterSpec::RequestAdaptor(s) => &s.name,
            FilterSpec::ResponseAdaptor(s) => &s.name,
        }
    }

    /// The filter's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FilterSpec::Proxy(_) => "Proxy",
            FilterSpec::Validator(_) => "Validator",
            FilterSpec::RequestAdaptor(_) => "RequestAdaptor",
            FilterSpec::ResponseAdaptor(_) => "ResponseAdaptor",
        }
    }

    /// Results the filter may return, which `jumpIf` may name.
    pub fn results(&self) -> &'static [&'static str] {
        match self {
            FilterSpec::Proxy(_) => &["internalError", "serverError", "clientError"],
            FilterSpec::Validator(_) => &["invalid"],
            FilterSpec::RequestAdaptor(_) => &["decompressFail", "compressFail"],
            FilterSpec::ResponseAdaptor(_) => &[],
        }
    }

    /// The filter's document as JSON, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            FilterSpec::Proxy(s) => serde_json::to_value(s),
            FilterSpec::Validator(s) => serde_json::to_value(s),
            FilterSpec::RequestAdaptor(s) => serde_json::to_value(s),
            FilterSpec::ResponseAdaptor(s) => serde_json::to_value(s),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    fn validate(&self) -> Result<(), SpecError> {
        match self {
            FilterSpec::Proxy(s) => s.validate(),
            FilterSpec::Validator(s) => s.validate(),
            FilterSpec::RequestAdaptor(s) => s.validate(),
            FilterSpec::ResponseAdaptor(s) => match &s.header {
                Some(h) => h.validate().map_err(|e| e.within("header")),
                None => Ok(()),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Proxy

/// `kind: Proxy`: load-balances the request over a pool of upstream servers.
///
/// Accepts the v1 form (`mainPool` + `candidatePools`) and the v2 form (`pools`, the one without `filter`
/// being the main pool). Use [`ProxySpec::main_pool`] and [`ProxySpec::candidate_pools`] to read either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxySpec {
    /// Filter name.
    pub name: String,
    /// Always `Proxy`.
    pub kind: String,
    /// v1 main pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_pool: Option<PoolSpec>,
    /// v1 candidate pools (each with a `filter`), tried in order before the main pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_pools: Vec<PoolSpec>,
    /// v2 pools: exactly one without `filter` (the main pool); the others are candidates in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolSpec>,
    /// Status codes counted as failures (kept for compatibility; used by later resilience work).
    #[serde(default)]
    pub failure_codes: Vec<u16>,
    /// Maximum idle upstream connections in all.
    #[serde(default = "default_max_idle")]
    pub max_idle_conns: u32,
    /// Maximum idle upstream connections per server.
    #[serde(default = "default_max_idle_per_host")]
    pub max_idle_conns_per_host: u32,
}

fn default_max_idle() -> u32 {
    10240
}
fn default_max_idle_per_host() -> u32 {
    1024
}

/// A pool of upstream servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolSpec {
    /// Which requests this (candidate) pool takes; the main pool has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<RequestMatcherSpec>,
    /// Keep only servers carrying one of these tags (`serversTags` in v1, `serverTags` in v2).
    #[serde(default, alias = "serversTags", skip_serializing_if = "Vec::is_empty")]
    pub server_tags: Vec<String>,
    /// Static servers.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// Load-balancing policy.
    #[serde(default)]
    pub load_balance: LoadBalanceSpec,
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSpec {
    /// `http://host:port`, optionally with a base path.
    pub url: String,
    /// Tags that `serverTags` select on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Weight for weightedRandom, 0..=100.
    #[serde(default)]
    pub weight: u32,
    /// Send the client's Host header upstream even when the url host is a name.
    #[serde(default)]
    pub keep_host: bool,
}

/// Load-balancing policies, as Easegress spells them.
pub const LB_POLICIES: &[&str] = &[
    "roundRobin",
    "random",
    "weightedRandom",
    "ipHash",
    "headerHash",
];

/// `loadBalance` of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalanceSpec {
    /// One of [`LB_POLICIES`]; roundRobin when omitted.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Header hashed by headerHash.
    #[serde(default)]
    pub header_hash_key: String,
}

fn default_policy() -> String {
    "roundRobin".to_string()
}

impl Default for LoadBalanceSpec {
    fn default() -> Self {
        Self {
            policy: default_policy(),
            header_hash_key: String::new(),
        }
    }
}

/// Which requests a candidate pool takes: header conditions (general) or a per-mille share (ipHash, headerHash,
/// random). Accepts v1's `probability: {perMill, policy, headerHashKey}` and v2's `policy` + `permil`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestMatcherSpec {
    /// `general` (headers; default when headers are given), `ipHash`, `headerHash` or `random`.
    #[serde(default)]
    pub policy: String,
    /// Header conditions by header name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatcherSpec>,
    /// Every header condition must hold (else any one).
    #[serde(default)]
    pub match_all_headers: bool,
    /// URL conditions refining header mode: one must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<UrlRuleSpec>,
    /// Share of requests taken, per mille (1..=1000), in ipHash/headerHash/random mode.
    #[serde(default)]
    pub permil: u32,
    /// Header hashed by the headerHash policy.
    #[serde(default)]
    pub header_hash_key: String,
    /// v1 spelling of the per-mille mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<ProbabilitySpec>,
}

/// v1 `probability` of a pool filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbabilitySpec {
    /// Share taken, per mille.
    pub per_mill: u32,
    /// `ipHash`, `headerHash` or `random`.
    pub policy: String,
    /// Header hashed by headerHash.
    #[serde(default)]
    pub header_hash_key: String,
}

/// A string condition: exact, prefix or regex; `empty` also matches an absent header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StringMatcherSpec {
    /// Equal to.
    #[serde(default)]
    pub exact: String,
    /// Starts with.
    #[serde(default)]
    pub prefix: String,
    /// Matches (unanchored).
    #[serde(default)]
    pub regex: String,
    /// Matches an absent or empty value.
    #[serde(default)]
    pub empty: bool,
}

/// A URL condition of a pool filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlRuleSpec {
    /// Methods; empty = any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The path condition.
    pub url: StringMatcherSpec,
}

impl ProxySpec {
    /// The main pool, whichever form was written.
    pub fn main_pool(&self) -> Option<&PoolSpec> {
        self.main_pool
            .as_ref()
            .or_else(|| self.pools.iter().find(|p| p.filter.is_none()))
    }

    /// Candidate pools in the order they are tried.
    pub fn candidate_pools(&self) -> Vec<&PoolSpec> {
        if self.main_pool.is_some() {
            self.candidate_pools.iter().collect()
        } else {
            self.pools.iter().filter(|p| p.filter.is_some()).collect()
        }
    }

    fn validate(&self) -> Result<(), SpecError> {
        match (&self.main_pool, self.pools.is_empty()) {
            (Some(_), false) => {
                return Err(SpecError::new(
                    "pools",
                    "write either mainPool (v1) or pools (v2), not both",
                ));
            }
            (None, true) => return Err(SpecError::new("", "needs mainPool or pools")),
            (None, false) if !self.candidate_pools.is_empty() => {
                return Err(SpecError::new(
                    "candidatePools",
                    "goes with mainPool; with pools, give candidates a filter",
                ));
            }
            _ => {}
        }
        if let Some(main) = &self.main_pool {
            if main.filter.is_some() {
                return Err(SpecError::new(
                    "mainPool.filter",
                    "the main pool takes every request; it has no filter",
                ));
            }
            main.validate().map_err(|e| e.within("mainPool"))?;
            for (i, p) in self.candidate_pools.iter().enumerate() {
                let at = format!("candidatePools[{i}]");
                if p.filter.is_none() {
                    return Err(SpecError::new(
                        format!("{at}.filter"),
                        "is required for a candidate pool",
                    ));
                }
                p.validate().map_err(|e| e.within(&at))?;
            }
        } else {
            let mains = self.pools.iter().filter(|p| p.filter.is_none()).count();
            if mains != 1 {
                return Err(SpecError::new(
                    "pools",
                    format!("exactly one pool must have no filter (the main pool); found {mains}"),
                ));
            }
            for (i, p) in self.pools.iter().enumerate() {
                p.validate().map_err(|e| e.within(&format!("pools[{i}]")))?;
            }
        }
        for (i, code) in self.failure_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                return Err(SpecError::new(
                    format!("failureCodes[{i}]"),
                    "must be an HTTP status code (100..599)",
                ));
            }
        }
        Ok(())
    }
}

impl PoolSpec {
    /// The servers this pool balances over: all of them, or those carrying one of `serverTags`.
    pub fn selected_servers(&self) -> Vec<&ServerSpec> {
        self.servers
            .iter()
            .filter(|s| {
                self.server_tags.is_empty() || s.tags.iter().any(|t| self.server_tags.contains(t))
            })
            .collect()
    }

    fn validate(&self) -> Result<(), SpecError> {
        if self.servers.is_empty() {
            return Err(SpecError::new("servers", "needs at least one server"));
        }
        for (i, s) in self.servers.iter().enumerate() {
            s.validate()
                .map_err(|e| e.within(&format!("servers[{i}]")))?;
        }
        let weighted = self.servers.iter().filter(|s| s.weight > 0).count();
        if weighted != 0 && weighted != self.servers.len() {
            return Err(SpecError::new(
                "servers",
                "give a weight to every server or to none",
            ));
        }
        if self.selected_servers().is_empty() {
            return Err(SpecError::new("serverTags", "selects no server"));
        }
        let lb = &self.load_balance;
        if !LB_POLICIES.contains(&lb.policy.as_str()) {
            return Err(SpecError::new(
                "loadBalance.policy",
                format!(
                    "unknown policy {:?}; one of {}",
                    lb.policy,
                    LB_POLICIES.join(", ")
                ),
            ));
        }
        if lb.policy == "weightedRandom" && weighted == 0 {
            return Err(SpecError::new(
                "loadBalance.policy",
                "weightedRandom needs a weight on every server",
            ));
        }
        if lb.policy == "headerHash" && lb.header_hash_key.is_empty() {
            return Err(SpecError::new(
                "loadBalance.headerHashKey",
                "is required by headerHash",
            ));
        }
        if !lb.header_hash_key.is_empty() && http_header_name_invalid(&lb.header_hash_key) {
            return Err(SpecError::new(
                "loadBalance.headerHashKey",
                "is not a valid header name",
            ));
        }
        if let Some(f) = &self.filter {
            f.validate().map_err(|e| e.within("filter"))?;
        }
        Ok(())
    }
}

impl ServerSpec {
    fn validate(&self) -> Result<(), SpecError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| SpecError::new("url", format!("bad URL {:?}: {e}", self.url)))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(SpecError::new(
                    "url",
                    "https upstreams are not supported by this release yet",
                ));
            }
            other => {
                return Err(SpecError::new(
                    "url",
                    format!("scheme {other:?} is not supported; use http://"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SpecError::new("url", format!("{:?} has no host", self.url)));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(SpecError::new("url", "must not have a query or fragment"));
        }
        if self.weight > 100 {
            return Err(SpecError::new("weight", "must be between 0 and 100"));
        }
        Ok(())
    }
}

impl RequestMatcherSpec {
    /// The per-mille mode's policy, share and hash key, from either spelling; `None` in header mode.
    pub fn share(&self) -> Option<(&str, u32, &str)> {
        if let Some(p) = &self.probability {
            return Some((p.policy.as_str(), p.per_mill, p.header_hash_key.as_str()));
        }
        match self.policy.as_str() {
            "ipHash" | "headerHash" | "random" => Some((
                self.policy.as_str(),
                self.permil,
                self.header_hash_key.as_str(),
            )),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), SpecError> {
        if !matches!(
            self.policy.as_str(),
            "" | "general" | "ipHash" | "headerHash" | "random"
        ) {
            return Err(SpecError::new(
                "policy",
                format!(
                    "unknown policy {:?}; one of general, ipHash, headerHash, random",
                    self.policy
                ),
            ));
        }
        if let Some((policy, permil, key)) = self.share() {
            let at = if self.probability.is_some() {
                "probability."
            } else {
                ""
            };
            if !self.headers.is_empty() {
                return Err(SpecError::new(
                    "headers",
                    "give either header conditions or a per-mille share, not both",
                ));
            }
            if !matches!(policy, "ipHash" | "headerHash" | "random") {
                return Err(SpecError::new(
                    format!("{at}policy"),
                    "must be ipHash, headerHash or random",
                ));
            }
            if !(1..=1000).contains(&permil) {
                let field = if self.probability.is_some() {
                    "probability.perMill"
                } else {
                    "permil"
                };
                return Err(SpecError::new(field, "must be between 1 and 1000"));
            }
            if policy == "headerHash" && key.is_empty() {
                return Err(SpecError::new(
                    format!("{at}headerHashKey"),
                    "is required by headerHash",
                ));
            }
        } else if self.headers.is_empty() {
            return Err(SpecError::new(
                "headers",
                "needs header conditions, or a policy with a per-mille share",
            ));
        }
        if let Some((_, _, key)) = self.share()
            && !key.is_empty()
            && http_header_name_invalid(key)
        {
            let field = if self.probability.is_some() {
                "probability.headerHashKey"
            } else {
                "headerHashKey"
            };
            return Err(SpecError::new(field, "is not a valid header name"));
        }
        for (name, m) in &self.headers {
            if http_header_name_invalid(name) {
                return Err(SpecError::new(
                    format!("headers.{name}"),
                    "is not a valid header name",
                ));
            }
            m.validate()
                .map_err(|e| e.within(&format!("headers.{name}")))?;
        }
        for (i, u) in self.urls.iter().enumerate() {
            u.url
                .validate()
                .map_err(|e| e.within(&format!("urls[{i}].url")))?;
        }
        Ok(())
    }
}

impl StringMatcherSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if self.exact.is_empty() && self.prefix.is_empty() && self.regex.is_empty() && !self.empty {
            return Err(SpecError::new("", "needs exact, prefix, regex or empty"));
        }
        if !self.regex.is_empty() {
            check_regex("regex", &self.regex)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Validator

/// `kind: Validator`: checks request headers; result `invalid` with 400 when they do not validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidatorSpec {
    /// Filter name.
    pub name: String,
    /// Always `Validator`.
    pub kind: String,
    /// Header name -> accepted values or regexp. Every listed header must be present and valid.
    #[serde(default)]
    pub headers: BTreeMap<String, ValueValidatorSpec>,
}

/// Accepted values of one header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueValidatorSpec {
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Accepted values as a regular expression.
    #[serde(default)]
    pub regexp: String,
}

impl ValidatorSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if self.headers.is_empty() {
            return Err(SpecError::new(
                "headers",
                "needs at least one header to validate",
            ));
        }
        for (name, v) in &self.headers {
            let at = format!("headers.{name}");
            if http_header_name_invalid(name) {
                return Err(SpecError::new(at, "is not a valid header name"));
            }
            if v.values.is_empty() && v.regexp.is_empty() {
                return Err(SpecError::new(at, "needs values or regexp"));
            }
            if !v.regexp.is_empty() {
                check_regex(&format!("{at}.regexp"), &v.regexp)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn http_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header_value_invalid(value: &str) -> bool {
    value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

// ---------------------------------------------------------------------------------------------------------------
// Adaptors

/// `header` of an adaptor: delete, then set, then add.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderAdaptorSpec {
    /// Headers removed.
    #[serde(default)]
    pub del: Vec<String>,
    /// Headers replaced.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Headers added beside existing values.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
}

impl HeaderAdaptorSpec {
    fn validate(&self) -> Result<(), SpecError> {
        for (i, name) in self.del.iter().enumerate() {
            if http_header_name_invalid(name) {
                return Err(SpecError::new(
                    format!("del[{i}]"),
                    format!("{name:?} is not a valid header name"),
                ));
            }
        }
        for (field, map) in [("set", &self.set), ("add", &self.add)] {
            for (name, value) in map {
                if http_header_name_invalid(name) {
                    return Err(SpecError::new(
                        format!("{field}.{name}"),
                        "is not a valid header name",
                    ));
                }
                if header_value_invalid(value) {
                    return Err(SpecError::new(
                        format!("{field}.{name}"),
                        "value has control characters",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `path` of a RequestAdaptor: the first non-empty of replace, addPrefix, trimPrefix, regexpReplace applies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathAdaptorSpec {
    /// New path.
    #[serde(default)]
    pub replace: String,
    /// Prefix added.
    #[serde(default)]
    pub add_prefix: String,
    /// Prefix removed.
    #[serde(default)]
    pub trim_prefix: String,
    /// Regular-expression rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp_replace: Option<RegexpReplaceSpec>,
}

/// A regular-expression rewrite; `replace` may use `$1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegexpReplaceSpec {
    /// Expression searched.
    pub regexp: String,
    /// Replacement.
    #[serde(default)]
    pub replace: String,
}

/// `kind: RequestAdaptor`: rewrites method, path, headers, body and host, in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestAdaptorSpec {
    /// Filter name.
    pub name: String,
    /// Always `RequestAdaptor`.
    pub kind: String,
    /// New method (a rewrite, not a condition).
    #[serde(default)]
    pub method: String,
    /// Path rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathAdaptorSpec>,
    /// Header changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderAdaptorSpec>,
    /// New body (Content-Encoding removed); empty = unchanged.
    #[serde(default)]
    pub body: String,
    /// New Host.
    #[serde(default)]
    pub host: String,
}

impl RequestAdaptorSpec {
    fn validate(&self) -> Result<(), SpecError> {
        if !self.method.is_empty() && !crate::server::METHODS.contains(&self.method.as_str()) {
            return Err(SpecError::new(
                "method",
                format!("unknown method {:?}", self.method),
            ));
        }
        if let Some(p) = &self.path {
            if !p.add_prefix.is_empty() && !p.add_prefix.starts_with('/') {
                return Err(SpecError::new("path.addPrefix", "must start with /"));
            }
            if !p.trim_prefix.is_empty() && !p.trim_prefix.starts_with('/') {
                return Err(SpecError::new("path.trimPrefix", "must start with /"));
            }
            if !p.replace.is_empty() && !p.replace.starts_with('/') {
                return Err(SpecError::new("path.replace", "must start with /"));
            }
            if let Some(r) = &p.regexp_replace {
                check_regex("path.regexpReplace.regexp", &r.regexp)?;
            }
        }
        if let Some(h) = &self.header {
            h.validate().map_err(|e| e.within("header"))?;
        }
        if !self.host.is_empty() && header_value_invalid(&self.host) {
            return Err(SpecError::new("host", "has control characters"));
        }
        Ok(())
    }
}

/// `kind: ResponseAdaptor`: changes response headers and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseAdaptorSpec {
    /// Filter name.
    pub name: String,
    /// Always `ResponseAdaptor`.
    pub kind: String,
    /// Header changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderAdaptorSpec>,
    /// New body; empty = unchanged.
    #[serde(default)]
    pub body: String,
}
