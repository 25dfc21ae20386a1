//! `serve`: the running service over either backend, with one shutdown policy. On the
//! signal the listener stops accepting, live streams end at once (their pages reconnect
//! elsewhere or show the outage), open requests get the drain of
//! [`ConnectionLimits`](crate::http_server::ConnectionLimits) to finish, and then the roles
//! stop: the aggregator folds what was committed and the store closes.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;

use crate::dynamodb_backend::{DynamoBackend, DynamoServeOptions};
use crate::embedded::{Embedded, EmbeddedConfig};
use crate::{demo, http_server};

/// The three roles running in this process, over one of the stores.
pub enum Service {
    Embedded(Embedded),
    Dynamodb(DynamoBackend),
}

impl Service {
    pub async fn embedded(config: EmbeddedConfig) -> anyhow::Result<Self> {
        Ok(Service::Embedded(Embedded::start(config).await?))
    }

    pub async fn dynamodb(options: DynamoServeOptions) -> anyhow::Result<Self> {
        Ok(Service::Dynamodb(DynamoBackend::start(options).await?))
    }

    pub fn router(&self) -> Router {
        match self {
            Service::Embedded(app) => app.router(),
            Service::Dynamodb(backend) => backend.router(),
        }
    }

    fn close_live_streams(&self) {
        match self {
            Service::Embedded(app) => app.close_live_streams(),
            Service::Dynamodb(backend) => backend.close_live_streams(),
        }
    }

    /// Resolves, with the reason, if the service can no longer take writes and the process
    /// should exit so that it is restarted (the embedded ledger's writer died). Never, on
    /// DynamoDB: every request there reaches the service on its own.
    async fn failed(&self) -> String {
        match self {
            Service::Embedded(app) => format!("the ledger writer died ({})", app.writer_died().await),
            Service::Dynamodb(_) => std::future::pending().await,
        }
    }

    /// Seeds the demo event into a new embedded database and says where it is.
    async fn seed_demo(&self, addr: SocketAddr) -> anyhow::Result<()> {
        let Service::Embedded(app) = self else {
            println!("demo event:  not seeded (the demo event is seeded in embedded mode only)");
            return Ok(());
        };
        match demo::seed_if_new(app).await? {
            Some(d) => {
                println!("demo event:  guest http://{addr}/event/{}", d.event);
                println!("             host  http://{addr}/event/{}/{}", d.event, d.secret);
            }
            None => println!("demo event:  not seeded (the database is not new; a demo is seeded into a new one only)"),
        }
        Ok(())
    }

    /// Stops the roles: the aggregator finishes what it holds and the store closes.
    async fn shutdown(self) {
        match self {
            Service::Embedded(app) => app.shutdown().await,
            Service::Dynamodb(backend) => backend.shutdown().await,
        }
    }
}

/// Serves `service` on `listen` until `shutdown` completes (then drains and stops, as the
/// module says) or the service fails (then exits with the reason, non-zero, so that a
/// supervisor restarts it; acknowledged writes are already durable).
pub async fn serve(
    listen: SocketAddr,
    service: Service,
    limits: http_server::ConnectionLimits,
    seed_demo: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = http_server::bind(listen).await?;
    let addr = listener.local_addr()?;
    if seed_demo {
        service.seed_demo(addr).await?;
    }
    println!("listening on http://{addr}");
    let server = http_server::serve(listener, service.router(), limits, shutdown, || service.close_live_streams());
    tokio::select! {
        served = server => served.context("server failed")?,
        why = service.failed() => anyhow::bail!("{why}; exiting so that the service is restarted"),
    }
    service.shutdown().await;
    eprintln!("stopped cleanly");
    Ok(())
}
