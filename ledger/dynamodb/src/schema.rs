//! The DynamoDB layout of design §5 as named constants: table and index names, key and
//! attribute names, the AWS limits the adapter chunks by, and the IAM actions each role's
//! adapter calls. The infrastructure template is checked against these, so a rename here is
//! a rename there.
//!
//! The `top` index is keyed by `eid` (partition) and `votes` (sort, a number, like the
//! original's index) and projects the moderation attributes and their stamps, so one Query
//! returns an event's whole mutable state. Every question item always carries `votes` (the
//! counter write sets it, even to 0), so no question is missing from the sparse index.

/// Default table names (overridden by the environment variables below).
pub const EVENTS_TABLE: &str = "events";
pub const LEDGER_TABLE: &str = "ledger";
pub const QUESTIONS_TABLE: &str = "questions";
pub const VOTERS_TABLE: &str = "voters";

/// Environment variables naming the tables (the Lambdas and `serve --backend dynamodb`).
pub const EVENTS_TABLE_ENV: &str = "EVENTS_TABLE";
pub const LEDGER_TABLE_ENV: &str = "LEDGER_TABLE";
pub const QUESTIONS_TABLE_ENV: &str = "QUESTIONS_TABLE";
pub const VOTERS_TABLE_ENV: &str = "VOTERS_TABLE";
/// Environment variable with the retention in days a process stores when the deployment
/// stores none yet (default `ledger::Retention::DEFAULT`); once one is stored, the stored one
/// is used and a disagreeing value only logs a warning (see `settings.rs`).
pub const RETENTION_DAYS_ENV: &str = "RETENTION_DAYS";

/// The TTL attribute of every table (Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expire";

/// `events`: key `id` (S).
pub const EVENTS_KEY: &str = "id";
/// The one item of `events` that is not an event: the deployment's retention, in whole days
/// (attribute [`RETENTION_DAYS_ATTRIBUTE`], N), with no TTL. Event ids are ULIDs (26
/// Crockford base32 characters), so a key starting with `#` can never be one; the events
/// table is only ever read by key, so no reader meets this item by accident. As `events` is
/// a global table, the setting is the same in every region.
pub const RETENTION_ITEM_KEY: &str = "#retention";
pub const RETENTION_DAYS_ATTRIBUTE: &str = "days";
/// `ledger`: partition `pk` (S, `"{event}#{shard}"`), sort `id` (S, the record id).
pub const LEDGER_PARTITION_KEY: &str = "pk";
pub const LEDGER_SORT_KEY: &str = "id";
/// How many partitions the records of an event created now spread over (design §5): at
/// 10,000 votes/s on one event each takes about 10,000 / 32 = 313 puts/s, under
/// [`HOT_KEY_WRITES_PER_S_MAX`]. Stored on the event's item ([`EVENT_LEDGER_SHARDS_ATTRIBUTE`]),
/// so a later change of this number never moves an existing event's records. Readers walk
/// shards `0..` this number (at least [`LEDGER_SHARDS_LEGACY`]), so it may grow but never
/// shrink below a count events were created with, or those events' upper shards go unread.
pub const LEDGER_SHARDS_DEFAULT: u32 = 32;
/// The shard count of an event whose item stores none: every event created before the
/// count was stored. Its keys `{event}#0..7` are among those of any count ≥ 8, so reading
/// `0..LEDGER_SHARDS_DEFAULT` reads old and new events alike.
pub const LEDGER_SHARDS_LEGACY: u32 = 8;
/// How many partition keys one question's voter states spread over for an event created
/// now (`voters` partition `"{qid}#v{n}"`, n a hash of the voter id): at 10,000 votes/s on
/// one question about 313 transactional puts/s (626 WCU/s) each.
pub const VOTER_PARTITIONS_DEFAULT: u32 = 32;
/// The voter partitions of an event whose item stores none: 0, every voter state and
/// counter shard of a question under the partition key `qid` (the layout before the count
/// was stored).
pub const VOTER_PARTITIONS_LEGACY: u32 = 0;
/// On an event's item: its ledger shard count and its voter partition count (N each).
pub const EVENT_LEDGER_SHARDS_ATTRIBUTE: &str = "ledger_shards";
pub const EVENT_VOTER_PARTITIONS_ATTRIBUTE: &str = "voter_partitions";
/// The design's bound on writes per second to any one partition key at 10,000 votes/s on
/// one question: half of DynamoDB's 1,000 WCU/s per partition, so a transactional write
/// (2 WCU) still fits.
pub const HOT_KEY_WRITES_PER_S_MAX: u32 = 500;
/// `questions`: key `id` (S).
pub const QUESTIONS_KEY: &str = "id";
/// The index listing an event's questions with their counters.
pub const TOP_INDEX: &str = "top";
/// `top`'s partition key (S, the event id) and sort key (N, the vote count).
pub const TOP_PARTITION_KEY: &str = "eid";
pub const TOP_SORT_KEY: &str = "votes";
/// The non-key attributes `top` projects (INCLUDE).
pub const TOP_PROJECTED: &[&str] = &[
    "answered",
    "answered_at",
    "hidden",
    "hidden_at",
    // The host's tools (design §5): lists show them, so the index carries them.
    "approved",
    "approved_at",
    "spotlight",
    "spotlight_at",
    "reply",
];
/// `voters`: partition `qid` (S: the question id, or `"{qid}#v{n}"` / `"{qid}#c{k}"` in an
/// event with voter partitions, see `layout.rs`), sort `voter` (S).
pub const VOTERS_PARTITION_KEY: &str = "qid";
pub const VOTERS_SORT_KEY: &str = "voter";

