//! Conversions between SQLite rows and core types. Ids are stored as 16-byte big-endian
//! blobs, so blob order is id order (LWW conditions compare them in SQL).

use ledger::ports::StoreError;
use ledger::{
    Asked, Asking, EventId, Moderation, QuestionId, Record, RecordBody, RecordId, Stamped, VoterId, VoterState,
    VoterStates,
};
use rusqlite::OptionalExtension;
use rusqlite::Row;
use rustc_hash::FxHashMap;

pub const KIND_ASKED: i64 = 0;
pub const KIND_VOTE: i64 = 1;
pub const KIND_ANSWERED: i64 = 2;
pub const KIND_HIDDEN: i64 = 3;
pub const KIND_APPROVED: i64 = 4;
pub const KIND_SPOTLIGHT: i64 = 5;
pub const KIND_REPLY: i64 = 6;
pub const KIND_TITLE: i64 = 7;
pub const KIND_MODERATION: i64 = 8;
pub const KIND_ASKING: i64 = 9;
pub const KIND_BLOCKED_WORDS: i64 = 10;
pub const KIND_COHOST_MINTED: i64 = 11;
pub const KIND_COHOST_REVOKED: i64 = 12;

/// The ledger's name for a stored kind number (for reports; unknown numbers as such).
pub fn kind_name(kind: i64) -> String {
    match kind {
        KIND_ASKED => "asked".into(),
        KIND_VOTE => "vote".into(),
        KIND_ANSWERED => "answered".into(),
        KIND_HIDDEN => "hidden".into(),
        KIND_APPROVED => "approved".into(),
        KIND_SPOTLIGHT => "spotlight".into(),
        KIND_REPLY => "reply".into(),
        KIND_TITLE => "title".into(),
        KIND_MODERATION => "moderation".into(),
        KIND_ASKING => "asking".into(),
        KIND_BLOCKED_WORDS => "blocked_words".into(),
        KIND_COHOST_MINTED => "cohost_minted".into(),
        KIND_COHOST_REVOKED => "cohost_revoked".into(),
        other => format!("unknown kind {other}"),
    }
}

pub fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub fn blob16(row: &Row<'_>, idx: usize) -> Result<[u8; 16], StoreError> {
    let r = row.get_ref(idx).map_err(corrupt)?;
    let b = r.as_blob().map_err(corrupt)?;
    b.try_into().map_err(|_| corrupt(format!("column {idx} holds {} bytes, not an id", b.len())))
}

pub fn opt_blob16(row: &Row<'_>, idx: usize) -> Result<Option<[u8; 16]>, StoreError> {
    match row.get_ref(idx).map_err(corrupt)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => blob16(row, idx).map(Some),
    }
}

pub fn stamp(value: Option<i64>, at: Option<[u8; 16]>) -> Option<Stamped<bool>> {
    match (value, at) {
        (Some(v), Some(at)) => Some(Stamped { value: v != 0, at: RecordId::from_bytes(at) }),
        _ => None,
    }
}

/// Ledger columns, in the order [`record_from_row`] reads them (after `seq`).
pub const LEDGER_COLUMNS: &str = "seq, id, event, question, region, kind, voter, flag, text, who";

pub fn record_from_row(row: &Row<'_>) -> Result<(u64, Record), StoreError> {
    let seq: i64 = row.get(0).map_err(corrupt)?;
    let id = RecordId::from_bytes(blob16(row, 1)?);
    let event = EventId::from_bytes(blob16(row, 2)?);
    let question = QuestionId::from_bytes(blob16(row, 3)?);
    let region: String = row.get(4).map_err(corrupt)?;
    let kind: i64 = row.get(5).map_err(corrupt)?;
    let voter = opt_blob16(row, 6)?.map(VoterId::from_bytes);
    let flag: Option<i64> = row.get(7).map_err(corrupt)?;
    let need_voter = || voter.ok_or_else(|| corrupt(format!("record {id} lacks its voter")));
    let need_flag = || flag.map(|f| f != 0).ok_or_else(|| corrupt(format!("record {id} lacks its flag")));
    let need_text = || -> Result<String, StoreError> {
        row.get::<_, Option<String>>(8).map_err(corrupt)?.ok_or_else(|| corrupt(format!("record {id} lacks its text")))
    };
    let need_hash = || -> Result<ledger::secret::SecretHash, StoreError> {
        let text = need_text()?;
        hash_from_hex(&text).ok_or_else(|| corrupt(format!("record {id}: its text is not a secret hash")))
    };
    let body = match kind {
        KIND_ASKED => {
            RecordBody::Asked(Asked { text: need_text()?, who: row.get(9).map_err(corrupt)?, voter: need_voter()? })
        }
        KIND_VOTE => RecordBody::Voted { voter: need_voter()?, up: need_flag()? },
        KIND_ANSWERED => RecordBody::Answered { on: need_flag()? },
        KIND_HIDDEN => RecordBody::Hidden { on: need_flag()? },
        KIND_APPROVED => RecordBody::Approved { on: need_flag()? },
        KIND_SPOTLIGHT => RecordBody::Spotlight { on: need_flag()? },
        KIND_REPLY => RecordBody::Replied { text: need_text()? },
        KIND_TITLE => RecordBody::Titled { title: need_text()? },
        KIND_MODERATION => RecordBody::ModerationSet {
            moderation: if need_flag()? { Moderation::PreApprove } else { Moderation::Off },
        },
        KIND_ASKING => RecordBody::AskingSet { asking: if need_flag()? { Asking::Closed } else { Asking::Open } },
        KIND_BLOCKED_WORDS => RecordBody::BlockedWordsSet { words: words_from_text(&need_text()?) },
        KIND_COHOST_MINTED => RecordBody::CohostMinted { secret_hash: need_hash()? },
        KIND_COHOST_REVOKED => RecordBody::CohostRevoked { secret_hash: need_hash()? },
        other => return Err(corrupt(format!("record {id} has unknown kind {other}"))),
    };
    Ok((seq as u64, Record { id, event, question, region, body }))
}

