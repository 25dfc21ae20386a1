//! The aggregator's queue and its dead-letter queue, created when missing (`serve
//! --create-tables`, tests). Production queues come from the infrastructure template with
//! the same redrive rule: a message received [`RECEIVES_MAX`] times without success moves to
//! the dead-letter queue, where the operator sees it.

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;

/// Default name of the queue the Pipe feeds (the dead-letter queue adds [`DLQ_SUFFIX`]).
pub const QUEUE_NAME_DEFAULT: &str = "ledger-records";
pub const DLQ_SUFFIX: &str = "-dlq";
/// Environment variable naming the queue URL (consumer in `serve --backend dynamodb`).
pub const QUEUE_URL_ENV: &str = "LEDGER_QUEUE_URL";
/// Receives before a message counts as poison and moves to the dead-letter queue.
pub const RECEIVES_MAX: u32 = 5;
/// How long a received message stays invisible to other consumers (seconds): longer than
/// one batch takes, including its conflict retries.
pub const VISIBILITY_TIMEOUT_S: u32 = 60;

/// Creates the queue and its dead-letter queue if missing; returns the queue's URL.
pub async fn ensure_queue(sqs: &Client, name: &str) -> anyhow::Result<String> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}{DLQ_SUFFIX}"))
        .send()
        .await
        .context("create the dead-letter queue")?
        .queue_url
        .context("no URL for the dead-letter queue")?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": RECEIVES_MAX.to_string() });
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY_TIMEOUT_S.to_string())
        .send()
        .await
        .context("create the queue")?
        .queue_url
        .context("no URL for the queue")?;
    Ok(url)
}

pub async fn queue_arn(sqs: &Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("read a queue's ARN")?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("queue has no ARN")
}

/// Roughly how many messages wait in a queue (visible plus in flight), for tests and operators.
pub async fn depth(sqs: &Client, url: &str) -> anyhow::Result<u64> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .context("read a queue's depth")?
        .attributes
        .unwrap_or_default();
    let count = |name: &QueueAttributeName| attrs.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(count(&QueueAttributeName::ApproximateNumberOfMessages)
        + count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}
