//! The storage conformance suite against the DynamoDB adapter on a local moto server, plus
//! what only this adapter can show: the TTL attribute on every item it writes.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::ports::{EventRow, EventStore, LedgerStore};
use ledger::secret::hash_secret;
use ledger::{Asked, EventId, QuestionId, Record, RecordBody, RecordId, VoterId};
use ledger_conformance::{conformance_tests, moto_endpoint, Scale, Stores};
use ledger_dynamodb::{fresh_tables, DynamoStore};
use ulid::Ulid;

async fn store() -> Option<Arc<DynamoStore>> {
    let endpoint = moto_endpoint("MOTO_ENDPOINT_A")?;
    Some(Arc::new(fresh_tables(&endpoint).await.unwrap_or_else(|e| panic!("create tables on moto: {e}"))))
}

/// The conformance checks with vote counts split over counter shards (the default).
mod sharded {
    use super::*;

    async fn fresh() -> Option<((), Stores)> {
        let store = store().await?;
        assert!(store.tables().counter_shards > 1, "the default splits vote counts over counter shards");
        Some(((), Stores::of(store)))
    }

    conformance_tests!(fresh(), Scale::EMULATOR);
}

/// The same checks with every vote counted on the question itself.
mod unsharded {
    use super::*;

    async fn fresh() -> Option<((), Stores)> {
        let store = store().await?;
        let tables = ledger_dynamodb::Tables { counter_shards: 0, ..store.tables().clone() };
        let store = Arc::new(DynamoStore::new(store.client().clone(), tables, store.retention()));
        Some(((), Stores::of(store)))
    }

    conformance_tests!(fresh(), Scale::EMULATOR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_carries_its_expiry() {
    let Some(store) = store().await else { return };
    let event = EventId(Ulid::new());
    // The store's retention is the default, 30 days: the event's second plus 2,592,000 s.
    assert_eq!(store.retention().days(), 30);
    let expire = event.unix_seconds() + 2_592_000;
    store
        .create_event(&EventRow { id: event, secret_hash: hash_secret("s"), expire_unix: expire })
        .await
        .expect("create event");
    let q = QuestionId(Ulid::new());
    let voter = VoterId::random();
    let asked = Record {
        id: RecordId(Ulid::new()),
        event,
        question: q,
        region: "test".into(),
        body: RecordBody::Asked(Asked { text: "Does it expire?".into(), who: None, voter }),
    };
    store.append(std::slice::from_ref(&asked)).await.expect("append");
    aggregator::apply_batch(store.as_ref(), std::slice::from_ref(&asked), None).await.expect("apply");

    let t = store.tables();
    let s = |v: String| AttributeValue::S(v);
    let layout = store.layout_of(event).await.expect("the event's layout");
    let named = |key: ledger_dynamodb::item::Item| key.into_iter().collect::<Vec<(String, AttributeValue)>>();
    let keys = [
        (&t.events, vec![("id".to_owned(), s(event.to_string()))]),
        (
            &t.ledger,
            vec![
                ("pk".to_owned(), s(layout.ledger_partition_of(event, asked.id))),
                ("id".to_owned(), s(asked.id.to_string())),
            ],
        ),
        (&t.questions, vec![("id".to_owned(), s(q.to_string()))]),
        (&t.voters, named(layout.voter_key(q, voter))),
    ];
    for (table, key) in keys {
        let mut get = store.client().get_item().table_name(table.as_str()).consistent_read(true);
        for (name, value) in key {
            get = get.key(name, value);
        }
        let item = get.send().await.expect("get item").item.unwrap_or_else(|| panic!("no item in {table}"));
        assert_eq!(
            item.get(ledger_dynamodb::schema::TTL_ATTRIBUTE),
            Some(&AttributeValue::N(expire.to_string())),
            "item in {table} lacks the right expiry"
        );
    }
    let ttl = store.client().describe_time_to_live().table_name(t.ledger.as_str()).send().await.expect("describe ttl");
    let attribute = ttl.time_to_live_description.and_then(|d| d.attribute_name);
    assert_eq!(attribute.as_deref(), Some(ledger_dynamodb::schema::TTL_ATTRIBUTE), "TTL not enabled on the ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_is_refused() {
    let Some(store) = store().await else { return };
    let result = ledger::ports::ProjectionStore::commit(store.as_ref(), &Default::default(), Some(3)).await;
    assert!(matches!(result, Err(ledger::ports::StoreError::Rejected(_))), "got {result:?}");
    assert_eq!(ledger::ports::ProjectionStore::cursor(store.as_ref()).await, Ok(0));
}

/// The roll-up of a question's counter shards only ever replaces a count computed from an
/// older read of the shards: a count stamped with newer shard versions is left alone, one
/// stamped with older versions is corrected (here by redelivering a batch, as after a crash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_ups_only_move_forward() {
    let Some(store) = store().await else { return };
    let event = EventId(Ulid::new());
    let q = QuestionId(Ulid::new());
    let mut records = vec![Record {
        id: RecordId(Ulid::new()),
        event,
        question: q,
        region: "test".into(),
        body: RecordBody::Asked(Asked { text: "Forward only?".into(), who: None, voter: VoterId::random() }),
    }];
    for _ in 0..5 {
        records.push(Record {
            id: RecordId(Ulid::new()),
            event,
            question: q,
            region: "test".into(),
            body: RecordBody::Voted { voter: VoterId::random(), up: true },
        });
    }
    aggregator::apply_batch(store.as_ref(), &records, None).await.expect("apply");
    let votes = |s: Arc<DynamoStore>| async move {
        ledger::ports::ProjectionReader::question(s.as_ref(), q).await.expect("read").expect("exists").votes
    };
    assert_eq!(votes(store.clone()).await, 6);

    let table = store.tables().questions.clone();
    let item = store
        .client()
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S(q.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("question item");
    let stamps: Vec<(String, u64)> = item
        .iter()
        .filter(|(name, _)| name.starts_with("sv"))
        .map(|(name, v)| (name.clone(), v.as_n().ok().and_then(|n| n.parse().ok()).expect("a version")))
        .collect();
    assert!(!stamps.is_empty(), "the count carries the shard versions it was rolled up from");
    let overwrite = |offset: i64| {
        let mut update = store
            .client()
            .update_item()
            .table_name(&table)
            .key("id", AttributeValue::S(q.to_string()))
            .expression_attribute_values(":wrong", AttributeValue::N("99".into()));
        let mut set = vec!["votes = :wrong".to_owned()];
        for (i, (name, ver)) in stamps.iter().enumerate() {
            let value = (*ver as i64 + offset).max(0);
            update = update
                .expression_attribute_names(format!("#s{i}"), name)
                .expression_attribute_values(format!(":s{i}"), AttributeValue::N(value.to_string()));
            set.push(format!("#s{i} = :s{i}"));
        }
        update.update_expression(format!("SET {}", set.join(", ")))
    };
    // A count from a (pretend) fresher read of the shards: a redelivered batch keeps it.
    overwrite(1_000).send().await.expect("overwrite");
    aggregator::apply_batch(store.as_ref(), &records, None).await.expect("redeliver");
    assert_eq!(votes(store.clone()).await, 99, "a roll-up from an older read overwrote a newer count");
    // A count from an older read: the redelivered batch's roll-up corrects it.
    overwrite(-1_000).send().await.expect("overwrite");
    aggregator::apply_batch(store.as_ref(), &records, None).await.expect("redeliver");
    assert_eq!(votes(store.clone()).await, 6, "a stale count was not rolled forward");
}
