//! The ledger's stream records as they travel as JSON: an EventBridge Pipe with a DynamoDB
//! stream source and an SQS target sends each stream record as one message whose body is
//! the record's JSON (`eventName`, `dynamodb.NewImage` in DynamoDB's typed JSON, ...). This
//! module reads such a body back into a ledger [`Record`] through the same item conversion
//! as every other read, and writes the typed JSON for the local stand-in of the Pipe.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use ledger::Record;
use serde_json::{Map, Value};

use crate::item::{record_from_item, Item};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("message body is not JSON: {0}")]
    Json(String),
    #[error("stream record is malformed: {0}")]
    Shape(String),
    #[error("stream record's image is not a ledger record: {0}")]
    Record(String),
}

/// One attribute in DynamoDB's typed JSON (`{"S": "..."}`, `{"N": "1"}`, `{"BOOL": true}`, ...).
pub fn attribute_from_json(value: &Value) -> Result<AttributeValue, StreamError> {
    let shape = |what: &str| StreamError::Shape(format!("attribute {what}: {value}"));
    let obj = value.as_object().filter(|o| o.len() == 1).ok_or_else(|| shape("is not a one-key object"))?;
    let (tag, inner) = obj.iter().next().ok_or_else(|| shape("is empty"))?;
    let string = || inner.as_str().map(str::to_owned).ok_or_else(|| shape("payload is not a string"));
    let strings = || -> Result<Vec<String>, StreamError> {
        inner
            .as_array()
            .ok_or_else(|| shape("set is not an array"))?
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| shape("set member is not a string")))
            .collect()
    };
    let blob = |s: &str| {
        base64::engine::general_purpose::STANDARD.decode(s).map(Blob::new).map_err(|_| shape("binary is not base64"))
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(string()?),
        "N" => AttributeValue::N(string()?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or_else(|| shape("BOOL is not a boolean"))?),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(blob(&string()?)?),
        "SS" => AttributeValue::Ss(strings()?),
        "NS" => AttributeValue::Ns(strings()?),
        "BS" => AttributeValue::Bs(strings()?.iter().map(|s| blob(s)).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or_else(|| shape("L is not an array"))?
                .iter()
                .map(attribute_from_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        other => return Err(shape(&format!("has unknown type {other}"))),
    })
}

/// An item (a map of attributes) in DynamoDB's typed JSON.
pub fn item_from_json(value: &Value) -> Result<Item, StreamError> {
    let obj = value.as_object().ok_or_else(|| StreamError::Shape("image is not an object".into()))?;
    obj.iter().map(|(k, v)| Ok((k.clone(), attribute_from_json(v)?))).collect()
}

/// The typed JSON of one attribute (the inverse of [`attribute_from_json`]).
pub fn attribute_to_json(value: &AttributeValue) -> Value {
    let b64 = |b: &Blob| Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    let one = |tag: &str, v: Value| Value::Object(Map::from_iter([(tag.to_owned(), v)]));
    match value {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Ss(v) => one("SS", v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(v) => one("NS", v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Bs(v) => one("BS", v.iter().map(b64).collect()),
        AttributeValue::L(v) => one("L", v.iter().map(attribute_to_json).collect()),
        AttributeValue::M(m) => one("M", item_to_json(m)),
        // NULL and any type a newer SDK adds: NULL is the honest rendering of "nothing we know".
        _ => one("NULL", Value::Bool(true)),
    }
}

pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect())
}

/// Reads one stream record (an SQS message body from the Pipe) into a ledger record.
/// `Ok(None)` for a record that carries no new record: a `REMOVE` (TTL expiry of an event's
/// records), which the projection ignores because it expires on its own.
pub fn record_from_stream_json(body: &str) -> Result<Option<Record>, StreamError> {
    let value: Value = serde_json::from_str(body).map_err(|e| StreamError::Json(e.to_string()))?;
    record_from_stream_value(&value)
}

pub fn record_from_stream_value(value: &Value) -> Result<Option<Record>, StreamError> {
    let name =
        value.get("eventName").and_then(Value::as_str).ok_or_else(|| StreamError::Shape("no eventName".into()))?;
    match name {
        "REMOVE" => Ok(None),
        "INSERT" | "MODIFY" => {
            let image = value
                .get("dynamodb")
                .and_then(|d| d.get("NewImage"))
                .ok_or_else(|| StreamError::Shape("no dynamodb.NewImage (is the stream view NEW_IMAGE?)".into()))?;
            let item = item_from_json(image)?;
            record_from_item(&item).map(Some).map_err(|e| StreamError::Record(e.to_string()))
        }
        other => Err(StreamError::Shape(format!("unknown eventName {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{EventId, QuestionId, RecordBody, RecordId, VoterId};
    use serde_json::json;
    use ulid::Ulid;

    #[test]
    fn typed_json_round_trips_and_stream_records_parse() {
        let record = Record {
            id: RecordId(Ulid::new()),
            event: EventId(Ulid::new()),
            question: QuestionId(Ulid::new()),
            region: "us-east-1".into(),
            body: RecordBody::Voted { voter: VoterId::random(), up: true },
        };
        let item = crate::item::record_to_item(&record, 8, ledger::Retention::DEFAULT);
        let image = item_to_json(&item);
        assert_eq!(item_from_json(&image).as_ref(), Ok(&item));
        let body = json!({"eventName": "INSERT", "dynamodb": {"NewImage": image}}).to_string();
        assert_eq!(record_from_stream_json(&body), Ok(Some(record)));
        assert_eq!(record_from_stream_json(r#"{"eventName":"REMOVE","dynamodb":{}}"#), Ok(None));
        assert!(matches!(record_from_stream_json("nope"), Err(StreamError::Json(_))));
        assert!(matches!(record_from_stream_json(r#"{"eventName":"INSERT"}"#), Err(StreamError::Shape(_))));
        let bad = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"id": {"S": "x"}}}}).to_string();
        assert!(matches!(record_from_stream_json(&bad), Err(StreamError::Record(_))));
        let blob = attribute_from_json(&json!({"B": "AAEC"}));
        assert_eq!(blob, Ok(AttributeValue::B(Blob::new(vec![0, 1, 2]))));
    }
}
