//! The body type that flows through routers, pipelines and filters, independent of the wire protocol.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// Boxed error of a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A streamed request or response body.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A response with `status` and an empty body.
pub fn status_response(status: http::StatusCode) -> http::Response<Body> {
    let mut rsp = http::Response::new(empty());
    *rsp.status_mut() = status;
    rsp
}
