//! `mirror`: an echo backend for tests and demos, like Easegress's `test/backend-service/mirror.go`.
//!
//! Every request is answered (200 by default) with a text description of what arrived:
//!
//! ```text
//! Your Request
//! ===============
//! Method: POST
//! URL   : /pipeline
//! Header: map[Accept:[*/*] Content-Length:[31] Content-Type:[application/json] User-Agent:[curl/8.0] X-Adapt-Key:[goodplan]]
//! Body  : {"message": "Hello, Easegress"}
//! ```
//!
//! The header line is printed the way Go prints an `http.Header`: canonical names, sorted, values in
//! brackets. Like Go's server, it leaves out `Host` and `Transfer-Encoding` (Go keeps them apart from
//! the header map) and keeps `Content-Length`. The body has no trailing newline (as in Go). Each
//! response carries `X-Mirror-Server: NAME` (default: the listen address) so a test can see which
//! backend answered.
//!
//! With no arguments it serves the quick start's three backends, 127.0.0.1:9095, :9096 and :9097.
//! At start it prints `mirror listening on ADDR` on standard output for each listener (with the real
//! port when the port was 0); tests read these lines. Unless `--quiet` (or `MIRROR_QUIET=1`), it logs
//! one line per request on standard error; a full stderr pipe drops log lines, it never stalls serving.
//! HTTP/1.1 (keep-alive) and HTTP/2 over cleartext (h2c) are both served.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, TRANSFER_ENCODING,
};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Largest request body read; a larger one gets 413.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Echo backend: answers every request with a description of it.
#[derive(Debug, Parser)]
#[command(name = "mirror", version, about)]
struct Args {
    /// Address to listen on (`host:port`, port 0 for any free port); repeat for several listeners.
    #[arg(
        long = "listen",
        value_name = "ADDR",
        default_values = ["127.0.0.1:9095", "127.0.0.1:9096", "127.0.0.1:9097"]
    )]
    listen: Vec<String>,

    /// Value of the `X-Mirror-Server` response header: once for every listener, or once per `--listen`
    /// in the same order. Default: the listener's address.
    #[arg(long, value_name = "NAME")]
    name: Vec<String>,

    /// Do not log requests on standard error.
    #[arg(long, env = "MIRROR_QUIET")]
    quiet: bool,

    /// Status code of every answer.
    #[arg(long, value_name = "CODE", default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: u16,

    /// Wait this many milliseconds before answering (a slow backend).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay_ms: u64,
}

/// What one listener needs to answer.
struct Listener {
    server_name: HeaderValue,
    status: StatusCode,
    delay: Duration,
    log: Option<SyncSender<String>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if !(args.name.is_empty() || args.name.len() == 1 || args.name.len() == args.listen.len()) {
        bail!(
            "--name is given {} times for {} listeners: give it once, or once per --listen",
            args.name.len(),
            args.listen.len()
        );
    }
    let status = StatusCode::from_u16(args.status).context("invalid --status")?;
    let log = (!args.quiet).then(start_logger);

    // Bind everything first, so a taken port fails the start before anything is announced.
    let mut listeners = Vec::with_capacity(args.listen.len());
    for address in &args.listen {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let local = listener
            .local_addr()
            .with_context(|| format!("cannot listen on {address}"))?;
        listeners.push((listener, local));
    }

    let mut stdout = std::io::stdout().lock();
    for (index, (listener, local)) in listeners.into_iter().enumerate() {
        let name = match args.name.as_slice() {
            [] => local.to_string(),
            [one] => one.clone(),
            many => many[index].clone(),
        };
        let server_name = HeaderValue::from_str(&name)
            .with_context(|| format!("--name {name:?} is not a valid header value"))?;
        writeln!(stdout, "mirror listening on {local}")
            .context("cannot write to standard output")?;
        let context = Arc::new(Listener {
            server_name,
            status,
            delay: Duration::from_millis(args.delay_ms),
            log: log.clone(),
        });
        tokio::spawn(accept_loop(listener, local, context));
    }
    stdout.flush().context("cannot write to standard output")?;
    drop(stdout);

