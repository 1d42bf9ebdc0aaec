//! Pipelines: a flow of filters; each filter returns a result, and `jumpIf` maps a result to a later filter or END.
//!
//! No flow = every filter in the order written. Result `""` -> the next step. A non-empty result with a `jumpIf`
//! entry jumps forward (or ends on `END`); without an entry the pipeline ends. The response is whatever the
//! filters set so far.

use crate::{
    body::Body,
    error::DataplaneError,
    filters::{self, Filter},
};
use http::{Request, Response};
use meshgress_spec::{END, FilterSpec, PipelineSpec};
use std::{collections::HashMap, net::SocketAddr, sync::Arc};

/// What filters work on: the request as it goes upstream and the response as it comes back.
pub struct Context {
    /// The request (filters may rewrite it; the Proxy takes its body).
    pub request: Request<Body>,
    /// The response set so far, if any.
    pub response: Option<Response<Body>>,
    /// The client's real IP (see [`crate::realip::real_ip`]).
    pub real_ip: String,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Set by the pipeline while the filter running is the last that can run: it may consume the request's
    /// parts (e.g. the Proxy moves the headers upstream rather than copying them).
    pub(crate) last_filter: bool,
}

impl Context {
    /// A context for a request from `peer`.
    pub fn new(request: Request<Body>, real_ip: String, peer: SocketAddr) -> Self {
        Self {
            request,
            response: None,
            real_ip,
            peer,
            last_filter: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jump {
    End,
    To(usize),
}

struct Step {
    /// `None` for an `END` node of the flow.
    filter: Option<Arc<dyn Filter>>,
    jumps: Vec<(String, Jump)>,
    /// No filter comes after this step (jumps only go forward).
    last: bool,
}

/// A built pipeline.
pub struct Pipeline {
    spec: PipelineSpec,
    filters: HashMap<String, (FilterSpec, Arc<dyn Filter>)>,
    steps: Vec<Step>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Builds a pipeline. Filters of `previous` (the pipeline of the same name being replaced) whose spec is
    /// unchanged are reused as they are, with their state; the others may inherit from their namesake.
    pub fn build(spec: &PipelineSpec, previous: Option<&Pipeline>) -> Result<Self, DataplaneError> {
        let mut filters = HashMap::with_capacity(spec.filters.len());
        for fspec in &spec.filters {
            let old = previous.and_then(|p| p.filters.get(fspec.name()));
            let built = match old {
                Some((old_spec, old_filter)) if old_spec == fspec => Arc::clone(old_filter),
                _ => filters::build(fspec, old.map(|(_, f)| f.as_ref())).map_err(|message| {
                    DataplaneError::Build {
                        object: format!("Pipeline {:?} filter {:?}", spec.name, fspec.name()),
                        message,
                    }
                })?,
            };
            filters.insert(fspec.name().to_string(), (fspec.clone(), built));
        }
        let nodes = spec.steps();
        let position: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.filter.as_str(), i))
            .collect();
        let mut steps = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let filter = if node.filter == END {
                None
            } else {
                let f = filters
                    .get(&node.filter)
                    .ok_or_else(|| DataplaneError::Build {
                        object: format!("Pipeline {:?}", spec.name),
                        message: format!(
                            "flow names filter {:?}, which is not in filters",
                            node.filter
                        ),
                    })?;
                Some(Arc::clone(&f.1))
            };
            let mut jumps = Vec::with_capacity(node.jump_if.len());
            for (result, target) in &node.jump_if {
                let jump = if target == END {
                    Jump::End
                } else {
                    Jump::To(*position.get(target.as_str()).ok_or_else(|| {
                        DataplaneError::Build {
                            object: format!("Pipeline {:?}", spec.name),
                            message: format!("jumpIf target {target:?} is not in the flow"),
                        }
                    })?)
                };
                jumps.push((result.clone(), jump));
            }
            steps.push(Step {
                filter,
                jumps,
                last: false,
            });
        }
        if let Some(i) = steps.iter().rposition(|s| s.filter.is_some()) {
            steps[i].last = true;
        }
        Ok(Self {
            spec: spec.clone(),
            filters,
            steps,
        })
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The built filter of that name (for tests and status).
    pub fn filter(&self, name: &str) -> Option<&Arc<dyn Filter>> {
        self.filters.get(name).map(|(_, f)| f)
    }

    /// Runs the flow on `ctx`; returns the last non-empty result ("" when every filter passed).
    pub async fn handle(&self, ctx: &mut Context) -> &'static str {
        let mut i = 0;
        let mut last = "";
        while let Some(step) = self.steps.get(i) {
            let Some(filter) = &step.filter else { break };
            ctx.last_filter = step.last;
            let result = filter.handle(ctx).await;
            ctx.last_filter = false;
            if result.is_empty() {
                i += 1;
                continue;
            }
            last = result;
            match step.jumps.iter().find(|(r, _)| r == result) {
                Some((_, Jump::To(next))) if *next > i => i = *next,
                _ => break,
            }
        }
        last
    }
}
