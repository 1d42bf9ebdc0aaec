//! `ResponseAdaptor`: changes response headers (del, set, add) and body. With no response yet it adapts the
//! default 200 response, as Easegress v1 does.

use super::{Filter, FilterFuture, header_ops::HeaderOps, ready};
use crate::{body, pipeline::Context};
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use meshgress_spec::ResponseAdaptorSpec;
use std::any::Any;

/// The built ResponseAdaptor filter.
pub struct ResponseAdaptor {
    headers: HeaderOps,
    body: Option<Bytes>,
}

impl ResponseAdaptor {
    /// Builds it from its spec.
    pub fn new(spec: &ResponseAdaptorSpec) -> Result<Self, String> {
        Ok(Self {
            headers: HeaderOps::new(spec.header.as_ref())?,
            body: (!spec.body.is_empty()).then(|| Bytes::from(spec.body.clone())),
        })
    }
}

impl Filter for ResponseAdaptor {
    fn handle<'a>(&'a self, ctx: &'a mut Context) -> FilterFuture<'a> {
        let rsp = ctx
            .response
            .get_or_insert_with(|| Response::new(body::empty()));
        self.headers.apply(rsp.headers_mut());
        if let Some(b) = &self.body {
            let h = rsp.headers_mut();
            h.remove(header::CONTENT_ENCODING);
            h.remove(header::TRANSFER_ENCODING);
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            *rsp.body_mut() = body::full(b.clone());
        }
        ready("")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
