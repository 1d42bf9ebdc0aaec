//! Filters: trait objects built from their [`FilterSpec`]. Adding a kind = one module plus one line in [`build`].

mod proxy;
mod request_adaptor;
mod response_adaptor;
mod validator;

pub use proxy::Proxy;
pub use request_adaptor::RequestAdaptor;
pub(crate) use request_adaptor::{join_path_query, with_path};
pub use response_adaptor::ResponseAdaptor;
pub use validator::Validator;

use crate::pipeline::Context;
use meshgress_spec::FilterSpec;
use std::{any::Any, future::Future, pin::Pin, sync::Arc};

/// The future a filter returns: its result (`""` = go on).
pub type FilterFuture<'a> = Pin<Box<dyn Future<Output = &'static str> + Send + 'a>>;

/// A built filter.
pub trait Filter: Send + Sync + 'static {
    /// Handles the request in `ctx`; returns the result (`""` to continue with the next filter).
    fn handle<'a>(&'a self, ctx: &'a mut Context) -> FilterFuture<'a>;
    /// For [`Filter`] implementations that inherit state from a predecessor (downcast with `as_any`).
    fn as_any(&self) -> &dyn Any;
}

/// Builds a filter from its spec. `previous` is the filter of the same name in the pipeline being replaced
/// (its spec changed); a filter may carry state over from it (e.g. the Proxy keeps its upstream connection pool).
pub fn build(spec: &FilterSpec, previous: Option<&dyn Filter>) -> Result<Arc<dyn Filter>, String> {
    Ok(match spec {
        FilterSpec::Proxy(s) => Arc::new(Proxy::new(s, previous)?),
        FilterSpec::Validator(s) => Arc::new(Validator::new(s)?),
        FilterSpec::RequestAdaptor(s) => Arc::new(RequestAdaptor::new(s)?),
        FilterSpec::ResponseAdaptor(s) => Arc::new(ResponseAdaptor::new(s)?),
    })
}

/// A finished filter future without boxing a real async block.
pub(crate) fn ready(result: &'static str) -> FilterFuture<'static> {
    Box::pin(std::future::ready(result))
}

/// Parses header names/values of an adaptor spec.
pub(crate) mod header_ops {
    use http::{HeaderMap, HeaderName, HeaderValue};
    use meshgress_spec::HeaderAdaptorSpec;

    /// `header: {del, set, add}` compiled.
    #[derive(Debug, Default)]
    pub struct HeaderOps {
        del: Vec<HeaderName>,
        set: Vec<(HeaderName, HeaderValue)>,
        add: Vec<(HeaderName, HeaderValue)>,
    }

    fn pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
        let n =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let v = HeaderValue::from_str(value).map_err(|e| format!("header {name:?} value: {e}"))?;
        Ok((n, v))
    }

    impl HeaderOps {
        /// Compiles the spec.
        pub fn new(spec: Option<&HeaderAdaptorSpec>) -> Result<Self, String> {
            let Some(spec) = spec else {
                return Ok(Self::default());
            };
            let del = spec
                .del
                .iter()
                .map(|n| {
                    HeaderName::from_bytes(n.as_bytes()).map_err(|e| format!("header {n:?}: {e}"))
                })
                .collect::<Result<_, _>>()?;
            let set = spec
                .set
                .iter()
                .map(|(k, v)| pair(k, v))
                .collect::<Result<_, _>>()?;
            let add = spec
                .add
                .iter()
                .map(|(k, v)| pair(k, v))
                .collect::<Result<_, _>>()?;
            Ok(Self { del, set, add })
        }

        /// Deletes, then sets, then adds.
        pub fn apply(&self, headers: &mut HeaderMap) {
            for n in &self.del {
                headers.remove(n);
            }
            for (n, v) in &self.set {
                headers.insert(n.clone(), v.clone());
            }
            for (n, v) in &self.add {
                headers.append(n.clone(), v.clone());
            }
        }
    }
}
