//! The aggregator Lambda's handler, invoked in-process with the JSON AWS sends: an SQS event
//! whose bodies are ledger stream records as the EventBridge Pipe delivers them. Then the
//! local Pipe stand-in and the queue consumer end to end, on moto.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_sqs::Client as SqsClient;
use ledger::ports::{LedgerStore, ProjectionReader, ProjectionStore};
use ledger::{EventId, QuestionId, RecordBody, RecordId};
use ledger_conformance::{assert_projection_is_fold, delivery, history, moto_endpoint, Scale, Stores};
use ledger_dynamodb::stream::record_from_stream_json;
use ledger_dynamodb::{fresh_tables, sdk_config, DynamoStore};
use rand::SeedableRng;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

async fn store() -> Option<Arc<DynamoStore>> {
    let endpoint = moto_endpoint("MOTO_ENDPOINT_A")?;
    Some(Arc::new(fresh_tables(&endpoint).await.unwrap_or_else(|e| panic!("create tables on moto: {e}"))))
}

#[test]
fn the_pipe_message_fixture_is_a_ledger_record() {
    let record = record_from_stream_json(&fixture("pipe-stream-record.json"))
        .expect("fixture parses")
        .expect("an INSERT carries a record");
    assert!(matches!(record.body, RecordBody::Voted { up: true, .. }), "got {record:?}");
    assert_eq!(record.region, "eu-north-1");
    let event: SqsEvent = serde_json::from_str(&fixture("sqs-event.json")).expect("SQS event fixture parses");
    assert_eq!(event.records.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone_and_redelivery_changes_nothing() {
    let Some(store) = store().await else { return };
    let event: SqsEvent = serde_json::from_str(&fixture("sqs-event.json")).expect("SQS event fixture parses");
    let expected: Value = serde_json::from_str(&fixture("sqs-event.expected.json")).expect("expectations parse");
    let text = |k: &str| expected[k].as_str().unwrap_or_else(|| panic!("expected.{k}")).to_owned();

    let response = aggregator_queue::handle(store.as_ref(), None, event.clone()).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![text("poison_message_id").as_str()], "only the poison message is reported");

    let question: QuestionId = text("question").parse().expect("question id");
    let event_id: EventId = text("event").parse().expect("event id");
    let counters = store.question(question).await.expect("read").expect("question exists");
    assert_eq!(counters.votes, expected["votes"].as_u64().expect("votes"), "the rest of the batch is applied");
    assert_eq!(counters.answered_at(), Some(text("answered_at").parse::<RecordId>().expect("record id")));
    let texts = store.question_texts(&[question]).await.expect("texts");
    assert_eq!((texts[0].text.clone(), texts[0].who.clone()), (text("text"), Some(text("who"))));

    let before = store.questions(Some(event_id)).await.expect("read projection");
    let again = aggregator_queue::handle(store.as_ref(), None, event).await;
    assert_eq!(again.batch_item_failures.len(), 1, "the poison message fails again, alone");
    assert_eq!(store.questions(Some(event_id)).await.expect("re-read"), before, "redelivery changed the projection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_stand_in_and_the_consumer_fold_the_ledger() {
    let Some(store) = store().await else { return };
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else {
        return;
    };
    let config = sdk_config(Some(&endpoint)).await;
    let sqs = SqsClient::new(&config);
    let queue_name = format!("q{:016x}", rand::random::<u64>());
    let queue_url = aggregator_queue::queue::ensure_queue(&sqs, &queue_name).await.expect("create queue");
    let arn = ledger_dynamodb::admin::ledger_stream_arn(store.client(), store.tables()).await.expect("stream arn");
    let mut pipe = aggregator_queue::pipe::Pipe::new(
        StreamsClient::new(&config),
        sqs.clone(),
        arn,
        queue_url.clone(),
        "us-east-1".to_owned(),
    );
    let consumer = aggregator_queue::consumer::Consumer {
        sqs: sqs.clone(),
        queue_url: queue_url.clone(),
        store: store.clone(),
        wait_s: 0,
        changes: None,
    };

    let rng = &mut rand::rngs::StdRng::seed_from_u64(5);
    let event = EventId(ulid::Ulid::new());
    let records = history(rng, event, Scale { records: 30, ..Scale::EMULATOR });
    // Appended in several calls and some twice, as retried requests would.
    for batch in delivery(rng, &records, 8) {
        store.append(&batch).await.expect("append");
    }
    let mut forwarded = 0;
    for _ in 0..20 {
        let n = pipe.pump().await.expect("pump");
        forwarded += n;
        if n == 0 && forwarded >= records.len() {
            break;
        }
    }
    assert!(forwarded >= records.len(), "the pipe forwarded {forwarded} of {} records", records.len());
    let mut handled = 0;
    for _ in 0..40 {
        let outcome = consumer.round().await.expect("consume");
        assert!(outcome.response_failures.is_empty(), "no failures expected: {outcome:?}");
        handled += outcome.records;
        if outcome.records == 0 && handled >= forwarded {
            break;
        }
    }
    assert_eq!(handled, forwarded, "every forwarded record is folded once per message");
    let stores = Stores::of(store.clone());
    assert_projection_is_fold(&stores, event, &records, "pipe stand-in + consumer").await;
    assert_eq!(
        aggregator_queue::queue::depth(&sqs, &queue_url).await.expect("depth"),
        0,
        "handled messages are deleted"
    );
}
