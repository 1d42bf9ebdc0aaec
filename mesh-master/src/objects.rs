//! The one place the master touches the object spec crate: parse and validate documents, check object sets.

use meshgress_spec as spec;

pub use spec::{Object, SpecError};

/// Largest object document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A validated document, with its canonical JSON (defaults filled in).
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    /// The validated object.
    pub object: Object,
    /// `object.to_json()` as text: what is stored and served.
    pub canonical_json: String,
}

/// Why a document was refused; the message names the object and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DocumentError {
    /// `<name>: <path>: <what is wrong>` (the name when the document has one).
    pub message: String,
}

/// Parses and validates one JSON document. Errors read `<name>: <path>: <message>`.
pub fn parse_document(text: &str) -> Result<ParsedDocument, DocumentError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DocumentError {
        message: format!("the object document is not valid JSON: {e}"),
    })?;
    let name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let object = spec::parse_object(&value).map_err(|e| DocumentError {
        message: match &name {
            Some(name) => format!("{name}: {e}"),
            None => e.to_string(),
        },
    })?;
    let canonical_json = serde_json::to_string(&object.to_json()).map_err(|e| DocumentError {
        message: format!("{}: cannot encode the document: {e}", object.name()),
    })?;
    Ok(ParsedDocument {
        object,
        canonical_json,
    })
}

/// Parses a document already in the store (canonical JSON); `None` if it no longer parses.
pub fn parse_stored(spec_json: &str) -> Option<Object> {
    let value: serde_json::Value = serde_json::from_str(spec_json).ok()?;
    spec::parse_object(&value).ok()
}

/// Checks the rules between objects of a would-be store (e.g. two HTTPServers on one port).
pub fn validate_set(objects: &[Object]) -> Result<(), SpecError> {
    spec::validate_set(objects)
}

/// Whether two kind names are one kind (`HTTPPipeline` and `Pipeline` are).
pub fn same_kind(a: &str, b: &str) -> bool {
    spec::same_kind(a, b)
}

/// Kinds a proxy gets when it asks for none: what gateways and ingresses serve.
pub fn default_kinds() -> Vec<String> {
    vec!["HTTPServer".to_owned(), "HTTPPipeline".to_owned()]
}

/// Whether `kind` is one of `kinds` (under [`same_kind`]).
pub fn kind_wanted(kinds: &[String], kind: &str) -> bool {
    kinds.iter().any(|k| same_kind(k, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_object_and_the_field() {
        let err = parse_document(r#"{"kind":"HTTPServer","name":"srv","port":"x"}"#).unwrap_err();
        assert!(err.message.starts_with("srv: port: "), "{}", err.message);
        let err = parse_document("{not json").unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        let err = parse_document(r#"{"kind":"Nope","name":"x"}"#).unwrap_err();
        assert!(err.message.starts_with("x: kind: "), "{}", err.message);
    }

    #[test]
    fn canonical_json_round_trips() {
        let doc = parse_document(r#"{"kind":"HTTPServer","name":"srv","port":10080}"#).unwrap();
        assert_eq!(doc.object.name(), "srv");
        let again = parse_stored(&doc.canonical_json).unwrap();
        assert_eq!(again, doc.object);
        assert!(kind_wanted(&default_kinds(), "Pipeline"));
        assert!(!kind_wanted(&["HTTPServer".to_owned()], "Pipeline"));
    }
}
