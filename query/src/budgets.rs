//! How many live streams may be open: per client address, per event and in total.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use http_edge::ClientAddr;
use ledger::EventId;
use parking_lot::Mutex;

use crate::error::StreamBudget;

/// How many live streams may be open: per client address, per event and in total. Each
/// open stream holds a [`StreamPermit`]; dropping it gives its place back.
pub(crate) struct StreamBudgets {
    per_client_max: u32,
    per_event_max: u32,
    total_max: u32,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    /// Only addresses and events with open streams have an entry, so neither map holds more
    /// entries than there are streams.
    per_client: HashMap<IpAddr, u32>,
    per_event: HashMap<EventId, u32>,
    total: u32,
}

impl StreamBudgets {
    pub fn new(per_client_max: u32, per_event_max: u32, total_max: u32) -> Self {
        Self { per_client_max, per_event_max, total_max, open: Mutex::new(OpenStreams::default()) }
    }

    /// A place for one more stream of `event` from `client`, or which budget is spent. The
    /// client's own budget is checked first: a client over it is told so (429) even when
    /// the others are spent as well.
    pub fn admit(self: &Arc<Self>, client: ClientAddr, event: EventId) -> Result<StreamPermit, StreamBudget> {
        // Whose budget the stream counts against (an IPv6 client by its /64).
        let client = client.key();
        let mut open = self.open.lock();
        if open.per_client.get(&client).copied().unwrap_or(0) >= self.per_client_max {
            return Err(StreamBudget::Client);
        }
        if open.per_event.get(&event).copied().unwrap_or(0) >= self.per_event_max {
            return Err(StreamBudget::Event);
        }
        if open.total >= self.total_max {
            return Err(StreamBudget::Total);
        }
        *open.per_client.entry(client).or_insert(0) += 1;
        *open.per_event.entry(event).or_insert(0) += 1;
        open.total += 1;
        metrics::gauge!("live_streams_open").set(f64::from(open.total));
        Ok(StreamPermit { budgets: self.clone(), client, event })
    }

    fn release(&self, client: IpAddr, event: EventId) {
        let mut open = self.open.lock();
        fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K) {
            if let Entry::Occupied(mut count) = map.entry(key) {
                *count.get_mut() = count.get().saturating_sub(1);
                if *count.get() == 0 {
                    count.remove();
                }
            }
        }
        decrement(&mut open.per_client, client);
        decrement(&mut open.per_event, event);
        open.total = open.total.saturating_sub(1);
        metrics::gauge!("live_streams_open").set(f64::from(open.total));
    }
}

/// One open stream's place in the budgets, given back on drop (however the stream ends).
pub(crate) struct StreamPermit {
    budgets: Arc<StreamBudgets>,
    client: IpAddr,
    event: EventId,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.budgets.release(self.client, self.event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_count_per_client_per_event_and_in_total_and_give_back_on_drop() {
        let budgets = Arc::new(StreamBudgets::new(2, 3, 4));
        let (a, b, c) = (
            ClientAddr("127.0.0.2".parse().expect("ip")),
            ClientAddr("127.0.0.3".parse().expect("ip")),
            ClientAddr("127.0.0.4".parse().expect("ip")),
        );
        let (e1, e2) = (EventId::from_u128(1), EventId::from_u128(2));
        let a1 = budgets.admit(a, e1).expect("first");
        let _a2 = budgets.admit(a, e1).expect("second");
        assert_eq!(budgets.admit(a, e2).err(), Some(StreamBudget::Client));
        let _b1 = budgets.admit(b, e1).expect("another address");
        assert_eq!(budgets.admit(b, e1).err(), Some(StreamBudget::Event));
        let _b2 = budgets.admit(b, e2).expect("another event");
        assert_eq!(budgets.admit(c, e2).err(), Some(StreamBudget::Total));
        drop(a1);
        let _c1 = budgets.admit(c, e2).expect("a place was given back");
        let open = budgets.open.lock();
        assert_eq!((open.total, open.per_client.len(), open.per_event.len()), (4, 3, 2));
    }
}
