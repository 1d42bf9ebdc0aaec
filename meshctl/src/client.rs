//! Connection to the master's admin gRPC service, and error wording.

use std::error::Error as StdError;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use meshgress_proto::admin::admin_client::AdminClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Turns a `--server` entry (`host:port` or `http://host:port`) into an endpoint URI.
pub fn endpoint_uri(address: &str) -> Result<String> {
    let address = address.trim().trim_end_matches('/');
    if address.is_empty() {
        bail!("empty --server address");
    }
    let uri = if let Some(rest) = address.strip_prefix("http://") {
        format!("http://{rest}")
    } else if address.starts_with("https://") {
        bail!("invalid --server address {address}: TLS is not supported, use http://host:port");
    } else if address.contains("://") {
        bail!("invalid --server address {address}: expected host:port or http://host:port");
    } else {
        format!("http://{address}")
    };
    // host:port is required: a bare host would silently mean port 80.
    let authority = &uri["http://".len()..];
    if authority.contains('/') || !has_port(authority) {
        bail!("invalid --server address {address}: expected host:port or http://host:port");
    }
    Ok(uri)
}

fn has_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Connects to the first reachable master of the comma-separated `servers` list.
pub async fn connect(servers: &str, timeout: Duration) -> Result<AdminClient<Channel>> {
    let addresses: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if addresses.is_empty() {
        bail!("empty --server address");
    }
    let mut failures = Vec::new();
    for address in &addresses {
        let uri = endpoint_uri(address)?;
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| anyhow!("invalid --server address {address}: {}", error_chain(&e)))?
            .connect_timeout(timeout)
            .timeout(timeout);
        match endpoint.connect().await {
            Ok(channel) => return Ok(AdminClient::new(channel)),
            Err(e) => failures.push(format!(
                "cannot reach master at {address}: {}",
                error_chain(&e)
            )),
        }
    }
    Err(anyhow!(failures.join("; ")))
}

/// An error for a failed RPC: the server's message and the gRPC code name.
pub fn status_error(status: Status) -> anyhow::Error {
    let message = status.message().trim();
    let message = if message.is_empty() {
        status.code().description()
    } else {
        message
    };
    anyhow!("{message} ({})", code_name(status.code()))
}

/// The canonical gRPC name of a status code, e.g. `ALREADY_EXISTS`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its sources joined with `: `, skipping a source whose text repeats its parent's.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_uris() {
        assert_eq!(
            endpoint_uri("127.0.0.1:2381").unwrap(),
            "http://127.0.0.1:2381"
        );
        assert_eq!(
            endpoint_uri("http://localhost:2381/").unwrap(),
            "http://localhost:2381"
        );
        assert_eq!(endpoint_uri(" [::1]:2381 ").unwrap(), "http://[::1]:2381");
        for bad in [
            "",
            "localhost",
            "https://h:1",
            "grpc://h:1",
            "h:port",
            ":2381",
            "h:1/x",
        ] {
            assert!(endpoint_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_errors_carry_message_and_code() {
        let e = status_error(Status::already_exists("object server-demo already exists"));
        assert_eq!(
            e.to_string(),
            "object server-demo already exists (ALREADY_EXISTS)"
        );
        let e = status_error(Status::new(Code::NotFound, ""));
        assert_eq!(
            e.to_string(),
            "Some requested entity was not found (NOT_FOUND)"
        );
    }

    #[tokio::test]
    async fn unreachable_master_is_reported() {
        // Port 1 on loopback is closed on any sane machine.
        let Err(e) = connect("127.0.0.1:1", Duration::from_secs(5)).await else {
            panic!("connected to port 1");
        };
        let text = e.to_string();
        assert!(
            text.starts_with("cannot reach master at 127.0.0.1:1: "),
            "{text}"
        );
    }
}
