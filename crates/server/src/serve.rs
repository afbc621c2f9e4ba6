//! The HTTP server: the accept loop and what every request goes through. Requests to
//! the gateway's endpoints go straight to [`gateway::handle`]: the hot path pays for no
//! router, extractors or middleware. Everything else (wallet API, dashboard, health)
//! goes to the axum router. Each request gets one access-log line.
//!
//! HTTP/1.1 with keep-alive and HTTP/2 (prior knowledge, or ALPN over TLS) on the same
//! port; `TCP_NODELAY` on every connection, so that streamed events leave as soon as
//! they are written. Optionally TLS (rustls), and optionally a second listener for the
//! wallet API and the dashboard ([`Surface`]).

use crate::gateway::{self, Endpoint};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// The largest request head (request line and headers) a client may send.
const MAX_HEAD_BYTES: usize = 64 << 10;

struct App {
    state: AppState,
    router: axum::Router,
    /// Whether the gateway's endpoints are served here.
    gateway: bool,
}

impl App {
    async fn call(&self, req: Request<Incoming>) -> Response {
        let start = Instant::now();
        let method = req.method().clone();
        if head_size(&req) > MAX_HEAD_BYTES {
            // hyper refuses such a head on a new connection, but on a kept-alive one
            // whose buffer has grown it may read it whole: the limit is checked here too.
            let mut response = Response::new(Body::empty());
            *response.status_mut() = axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            log(&method, req.uri().path(), &response, start);
            return response;
        }
        let endpoint =
            if method == Method::POST && self.gateway { Endpoint::from_path(req.uri().path()) } else { None };
        let (path, response) = match endpoint {
            Some(endpoint) => (endpoint.path().into(), gateway::handle(&self.state, endpoint, req).await),
            None => {
                let path: Box<str> = req.uri().path().into();
                let response = match self.router.clone().call(req.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                (path, response)
            }
        };
        if response.extensions().get::<Logged>().is_none() {
            log(&method, &path, &response, start);
        }
        response
    }
}

/// The size of a request's head, about as it came on the wire.
fn head_size<B>(req: &Request<B>) -> usize {
    let headers: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    req.uri().path_and_query().map_or(0, |p| p.as_str().len()) + headers
}

/// One log line per request: method, path (never the query or headers), status, time.
fn log(method: &Method, path: &str, response: &Response, start: Instant) {
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        us = start.elapsed().as_micros() as u64,
        "request"
    );
}

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Everything: the gateway, the wallet API, the dashboard.
    All,
    /// The gateway: its endpoints, `GET /v1/models` and health (no wallet API or
    /// dashboard), when those have a listener of their own.
    Gateway,
    /// The wallet API, the dashboard and health.
    Management,
}

/// A bound socket, what it serves, and its TLS (none: plain HTTP).
pub struct Listener {
    pub tcp: TcpListener,
    pub surface: Surface,
    pub tls: Option<TlsAcceptor>,
}

/// Marks a response whose request was logged already (the gateway logs its own, with
/// the key, model, tokens and cost).
#[derive(Clone, Copy, Debug)]
pub struct Logged;

/// Marks the requests that came over TLS.
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// Serves everything on one plain-HTTP `listener`: [`serve_on`].
pub async fn serve(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    serve_on(state, vec![Listener { tcp: listener, surface: Surface::All, tls: None }], shutdown).await;
}

/// Serves `state` on `listeners` until `shutdown` completes; then stops accepting, lets
/// the requests in flight finish (streams included) for up to `server.shutdown_grace_ms`,
/// stops the rest (each is settled as cut off) and returns. Each accept loop runs as a
/// task of the runtime, so that a new connection is taken and served on the same worker
/// thread (run in `block_on`, each one would cross threads twice).
pub async fn serve_on(state: AppState, listeners: Vec<Listener>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            tokio::spawn(accept(state.clone(), listener, shutdown))
        })
        .collect();
    shutdown.await;
    let _ = stop.send(true);
    for accept_loop in loops {
        if let Err(e) = accept_loop.await {
            tracing::error!(error = %e, "an accept loop stopped");
        }
    }
}

async fn accept(state: AppState, listener: Listener, shutdown: impl Future<Output = ()>) {
    let policy = state.config.server.clone();
    let Listener { tcp: listener, surface, tls } = listener;
    let app =
        Arc::new(App { router: crate::router(state.clone(), surface), state, gateway: surface != Surface::Management });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that is slow to send its request head (slowloris) is cut off; heads
    // over the size limit get a 431.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(policy.header_timeout).max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    // The connections' tasks, so that those still running at the end of the grace
    // period can be stopped (and their requests settled) before the records are flushed.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => (tcp, peer),
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let (peer, trusted) = (peer.ip(), policy.trusted_proxies.clone());
        let over_tls = tls.is_some();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let client = match trusted.is_empty() {
                true => peer,
                false => {
                    let forwarded = req.headers().get("x-forwarded-for").map(|v| v.as_bytes());
                    crate::guard::client_of(peer, forwarded, &trusted)
                }
            };
            req.extensions_mut().insert(crate::guard::ClientAddr(client));
            if over_tls {
                req.extensions_mut().insert(OverTls);
            }
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.call(req).await) }
        });
        match &tls {
            None => {
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service).into_owned());
                connections.spawn(async move {
                    // A client that goes away mid-request is its own business.
                    let _ = connection.await;
                });
            }
            Some(acceptor) => {
                let (handshake, builder, watcher) = (acceptor.accept(tcp), builder.clone(), graceful.watcher());
                connections.spawn(async move {
                    // The handshake has the head's deadline: a stalled one is cut off.
                    let Ok(Ok(stream)) = tokio::time::timeout(policy.header_timeout, handshake).await else { return };
                    let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await;
                });
            }
        }
    }
    drop(listener);
    // Requests in flight (streams included) may finish within the grace period; those
    // still running then are cut, which settles them as abandoned by the client.
    if tokio::time::timeout(policy.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            grace_ms = policy.shutdown_grace.as_millis() as u64,
            connections = connections.len(),
            "requests still in flight at the end of the shutdown grace period were cut"
        );
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}
