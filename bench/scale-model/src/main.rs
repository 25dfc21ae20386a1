//! `cargo run --release -p scale-model -- [VOTES_PER_S] [SECONDS] [QUESTIONS]`: runs the
//! scale model for both designs (before: 8 ledger shards, voters and counter shards keyed by
//! the question; after: the defaults) with every vote on one question and with votes spread
//! over QUESTIONS questions (defaults: 10,000 votes/s for 20 s, 100 questions), and prints
//! the hottest partition key of every table and index and what each run did and cost.

use scale_model::{hot_keys_table, run, runs_table, Design, Mix, Scenario};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|_| anyhow::anyhow!("arguments are whole numbers, not {a:?}")))
        .collect::<Result<_, _>>()?;
    let votes_per_s = args.first().copied().unwrap_or(10_000);
    let seconds = args.get(1).copied().unwrap_or(20);
    let questions = args.get(2).copied().unwrap_or(100) as u32;
    let mut runs = Vec::new();
    for mix in [Mix::OneQuestion, Mix::Spread(questions)] {
        for design in [Design::Before, Design::After] {
            let scenario = Scenario::new(design, mix, votes_per_s, seconds);
            let outcome = run(scenario).await?;
            eprintln!("{} / {}: done", design.name(), mix.name());
            runs.push((scenario, outcome));
        }
    }
    println!(
        "{votes_per_s} votes/s for {seconds} s (distinct first-time voters), batches of {} records, {} aggregators.\n",
        runs[0].0.batch_records, runs[0].0.aggregators
    );
    println!("Hottest partition key per table and index, every vote on one question:\n");
    println!("{}", hot_keys_table(&runs[0].1, &runs[1].1));
    println!("Hottest partition key per table and index, votes spread over {questions} questions:\n");
    println!("{}", hot_keys_table(&runs[2].1, &runs[3].1));
    println!("Each run:\n");
    println!("{}", runs_table(&runs));
    Ok(())
}
