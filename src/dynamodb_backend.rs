//! `serve --backend dynamodb`: the three roles in one process over DynamoDB and SQS, for
//! container deployments and for local testing against an emulator. Ingest and query are the
//! same routers the Lambdas host, over the DynamoDB adapter; the aggregator is the queue
//! consumer the Lambda's event source mapping would be, folding with the same handler; with
//! `local_pipe` a stand-in for the EventBridge Pipe forwards the ledger's stream to the queue
//! (without it, a real Pipe must feed the queue).
//!
//! Also the DynamoDB side of the operator tools: `replay` and `ledger export` read the ledger
//! with parallel Queries (one per shard of an event) or a parallel Scan (the whole table),
//! with progress. `ledger import` needs nothing special: `transfer::import` appends through
//! the port, which batches writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_queue::consumer::Consumer;
use aggregator_queue::pipe::Pipe;
use aggregator_queue::{aws_sdk_dynamodbstreams, aws_sdk_sqs};
use anyhow::Context;
use axum::Router;
use indicatif::ProgressBar;
use ledger::ports::ProjectionStore;
use ledger::{EventId, Projection, Record};
use ledger_dynamodb::{sdk_config, DynamoStore, IfMissing, Tables};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::roles::ServiceSettings;

/// Segments of a parallel Scan of the whole ledger.
pub const SCAN_SEGMENTS: i32 = 8;
/// How long `wait_caught_up` waits before giving up.
const CATCH_UP_WAIT_S_MAX: u64 = 60;

#[derive(Debug, Clone)]
pub struct DynamoServeOptions {
    /// Another endpoint for DynamoDB, DynamoDB Streams and SQS (a local emulator).
    pub endpoint_url: Option<String>,
    pub tables: Tables,
    /// The aggregator's queue (created with its dead-letter queue when `create_tables`).
    pub queue_name: String,
    /// Create the tables and the queues when missing.
    pub create_tables: bool,
    /// Run the local stand-in for the EventBridge Pipe (stream → queue).
    pub local_pipe: bool,
    /// Long-poll wait of the queue consumer (SQS allows 0..=20 s).
    pub receive_wait_s: i32,
    /// What the roles are configured with (as for any store). Its retention is stored if
    /// the deployment stores none yet; once one is stored, the stored one is used and a
    /// disagreeing value here only logs a warning.
    pub service: ServiceSettings,
}

impl Default for DynamoServeOptions {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            tables: Tables::from_env(),
            queue_name: aggregator_queue::queue::QUEUE_NAME_DEFAULT.to_owned(),
            create_tables: false,
            local_pipe: false,
            receive_wait_s: 20,
            service: ServiceSettings::default(),
        }
    }
}

impl DynamoServeOptions {
    /// A fresh, isolated set of tables and queues on `endpoint_url` (an emulator), created
    /// on start, with the local pipe: what tests run the service on.
    pub fn isolated(endpoint_url: &str) -> Self {
        let tag = format!("{:016x}", rand_tag());
        Self {
            endpoint_url: Some(endpoint_url.to_owned()),
            tables: Tables::prefixed(&format!("t{tag}-")),
            queue_name: format!("q{tag}"),
            create_tables: true,
            local_pipe: true,
            // Short polls: the test emulator serves one request at a time.
            receive_wait_s: 0,
            ..Self::default()
        }
    }
}

fn rand_tag() -> u64 {
    ledger::VoterId::random().to_u128() as u64
}

