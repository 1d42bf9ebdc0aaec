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
    FilterSpec, HeaderAdaptorSpec, LoadBalanceSpec, PathAdaptorSpec, PoolSpec, ProbabilitySpec, ProxySpec,
    RegexpReplaceSpec, RequestAdaptorSpec, RequestMatcherSpec, ResponseAdaptorSpec, ServerSpec, StringMatcherSpec,
    UrlRuleSpec, ValidatorSpec, ValueValidatorSpec, LB_POLICIES,
};
pub use ipfilter::{Cidr, IpFilterSpec};
pub use object::{parse_object, parse_object_str, same_kind, validate_set, Object, KINDS};
pub use pipeline::{FlowNodeSpec, PipelineSpec, END};
pub use server::{HeaderMatchSpec, HttpServerSpec, PathSpec, RuleSpec};
