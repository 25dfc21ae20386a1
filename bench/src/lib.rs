//! What the load generators (`flood`, `fanout`) share: where they aim, and connections from
//! distinct loopback source addresses (127.0.0.2, 127.0.0.3, ...: distinct clients to the
//! server's per-address budgets).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

pub mod measure;

/// The server and the event a load generator's streams follow.
#[derive(clap::Args)]
pub struct StreamTarget {
    /// The server, e.g. 127.0.0.1:3200
    #[arg(long)]
    pub target: SocketAddr,
    /// The event whose live stream the streams follow (and, for `fanout`, the votes go to).
    #[arg(long)]
    pub event: String,
}

/// The `i`-th of `sources` loopback source addresses, round robin from 127.0.0.2.
pub fn loopback_source(i: usize, sources: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(sources.max(1))) as u8))
}

/// A connection to `target` from the address `source`.
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}
