use crate::{FilterSpec, SpecError, error::from_value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The built-in jump target that ends a pipeline.
pub const END: &str = "END";

/// `kind: HTTPPipeline` (v1) or `kind: Pipeline` (v2): filters run in a flow, results jump forward.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// `HTTPPipeline` or `Pipeline`, as written.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Order of execution; empty = the filters in the order written.
    pub flow: Vec<FlowNodeSpec>,
    /// The filters, by name.
    pub filters: Vec<FilterSpec>,
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlowNodeSpec {
    /// Filter name, or `END`.
    pub filter: String,
    /// Result -> later filter name or `END`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jump_if: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PipelineDoc {
    kind: String,
    name: String,
    #[serde(default)]
    flow: Vec<FlowNodeSpec>,
    filters: Vec<serde_json::Value>,
}

impl PipelineSpec {
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, SpecError> {
        let doc: PipelineDoc = from_value(value)?;
        let mut filters = Vec::with_capacity(doc.filters.len());
        for (i, f) in doc.filters.iter().enumerate() {
            filters.push(FilterSpec::parse(f).map_err(|e| e.within(&format!("filters[{i}]")))?);
        }
        let spec = PipelineSpec {
            kind: doc.kind,
            name: doc.name,
            flow: doc.flow,
            filters,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The steps to run, in order: the flow, or every filter in the order written.
    pub fn steps(&self) -> Vec<FlowNodeSpec> {
        if self.flow.is_empty() {
            self.filters
                .iter()
                .map(|f| FlowNodeSpec {
                    filter: f.name().to_string(),
                    jump_if: BTreeMap::new(),
                })
                .collect()
        } else {
            self.flow.clone()
        }
    }

    /// The filter of that name.
    pub fn filter(&self, name: &str) -> Option<&FilterSpec> {
        self.filters.iter().find(|f| f.name() == name)
    }

    fn validate(&self) -> Result<(), SpecError> {
        if self.filters.is_empty() {
            return Err(SpecError::new("filters", "needs at least one filter"));
        }
        let mut seen = HashMap::new();
        for (i, f) in self.filters.iter().enumerate() {
            let at = format!("filters[{i}].name");
            crate::object::check_name(f.name()).map_err(|m| SpecError::new(&at, m))?;
            if f.name() == END {
                return Err(SpecError::new(
                    at,
                    "END is reserved for the end of the pipeline",
                ));
            }
            if let Some(first) = seen.insert(f.name(), i) {
                return Err(SpecError::new(
                    at,
                    format!(
                        "duplicate filter name {:?} (also filters[{first}])",
                        f.name()
                    ),
                ));
            }
        }
        let mut position = HashMap::new();
        for (i, node) in self.flow.iter().enumerate() {
            if node.filter == END {
                continue;
            }
            if self.filter(&node.filter).is_none() {
                return Err(SpecError::new(
                    format!("flow[{i}].filter"),
                    format!("names filter {:?}, which is not in filters", node.filter),
                ));
            }
            if let Some(first) = position.insert(node.filter.as_str(), i) {
                return Err(SpecError::new(
                    format!("flow[{i}].filter"),
                    format!(
                        "filter {:?} is already in the flow at flow[{first}]",
                        node.filter
                    ),
                ));
            }
        }
        for (i, node) in self.steps().iter().enumerate() {
            if node.jump_if.is_empty() {
                continue;
            }
            let Some(filter) = self.filter(&node.filter) else {
                return Err(SpecError::new(
                    format!("flow[{i}].jumpIf"),
                    "END has no results to jump on",
                ));
            };
            for (result, target) in &node.jump_if {
                let at = format!("flow[{i}].jumpIf.{result}");
                if !filter.results().contains(&result.as_str()) {
                    let known = if filter.results().is_empty() {
                        "it returns none".to_string()
                    } else {
                        format!("it returns {}", filter.results().join(", "))
                    };
                    return Err(SpecError::new(
                        at,
                        format!(
                            "{} filter {:?} has no result {result:?}; {known}",
                            filter.kind(),
                            filter.name()
                        ),
                    ));
                }
                if target == END {
                    continue;
                }
                match position.get(target.as_str()) {
                    Some(&j) if j > i => {}
                    Some(_) => {
                        return Err(SpecError::new(
                            at,
                            format!("jumps back to {target:?}; jumps go forward only"),
                        ));
                    }
                    None if self.filter(target).is_some() => {
                        return Err(SpecError::new(
                            at,
                            format!("target {target:?} is not in the flow"),
                        ));
                    }
                    None => {
                        return Err(SpecError::new(
                            at,
                            format!(
                                "target {target:?} is neither END nor a filter of this pipeline"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The document as JSON, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), self.kind.clone().into());
        map.insert("name".into(), self.name.clone().into());
        if !self.flow.is_empty() {
            map.insert(
                "flow".into(),
                serde_json::to_value(&self.flow).unwrap_or_default(),
            );
        }
        map.insert(
            "filters".into(),
            self.filters.iter().map(FilterSpec::to_json).collect(),
        );
        serde_json::Value::Object(map)
    }
}
