//! CSV for exports that people open in spreadsheets: RFC 4180 (every cell quoted, `"` doubled,
//! CRLF line ends), UTF-8 with a byte-order mark (so Excel does not guess a code page), and safe
//! against formula injection: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return is prefixed with `'` (OWASP "CSV Injection"), because directory data and audit reasons
//! come from outside and a spreadsheet would run `=HYPERLINK(...)` as a formula.
//!
//! Large exports are streamed ([`stream`]): the producer writes rows into a bounded channel a
//! chunk at a time, so memory stays at a few chunks whatever the size of the export. A producer
//! that fails midway ends the body with an error: the download visibly breaks instead of looking
//! complete.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// The UTF-8 byte-order mark that starts every export.
pub const BOM: &str = "\u{feff}";

/// Characters that make a spreadsheet read a cell as a formula (or hide its start).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Appends one quoted, injection-safe cell (no separator).
pub fn push_cell(out: &mut String, value: &str) {
    out.push('"');
    if value.starts_with(FORMULA_STARTS) {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends one row: cells separated by commas, CRLF at the end.
pub fn push_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_cell(out, c.as_ref());
    }
    out.push_str("\r\n");
}

/// Where a streaming export's producer sends its chunks.
pub type Sink = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A streamed response body fed by a channel.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl MessageBody for ChannelBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().0.poll_recv(cx)
    }
}

/// A `text/csv` attachment named `filename`, whose body is whatever `produce` sends to its sink
/// (a few chunks buffered at most: the producer waits while the client reads). The producer runs
/// as its own task and stops when the client goes away (sends fail).
pub fn stream<F>(filename: &str, produce: impl FnOnce(Sink) -> F) -> HttpResponse
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(produce(tx));
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(ChannelBody(rx))
}

/// Sends `chunk` (emptied) when it has grown past a few KiB; `false` when the client is gone.
pub async fn flush_if_big(sink: &Sink, chunk: &mut String) -> bool {
    if chunk.len() < 16 * 1024 {
        return true;
    }
    flush(sink, chunk).await
}

/// Sends what `chunk` holds (emptied); `false` when the client is gone.
pub async fn flush(sink: &Sink, chunk: &mut String) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let bytes = Bytes::from(std::mem::take(chunk));
    sink.send(Ok(bytes)).await.is_ok()
}

/// Ends the download with an error (the client sees a broken transfer, not a short file).
pub async fn fail(sink: &Sink, why: &str) {
    if sink
        .send(Err(std::io::Error::other(why.to_string())))
        .await
        .is_err()
    {
        tracing::debug!("a failed download's client had already gone");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> String {
        let mut s = String::new();
        push_row(&mut s, cells);
        s
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralized() {
        assert_eq!(row(&["a", "b c"]), "\"a\",\"b c\"\r\n");
        assert_eq!(row(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(row(&["line\nbreak, comma"]), "\"line\nbreak, comma\"\r\n");
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(row(&[bad]), format!("\"'{bad}\"\r\n"), "{bad:?}");
        }
        assert_eq!(
            row(&["=HYPERLINK(\"http://x\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\")\"\r\n"
        );
        // Only the start matters; UTF-8 passes through.
        assert_eq!(row(&["a=b", "Jürgen Groß"]), "\"a=b\",\"Jürgen Groß\"\r\n");
        assert_eq!(row(&[""]), "\"\"\r\n");
    }
}
