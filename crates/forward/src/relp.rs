//! RELP, the Reliable Event Logging Protocol (rsyslog's `imrelp`), client side: syslog
//! messages with an acknowledgement each. Where RFC 5425 can only infer delivery from the
//! receiver closing the connection (which a TLS proxy with its backend down does as well), a
//! RELP receiver answers `200 OK` for every message it took into its queue, so a batch counts as
//! delivered exactly when every message in it was acknowledged.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`; a session is `open` (offers
//! `relp_version=0` and `commands=syslog`), `syslog` frames, `close`; the receiver answers each
//! with `TXNR rsp LEN STATUS [text]`. Messages are written in windows of [`WINDOW`] frames, each
//! window's answers read before the next.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};

/// Frames in flight before their answers are read (librelp's default window is 128).
pub const WINDOW: usize = 64;
/// The longest answer accepted (an `open` answer lists offers; anything longer is not RELP).
const MAX_ANSWER: usize = 64 * 1024;

/// What went wrong in a RELP exchange (turned into the output's transport error).
#[derive(Debug, thiserror::Error)]
pub enum RelpError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The receiver answered something that is not a RELP answer to our frame.
    #[error("not a RELP answer: {0}")]
    Protocol(String),
    /// The receiver refused a frame (`500 ...`) or ended the session: its text.
    #[error("the receiver refused: {0}")]
    Refused(String),
}

/// Receiver text for a log line: printable, at most 200 characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

fn frame(txnr: u32, command: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("{txnr} {command} {}", data.len()).into_bytes();
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
    out
}

/// One session over `stream` (TCP or TLS).
pub struct Session<S> {
    stream: BufStream<S>,
    next: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Opens the session: offers version 0 and the `syslog` command.
    pub async fn open(stream: S) -> Result<Self, RelpError> {
        let mut s = Session {
            stream: BufStream::new(stream),
            next: 1,
        };
        let offers = concat!(
            "relp_version=0\nrelp_software=latchkey,",
            env!("CARGO_PKG_VERSION"),
            "\ncommands=syslog"
        );
        let txnr = s.send("open", offers.as_bytes()).await?;
        s.stream.flush().await?;
        let answer = s.answer(txnr, false).await?;
        // `commands=syslog,...`: the offers the receiver accepts, a comma list.
        let syslog = answer.lines().any(|l| {
            l.trim()
                .strip_prefix("commands=")
                .is_some_and(|v| v.split(',').any(|c| c.trim() == "syslog"))
        });
        if !syslog {
            return Err(RelpError::Protocol(
                "the receiver does not take syslog messages".into(),
            ));
        }
        Ok(s)
    }

    async fn send(&mut self, command: &str, data: &[u8]) -> Result<u32, RelpError> {
        let txnr = self.next;
        // Transaction numbers run 1..=999_999_999 and wrap to 1.
        self.next = if txnr >= 999_999_999 { 1 } else { txnr + 1 };
        self.stream.write_all(&frame(txnr, command, data)).await?;
        Ok(txnr)
    }

