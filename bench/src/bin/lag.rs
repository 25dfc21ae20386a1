//! Vote-to-visible lag: how long after a vote is acknowledged the host's list shows it.
//! Sends votes one at a time (each from a new voter, on the question given), and after each
//! polls the host list until that question's count has grown; prints percentiles in ms.
//! Run it while wrk loads the server to measure the lag under load.

use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// e.g. http://127.0.0.1:3200
    #[arg(long)]
    base: String,
    #[arg(long)]
    event: String,
    #[arg(long)]
    secret: String,
    #[arg(long)]
    question: String,
    #[arg(long, default_value_t = 300)]
    samples: usize,
}

async fn votes_of(http: &reqwest::Client, url: &str, qid: &str) -> anyhow::Result<u64> {
    let list: serde_json::Value = http.get(url).send().await?.error_for_status()?.json().await?;
    list.as_array()
        .and_then(|a| a.iter().find(|q| q["qid"] == qid))
        .and_then(|q| q["votes"].as_u64())
        .ok_or_else(|| anyhow::anyhow!("question {qid} not in the host list"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // No cookie store: every vote is a new voter, so every vote raises the count by one.
    let http = reqwest::Client::builder().pool_max_idle_per_host(2).build()?;
    let list = format!("{}/api/event/{}/questions/{}", args.base, args.event, args.secret);
    let vote = format!("{}/api/vote/{}/up", args.base, args.question);
    let mut lags = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let before = votes_of(&http, &list, &args.question).await?;
        let sent = Instant::now();
        http.post(&vote).send().await?.error_for_status()?;
        loop {
            if votes_of(&http, &list, &args.question).await? > before {
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("a vote was not visible after 10 s");
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        lags.push(sent.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "vote-to-visible lag over {} votes: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lags.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
