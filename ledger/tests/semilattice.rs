//! The fold is a join-semilattice: any permutation and any duplication of the same records
//! gives the same projection (DESIGN §3).

use ledger::{Asked, Body, EventId, Projection, QuestionId, Record, RecordId, VoterId};
use proptest::prelude::*;
use ulid::Ulid;

fn arb_records() -> impl Strategy<Value = Vec<Record>> {
    proptest::collection::btree_map(1u128..500, (0u8..4, 0u8..6, 0u8..8), 1..80).prop_map(|m| {
        m.into_iter()
            .map(|(id, (q, v, k))| {
                let voter = VoterId(Ulid(100 + v as u128));
                let body = match k {
                    // A question has one text: ingest mints a fresh question id for every ask.
                    0 => Body::Asked(Asked { text: format!("q{q}"), who: Some(format!("w{q}")), voter }),
                    1..=4 => Body::Voted { voter, up: k % 2 == 0 },
                    5 | 6 => Body::Answered { on: k == 5 },
                    _ => Body::Hidden { on: v % 2 == 0 },
                };
                Record {
                    id: RecordId(Ulid(id)),
                    event: EventId(Ulid(9)),
                    question: QuestionId(Ulid(1_000 + q as u128)),
                    region: "r".into(),
                    body,
                }
            })
            .collect()
    })
}

fn fold(records: &[Record]) -> Vec<ledger::QuestionState> {
    let mut p = Projection::new();
    for r in records {
        p.apply(r);
    }
    p.sorted()
}

proptest! {
    #[test]
    fn any_order_and_duplication_gives_the_same_projection(
        records in arb_records(),
        shuffle in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
        dup_every in 1usize..5,
    ) {
        let reference = fold(&records);
        let mut delivered: Vec<Record> = records.iter().cloned().chain(records.iter().step_by(dup_every).cloned()).collect();
        use rand::{seq::SliceRandom, SeedableRng};
        delivered.shuffle(&mut rand::rngs::StdRng::seed_from_u64(shuffle));
        prop_assert_eq!(fold(&delivered), reference);
    }

    #[test]
    fn asked_text_is_kept_whatever_the_order(records in arb_records()) {
        let mut reversed = records.clone();
        reversed.reverse();
        prop_assert_eq!(fold(&reversed), fold(&records));
    }
}

