//! Parsing of the object documents that `create`, `update` and `apply` send.
//!
//! The input is YAML (one or more documents separated by `---`) or JSON (one or more values, one after
//! another). Every document must be a mapping with a string `kind` and `name`; empty documents are
//! skipped, and a document that is a sequence (what `meshctl object list -o yaml|json` prints) stands
//! for its items. The whole input is checked before anything is sent, so a bad third document means
//! nothing is sent at all.

use std::fmt;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// One object document, ready to be sent as `spec_json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Where the document is in the input: `document 2` or `document 1, item 3`.
    pub label: String,
    /// The document's `kind`.
    pub kind: String,
    /// The document's `name`.
    pub name: String,
    /// The document as a JSON object, keys in the order they were written.
    pub spec_json: String,
}

/// Why the input could not be turned into documents; says which document is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// `document N` (or `document N, item M`), empty when the error concerns the whole input.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl DocumentError {
    fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

impl std::error::Error for DocumentError {}

/// Parses every document of `input` (YAML or JSON) and checks each one; returns them in input order.
pub fn parse_documents(input: &str) -> Result<Vec<Document>, DocumentError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let trimmed = input.trim_start();
    let raw = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON first (precise errors); a YAML flow mapping such as `{kind: X, name: y}` is not JSON.
        match parse_json_stream(input) {
            Ok(values) => values,
            Err(json_error) => parse_yaml_stream(input).map_err(|_| json_error)?,
        }
    } else {
        parse_yaml_stream(input)?
    };

    let mut documents = Vec::new();
    for (index, value) in raw.into_iter().enumerate() {
        let label = format!("document {}", index + 1);
        match value {
            Value::Null => {}
            Value::Sequence(items) => {
                for (item_index, item) in items.into_iter().enumerate() {
                    let item_label = format!("{label}, item {}", item_index + 1);
                    documents.push(document_from_value(item_label, item)?);
                }
            }
            other => documents.push(document_from_value(label, other)?),
        }
    }
    if documents.is_empty() {
        return Err(DocumentError::new("", "no object documents in the input"));
    }
    Ok(documents)
}

fn parse_yaml_stream(input: &str) -> Result<Vec<Value>, DocumentError> {
    let mut values = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let location = format!("document {}", index + 1);
        let mut value = Value::deserialize(document)
            .map_err(|e| DocumentError::new(&location, format!("invalid YAML: {e}")))?;
        value
            .apply_merge()
            .map_err(|e| DocumentError::new(&location, format!("invalid YAML merge key: {e}")))?;
        values.push(value);
    }
    Ok(values)
}

fn parse_json_stream(input: &str) -> Result<Vec<Value>, DocumentError> {
    let mut values = Vec::new();
    for (index, value) in serde_json::Deserializer::from_str(input)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value.map_err(|e| {
            DocumentError::new(
                format!("document {}", index + 1),
                format!("invalid JSON: {e}"),
            )
        })?;
        values.push(value);
    }
    Ok(values)
}

/// Checks one document and converts it to JSON.
fn document_from_value(label: String, value: Value) -> Result<Document, DocumentError> {
    let Value::Mapping(mapping) = value else {
        return Err(DocumentError::new(
            label,
            format!(
                "expected a mapping with `kind` and `name`, found {}",
                describe(&value)
            ),
        ));
    };
    let mapping = normalize_mapping(mapping, "").map_err(|m| DocumentError::new(&label, m))?;
    let kind = required_string(&mapping, "kind").map_err(|m| DocumentError::new(&label, m))?;
    let name = required_string(&mapping, "name").map_err(|m| DocumentError::new(&label, m))?;
    let spec_json = serde_json::to_string(&Value::Mapping(mapping))
        .map_err(|e| DocumentError::new(&label, format!("cannot convert to JSON: {e}")))?;
    Ok(Document {
        label,
        kind,
        name,
        spec_json,
    })
}

fn required_string(mapping: &Mapping, key: &str) -> Result<String, String> {
    match mapping.get(key) {
        None | Some(Value::Null) => Err(format!("missing `{key}`")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("`{key}` must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "`{key}` must be a string, found {}",
            describe(other)
        )),
    }
}

/// Makes a YAML value representable as JSON: string keys, finite numbers, no tags.
fn normalize(value: Value, path: &str) -> Result<Value, String> {
    match value {
        Value::Mapping(mapping) => normalize_mapping(mapping, path).map(Value::Mapping),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| normalize(item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Sequence),
        Value::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => Err(format!(
            "{}: {n} cannot be represented in JSON",
            display_path(path)
        )),
        Value::Tagged(tagged) => Err(format!(
            "{}: YAML tag {} is not supported",
            display_path(path),
            tagged.tag
        )),
        other => Ok(other),
    }
}

