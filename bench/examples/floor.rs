//! The floor: a reverse proxy with hyper and hyper-util and nothing else (no key, no
//! check, no metering, no record, no log), the same libraries and runtime as spendgate.
//! `bench/run.py --only floor` measures it next to nginx and spendgate, to tell what
//! spendgate's own work costs from what the HTTP stack it is built on costs.
//!
//! `cargo run --release -p spendgate-bench --example floor -- LISTEN UPSTREAM_BASE`
//! forwards `POST /v1/...` to `UPSTREAM_BASE/v1/...` and passes the answer back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn forward(
    client: Arc<HttpClient>,
    base: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let uri = format!("{base}{}", req.uri().path()).parse::<hyper::Uri>().expect("a valid URI");
    let body = req.into_body().collect().await?.to_bytes();
    let upstream =
        Request::post(uri).header("content-type", "application/json").body(Full::new(body)).expect("a request");
    let answer = client.request(upstream).await.expect("the upstream answers");
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut out = Response::new(Full::new(body));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get("content-type") {
        out.headers_mut().insert("content-type", ct.clone());
    }
    Ok(out)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().expect("LISTEN address");
    let base: Arc<str> = args.next().expect("UPSTREAM_BASE").trim_end_matches('/').into();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Arc::new(Client::builder(TokioExecutor::new()).build(http));
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("the address is free");
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| forward(client.clone(), base.clone(), req));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        })
        .await
        .expect("the accept loop runs");
    });
}