/// A record's stored columns: (kind, voter, flag, text, who). The event's own records and
/// the host's: `flag` is `on` (approved, spotlight), pre-approve (moderation) or closed
/// (asking); `text` is the reply, the title, the blocked words one per line (a word never
/// holds a line break: the rules keep only letters, digits and single spaces) or a co-host
/// link's secret hash in hex.
pub type RecordColumns<'a> = (i64, Option<[u8; 16]>, Option<bool>, Option<std::borrow::Cow<'a, str>>, Option<&'a str>);

pub fn record_columns(r: &Record) -> RecordColumns<'_> {
    use std::borrow::Cow::{Borrowed, Owned};
    match &r.body {
        RecordBody::Asked(a) => (KIND_ASKED, Some(a.voter.to_bytes()), None, Some(Borrowed(&a.text)), a.who.as_deref()),
        RecordBody::Voted { voter, up } => (KIND_VOTE, Some(voter.to_bytes()), Some(*up), None, None),
        RecordBody::Answered { on } => (KIND_ANSWERED, None, Some(*on), None, None),
        RecordBody::Hidden { on } => (KIND_HIDDEN, None, Some(*on), None, None),
        RecordBody::Approved { on } => (KIND_APPROVED, None, Some(*on), None, None),
        RecordBody::Spotlight { on } => (KIND_SPOTLIGHT, None, Some(*on), None, None),
        RecordBody::Replied { text } => (KIND_REPLY, None, None, Some(Borrowed(text)), None),
        RecordBody::Titled { title } => (KIND_TITLE, None, None, Some(Borrowed(title)), None),
        RecordBody::ModerationSet { moderation } => {
            (KIND_MODERATION, None, Some(*moderation == Moderation::PreApprove), None, None)
        }
        RecordBody::AskingSet { asking } => (KIND_ASKING, None, Some(*asking == Asking::Closed), None, None),
        RecordBody::BlockedWordsSet { words } => (KIND_BLOCKED_WORDS, None, None, Some(Owned(words.join("\n"))), None),
        RecordBody::CohostMinted { secret_hash } => {
            (KIND_COHOST_MINTED, None, None, Some(Owned(hex(secret_hash))), None)
        }
        RecordBody::CohostRevoked { secret_hash } => {
            (KIND_COHOST_REVOKED, None, None, Some(Owned(hex(secret_hash))), None)
        }
    }
}

/// Blocked words as stored, one per line (none: the empty text).
pub fn words_from_text(text: &str) -> Vec<String> {
    text.split('\n').filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_from_hex(text: &str) -> Option<ledger::secret::SecretHash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The stored states of these voters (missing keys have none yet).
pub fn read_voters(conn: &rusqlite::Connection, keys: &[(QuestionId, VoterId)]) -> Result<VoterStates, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
    let mut stmt =
        conn.prepare_cached("SELECT up, rec FROM voters WHERE voter = ?1 AND qid = ?2").map_err(unavailable)?;
    let mut out = FxHashMap::default();
    // In key order (voter, then question), so the reads walk the table's B-tree forward.
    let mut keys = keys.to_vec();
    keys.sort_unstable_by_key(|&(q, v)| (v, q));
    for (q, v) in keys {
        let found = stmt
            .query_row(rusqlite::params![v.to_bytes(), q.to_bytes()], |r| Ok((r.get::<_, bool>(0)?, blob16(r, 1))))
            .optional()
            .map_err(unavailable)?;
        if let Some((up, rec)) = found {
            out.insert((q, v), VoterState { up, rec: RecordId::from_bytes(rec?) });
        }
    }
    Ok(out)
}
