//! The HTTP edge of `serve`: accepting connections and bounding what one client can hold.
//!
//! `axum::serve` reads request headers without a deadline and accepts connections until the
//! process runs out of file descriptors, after which every later request hangs. Here each
//! connection is served by hyper's HTTP/1 server with a header-read deadline (which also
//! closes a keep-alive connection left idle between requests, and a socket that never sends
//! a byte), and the number of open connections is capped below the process's file limit.
//! A connection over the cap is answered at once with `503` and `Retry-After` and closed,
//! rather than left waiting in the accept queue. Every request carries the client's address
//! ([`ClientAddr`]) for the rate limits and stream budgets.
//!
//! Plain-text HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a proxy in front
//! terminates.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::Router;
use http_edge::ClientAddr;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client may take to send a request's headers, counted from the connection's
/// start or from the end of the previous response: a slow or idle socket is closed after it.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Most connections open at once unless the file limit is lower.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// File descriptors kept for everything else (the SQLite file and its readers, the WAL,
/// logs, the connections being refused).
const FDS_RESERVED: u64 = 256;
/// Most over-the-cap connections being answered 503 at once; past it they are just closed.
const SHEDDING_MAX: usize = 64;
/// How long a refused connection's request is waited for before the 503 goes out.
const SHED_READ_WAIT_MS: u64 = 100;
/// How long answering an over-the-cap connection may take.
const SHED_WRITE_TIMEOUT_MS: u64 = 1_000;
/// The `Retry-After` of a shed connection, in seconds.
const SHED_RETRY_AFTER_S: u64 = 1;
/// Pause after an accept error (e.g. out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE_MS: u64 = 50;

/// What bounds the connections of one `serve`.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// Most connections served at once; more are answered 503 and closed.
    pub connections_max: usize,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_forwarded_for: bool,
    /// How long in-flight requests get to finish after the shutdown signal.
    pub drain: Duration,
}

impl ConnectionLimits {
    /// Limits for this process: raises its soft file limit to the hard one and caps the
    /// connections at `wanted`, or below the file limit if that is lower.
    pub fn for_this_process(wanted: usize, trust_forwarded_for: bool, drain: Duration) -> Self {
        let files = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the file limit; assuming 1024");
                1_024
            }
        };
        let fit = usize::try_from(files.saturating_sub(FDS_RESERVED)).unwrap_or(usize::MAX).max(1);
        let connections_max = wanted.min(fit);
        if connections_max < wanted {
            tracing::warn!(files, connections_max, "the file limit caps the open connections");
        }
        Self {
            header_read_timeout: Duration::from_millis(HEADER_READ_TIMEOUT_MS),
            connections_max,
            trust_forwarded_for,
            drain,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, calls
/// `on_shutdown` (to end long-lived streams) and waits up to `limits.drain` for the open
/// connections to finish before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    on_shutdown: impl FnOnce(),
) -> anyhow::Result<()> {
    let open = Arc::new(Semaphore::new(limits.connections_max));
    let shedding = Arc::new(Semaphore::new(SHEDDING_MAX));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true).writev(false);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::warn!(error = %e, "accept failed");
                    metrics::counter!("http_accept_errors_total").increment(1);
                    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_shed_total").increment(1);
            if let Ok(shed) = shedding.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(shed);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let trust = limits.trust_forwarded_for;
        let service = router.clone().map_request(move |mut request: axum::extract::Request<Incoming>| {
            let client = ClientAddr::of(peer, request.headers(), trust);
            request.extensions_mut().insert(client);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            metrics::gauge!("http_connections_open").increment(1.0);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            metrics::gauge!("http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    on_shutdown();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.drain) => {
            tracing::warn!(drain_s = limits.drain.as_secs(), "connections still open after the drain; closing them");
        }
    }
    Ok(())
}

/// Answers a connection over the cap with a 503 that says when to come back, and closes it.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":"too many connections, try again"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {SHED_RETRY_AFTER_S}\r\nContent-Type: application/json\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        // Take in what the client sent first (briefly): closing a socket with unread data
        // resets it, and the client would then lose the answer.
        let mut request = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(SHED_READ_WAIT_MS), stream.read(&mut request)).await;
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_millis(SHED_WRITE_TIMEOUT_MS), answer).await;
}

/// Binds `listen`, with the reason in the error when it cannot.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))
}
