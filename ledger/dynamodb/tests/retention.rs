//! The deployment's retention on DynamoDB: one stored setting (a reserved item of `events`),
//! stored once by the first process allowed to, then read by every process; and every item
//! the adapter writes stamped with it, checked against literal expiries.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use ledger::ports::StoreError;
use ledger::Retention;
use ledger_conformance::{
    moto_endpoint, write_retention_fixture, Stores, RETENTION_CHECK_DAYS, RETENTION_CHECK_EXPIRE_UNIX,
};
use ledger_dynamodb::schema::{RETENTION_ITEM_KEY, TTL_ATTRIBUTE};
use ledger_dynamodb::settings::{set_retention, stored_retention};
use ledger_dynamodb::{admin, fresh_tables_with, sdk_config, DynamoStore, IfMissing, Tables};

fn days(d: u64) -> Retention {
    Retention::from_days(d).expect("a valid retention")
}

/// Tables with no retention stored yet (as a deployment before its first process started).
async fn bare_tables() -> Option<(Client, Tables)> {
    let endpoint = moto_endpoint("MOTO_ENDPOINT_A")?;
    let client = Client::new(&sdk_config(Some(&endpoint)).await);
    let tables = Tables::prefixed(&format!("r{:016x}-", rand::random::<u64>()));
    admin::create_tables(&client, &tables).await.expect("create tables");
    Some((client, tables))
}

async fn open(
    client: &Client,
    tables: &Tables,
    wanted: Option<u64>,
    if_missing: IfMissing,
) -> Result<Retention, StoreError> {
    DynamoStore::open(client.clone(), tables.clone(), wanted.map(days), if_missing).await.map(|s| s.retention())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_process_stores_the_retention_and_every_later_one_uses_it() {
    let Some((client, tables)) = bare_tables().await else { return };
    assert_eq!(stored_retention(&client, &tables).await, Ok(None));

    // Roles that may not write `events` assume theirs and store nothing; an operator command
    // without RETENTION_DAYS refuses rather than guess.
    assert_eq!(open(&client, &tables, Some(90), IfMissing::Assume).await, Ok(days(90)));
    assert_eq!(open(&client, &tables, None, IfMissing::Assume).await, Ok(days(30)), "the default");
    assert!(
        matches!(open(&client, &tables, None, IfMissing::Refuse).await, Err(StoreError::Rejected(m)) if m.contains("RETENTION_DAYS"))
    );
    assert_eq!(stored_retention(&client, &tables).await, Ok(None), "nothing stored by them");

    // Two processes starting at once with different values: one wins, both use the winner's.
    let (a, b) = tokio::join!(
        open(&client, &tables, Some(90), IfMissing::Store),
        open(&client, &tables, Some(14), IfMissing::Store),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a, b, "two processes use different retentions");
    assert!([days(90), days(14)].contains(&a));
    assert_eq!(stored_retention(&client, &tables).await, Ok(Some(a)));

    // Every later process uses the stored one, whatever it is given or allowed.
    for (wanted, if_missing) in
        [(Some(30), IfMissing::Store), (None, IfMissing::Refuse), (Some(3650), IfMissing::Assume)]
    {
        assert_eq!(open(&client, &tables, wanted, if_missing).await, Ok(a), "given {wanted:?}, {if_missing:?}");
    }

    // The operator's explicit change is what the next process reads.
    set_retention(&client, &tables, days(5)).await.expect("set");
    assert_eq!(open(&client, &tables, Some(30), IfMissing::Store).await, Ok(days(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_retention_out_of_range_is_corrupt() {
    let Some((client, tables)) = bare_tables().await else { return };
    for bad in [AttributeValue::N("0".into()), AttributeValue::N("3651".into()), AttributeValue::S("30".into())] {
        client
            .put_item()
            .table_name(&tables.events)
            .item("id", AttributeValue::S(RETENTION_ITEM_KEY.into()))
            .item("days", bad.clone())
            .send()
            .await
            .expect("put");
        let opened = open(&client, &tables, Some(30), IfMissing::Store).await;
        assert!(matches!(opened, Err(StoreError::Corrupt(_))), "{bad:?} gave {opened:?}");
    }
}

/// The literal check: an event minted at 2030-01-01T00:00:00.123Z on a store whose stored
/// retention is 7 days (the process asked for 30: the stored one wins) has every item, the
/// ledger's, the question's, the voters' and the counter shards', expire at 1,894,060,800.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_expires_at_its_events_time_plus_the_stored_retention() {
    let Some(endpoint) = moto_endpoint("MOTO_ENDPOINT_A") else { return };
    let first = fresh_tables_with(&endpoint, days(RETENTION_CHECK_DAYS)).await.expect("tables");
    let store = Arc::new(
        DynamoStore::open(first.client().clone(), first.tables().clone(), Some(days(30)), IfMissing::Store)
            .await
            .expect("reopen"),
    );
    assert_eq!(store.retention(), days(7));
    let fixture = write_retention_fixture(&Stores::of(store.clone())).await;

    let t = store.tables();
    let s = |v: String| AttributeValue::S(v);
    // Every key where the event's layout puts its items.
    let layout = store.layout_of(fixture.event).await.expect("the event's layout");
    assert_eq!(layout, store.new_event_layout(), "the event was created with this store's layout");
    let named = |key: ledger_dynamodb::item::Item| key.into_iter().collect::<Vec<(String, AttributeValue)>>();
    let mut keys = vec![
        (&t.events, vec![("id".to_owned(), s(fixture.event.to_string()))]),
        (&t.questions, vec![("id".to_owned(), s(fixture.question.to_string()))]),
        // The event's own state (the host's tools) lives in the questions table too.
        (&t.questions, vec![("id".to_owned(), s(fixture.event.to_string()))]),
    ];
    for r in &fixture.records {
        keys.push((
            &t.ledger,
            vec![
                ("pk".to_owned(), s(layout.ledger_partition_of(r.event, r.id))),
                ("id".to_owned(), s(r.id.to_string())),
            ],
        ));
    }
    for v in fixture.voters {
        keys.push((&t.voters, named(layout.voter_key(fixture.question, v))));
    }
    let mut shards = 0;
    for k in 0..t.counter_shards {
        let key = named(layout.counter_shard_key(fixture.question, k));
        let mut get = store.client().get_item().table_name(&t.voters).consistent_read(true);
        for (name, value) in key.clone() {
            get = get.key(name, value);
        }
        if get.send().await.expect("get a shard").item.is_some() {
            keys.push((&t.voters, key));
            shards += 1;
        }
    }
    assert!(shards >= 1, "the votes went to no counter shard");
    for (table, key) in keys {
        let mut get = store.client().get_item().table_name(table.as_str()).consistent_read(true);
        for (name, value) in key.clone() {
            get = get.key(name, value);
        }
        let item = get.send().await.expect("get item").item.unwrap_or_else(|| panic!("no item {key:?} in {table}"));
        assert_eq!(
            item.get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N(RETENTION_CHECK_EXPIRE_UNIX.to_string())),
            "item {key:?} in {table}"
        );
    }
}
