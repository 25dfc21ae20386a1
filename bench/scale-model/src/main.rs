//! `cargo run --release -p scale-model -- [VOTES_PER_S] [SECONDS] [BATCH_RECORDS...]`:
//! prints the scale model's table (defaults: 10,000 votes/s for 60 s; aggregator batches of
//! 100, 1,000 (the template's default) and 4,096 records; without and with the adapter's
//! default counter shards).

use scale_model::{ledger_design, original_design, report, Burst};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|_| anyhow::anyhow!("arguments are whole numbers, not {a:?}")))
        .collect::<Result<_, _>>()?;
    let votes_per_s = args.first().copied().unwrap_or(10_000);
    let seconds = args.get(1).copied().unwrap_or(60);
    let batches: Vec<usize> =
        if args.len() > 2 { args[2..].iter().map(|&b| b as usize).collect() } else { vec![100, 1_000, 4_096] };
    let burst = Burst { votes_per_s, seconds, batch_records: batches[0], counter_shards: 0 };
    let mut outcomes = vec![original_design(burst).await?];
    for counter_shards in [0, ledger_dynamodb::schema::COUNTER_SHARDS_DEFAULT] {
        for &batch_records in &batches {
            outcomes.push(ledger_design(Burst { batch_records, counter_shards, ..burst }).await?);
        }
    }
    println!("{}", report(burst, &outcomes));
    for o in &outcomes {
        let (min, max) = (o.hot_item_series.iter().min(), o.hot_item_series.iter().max());
        println!("{}: hottest item writes/s over the burst: min {:?}, max {:?}", o.design, min, max);
    }
    Ok(())
}
