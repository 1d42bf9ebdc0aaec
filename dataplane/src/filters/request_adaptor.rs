//! `RequestAdaptor`: rewrites method, path, headers (del, set, add), body and host, in that order.
//! `[[...]]` templates are not supported: strings are used literally.

use super::{Filter, FilterFuture, header_ops::HeaderOps, ready};
use crate::{body, pipeline::Context};
use bytes::Bytes;
use http::{HeaderValue, Method, Uri, header};
use meshgress_spec::RequestAdaptorSpec;
use regex::Regex;
use std::any::Any;

enum PathOp {
    Replace(String),
    AddPrefix(String),
    TrimPrefix(String),
    Regexp(Regex, String),
}

/// The built RequestAdaptor filter.
pub struct RequestAdaptor {
    method: Option<Method>,
    path: Option<PathOp>,
    headers: HeaderOps,
    body: Option<Bytes>,
    host: Option<HeaderValue>,
}

impl RequestAdaptor {
    /// Builds it from its spec.
    pub fn new(spec: &RequestAdaptorSpec) -> Result<Self, String> {
        let method = if spec.method.is_empty() {
            None
        } else {
            Some(Method::from_bytes(spec.method.as_bytes()).map_err(|e| format!("method: {e}"))?)
        };
        let path = match &spec.path {
            None => None,
            Some(p) if !p.replace.is_empty() => Some(PathOp::Replace(p.replace.clone())),
            Some(p) if !p.add_prefix.is_empty() => Some(PathOp::AddPrefix(p.add_prefix.clone())),
            Some(p) if !p.trim_prefix.is_empty() => Some(PathOp::TrimPrefix(p.trim_prefix.clone())),
            Some(p) => match &p.regexp_replace {
                Some(r) if !r.regexp.is_empty() => Some(PathOp::Regexp(
                    Regex::new(&r.regexp).map_err(|e| format!("path.regexpReplace.regexp: {e}"))?,
                    r.replace.clone(),
                )),
                _ => None,
            },
        };
        let host = if spec.host.is_empty() {
            None
        } else {
            Some(HeaderValue::from_str(&spec.host).map_err(|e| format!("host: {e}"))?)
        };
        Ok(Self {
            method,
            path,
            headers: HeaderOps::new(spec.header.as_ref())?,
            body: (!spec.body.is_empty()).then(|| Bytes::from(spec.body.clone())),
            host,
        })
    }

    fn new_path(&self, path: &str) -> Option<String> {
        let op = self.path.as_ref()?;
        Some(match op {
            PathOp::Replace(p) => p.clone(),
            PathOp::AddPrefix(p) => format!("{p}{path}"),
            PathOp::TrimPrefix(p) => path.strip_prefix(p.as_str()).unwrap_or(path).to_string(),
            PathOp::Regexp(re, rep) => re.replace_all(path, rep.as_str()).into_owned(),
        })
    }
}

/// `prefix` + `path` (given a leading `/` when it lacks one) + `?query`: the one place a path and query are joined.
pub(crate) fn join_path_query(prefix: &str, path: &str, query: Option<&str>) -> String {
    let mut pq = String::with_capacity(prefix.len() + path.len() + 2 + query.map_or(0, str::len));
    pq.push_str(prefix);
    if !path.starts_with('/') {
        pq.push('/');
    }
    pq.push_str(path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    pq
}

/// `uri` with its path replaced (query kept). A path not starting with `/` gets one.
pub(crate) fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let pq = join_path_query("", path, uri.query());
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

impl Filter for RequestAdaptor {
    fn handle<'a>(&'a self, ctx: &'a mut Context) -> FilterFuture<'a> {
        let req = &mut ctx.request;
        if let Some(m) = &self.method {
            *req.method_mut() = m.clone();
        }
        if let Some(path) = self.new_path(req.uri().path())
            && let Some(uri) = with_path(req.uri(), &path)
        {
            *req.uri_mut() = uri;
        }
        self.headers.apply(req.headers_mut());
        if let Some(b) = &self.body {
            let h = req.headers_mut();
            h.remove(header::CONTENT_ENCODING);
            h.remove(header::TRANSFER_ENCODING);
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            *req.body_mut() = body::full(b.clone());
        }
        if let Some(host) = &self.host {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        ready("")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_replaced_query_kept() {
        let uri: Uri = "/a/b?x=1".parse().unwrap();
        assert_eq!(with_path(&uri, "/c").unwrap().to_string(), "/c?x=1");
        assert_eq!(with_path(&uri, "").unwrap().to_string(), "/?x=1");
        assert_eq!(with_path(&uri, "v1").unwrap().to_string(), "/v1?x=1");
        let abs: Uri = "http://h:1/a".parse().unwrap();
        assert_eq!(with_path(&abs, "/z").unwrap().to_string(), "http://h:1/z");
    }
}
