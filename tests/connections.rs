//! What one client can hold of a running `serve`, through real sockets: a socket that sends
//! nothing, a slow header and an idle keep-alive connection are closed after the header-read
//! deadline, and connections over the cap are answered 503 with `Retry-After` at once while
//! the server goes on serving the others. Before, each of these held its socket forever.

mod served;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes: then `None`).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), String::from_utf8_lossy(&got).into_owned())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset also means the server closed it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((started.elapsed(), String::from_utf8_lossy(&got).into_owned()))
            }
            Err(_) => return None,
        }
    }
}

fn get(base: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr(base)).expect("connect");
    // A refused connection may be answered (and closed) before the request is written.
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    read_until_closed(&mut s, Duration::from_secs(10)).expect("answered").1
}

#[test]
fn silent_slow_and_idle_sockets_are_closed_after_the_header_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        served::start_with(served::binary(), &dir.path().join("t.db"), None, &["--header-read-timeout", "700ms"]);
    let base = server.base.clone();

    // Sends nothing at all.
    let mut silent = TcpStream::connect(addr(&base)).expect("connect");
    // Sends a header one byte at a time, too slowly to finish within the deadline.
    let mut slow = TcpStream::connect(addr(&base)).expect("connect");
    // Completes a request, then stays idle on the kept-alive connection.
    let mut idle = TcpStream::connect(addr(&base)).expect("connect");
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
    let slow_writer = std::thread::spawn(move || {
        for b in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: yes" {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        slow
    });
    let (took, _) = read_until_closed(&mut silent, Duration::from_secs(5)).expect("the silent socket was closed");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "closed after {took:?}");
    let (took, answered) =
        read_until_closed(&mut idle, Duration::from_secs(5)).expect("the idle keep-alive connection was closed");
    assert!(answered.starts_with("HTTP/1.1 200"), "its request was answered first: {answered}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let mut slow = slow_writer.join().expect("slow writer");
    let (_, answered) = read_until_closed(&mut slow, Duration::from_secs(5)).expect("the slow socket was closed");
    assert!(!answered.contains("200 OK"), "a header that never finished got an answer: {answered}");
    // Meanwhile and afterwards the server answers everyone else.
    assert!(get(&base, "/healthz").starts_with("HTTP/1.1 200"));
}

#[test]
fn connections_over_the_cap_get_503_with_retry_after_and_the_rest_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = served::start_with(
        served::binary(),
        &dir.path().join("t.db"),
        None,
        &["--connections-max", "4", "--header-read-timeout", "2s"],
    );
    let base = server.base.clone();
    // Four sockets hold every slot (sending nothing, until the deadline closes them).
    let mut held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr(&base)).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = get(&base, "/healthz");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("Retry-After: 1"), "{refused}");
    assert!(refused.contains(r#"{"error":"too many connections, try again"}"#), "{refused}");
    // Once a slot is free again, requests are served.
    held.pop();
    std::thread::sleep(Duration::from_millis(200));
    assert!(get(&base, "/healthz").starts_with("HTTP/1.1 200"));
    // The held ones are closed by the deadline, freeing every slot.
    for s in &mut held {
        read_until_closed(s, Duration::from_secs(5)).expect("closed by the deadline");
    }
    for _ in 0..4 {
        assert!(get(&base, "/healthz").starts_with("HTTP/1.1 200"));
    }
}

#[test]
fn sigterm_with_live_streams_open_ends_them_and_exits_promptly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = served::start(served::binary(), &dir.path().join("t.db"), None);
    let base = server.base.clone();
    let created = {
        let mut s = TcpStream::connect(addr(&base)).expect("connect");
        write!(s, "POST /api/event HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("write");
        read_until_closed(&mut s, Duration::from_secs(10)).expect("answered").1
    };
    let eid = created.split(r#""id":""#).nth(1).and_then(|rest| rest.split('"').next()).expect("event id").to_owned();
    let mut streams: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(addr(&base)).expect("connect");
            write!(s, "GET /api/live/{eid} HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
            s
        })
        .collect();
    // Each stream has its first push before the signal.
    for s in &mut streams {
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut first = [0u8; 256];
        let n = s.read(&mut first).expect("the stream's first bytes");
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    }
    let started = Instant::now();
    served::signal(server.child.id(), "-TERM");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let status = runtime.block_on(served::wait_exit(server, Duration::from_secs(8))).expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?} with streams open", started.elapsed());
    for s in &mut streams {
        read_until_closed(s, Duration::from_secs(1)).expect("the stream was ended");
    }
}
