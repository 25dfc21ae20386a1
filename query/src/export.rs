//! The host's export: every question of an event (hidden ones too) with its text, author,
//! time, votes, and moderation state, as JSON, CSV or a Markdown table. Questions are in the
//! order they were asked, which is what a transcript wants (the live list's order changes).

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use ledger::limits::QUESTION_IDS_PER_REQUEST_MAX;
use ledger::{QuestionId, RecordId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::handlers::{hosted_event, AppState, PathParams};

#[derive(Deserialize)]
pub struct ExportParams {
    format: Option<String>,
}

/// The query string, with a malformed one answered as our JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

#[derive(Clone, Copy)]
enum Format {
    Json,
    Csv,
    Markdown,
}

impl Format {
    fn parse(name: Option<&str>) -> Result<Self, ApiError> {
        match name {
            None | Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some("md") => Ok(Format::Markdown),
            Some(_) => Err(ApiError::BadRequest("format is json, csv or md".into())),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Markdown => "md",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
        }
    }
}

/// One exported question. Field order is the CSV column order.
#[derive(Serialize)]
struct Row {
    qid: QuestionId,
    text: String,
    who: String,
    asked_at: String,
    votes: u64,
    answered_at: String,
    hidden: bool,
}

/// `GET /api/export/{eid}/{secret}?format=csv|json|md` (json when absent).
pub async fn export(
    State(shared): AppState,
    PathParams((eid, secret)): PathParams<(String, String)>,
    QueryParams(params): QueryParams<ExportParams>,
) -> Result<Response, ApiError> {
    let format = Format::parse(params.format.as_deref())?;
    let event = hosted_event(&shared, &eid, &secret).await?;
    let mut questions = shared.projection.event_questions(event.id).await?;
    questions.sort_by_key(|q| q.id);
    let ids: Vec<QuestionId> = questions.iter().map(|q| q.id).collect();
    let mut texts = FxHashMap::default();
    // Bounded reads, the same size the texts route allows.
    for chunk in ids.chunks(QUESTION_IDS_PER_REQUEST_MAX) {
        for text in shared.projection.question_texts(chunk).await? {
            texts.insert(text.id, text);
        }
    }
    let rows: Vec<Row> = questions
        .iter()
        .map(|q| {
            let text = texts.get(&q.id);
            Row {
                qid: q.id,
                text: text.map(|t| t.text.clone()).unwrap_or_default(),
                who: text.and_then(|t| t.who.clone()).unwrap_or_default(),
                asked_at: rfc3339(q.id.timestamp_ms()),
                votes: q.votes,
                answered_at: q.answered_at().map(answered_at).unwrap_or_default(),
                hidden: q.is_hidden(),
            }
        })
        .collect();
    let body = match format {
        Format::Json => serde_json::to_vec(&rows).map_err(internal)?,
        Format::Csv => csv_body(&rows)?,
        Format::Markdown => markdown(&rows).into_bytes(),
    };
    let disposition = format!(
        "attachment; filename=\"questions-{}.{}\"",
        event.id,
        format.extension()
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn answered_at(at: RecordId) -> String {
    rfc3339(at.timestamp_ms())
}

/// RFC 3339 in UTC, to the second.
fn rfc3339(unix_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "cannot render an export");
    ApiError::Unavailable
}

fn csv_body(rows: &[Row]) -> Result<Vec<u8>, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(internal)?;
    }
    // With no rows serde writes no header, but an empty export should still name its columns.
    if rows.is_empty() {
        writer
            .write_record([
                "qid",
                "text",
                "who",
                "asked_at",
                "votes",
                "answered_at",
                "hidden",
            ])
            .map_err(internal)?;
    }
    writer.into_inner().map_err(internal)
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| asked at | question | who | votes | answered at | hidden |\n|---|---|---|---:|---|---|\n");
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.asked_at,
            markdown_cell(&row.text),
            markdown_cell(&row.who),
            row.votes,
            row.answered_at,
            if row.hidden { "yes" } else { "no" },
        ));
    }
    out
}

/// A table cell holds one line and no unescaped pipe; markup in guests' text is escaped so
/// the table renders as what was asked.
fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => {}
            '\n' => out.push_str("<br>"),
            '|' | '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_stay_one_cell() {
        assert_eq!(markdown_cell("a | b\nc"), "a \\| b<br>c");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
