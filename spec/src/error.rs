use std::fmt;

/// Why a document was rejected, with the path of the field at fault (`filters[1].mainPool.servers[0].url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Path of the field at fault; empty for the document as a whole.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl SpecError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error seen from a parent: `prefix` is put in front of the path.
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = join(prefix, &self.path);
        self
    }
}

/// Joins a parent path and a child path (`a` + `b` -> `a.b`, `a` + `[0]` -> `a[0]`).
pub(crate) fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

/// Deserializes `value` into `T`, turning serde's error into a [`SpecError`] that names the field.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        SpecError::new(path, e.into_inner().to_string())
    })
}

/// Compiles a regular expression, naming the field when it is bad.
pub(crate) fn check_regex(path: &str, re: &str) -> Result<(), SpecError> {
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| SpecError::new(path, format!("bad regular expression {re:?}: {e}")))
}