fn normalize_mapping(mapping: Mapping, path: &str) -> Result<Mapping, String> {
    let mut out = Mapping::with_capacity(mapping.len());
    for (key, value) in mapping {
        let key = match key {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "{}: a key must be a string, found {}",
                    display_path(path),
                    describe(&other)
                ));
            }
        };
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let value = normalize(value, &child)?;
        if out.insert(Value::String(key), value).is_some() {
            return Err(format!("{}: duplicate key", display_path(&child)));
        }
    }
    Ok(out)
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "top level" } else { path }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(doc: &Document) -> serde_json::Value {
        serde_json::from_str(&doc.spec_json).unwrap()
    }

    #[test]
    fn single_yaml_document() {
        let docs = parse_documents(
            "kind: HTTPServer\nname: server-demo\nport: 10080\nkeepAlive: true\nhttps: false\n\
             rules:\n  - paths:\n    - pathPrefix: /pipeline\n      backend: pipeline-demo\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].kind, "HTTPServer");
        assert_eq!(docs[0].name, "server-demo");
        assert_eq!(docs[0].label, "document 1");
        let v = json(&docs[0]);
        assert_eq!(v["port"], 10080);
        assert_eq!(v["https"], false);
        assert_eq!(v["rules"][0]["paths"][0]["backend"], "pipeline-demo");
        // Key order is the one written.
        assert!(
            docs[0]
                .spec_json
                .starts_with(r#"{"kind":"HTTPServer","name":"server-demo","port""#)
        );
    }

    #[test]
    fn several_documents_and_empty_ones() {
        let input = "\n---\nkind: HTTPServer\nname: a\n---\n# only a comment\n---\n\
                     name: b\nkind: HTTPPipeline\n---\n";
        let docs = parse_documents(input).unwrap();
        let names: Vec<_> = docs
            .iter()
            .map(|d| (d.kind.as_str(), d.name.as_str()))
            .collect();
        assert_eq!(names, [("HTTPServer", "a"), ("HTTPPipeline", "b")]);
    }

    #[test]
    fn error_names_the_document() {
        let input = "kind: HTTPServer\nname: a\n---\nkind: HTTPServer\nport: 1\n";
        let err = parse_documents(input).unwrap_err();
        assert_eq!(err.to_string(), "document 2: missing `name`");

        let err = parse_documents("name: x\n").unwrap_err();
        assert_eq!(err.to_string(), "document 1: missing `kind`");

        let err = parse_documents("kind: 3\nname: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: `kind` must be a string, found a number"
        );

        let err = parse_documents("kind: A\nname: ''\n").unwrap_err();
        assert_eq!(err.to_string(), "document 1: `name` must not be empty");

        let err = parse_documents("kind: A\nname: a\n---\njust a string\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 2: expected a mapping with `kind` and `name`, found a string"
        );
    }

    #[test]
    fn yaml_syntax_error_names_document_and_line() {
        let err = parse_documents("kind: A\nname: a\n---\nkind: [unclosed\n").unwrap_err();
        assert_eq!(err.location, "document 2");
        assert!(err.message.contains("line"), "{err}");
    }

    #[test]
    fn empty_input_is_an_error() {
        for input in ["", "\n\n", "---\n---\n", "# nothing\n"] {
            let err = parse_documents(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                "no object documents in the input",
                "{input:?}"
            );
        }
    }

    #[test]
    fn json_input() {
        let docs =
            parse_documents(r#"{"name": "p", "kind": "Pipeline", "flow": [{"filter": "proxy"}]}"#)
                .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            (docs[0].kind.as_str(), docs[0].name.as_str()),
            ("Pipeline", "p")
        );
        assert_eq!(json(&docs[0])["flow"][0]["filter"], "proxy");

        // Several JSON values one after another, and an array of documents (list -o json).
        let docs = parse_documents(
            "{\"kind\":\"A\",\"name\":\"a\"}\n{\"kind\":\"B\",\"name\":\"b\"}\n\
             [{\"kind\":\"C\",\"name\":\"c\"}]",
        )
        .unwrap();
        let names: Vec<_> = docs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(docs[2].label, "document 3, item 1");

        let err = parse_documents("{\"kind\": \"A\" \"name\": \"a\"}").unwrap_err();
        assert_eq!(err.location, "document 1");
        assert!(err.message.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn yaml_flow_mapping_is_not_mistaken_for_json() {
        let docs = parse_documents("{kind: HTTPServer, name: s, port: 80}\n").unwrap();
        assert_eq!(docs[0].name, "s");
        assert_eq!(json(&docs[0])["port"], 80);
    }

    #[test]
    fn yaml_sequence_of_documents() {
        let docs = parse_documents("- kind: A\n  name: a\n- kind: B\n  name: b\n").unwrap();
        assert_eq!(docs.len(), 2);
        let err = parse_documents("- kind: A\n  name: a\n- kind: B\n").unwrap_err();
        assert_eq!(err.to_string(), "document 1, item 2: missing `name`");
    }

    #[test]
    fn keys_and_values_become_json() {
        let docs = parse_documents(
            "kind: A\nname: a\ncodes:\n  500: retry\n  true: yes\nbase: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",
        )
        .unwrap();
        let v = json(&docs[0]);
        assert_eq!(v["codes"]["500"], "retry");
        assert_eq!(v["codes"]["true"], "yes");
        assert_eq!(v["merged"], serde_json::json!({"x": 1, "y": 2}));

        let err = parse_documents("kind: A\nname: a\nx:\n  y: .nan\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: x.y: .nan cannot be represented in JSON"
        );
        let err = parse_documents("kind: A\nname: a\nx: [!Custom 1]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: x[0]: YAML tag !Custom is not supported"
        );
        let err = parse_documents("kind: A\nname: a\n[1]: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: top level: a key must be a string, found a sequence"
        );
        let err = parse_documents("kind: A\nname: a\nm:\n  1: x\n  '1': y\n").unwrap_err();
        assert_eq!(err.to_string(), "document 1: m.1: duplicate key");
    }

    #[test]
    fn duplicate_yaml_keys_are_rejected() {
        let err = parse_documents("kind: A\nname: a\nname: b\n").unwrap_err();
        assert_eq!(err.location, "document 1");
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let docs = parse_documents("\u{feff}kind: A\nname: a\n").unwrap();
        assert_eq!(docs[0].kind, "A");
    }
}
