//! `Validator`: every listed header must be present and its first value listed in `values` or matching
//! `regexp`; otherwise result `invalid` with 400 and an empty body.

use super::{Filter, FilterFuture, ready};
use crate::{body::status_response, pipeline::Context};
use http::{HeaderName, StatusCode};
use meshgress_spec::ValidatorSpec;
use regex::Regex;
use std::any::Any;

/// The built Validator filter.
pub struct Validator {
    headers: Vec<(HeaderName, Vec<String>, Option<Regex>)>,
}

impl Validator {
    /// Builds it from its spec.
    pub fn new(spec: &ValidatorSpec) -> Result<Self, String> {
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (name, v) in &spec.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("headers.{name}: {e}"))?;
            let re = if v.regexp.is_empty() {
                None
            } else {
                Some(Regex::new(&v.regexp).map_err(|e| format!("headers.{name}.regexp: {e}"))?)
            };
            headers.push((n, v.values.clone(), re));
        }
        Ok(Self { headers })
    }

    fn valid(&self, ctx: &Context) -> bool {
        let h = ctx.request.headers();
        self.headers
            .iter()
            .all(|(name, values, re)| match h.get(name) {
                None => false,
                Some(v) => {
                    let v = std::str::from_utf8(v.as_bytes()).unwrap_or("");
                    values.iter().any(|x| x == v) || re.as_ref().is_some_and(|re| re.is_match(v))
                }
            })
    }
}

impl Filter for Validator {
    fn handle<'a>(&'a self, ctx: &'a mut Context) -> FilterFuture<'a> {
        if self.valid(ctx) {
            return ready("");
        }
        ctx.response = Some(status_response(StatusCode::BAD_REQUEST));
        ready("invalid")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
