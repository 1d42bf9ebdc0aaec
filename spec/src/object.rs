use crate::{HttpServerSpec, PipelineSpec, SpecError, error::from_value};
use std::collections::HashMap;

/// Object kinds this release knows (`HTTPPipeline` and `Pipeline` are one kind under two names).
pub const KINDS: &[&str] = &["HTTPServer", "HTTPPipeline", "Pipeline"];

/// A validated object of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `kind: HTTPServer`.
    HttpServer(HttpServerSpec),
    /// `kind: HTTPPipeline` or `kind: Pipeline`.
    Pipeline(PipelineSpec),
}

impl Object {
    /// The kind as written.
    pub fn kind(&self) -> &str {
        match self {
            Object::HttpServer(s) => &s.kind,
            Object::Pipeline(p) => &p.kind,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Object::HttpServer(s) => &s.name,
            Object::Pipeline(p) => &p.name,
        }
    }

    /// The canonical document: every field, defaults filled in (keys sorted), ready to be read back.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Object::HttpServer(s) => serde_json::to_value(s).unwrap_or_default(),
            Object::Pipeline(p) => p.to_json(),
        }
    }
}

/// Whether two kind names are the same kind (`HTTPPipeline` and `Pipeline` are).
pub fn same_kind(a: &str, b: &str) -> bool {
    let canon = |k: &str| {
        if k == "HTTPPipeline" {
            "Pipeline".to_string()
        } else {
            k.to_string()
        }
    };
    canon(a) == canon(b)
}

/// Checks an object name like Easegress: 1 to 253 of `A-Z a-z 0-9 - _ . ~`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name (1 to 253 of A-Z, a-z, 0-9, -, _, ., ~)"
        ))
    }
}

/// Parses and validates one document (a JSON object with `kind`, `name` and the kind's fields).
/// A bad document is rejected whole, with the path of the field at fault.
pub fn parse_object(doc: &serde_json::Value) -> Result<Object, SpecError> {
    let map = doc
        .as_object()
        .ok_or_else(|| SpecError::new("", "a document must be a mapping with kind and name"))?;
    let kind = match map.get("kind") {
        None => return Err(SpecError::new("kind", "is required")),
        Some(serde_json::Value::String(k)) => k.as_str(),
        Some(_) => return Err(SpecError::new("kind", "must be a string")),
    };
    match map.get("name") {
        None => return Err(SpecError::new("name", "is required")),
        Some(serde_json::Value::String(n)) => {
            check_name(n).map_err(|m| SpecError::new("name", m))?
        }
        Some(_) => return Err(SpecError::new("name", "must be a string")),
    }
    match kind {
        "HTTPServer" => {
            let spec: HttpServerSpec = from_value(doc)?;
            spec.validate()?;
            Ok(Object::HttpServer(spec))
        }
        "HTTPPipeline" | "Pipeline" => Ok(Object::Pipeline(PipelineSpec::parse(doc)?)),
        other => Err(SpecError::new(
            "kind",
            format!("unknown kind {other:?}; known kinds: {}", KINDS.join(", ")),
        )),
    }
}

/// [`parse_object`] from JSON or YAML text.
pub fn parse_object_str(text: &str) -> Result<Object, SpecError> {
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|e| SpecError::new("", e.to_string()))?;
    parse_object(&value)
}

/// Checks the rules between objects of a would-be store: two HTTPServers may not share a port.
/// Put the object being written last: the error is reported against the later of two clashing objects.
pub fn validate_set(objects: &[Object]) -> Result<(), SpecError> {
    let mut ports: HashMap<(String, u16), &str> = HashMap::new();
    let servers = objects.iter().filter_map(|o| match o {
        Object::HttpServer(s) => Some(s),
        Object::Pipeline(_) => None,
    });
    for s in servers {
        // A wildcard address binds every interface, so it collides with any address on the same port.
        let clash = ports.iter().find(|((addr, port), _)| {
            *port == s.port && (is_wildcard(addr) || is_wildcard(&s.address) || *addr == s.address)
        });
        if let Some((_, other)) = clash {
            return Err(SpecError::new(
                "port",
                format!("port {} is already used by HTTPServer {other:?}", s.port),
            ));
        }
        ports.insert((s.address.clone(), s.port), &s.name);
    }
    Ok(())
}

/// Whether a listen address binds every interface (empty, `0.0.0.0` or `::`).
fn is_wildcard(address: &str) -> bool {
    address.is_empty()
        || address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
}
