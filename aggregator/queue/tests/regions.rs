//! Two regions, as design §6 draws them: each moto server is one region with its own ledger,
//! stream, Pipe (the local stand-in), queue, aggregator and projection. Both ingest records
//! for the same event (some voters in both); then each region's records are copied into the
//! other's ledger in random order and with duplicates, as global-table replication delivers
//! them, and arrive on that region's stream like local ones. Both projections must end
//! identical, and equal to the replay (pure fold) of the union of the ledgers.

use std::collections::BTreeSet;
use std::sync::Arc;

use aggregator_queue::consumer::Consumer;
use aggregator_queue::pipe::Pipe;
use ledger::ports::{LedgerStore, ProjectionStore};
use ledger::{EventId, Projection, Record};
use ledger_conformance::{assert_projection_is_fold, delivery, history, moto_endpoint, Scale, Stores};
use ledger_dynamodb::{fresh_tables, sdk_config, DynamoStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Region {
    name: &'static str,
    store: Arc<DynamoStore>,
    pipe: Pipe,
    consumer: Consumer,
}

impl Region {
    async fn start(name: &'static str, endpoint: &str) -> Region {
        let store = Arc::new(fresh_tables(endpoint).await.unwrap_or_else(|e| panic!("{name}: tables: {e}")));
        let config = sdk_config(Some(endpoint)).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_url = aggregator_queue::queue::ensure_queue(&sqs, &format!("q{:016x}", rand::random::<u64>()))
            .await
            .expect("queue");
        let arn = ledger_dynamodb::admin::ledger_stream_arn(store.client(), store.tables()).await.expect("stream");
        let pipe =
            Pipe::new(aws_sdk_dynamodbstreams::Client::new(&config), sqs.clone(), arn, queue_url.clone(), name.into());
        let consumer = Consumer { sqs, queue_url, store: store.clone(), wait_s: 0, changes: None };
        Region { name, store, pipe, consumer }
    }

    /// Forwards and folds until the stream and the queue are both empty.
    async fn drain(&mut self) {
        let mut quiet = 0;
        for _ in 0..200 {
            let forwarded = self.pipe.pump().await.expect("pump");
            let outcome = self.consumer.round().await.expect("consume");
            assert!(outcome.response_failures.is_empty(), "{}: failures {outcome:?}", self.name);
            quiet = if forwarded == 0 && outcome.records == 0 { quiet + 1 } else { 0 };
            if quiet >= 2 {
                return;
            }
        }
        panic!("{}: the pipeline did not drain", self.name);
    }

    async fn ledger(&self, event: EventId) -> Vec<Record> {
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.scan(Some(event), after, 1_000).await.expect("scan");
            records.extend(page.records);
            match page.next {
                Some(next) => after = Some(next),
                None => return records,
            }
        }
    }
}

/// Copies `records` into `to`'s ledger in random order, in random chunks, with duplicates.
async fn replicate(rng: &mut StdRng, records: &[Record], to: &Region) {
    for chunk in delivery(rng, records, 7) {
        to.store.append(&chunk).await.expect("replicate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_converge_to_the_replay_of_the_union() {
    let Some(a) = moto_endpoint("MOTO_ENDPOINT_A") else {
        return;
    };
    let Some(b) = moto_endpoint("MOTO_ENDPOINT_B") else {
        return;
    };
    let seed = ledger_conformance::seed();
    let rng = &mut StdRng::seed_from_u64(seed);
    let context = format!("two regions (CONFORMANCE_SEED={seed})");
    let mut east = Region::start("us-east-1", &a).await;
    let mut west = Region::start("eu-west-1", &b).await;

    // One event's history, each record ingested in one region or the other: the same voters
    // vote in both (a guest whose requests fail over between regions).
    let event = EventId(ulid::Ulid::new());
    let (mut in_east, mut in_west) = (Vec::new(), Vec::new());
    for mut record in history(rng, event, Scale { records: 40, ..Scale::EMULATOR }) {
        if rng.gen_bool(0.5) {
            record.region = east.name.into();
            in_east.push(record);
        } else {
            record.region = west.name.into();
            in_west.push(record);
        }
    }
    for chunk in delivery(rng, &in_east, 5) {
        east.store.append(&chunk).await.expect("ingest east");
    }
    for chunk in delivery(rng, &in_west, 5) {
        west.store.append(&chunk).await.expect("ingest west");
    }
    // Each region folds its own records first, then the replicas arrive.
    east.drain().await;
    west.drain().await;
    replicate(rng, &in_east, &west).await;
    replicate(rng, &in_west, &east).await;
    east.drain().await;
    west.drain().await;

    let east_ledger: BTreeSet<_> = east.ledger(event).await.into_iter().map(|r| r.id).collect();
    let west_ledger = west.ledger(event).await;
    assert_eq!(west_ledger.len(), in_east.len() + in_west.len(), "{context}: a replica lost or doubled records");
    assert_eq!(east_ledger, west_ledger.iter().map(|r| r.id).collect(), "{context}: the ledgers differ");

    let mut east_projection = east.store.questions(Some(event)).await.expect("east projection");
    let mut west_projection = west.store.questions(Some(event)).await.expect("west projection");
    east_projection.sort_by_key(|q| q.standing.id);
    west_projection.sort_by_key(|q| q.standing.id);
    assert_eq!(east_projection, west_projection, "{context}: the regions' projections differ");

    let mut replay = Projection::new();
    for record in &west_ledger {
        replay.apply(record);
    }
    assert_eq!(east_projection, replay.sorted(), "{context}: the projections differ from the replay of the union");
    assert_projection_is_fold(&Stores::of(east.store.clone()), event, &west_ledger, &context).await;
    assert_projection_is_fold(&Stores::of(west.store.clone()), event, &west_ledger, &context).await;
}
