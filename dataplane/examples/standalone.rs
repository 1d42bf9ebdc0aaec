//! Serves a YAML file of HTTPServer/Pipeline documents (separated by `---`) without a master.
//! `cargo run --release -p meshgress-dataplane --example standalone -- FILE [BACKEND_PORT]`; with BACKEND_PORT a
//! tiny backend answering "ok" listens on 127.0.0.1:BACKEND_PORT (handy for load tests).

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshgress_dataplane::{Runtime, body};
use std::{convert::Infallible, time::Duration};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: standalone FILE [BACKEND_PORT]")?;
    if let Some(port) = args.next() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, Infallible>(http::Response::new(body::full("ok")))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
    }
    let text = std::fs::read_to_string(&file)?;
    let objects = text
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(meshgress_spec::parse_object_str)
        .collect::<Result<Vec<_>, _>>()?;
    let rt = Runtime::new();
    rt.apply(objects)?;
    println!("serving {file}; ctrl-c to stop");
    tokio::signal::ctrl_c().await?;
    rt.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
