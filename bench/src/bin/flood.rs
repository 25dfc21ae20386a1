//! A connection flood for the hygiene benchmark: holds `--idle` sockets that send nothing
//! and `--streams` live streams (`GET /api/live/{eid}`, read and discarded) open against a
//! server, spread over `--sources` loopback addresses (127.0.0.2, 127.0.0.3, ...), each
//! reopened as soon as the server closes it, until `--seconds` pass or it is killed. Prints
//! what it holds every few seconds on stderr, and a summary at the end.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wewerewondering_bench::{connect_from, loopback_source, StreamTarget};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    server: StreamTarget,
    #[arg(long, default_value_t = 2_000)]
    idle: usize,
    #[arg(long, default_value_t = 1_000)]
    streams: usize,
    /// How many loopback source addresses to spread the sockets over.
    #[arg(long, default_value_t = 8)]
    sources: u8,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

#[derive(Default)]
struct Counts {
    idle_open: AtomicU64,
    streams_open: AtomicU64,
    reopened: AtomicU64,
    refused: AtomicU64,
    stream_bytes: AtomicU64,
}

/// One socket that sends nothing, reopened whenever the server closes it.
async fn hold_idle(source: IpAddr, target: SocketAddr, counts: Arc<Counts>) {
    loop {
        let Ok(mut stream) = connect_from(source, target).await else {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        counts.idle_open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 512];
        // Returns when the server closes it (after its header deadline, or refusing it).
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        counts.idle_open.fetch_sub(1, Ordering::Relaxed);
        counts.reopened.fetch_add(1, Ordering::Relaxed);
    }
}

/// One live stream, read and discarded, reopened whenever it ends.
async fn hold_stream(source: IpAddr, target: SocketAddr, event: String, counts: Arc<Counts>) {
    loop {
        let Ok(mut stream) = connect_from(source, target).await else {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let request = format!("GET /api/live/{event} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        counts.streams_open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 8192];
        let mut first = true;
        loop {
            match stream.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    if first && !buf[..n].starts_with(b"HTTP/1.1 200") {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    first = false;
                    counts.stream_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                _ => break,
            }
        }
        counts.streams_open.fetch_sub(1, Ordering::Relaxed);
        counts.reopened.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let counts = Arc::new(Counts::default());
    let source = |i: usize| loopback_source(i, args.sources);
    for i in 0..args.idle {
        tokio::spawn(hold_idle(source(i), args.server.target, counts.clone()));
    }
    for i in 0..args.streams {
        tokio::spawn(hold_stream(source(i), args.server.target, args.server.event.clone(), counts.clone()));
    }
    let report = |c: &Counts| {
        format!(
            "idle open {}, streams open {}, reopened {}, refused {}, stream bytes {}",
            c.idle_open.load(Ordering::Relaxed),
            c.streams_open.load(Ordering::Relaxed),
            c.reopened.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.stream_bytes.load(Ordering::Relaxed)
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => eprintln!("flood: {}", report(&counts)),
        }
    }
    eprintln!("flood done: {}", report(&counts));
    Ok(())
}
