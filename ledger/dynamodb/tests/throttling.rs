//! Throttling and contention on the aggregator's voter transactions, against a scripted
//! DynamoDB (no emulator throttles): a transaction cancelled with `ThrottlingError` or
//! `TransactionConflict` is tried again with backoff and goes through; one throttled for
//! longer than the store's budget fails with the throttling error the queue handler sends
//! back to the queue (never towards the dead-letter queue).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::body::SdkBody;
use ledger::ports::{Commit, ProjectionStore};
use ledger::{BatchPlan, EventId, QuestionId, Record, RecordBody, RecordId, VoterId, VoterStates};
use ledger_dynamodb::{aws_sdk_dynamodb, is_throttled, DynamoStore, Tables};
use serde_json::json;
use ulid::Ulid;

/// A DynamoDB that cancels the first `refusals` transactions with `reason` and accepts the
/// rest; every other request finds nothing and succeeds. Counts the transactions.
fn scripted(reason: &'static str, refusals: u32, transactions: Arc<AtomicU32>) -> aws_sdk_dynamodb::Client {
    let http_client = aws_smithy_http_client::test_util::infallible_client_fn(move |request| {
        let operation = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let (status, body) = if operation.ends_with("TransactWriteItems") {
            if transactions.fetch_add(1, Ordering::SeqCst) < refusals {
                let body = json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "message": "Transaction cancelled",
                    "CancellationReasons": [{ "Code": reason }, { "Code": "None" }],
                });
                (400, body)
            } else {
                (200, json!({}))
            }
        } else if operation.ends_with("BatchGetItem") {
            (200, json!({ "Responses": {}, "UnprocessedKeys": {} }))
        } else {
            (200, json!({}))
        };
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.0")
            .body(SdkBody::from(body.to_string()))
            .unwrap_or_else(|_| http::Response::new(SdkBody::empty()))
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url("http://scripted.invalid")
        .http_client(http_client)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// One new voter's up-vote on a question, as the change the aggregator commits.
fn one_vote() -> ledger::ProjectionChange {
    let record = Record {
        id: RecordId(Ulid::new()),
        event: EventId(Ulid::new()),
        question: QuestionId(Ulid::new()),
        region: "test".into(),
        body: RecordBody::Voted { voter: VoterId::random(), up: true },
    };
    BatchPlan::from_records(std::slice::from_ref(&record)).resolve(&VoterStates::default())
}

fn store(reason: &'static str, refusals: u32, transactions: Arc<AtomicU32>) -> DynamoStore {
    DynamoStore::new(scripted(reason, refusals, transactions), Tables::default(), ledger::Retention::DEFAULT)
}

#[tokio::test]
async fn a_throttled_transaction_is_tried_again_until_it_goes_through() {
    let transactions = Arc::new(AtomicU32::new(0));
    let store = store("ThrottlingError", 3, transactions.clone());
    let committed = store.commit(&one_vote(), None).await.expect("committed after the throttling passed");
    assert_eq!(committed, Commit::Applied);
    assert_eq!(transactions.load(Ordering::SeqCst), 4, "three throttled tries, then the one that went through");
    assert_eq!(store.transactions_with_failed_conditions(), 0);
}

#[tokio::test]
async fn a_transaction_meeting_another_in_flight_is_tried_again_as_it_is() {
    let transactions = Arc::new(AtomicU32::new(0));
    let store = store("TransactionConflict", 2, transactions.clone());
    assert_eq!(store.commit(&one_vote(), None).await, Ok(Commit::Applied), "no re-plan for contention");
    assert_eq!(transactions.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn throttling_past_the_budget_is_a_throttling_error() {
    let transactions = Arc::new(AtomicU32::new(0));
    let store =
        store("ThrottlingError", u32::MAX, transactions.clone()).with_throttle_budget(Duration::from_millis(200));
    let error = store.commit(&one_vote(), None).await.expect_err("throttled for longer than the budget");
    assert!(is_throttled(&error), "not recognisable as throttling: {error:?}");
    assert!(transactions.load(Ordering::SeqCst) > 2, "tried again with backoff before giving up");
}
