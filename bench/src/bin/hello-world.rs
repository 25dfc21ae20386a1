//! The baseline every HTTP figure is divided by: axum with one GET route and one POST route
//! returning small JSON, on the same runtime settings as `serve`, so the ratio measures what
//! our service adds over the framework on this machine.

use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = Router::new()
        .route("/", get(|| async { Json(serde_json::json!({ "hello": "world" })) }))
        .route("/vote", post(|| async { Json(serde_json::json!({ "votes": 1 })) }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
