//! The pure fold's speed: records per second folded in memory (target >= 10 M/s), over a
//! realistic mix: one event, 1,000 questions, 100,000 voters, mostly votes, some retractions.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ledger::{Asked, EventId, Projection, QuestionId, Record, RecordBody, RecordId, VoterId};
use ulid::Ulid;

fn records(n: usize) -> Vec<Record> {
    let event = EventId(Ulid::from_parts(1_700_000_000_000, 1));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let r = next();
            let question = QuestionId(Ulid::from_parts(1_700_000_000_000, (r % 1_000) as u128));
            let voter = VoterId(Ulid((r >> 10) as u128 % 100_000));
            let body = match i % 1_000 {
                0 => RecordBody::Asked(Asked { text: "a question of some length?".into(), who: None, voter }),
                1 => RecordBody::Answered { on: true },
                2 => RecordBody::Hidden { on: false },
                k => RecordBody::Voted { voter, up: k % 10 != 0 },
            };
            Record {
                id: RecordId(Ulid::from_parts(1_700_000_000_000 + i as u64, 0)),
                event,
                question,
                region: "r".into(),
                body,
            }
        })
        .collect()
}

fn fold(c: &mut Criterion) {
    let mut group = c.benchmark_group("fold");
    // One size: a million records (add sizes here to compare).
    #[allow(clippy::single_element_loop)]
    for n in [1_000_000usize] {
        let input = records(n);
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::new("pure", n), &input, |b, input| {
            b.iter(|| {
                let mut p = Projection::with_capacity(input.len());
                for r in input {
                    p.apply(r);
                }
                p.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fold);
criterion_main!(benches);
