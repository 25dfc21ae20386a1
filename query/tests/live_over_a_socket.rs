//! Live-stream budgets through a real socket: the query router served over TCP with the
//! connection's peer as the client address, and guests connecting from distinct loopback
//! addresses (127.0.0.2, 127.0.0.3, ... are real distinct sources on Linux).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ledger::ports::{EventRow, EventStore, ProjectionReader};
use ledger::secret::hash_secret;
use ledger::EventId;
use ledger_sqlite::{Durability, Options, SqliteStore};
use query::{LiveHub, QueryConfig, QueryState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

struct Server {
    addr: SocketAddr,
    event: EventId,
    _store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

/// Serves the query role on 127.0.0.1 with one event, and streams limited to
/// `per_client` per address.
async fn serve(per_client: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(dir.path().join("live.db"), Options { durability: Durability::Normal, ..Options::default() })
            .unwrap();
    let event = EventId(ulid::Ulid::new());
    store
        .create_event(&EventRow {
            id: event,
            secret_hash: hash_secret("0123456789abcdef0123456789abcdef"),
            expire_unix: u64::MAX / 2,
        })
        .await
        .unwrap();
    let router = query::router(QueryState {
        events: store.clone() as Arc<dyn EventStore>,
        projection: store.clone() as Arc<dyn ProjectionReader>,
        ledger: None,
        config: QueryConfig { live_streams_per_client_max: per_client, ..QueryConfig::default() },
        live: Some(LiveHub::new()),
        metrics: None,
        health: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Server { addr, event, _store: store, _dir: dir }
}

/// Asks for the event's live stream from the source address `from` and reads the response
/// head: the connection (still open on a stream) and the head's text.
async fn live_from(server: &Server, from: &str) -> (TcpStream, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut connection = socket.connect(server.addr).await.unwrap();
    let request = format!("GET /api/live/{} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n", server.event);
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut buffer))
            .await
            .expect("no response head within 5 s")
            .unwrap();
        assert!(read > 0, "the server closed the connection");
        head.extend_from_slice(&buffer[..read]);
    }
    (connection, String::from_utf8_lossy(&head).into_owned())
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn one_address_is_held_to_its_stream_budget_while_another_is_served_and_a_closed_connection_gives_its_place_back()
{
    let server = serve(2).await;
    let (first, head) = live_from(&server, "127.0.0.2").await;
    assert_eq!(status(&head), "200", "{head}");
    let (_second, head) = live_from(&server, "127.0.0.2").await;
    assert_eq!(status(&head), "200", "{head}");

    let (_, head) = live_from(&server, "127.0.0.2").await;
    assert_eq!(status(&head), "429", "{head}");
    let head_lower = head.to_ascii_lowercase();
    assert!(head_lower.contains(&format!("retry-after: {}\r\n", query::STREAM_RETRY_AFTER_S)), "{head}");
    assert!(head_lower.contains("content-type: application/json"), "{head}");

    let (_other, head) = live_from(&server, "127.0.0.3").await;
    assert_eq!(status(&head), "200", "another address is served: {head}");

    // The guest on 127.0.0.2 goes away: the server notices the closed connection and the
    // stream's place is given back, without waiting for a push or a keep-alive to fail.
    drop(first);
    let closed_at = Instant::now();
    loop {
        let (_, head) = live_from(&server, "127.0.0.2").await;
        if status(&head) == "200" {
            break;
        }
        assert!(closed_at.elapsed() < Duration::from_secs(5), "the closed connection's stream still counts after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
