use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, time::Duration};

/// A duration written as Go writes it (`500ms`, `10s`, `1m30s`, `1.5h`), kept as written so a stored
/// document reads back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// Parses Go's `time.ParseDuration` syntax: decimal numbers with units ns, us, µs, ms, s, m, h; `0` alone is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = parse_go_duration(text)?;
        Ok(Self {
            text: text.to_string(),
            value,
        })
    }

    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }

    /// A duration from a literal known to be valid (for defaults).
    pub(crate) fn from_secs(secs: u64) -> Self {
        Self {
            text: format!("{secs}s"),
            value: Duration::from_secs(secs),
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        GoDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (write it as Go does: 500ms, 10s, 1m30s)");
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total_ns += number * scale;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(
            GoDuration::parse("500ms").unwrap().get(),
            Duration::from_millis(500)
        );
        assert_eq!(
            GoDuration::parse("1m30s").unwrap().get(),
            Duration::from_secs(90)
        );
        assert_eq!(
            GoDuration::parse("1.5h").unwrap().get(),
            Duration::from_secs(5400)
        );
        assert_eq!(GoDuration::parse("0").unwrap().get(), Duration::ZERO);
        assert_eq!(
            GoDuration::parse("10us").unwrap().get(),
            Duration::from_micros(10)
        );
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in ["", "10", "1d", "s", "-1s", "1.2.3s", "ms10"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn keeps_text() {
        let d: GoDuration = serde_json::from_str("\"1m30s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m30s\"");
    }
}
