//! Creating the tables of design §5 when they are missing (`serve --create-tables`, tests
//! against a local emulator). Production tables come from the infrastructure template; this
//! builds the same layout from the same constants in `schema`.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use ledger::ports::StoreError;

use crate::schema::*;
use crate::{invalid_request, store_error, Tables};

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(invalid_request)
}

fn attr(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(invalid_request)
}

/// Creates each of the four tables that does not exist yet (on-demand billing, TTL on
/// `expire`, the ledger's stream with new images, the `top` index), and waits until all are
/// active. Returns the names of the tables it created.
pub async fn create_tables(client: &Client, tables: &Tables) -> Result<Vec<String>, StoreError> {
    use KeyType::{Hash, Range};
    use ScalarAttributeType::{N, S};
    let mut created = Vec::new();
    let specs: [(&str, Vec<KeySchemaElement>, Vec<AttributeDefinition>); 4] = [
        (&tables.events, vec![key(EVENTS_KEY, Hash)?], vec![attr(EVENTS_KEY, S)?]),
        (
            &tables.ledger,
            vec![key(LEDGER_PARTITION_KEY, Hash)?, key(LEDGER_SORT_KEY, Range)?],
            vec![attr(LEDGER_PARTITION_KEY, S)?, attr(LEDGER_SORT_KEY, S)?],
        ),
        (
            &tables.questions,
            vec![key(QUESTIONS_KEY, Hash)?],
            vec![attr(QUESTIONS_KEY, S)?, attr(TOP_PARTITION_KEY, S)?, attr(TOP_SORT_KEY, N)?],
        ),
        (
            &tables.voters,
            vec![key(VOTERS_PARTITION_KEY, Hash)?, key(VOTERS_SORT_KEY, Range)?],
            vec![attr(VOTERS_PARTITION_KEY, S)?, attr(VOTERS_SORT_KEY, S)?],
        ),
    ];
    for (name, keys, attrs) in specs {
        if exists(client, name).await? {
            continue;
        }
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attrs));
        if name == tables.ledger {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(invalid_request)?,
            );
        }
        if name == tables.questions {
            let projection = Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(TOP_PROJECTED.iter().map(|a| a.to_string()).collect()))
                .build();
            let index = GlobalSecondaryIndex::builder()
                .index_name(TOP_INDEX)
                .key_schema(key(TOP_PARTITION_KEY, Hash)?)
                .key_schema(key(TOP_SORT_KEY, Range)?)
                .projection(projection)
                .build()
                .map_err(invalid_request)?;
            request = request.global_secondary_indexes(index);
        }
        match request.send().await {
            Ok(_) => created.push(name.to_owned()),
            // Someone else created it meanwhile: fine.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => continue,
            Err(e) => return Err(store_error("create a table", e)),
        }
        wait_active(client, name).await?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(invalid_request)?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| store_error("enable TTL", e))?;
    }
    Ok(created)
}

async fn exists(client: &Client, name: &str) -> Result<bool, StoreError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(store_error("describe a table", e)),
    }
}

/// How long to wait for a new table to become active.
const TABLE_ACTIVE_WAIT_S_MAX: u64 = 120;

async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::TableStatus;
    for _ in 0..TABLE_ACTIVE_WAIT_S_MAX * 4 {
        let out =
            client.describe_table().table_name(name).send().await.map_err(|e| store_error("describe a table", e))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(StoreError::Unavailable(format!("table {name} did not become active")))
}

/// The ARN of the ledger table's stream (for the local stand-in of the Pipe).
pub async fn ledger_stream_arn(client: &Client, tables: &Tables) -> Result<String, StoreError> {
    let out = client
        .describe_table()
        .table_name(&tables.ledger)
        .send()
        .await
        .map_err(|e| store_error("describe the ledger table", e))?;
    out.table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| StoreError::Rejected(format!("table {} has no stream", tables.ledger)))
}