    /// Reads the answer to `txnr`: `200` gives its text after the status; anything else fails.
    /// Only the answer to `close` may be empty (`allow_empty`): an empty answer to a message is
    /// no acknowledgement.
    async fn answer(&mut self, txnr: u32, allow_empty: bool) -> Result<String, RelpError> {
        // "TXNR COMMAND " first: `0 serverclose` (librelp's hint that it ends the session) has
        // a transaction number of its own.
        let mut fields = Vec::with_capacity(2);
        for _ in 0..2 {
            let mut head = Vec::new();
            let n = (&mut self.stream)
                .take(16)
                .read_until(b' ', &mut head)
                .await?;
            if n == 0 {
                return Err(RelpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if head.pop() != Some(b' ') {
                return Err(RelpError::Protocol(printable(&String::from_utf8_lossy(
                    &head,
                ))));
            }
            fields.push(String::from_utf8_lossy(&head).into_owned());
        }
        if fields[1] == "serverclose" {
            return Err(RelpError::Refused("the receiver ended the session".into()));
        }
        if fields[1] != "rsp" || fields[0].parse::<u32>().ok() != Some(txnr) {
            return Err(RelpError::Protocol(format!(
                "{:?} (waiting for {txnr} rsp)",
                printable(&fields.join(" "))
            )));
        }
        // DATALEN, ended by a space (data follows) or the trailer (no data).
        let mut len: usize = 0;
        let mut digits = 0;
        let ended_by = loop {
            let b = self.stream.read_u8().await?;
            match b {
                b'0'..=b'9' if digits < 9 => {
                    len = len * 10 + usize::from(b - b'0');
                    digits += 1;
                }
                b' ' | b'\n' if digits > 0 => break b,
                _ => return Err(RelpError::Protocol(format!("length byte {b:#04x}"))),
            }
        };
        if len > MAX_ANSWER {
            return Err(RelpError::Protocol(format!("an answer of {len} bytes")));
        }
        let data = if ended_by == b'\n' {
            if len != 0 {
                return Err(RelpError::Protocol("data missing".into()));
            }
            String::new()
        } else {
            let mut data = vec![0u8; len + 1];
            self.stream.read_exact(&mut data).await?;
            if data.pop() != Some(b'\n') {
                return Err(RelpError::Protocol("no frame trailer".into()));
            }
            String::from_utf8_lossy(&data).into_owned()
        };
        if data.is_empty() && allow_empty {
            return Ok(String::new());
        }
        // "200" then a space, a line feed or the end: exactly three digits.
        let (code, rest) = data.split_at(data.len().min(3));
        let delimited = rest.is_empty() || rest.starts_with([' ', '\n']);
        if code == "200" && delimited {
            Ok(rest.trim_start().to_string())
        } else {
            Err(RelpError::Refused(printable(&data)))
        }
    }

    /// Sends `messages` and returns once every one was acknowledged.
    pub async fn syslog(&mut self, messages: &[String]) -> Result<(), RelpError> {
        for window in messages.chunks(WINDOW) {
            let mut sent = Vec::with_capacity(window.len());
            for m in window {
                sent.push(self.send("syslog", m.as_bytes()).await?);
            }
            self.stream.flush().await?;
            for txnr in sent {
                self.answer(txnr, false).await?;
            }
        }
        Ok(())
    }

    /// Ends the session politely (the receiver answers, then closes).
    pub async fn close(mut self) -> Result<(), RelpError> {
        let txnr = self.send("close", b"").await?;
        self.stream.flush().await?;
        self.answer(txnr, true).await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_number_command_length_and_trailer() {
        assert_eq!(
            frame(7, "syslog", b"<13>1 - hi"),
            b"7 syslog 10 <13>1 - hi\n"
        );
        assert_eq!(frame(8, "close", b""), b"8 close 0\n");
    }

    /// A scripted receiver: the answers arrive as a RELP server sends them.
    #[tokio::test]
    async fn a_session_reads_each_acknowledgement_and_refusals_fail() {
        let (client, mut server) = tokio::io::duplex(4096);
        let script = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = server.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"1 open "), "the session opens first");
            let open = "200 OK\nrelp_version=0\ncommands=syslog\n";
            server
                .write_all(format!("1 rsp {} {open}\n", open.len()).as_bytes())
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"2 syslog 3 one\n3 syslog 3 two\n", "one window");
            server
                .write_all(b"2 rsp 6 200 OK\n3 rsp 17 500 queue is full\n")
                .await
                .unwrap();
            server
        });
        let mut session = Session::open(client).await.unwrap();
        let err = session
            .syslog(&["one".to_string(), "two".to_string()])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("queue is full"), "{err}");
        drop(script.await.unwrap());
    }

    /// Answers `open`, then plays `answer` to the first message.
    async fn after_open(answer: &'static [u8]) -> RelpError {
        let (client, mut server) = tokio::io::duplex(4096);
        let script = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = server.read(&mut buf).await.unwrap();
            assert!(n > 0);
            let open = "200 OK\nrelp_version=0\ncommands=other,syslog\n";
            server
                .write_all(format!("1 rsp {} {open}\n", open.len()).as_bytes())
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert!(n > 0);
            server.write_all(answer).await.unwrap();
            // Dropped here: the receiver goes away after its answer.
        });
        let mut session = Session::open(client).await.unwrap();
        let err = session.syslog(&["one".to_string()]).await.unwrap_err();
        script.await.unwrap();
        err
    }

    #[tokio::test]
    async fn only_a_200_acknowledges_a_message() {
        for (answer, want) in [
            (&b"2 rsp 0\n"[..], "refused"),
            (b"2 rsp 4 2000\n", "refused"),
            (b"0 serverclose 0\n", "ended the session"),
            (b"3 rsp 6 200 OK\n", "waiting for 2"),
            (b"2 rsp 6 200 OK", "early eof"),
        ] {
            let err = after_open(answer).await.to_string();
            assert!(err.contains(want), "{answer:?}: {err}");
        }
    }
}
