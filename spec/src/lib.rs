//! Object specs of Meshgress: the serde types of every object kind, their defaults and their validation.
//!
//! One place for both sides: the master validates documents with [`parse_object`] before they are committed,
//! and the proxies build their routers and pipelines from the same types. Documents are written exactly as
//! Easegress writes them (`kind`, `name` and the kind's fields at the top level).

mod duration;
mod error;
mod filters;
mod ipfilter;
mod object;
mod pipeline;
mod server;

pub use duration::GoDuration;
pub use error::SpecError;
pub use filters::{
    FilterSpec, HeaderAdaptorSpec, LB_POLICIES, LoadBalanceSpec, PathAdaptorSpec, PoolSpec,
    ProbabilitySpec, ProxySpec, RegexpReplaceSpec, RequestAdaptorSpec, RequestMatcherSpec,
    ResponseAdaptorSpec, ServerSpec, StringMatcherSpec, UrlRuleSpec, ValidatorSpec,
    ValueValidatorSpec,
};
pub use ipfilter::{Cidr, IpFilterSpec};
pub use object::{KINDS, Object, parse_object, parse_object_str, same_kind, validate_set};
pub use pipeline::{END, FlowNodeSpec, PipelineSpec};
pub use server::{HeaderMatchSpec, HttpServerSpec, PathSpec, RuleSpec};