/// The running service: routers, the consumer and (optionally) the pipe stand-in.
pub struct DynamoBackend {
    store: Arc<DynamoStore>,
    router: Router,
    hub: query::LiveHub,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    pipe_idle: Option<watch::Receiver<u64>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl DynamoBackend {
    pub async fn start(options: DynamoServeOptions) -> anyhow::Result<Self> {
        let config = sdk_config(options.endpoint_url.as_deref()).await;
        let dynamodb = ledger_dynamodb::aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        if options.create_tables {
            let created = ledger_dynamodb::admin::create_tables(&dynamodb, &options.tables).await?;
            if !created.is_empty() {
                tracing::info!(tables = ?created, "created tables");
            }
        }
        let queue_url = if options.create_tables {
            aggregator_queue::queue::ensure_queue(&sqs, &options.queue_name).await?
        } else {
            sqs.get_queue_url()
                .queue_name(&options.queue_name)
                .send()
                .await
                .with_context(|| format!("find queue {} (--create-tables creates it)", options.queue_name))?
                .queue_url
                .context("queue has no URL")?
        };
        // The deployment's stored retention (stored now from `options.retention` if missing).
        let store = Arc::new(
            DynamoStore::open(dynamodb.clone(), options.tables.clone(), options.service.retention, IfMissing::Store)
                .await?,
        );

        // The consumer folds in this process, so it can tell the query role what changed:
        // lists are fresh the moment a batch commits, and live pushes work as in embedded
        // mode. (Batches folded by other instances show within the lists' freshness bound.)
        let hub = query::LiveHub::new();
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let consumer = Consumer {
            sqs: sqs.clone(),
            queue_url: queue_url.clone(),
            store: store.clone() as Arc<dyn ProjectionStore>,
            wait_s: options.receive_wait_s.clamp(0, 20),
            changes: Some(hub.sender()),
        };
        tasks.spawn(consumer.run(stop_rx.clone()));
        let mut pipe_idle = None;
        if options.local_pipe {
            let arn = ledger_dynamodb::admin::ledger_stream_arn(&dynamodb, &options.tables).await?;
            let (idle_tx, idle_rx) = watch::channel(0);
            let pipe = Pipe::new(
                aws_sdk_dynamodbstreams::Client::new(&config),
                sqs.clone(),
                arn,
                queue_url.clone(),
                options.service.region.clone(),
            )
            .with_idle_signal(idle_tx);
            tasks.spawn(pipe.run(stop_rx));
            pipe_idle = Some(idle_rx);
        }

        let router = crate::roles::router(store.clone(), hub.clone(), &options.service, store.retention(), None);
        Ok(Self { store, router, hub, sqs, queue_url, pipe_idle, stop, tasks })
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Ends every live stream now and refuses new ones (see `Embedded::close_live_streams`).
    pub fn close_live_streams(&self) {
        self.hub.close();
    }

    pub fn store(&self) -> Arc<DynamoStore> {
        self.store.clone()
    }

    /// Waits until every record appended before the call has been folded: the pipe made a
    /// whole pass that found nothing new, and the queue holds no message (a message is
    /// deleted only after its batch committed).
    pub async fn wait_caught_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(CATCH_UP_WAIT_S_MAX);
        if let Some(idle) = &self.pipe_idle {
            let mut idle = idle.clone();
            let start = *idle.borrow();
            tokio::time::timeout_at(deadline.into(), idle.wait_for(|&n| n >= start + 2))
                .await
                .context("the pipe stand-in did not catch up with the stream")?
                .context("the pipe stand-in stopped")?;
        }
        loop {
            if aggregator_queue::queue::depth(&self.sqs, &self.queue_url).await? == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("the aggregator did not drain its queue within {CATCH_UP_WAIT_S_MAX} s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the pipe and the consumer (a batch in hand is finished first).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The DynamoDB store the operator tools (`replay`, `ledger export|import`, `inspect`) use:
/// the default AWS configuration (or `endpoint_url`), table names from `EVENTS_TABLE`,
/// `LEDGER_TABLE`, `QUESTIONS_TABLE`, `VOTERS_TABLE`, and the retention stored in the
/// deployment (`RETENTION_DAYS` only matters where none is stored yet: then it is stored,
/// and without it the command refuses rather than guess a retention).
pub async fn open_store(endpoint_url: Option<&str>) -> anyhow::Result<Arc<DynamoStore>> {
    let if_missing = match ledger_dynamodb::settings::retention_from_env() {
        Ok(Some(_)) => IfMissing::Store,
        Ok(None) => IfMissing::Refuse,
        Err(e) => anyhow::bail!(e),
    };
    Ok(Arc::new(DynamoStore::from_env_if_missing(endpoint_url, if_missing).await.map_err(anyhow::Error::msg)?))
}

/// Reads the ledger (one event's shards in parallel, or the whole table in parallel
/// segments), handing each page to `page` as it arrives. Returns the number of records.
pub async fn read_ledger_parallel(
    store: &DynamoStore,
    event: Option<EventId>,
    bar: &ProgressBar,
    mut page: impl FnMut(Vec<Record>) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let (tx, mut rx) = mpsc::channel::<Vec<Record>>(SCAN_SEGMENTS as usize * 2);
    let mut readers = JoinSet::new();
    match event {
        Some(event) => {
            // Every shard any event's layout may use (ledger_dynamodb::layout).
            for shard in 0..store.ledger_read_shards() {
                let (store, tx) = (store.clone(), tx.clone());
                readers.spawn(async move {
                    let records = store.shard_records(event, shard).await?;
                    // The receiver only goes away on an earlier error, reported there.
                    let _ = tx.send(records).await;
                    Ok::<_, ledger::ports::StoreError>(())
                });
            }
        }
        None => {
            for segment in 0..SCAN_SEGMENTS {
                let (store, tx) = (store.clone(), tx.clone());
                readers.spawn(async move {
                    let (pages_tx, mut pages_rx) = mpsc::unbounded_channel();
                    let scan = store.scan_segment(segment, SCAN_SEGMENTS, move |p| {
                        let _ = pages_tx.send(p);
                    });
                    let forward = async {
                        while let Some(p) = pages_rx.recv().await {
                            let _ = tx.send(p).await;
                        }
                    };
                    let (result, ()) = tokio::join!(scan, forward);
                    result
                });
            }
        }
    }
    drop(tx);
    let mut records = 0u64;
    while let Some(batch) = rx.recv().await {
        records += batch.len() as u64;
        bar.inc(batch.len() as u64);
        page(batch)?;
    }
    while let Some(joined) = readers.join_next().await {
        joined.context("a ledger reader panicked")??;
    }
    Ok(records)
}

/// `replay` over DynamoDB: the parallel read folded with the pure fold and compared through
/// the projection port, as `crate::replay::replay` does. With `repair`, each drifted question
/// is rewritten by [`DynamoStore::repair`]: from a fresh, strongly consistent fold of its
/// event's ledger, every write conditional on the state it read, so it is safe while the
/// aggregator runs (a commit landing meanwhile wins and the question is read again). The
/// port's blind `replace` is not used here: it would overwrite whatever the aggregator
/// committed after this scan.
pub async fn replay(
    store: &DynamoStore,
    event: Option<EventId>,
    repair: bool,
    bar: &ProgressBar,
) -> anyhow::Result<crate::replay::ReplayReport> {
    bar.set_message("folding");
    let started = Instant::now();
    let mut folded = Projection::new();
    let records = read_ledger_parallel(store, event, bar, |page| {
        for record in &page {
            folded.apply(record);
        }
        Ok(())
    })
    .await?;
    let fold_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut report = crate::replay::reconcile(store, event, &folded, records, fold_seconds, false).await?;
    if repair && !report.drift.is_empty() {
        let mut by_event: BTreeMap<EventId, Vec<ledger::QuestionId>> = BTreeMap::new();
        for d in &report.drift {
            if let Some(q) = d.stored.as_ref().or(d.folded.as_ref()) {
                by_event.entry(q.standing.event).or_default().push(d.question);
            }
        }
        for (event, questions) in by_event {
            let repaired = store
                .repair(event, &questions)
                .await
                .with_context(|| format!("repair the questions of event {event}"))?;
            if repaired.rounds > 1 {
                tracing::info!(%event, rounds = repaired.rounds, "the aggregator committed during the repair; those questions were read again");
            }
        }
        report.repaired = true;
    }
    if repair && !report.event_drift.is_empty() {
        let states: Vec<ledger::EventState> = report.event_drift.iter().filter_map(|d| d.folded.clone()).collect();
        store.join_event_states(&states).await.context("repair the events' own states")?;
        report.repaired = true;
    }
    Ok(report)
}

/// `ledger export` over DynamoDB: every record as one NDJSON line, read in parallel.
pub async fn export(
    store: &DynamoStore,
    event: Option<EventId>,
    out: &mut dyn std::io::Write,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    let n = read_ledger_parallel(store, event, bar, |page| {
        for record in &page {
            writeln!(out, "{}", ledger::ndjson::to_line(record)).context("writing the export")?;
        }
        Ok(())
    })
    .await?;
    out.flush().context("writing the export")?;
    bar.finish_and_clear();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn moto() -> Option<String> {
        match std::env::var("MOTO_ENDPOINT_A") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("WWW_SKIP_MOTO").as_deref() == Ok("1") => {
                eprintln!("note: MOTO_ENDPOINT_A is not set and WWW_SKIP_MOTO=1: skipping");
                None
            }
            _ => panic!("MOTO_ENDPOINT_A is not set: run under `.ci/with-moto cargo test ...` or set WWW_SKIP_MOTO=1"),
        }
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        let response = router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, set_cookie, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_service_runs_on_dynamodb_and_sqs_and_replay_agrees() {
        let Some(endpoint) = moto() else { return };
        let backend = DynamoBackend::start(DynamoServeOptions::isolated(&endpoint)).await.expect("start");
        let app = backend.router();
        let (status, _, body) = call(&app, "POST", "/api/event", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let created: serde_json::Value = serde_json::from_str(&body).expect("json");
        let eid = created["id"].as_str().expect("id").to_owned();
        let ask = Request::builder()
            .method("POST")
            .uri(format!("/api/event/{eid}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"body":"Is this really DynamoDB?","asker":"Lin"}"#))
            .expect("request");
        let response = app.clone().oneshot(ask).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let qid =
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")["id"].as_str().expect("qid").to_owned();
        backend.wait_caught_up().await.expect("caught up");
        let (_, cookie, _) = call(&app, "POST", &format!("/api/vote/{qid}/up"), None).await;
        let cookie = cookie.expect("a new voter gets a cookie");
        call(&app, "POST", &format!("/api/vote/{qid}/up"), Some(&cookie)).await;
        backend.wait_caught_up().await.expect("caught up");
        let (status, _, list) = call(&app, "GET", &format!("/api/event/{eid}/questions"), None).await;
        assert_eq!(status, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_str(&list).expect("json");
        assert_eq!(list, serde_json::json!([{"qid": qid, "votes": 2, "hidden": false}]), "asker + one voter, once");

        let event: EventId = eid.parse().expect("event id");
        let report = replay(&backend.store(), Some(event), false, &ProgressBar::hidden()).await.expect("replay");
        assert_eq!((report.records, report.questions), (3, 1));
        assert!(report.drift.is_empty(), "the aggregator and replay disagree: {:?}", report.drift);
        let mut out = Vec::new();
        assert_eq!(export(&backend.store(), Some(event), &mut out, &ProgressBar::hidden()).await.expect("export"), 3);
        assert_eq!(String::from_utf8_lossy(&out).lines().count(), 3);
        let all = replay(&backend.store(), None, false, &ProgressBar::hidden()).await.expect("replay all");
        assert!(all.drift.is_empty() && all.records == 3, "whole-table replay: {all:?}");

        // Drift (the count and voters lost), repaired while guests vote and the aggregator
        // folds their votes: nothing they committed is reverted.
        let mut lost = ProjectionStore::questions(backend.store().as_ref(), Some(event)).await.expect("questions");
        for q in &mut lost {
            q.standing.votes = 0;
        }
        let replacement = ledger::ports::Replacement::new(Some(event), &lost, &[]).expect("one event's questions");
        ProjectionStore::replace(backend.store().as_ref(), &replacement).await.expect("make it drift");
        let voting = async {
            for _ in 0..3 {
                let (status, _, body) = call(&app, "POST", &format!("/api/vote/{qid}/up"), None).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        };
        let (store, bar) = (backend.store(), ProgressBar::hidden());
        let (repaired, ()) = tokio::join!(replay(&store, Some(event), true, &bar), voting);
        let repaired = repaired.expect("repair");
        assert!(repaired.repaired && !repaired.drift.is_empty(), "{repaired:?}");
        backend.wait_caught_up().await.expect("caught up");
        let after = replay(&backend.store(), Some(event), false, &ProgressBar::hidden())
            .await
            .expect("replay after the repair");
        assert!(after.drift.is_empty(), "drift after a repair under load: {:?}", after.drift);
        let (_, _, list) = call(&app, "GET", &format!("/api/event/{eid}/questions"), None).await;
        let list: serde_json::Value = serde_json::from_str(&list).expect("json");
        assert_eq!(list[0]["votes"], 5, "asker, the first guest and three more: {list}");
        backend.shutdown().await;
    }

    /// An event's own state (the host's tools) lost from the projection: `replay` reports
    /// the event's drift and `--repair` joins the fold's state back in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_reports_and_repairs_an_events_lost_settings() {
        let Some(endpoint) = moto() else { return };
        let backend = DynamoBackend::start(DynamoServeOptions::isolated(&endpoint)).await.expect("start");
        let app = backend.router();
        let (_, _, body) = call(&app, "POST", "/api/event", None).await;
        let created: serde_json::Value = serde_json::from_str(&body).expect("json");
        let (eid, secret) = (created["id"].as_str().expect("id"), created["secret"].as_str().expect("secret"));
        let settings = Request::builder()
            .method("POST")
            .uri(format!("/api/event/{eid}/settings/{secret}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"title":"Kept","asking":"closed"}"#))
            .expect("request");
        assert_eq!(app.clone().oneshot(settings).await.expect("infallible").status(), StatusCode::OK);
        let (status, _, _) = call(&app, "POST", &format!("/api/event/{eid}/cohosts/{secret}"), None).await;
        assert_eq!(status, StatusCode::OK);
        backend.wait_caught_up().await.expect("caught up");
        let event: EventId = eid.parse().expect("event id");
        let clean = replay(&backend.store(), Some(event), false, &ProgressBar::hidden()).await.expect("replay");
        assert!(clean.event_drift.is_empty(), "{:?}", clean.event_drift);

        let store = backend.store();
        store
            .client()
            .delete_item()
            .table_name(store.tables().questions.as_str())
            .set_key(Some(ledger_dynamodb::item::question_key(ledger::event_subject(event))))
            .send()
            .await
            .expect("lose the event's state");
        let drifted = replay(&store, Some(event), false, &ProgressBar::hidden()).await.expect("replay");
        assert_eq!(drifted.event_drift.len(), 1, "{drifted:?}");
        assert_eq!(drifted.event_drift[0].stored, None);
        let repaired = replay(&store, Some(event), true, &ProgressBar::hidden()).await.expect("repair");
        assert!(repaired.repaired, "{repaired:?}");
        let after = replay(&store, Some(event), false, &ProgressBar::hidden()).await.expect("replay after");
        assert!(after.event_drift.is_empty(), "{:?}", after.event_drift);
        let (_, _, shown) = call(&app, "GET", &format!("/api/event/{eid}"), None).await;
        let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
        assert_eq!((shown["title"].as_str(), shown["asking"].as_str()), (Some("Kept"), Some("closed")));
        backend.shutdown().await;
    }
}