/// How many counter shards each question's vote count is split over (0: none, the count is
/// added to the question item in every voter transaction). With K shards each voter
/// transaction adds its delta to one shard item (an `ADD` in the transaction, so concurrent
/// aggregators never conflict on it), and the question's `votes` is rolled up from the
/// shards once per batch: the hot question's item takes one write per batch instead of one
/// per 99 voters. Every aggregator must use the same value; changing it on a live
/// deployment needs `replay --repair`.
pub const COUNTER_SHARDS_DEFAULT: u32 = 8;
/// Prefix of a counter shard's sort key in `voters` (never a voter id: ids are base32), and
/// of its partition key's suffix in an event with voter partitions.
pub const COUNTER_SHARD_PREFIX: &str = "#c";
/// The suffix before a voter partition's number (`"{qid}#v{n}"`).
pub const VOTER_PARTITION_PREFIX: &str = "#v";

/// Most items in one TransactWriteItems (AWS DynamoDB quotas, "Transactions": 100 actions).
pub const TRANSACT_ITEMS_MAX: usize = 100;
/// Most keys in one BatchGetItem (AWS DynamoDB API reference, BatchGetItem: 100 items).
pub const BATCH_GET_KEYS_MAX: usize = 100;
/// Most requests in one BatchWriteItem (AWS DynamoDB API reference, BatchWriteItem: 25).
pub const BATCH_WRITE_ITEMS_MAX: usize = 25;
/// Write capacity one partition sustains (AWS DynamoDB quotas: 1,000 WCU/s per partition).
pub const PARTITION_WCU_PER_S_MAX: u32 = 1_000;

/// Resource names used in the IAM lists below: a default table name, the `top` index as
/// `questions/index/top`, or `queue` for the aggregator's SQS queue.
pub const TOP_INDEX_RESOURCE: &str = "questions/index/top";
pub const QUEUE_RESOURCE: &str = "queue";

/// Exactly the DynamoDB actions the ingest role's adapter calls: events (create, read with
/// the event's layout, and the stored retention: read, stored if missing), the ledger (append: conditional puts
/// only, so no record is ever overwritten), the projection (does a question exist, the
/// event's list).
pub const IAM_INGEST: &[(&str, &str)] = &[
    ("dynamodb:PutItem", EVENTS_TABLE),
    ("dynamodb:GetItem", EVENTS_TABLE),
    ("dynamodb:PutItem", LEDGER_TABLE),
    ("dynamodb:GetItem", QUESTIONS_TABLE),
    ("dynamodb:BatchGetItem", QUESTIONS_TABLE),
    ("dynamodb:Query", TOP_INDEX_RESOURCE),
];

/// Exactly the DynamoDB actions the query role's adapter calls (the `events` read includes
/// the stored retention, read at start, and an event's layout for a guest's own view).
pub const IAM_QUERY: &[(&str, &str)] = &[
    ("dynamodb:GetItem", EVENTS_TABLE),
    ("dynamodb:GetItem", QUESTIONS_TABLE),
    ("dynamodb:BatchGetItem", QUESTIONS_TABLE),
    ("dynamodb:Query", TOP_INDEX_RESOURCE),
    // A guest's own view (`GET /api/event/{eid}/mine`): their states on the event's questions.
    ("dynamodb:BatchGetItem", VOTERS_TABLE),
    // The host's insights (timeline, `?at=`, audit, bursts): an event's ledger partitions.
    ("dynamodb:Query", LEDGER_TABLE),
];

/// Exactly the DynamoDB and SQS actions the aggregator's adapter calls (the Lambda's SQS
/// actions are those the event source mapping needs to receive and delete its batches, and
/// the send of throttled messages back to the queue). It reads the stored retention and each
/// event's layout from `events` and never writes that table; it adds to counter shards
/// (`UpdateItem` on `voters`, in the voter transactions).
pub const IAM_AGGREGATOR: &[(&str, &str)] = &[
    ("dynamodb:GetItem", EVENTS_TABLE),
    ("dynamodb:BatchGetItem", VOTERS_TABLE),
    ("dynamodb:PutItem", VOTERS_TABLE),
    ("dynamodb:UpdateItem", VOTERS_TABLE),
    ("dynamodb:UpdateItem", QUESTIONS_TABLE),
    ("sqs:ReceiveMessage", QUEUE_RESOURCE),
    ("sqs:DeleteMessage", QUEUE_RESOURCE),
    ("sqs:GetQueueAttributes", QUEUE_RESOURCE),
    ("sqs:SendMessage", QUEUE_RESOURCE),
];
