//! Identifiers. Events, questions and records are ULIDs minted by ingest, so their first 48
//! bits are the millisecond they were minted at: "when" for a question and "answered at"
//! for a moderation record both come from an id, never from a clock read by the fold.
//! Voter ids are opaque random 128-bit values, printed the same way.

use std::fmt;
use std::str::FromStr;

use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Ulid);

        impl $name {
            pub const KIND: &'static str = $kind;

            pub fn from_u128(value: u128) -> Self {
                Self(Ulid(value))
            }

            pub fn to_u128(self) -> u128 {
                self.0 .0
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Ulid::from_bytes(bytes))
            }

            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_bytes()
            }

            /// Milliseconds since the Unix epoch encoded in the id.
            pub fn timestamp_ms(self) -> u64 {
                self.0.timestamp_ms()
            }

            /// Whole seconds since the Unix epoch encoded in the id.
            pub fn unix_seconds(self) -> u64 {
                self.0.timestamp_ms() / 1000
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// Accepts exactly the 26-character Crockford base32 form (case-insensitive).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // The first character carries only 3 bits: anything above '7' overflows 128 bits.
                if s.len() != ulid::ULID_LEN || !matches!(s.as_bytes()[0], b'0'..=b'7') {
                    return Err(IdError { kind: $kind });
                }
                Ulid::from_string(s).map(Self).map_err(|_| IdError { kind: $kind })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

ulid_id!(
    /// A Q&A session.
    EventId,
    "event"
);
ulid_id!(
    /// A question within an event.
    QuestionId,
    "question"
);
ulid_id!(
    /// One ledger entry. Ordering record ids is how the fold decides "latest".
    RecordId,
    "record"
);
ulid_id!(
    /// An opaque guest identity held in a cookie; its bits carry no meaning.
    VoterId,
    "voter"
);

impl VoterId {
    /// 128 random bits: for tests and tools that need an arbitrary voter.
    pub fn random() -> Self {
        Self(Ulid(rand::random::<u128>()))
    }

    /// A new guest's id, as ingest mints it: a ULID, 80 random bits (unguessable) after the
    /// minting millisecond. Time-ordered on purpose: a new voter's state then lands at the
    /// end of its question's range in a store's index instead of on a random page, which
    /// keeps the pages a burst of new voters dirties (and SQLite rewrites) few.
    pub fn mint() -> Self {
        Self(Ulid::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = QuestionId(Ulid::new());
        assert_eq!(id.to_string().parse::<QuestionId>(), Ok(id));
        assert_eq!(id.to_string().to_lowercase().parse::<QuestionId>(), Ok(id));
        assert!("nope".parse::<QuestionId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FAVX".parse::<EventId>().is_err());
        assert!("8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<EventId>().is_err(), "overflow");
        assert_eq!(EventId::from_bytes(id.to_bytes()).to_u128(), id.to_u128());
    }
}