    shutdown_signal().await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, local: SocketAddr, context: Arc<Listener>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log_line(&context, format!("{local}: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            let service = service_fn(|request| handle(request, Arc::clone(&context)));
            // A client that goes away mid-request is not our problem.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    context: Arc<Listener>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_owned();
    let url = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().to_string(), |pq| pq.as_str().to_owned());
    let headers = request.headers().clone();

    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        None
    } else {
        match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(collected) => Some(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => None,
            Err(e) => Some(Bytes::from(format!("<read failed: {e}>"))),
        }
    };
    let Some(body) = body else {
        log_line(&context, format!("{method} {url} 413"));
        let text = format!("request body larger than {MAX_BODY} bytes\n");
        return Ok(respond(
            &context,
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from(text),
        ));
    };

    if !context.delay.is_zero() {
        tokio::time::sleep(context.delay).await;
    }
    log_line(
        &context,
        format!("{method} {url} {} {}B", context.status.as_u16(), body.len()),
    );
    let content = render_request(&method, &url, &headers, &body);
    Ok(respond(&context, context.status, Bytes::from(content)))
}

fn respond(context: &Listener, status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-mirror-server", context.server_name.clone());
    response
}

/// The text `mirror` answers with: method, URL (path and query), headers as Go prints an
/// `http.Header`, and the body as received. No trailing newline.
pub fn render_request(method: &str, url: &str, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "Your Request\n===============\nMethod: {method}\nURL   : {url}\nHeader: {}\nBody  : ",
        go_header_map(headers)
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

/// `map[Name:[v1 v2] Other:[v]]`: canonical names in sorted order, values in arrival order.
fn go_header_map(headers: &HeaderMap) -> String {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == HOST || name == TRANSFER_ENCODING {
            continue;
        }
        map.entry(canonical_header_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let entries: Vec<String> = map
        .iter()
        .map(|(name, values)| format!("{name}:[{}]", values.join(" ")))
        .collect();
    format!("map[{}]", entries.join(" "))
}

/// Go's `CanonicalMIMEHeaderKey`: the first letter and every letter after `-` upper case, the rest lower.
fn canonical_header_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Starts the thread that writes request logs; full queue = dropped lines, never a stalled request.
fn start_logger() -> SyncSender<String> {
    let (sender, receiver) = sync_channel::<String>(4096);
    std::thread::spawn(move || {
        let stderr = std::io::stderr();
        for line in receiver {
            let _ = writeln!(stderr.lock(), "{line}");
        }
    });
    sender
}

fn log_line(context: &Listener, line: String) {
    if let Some(log) = &context.log {
        let server = context.server_name.to_str().unwrap_or("mirror");
        let _ = log.try_send(format!("{server} {line}"));
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn renders_like_the_go_mirror() {
        let h = headers(&[
            ("user-agent", "curl/8.0"),
            ("host", "127.0.0.1:10080"),
            ("accept", "*/*"),
            ("content-type", "application/json"),
            ("content-length", "31"),
            ("x-adapt-key", "goodplan"),
        ]);
        let text = render_request(
            "POST",
            "/pipeline",
            &h,
            br#"{"message": "Hello, Easegress"}"#,
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Your Request\n===============\nMethod: POST\nURL   : /pipeline\n\
             Header: map[Accept:[*/*] Content-Length:[31] Content-Type:[application/json] User-Agent:[curl/8.0] X-Adapt-Key:[goodplan]]\n\
             Body  : {\"message\": \"Hello, Easegress\"}"
        );
    }

    #[test]
    fn repeated_headers_query_and_empty() {
        let h = headers(&[
            ("x-b", "1"),
            ("x-a", "z"),
            ("x-b", "2"),
            ("transfer-encoding", "chunked"),
        ]);
        let text = render_request("GET", "/a/b?x=1&y=2", &h, b"");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Your Request\n===============\nMethod: GET\nURL   : /a/b?x=1&y=2\n\
             Header: map[X-A:[z] X-B:[1 2]]\nBody  : "
        );
        assert_eq!(go_header_map(&HeaderMap::new()), "map[]");
    }

    #[test]
    fn binary_body_is_kept_as_is() {
        let text = render_request("PUT", "/", &HeaderMap::new(), &[0xff, 0x00, b'x']);
        assert!(text.ends_with(&[b' ', 0xff, 0x00, b'x']));
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_header_name("x-adapt-key"), "X-Adapt-Key");
        assert_eq!(
            canonical_header_name("www-authenticate"),
            "Www-Authenticate"
        );
        assert_eq!(canonical_header_name("content-md5"), "Content-Md5");
        assert_eq!(canonical_header_name("x--y"), "X--Y");
        assert_eq!(canonical_header_name("accept"), "Accept");
    }
}
