//! Bulk reads on a connection of their own: a pull consumer read over plain TCP, parsing only what a
//! replay needs.
//!
//! Why not async-nats: its connection parses every message's headers into a `HeaderMap` (a hash
//! map of owned strings, four headers per commit) and passes each message through two channels and
//! the ordered consumer's state machine before it reaches us. Replaying millions of commits, that
//! was the largest share of the projector's CPU. A replay needs three things per message: the
//! subject, the stream sequence (from the reply subject) and the payload, which this reader takes
//! without copying from its read buffer.
//!
//! The consumer itself is created and deleted through async-nats (the JetStream API is requests and
//! replies, a handful per replay); only the message flow uses this connection. Pull requests keep
//! the flow bounded: one request of [`PULL_BATCH`] messages is outstanding at a time, so the server
//! never sends more than the reader has asked for and cannot mark it a slow consumer.
//!
//! It is used only where it is known to work: a server that asks for neither authentication nor
//! TLS, reached at the address it reports, with the same server id as the async-nats connection.
//! Anything else falls back to the async-nats ordered consumer ([`crate::cursor`]).

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream as JetStream;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::LogError;

/// Messages asked for per pull request: large enough that the request round trip is noise, small
/// enough to bound what is in flight (a few MiB of commits).
pub(crate) const PULL_BATCH: usize = 4096;
/// How long a pull request waits for new messages in follow mode before the server ends it.
const FOLLOW_EXPIRES: Duration = Duration::from_secs(5);
/// Silence (no byte at all) after which the connection is presumed dead. The server answers every
/// pull request within [`FOLLOW_EXPIRES`], so this only trips when something is wrong.
const SILENCE_LIMIT: Duration = Duration::from_secs(20);
/// How long connecting and the protocol handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An ephemeral consumer whose reader vanished is removed by the server after this long.
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(60);
/// How long to wait before asking again when nothing answered a pull request: the time a new
/// consumer's interest takes to cross the cluster's routes.
const UNANSWERED_REQUEST_PAUSE: Duration = Duration::from_millis(20);
/// Pull requests in a row nothing may answer (about 2 s) before the read fails.
const MAX_UNANSWERED_REQUESTS: u32 = 100;

/// Where a direct connection goes, as learned from the async-nats connection's server info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectTarget {
    address: String,
    server_id: String,
}

impl DirectTarget {
    /// The server the client is connected to, if a plain connection to it can be expected to work.
    pub(crate) fn detect(client: &async_nats::Client) -> Option<Self> {
        let info = client.server_info();
        if info.auth_required || info.tls_required || !info.headers || info.port == 0 {
            return None;
        }
        let host = match info.host.as_str() {
            // A server listening on every interface is reachable on loopback from its own machine;
            // from anywhere else the server-id check below rejects the connection and we fall back.
            "" | "0.0.0.0" | "::" => "127.0.0.1",
            host => host,
        };
        let address = if host.contains(':') {
            format!("[{host}]:{}", info.port)
        } else {
            format!("{host}:{}", info.port)
        };
        Some(Self {
            address,
            server_id: info.server_id,
        })
    }
}

/// One message delivered to a direct reader.
#[derive(Debug)]
pub(crate) struct DirectMessage {
    pub(crate) subject: String,
    pub(crate) stream_sequence: u64,
    pub(crate) pending: u64,
    pub(crate) payload: Bytes,
}

/// What [`DirectPull::next`] found.
#[derive(Debug)]
pub(crate) enum Pulled {
    Message(DirectMessage),
    /// In snapshot mode: nothing matching is left.
    Exhausted,
}

/// A pull consumer read over a connection of its own.
pub(crate) struct DirectPull {
    socket: TcpStream,
    buffer: BytesMut,
    inbox: String,
    next_subject: String,
    follow: bool,
    /// Messages the outstanding request may still deliver; 0 = no request outstanding.
    outstanding: usize,
    /// Messages delivered for the outstanding request so far.
    delivered_in_request: usize,
    /// Pull requests in a row that nothing answered (503 No Responders).
    unanswered_requests: u32,
    /// The consumer sequence of the last message, to detect a gap (which would be a lost message).
    consumer_sequence: u64,
    consumer: Option<(JetStream, String)>,
}

impl std::fmt::Debug for DirectPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectPull")
            .field("next_subject", &self.next_subject)
            .field("follow", &self.follow)
            .field("consumer_sequence", &self.consumer_sequence)
            .finish_non_exhaustive()
    }
}

fn io_error(operation: &'static str) -> impl FnOnce(std::io::Error) -> LogError {
    LogError::nats(operation)
}

fn protocol_error(operation: &'static str, reason: String) -> LogError {
    LogError::Nats {
        operation,
        source: Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, reason)),
    }
}

impl DirectPull {
    /// Connects to `target`, creates an ephemeral pull consumer on `stream` from `deliver_policy`,
    /// and returns the reader with nothing requested yet. `Ok(None)`: the direct connection is not
    /// usable here (the caller falls back); `Err`: the server refused the consumer.
    pub(crate) async fn open(
        target: &DirectTarget,
        stream: &JetStream,
        deliver_policy: DeliverPolicy,
        filter_subject: Option<String>,
        follow: bool,
    ) -> Result<Option<Self>, LogError> {
        let Some((socket, buffer)) = handshake(target).await else {
            return Ok(None);
        };
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy,
                ack_policy: AckPolicy::None,
                filter_subject: filter_subject.unwrap_or_default(),
                inactive_threshold: INACTIVE_THRESHOLD,
                memory_storage: true,
                num_replicas: 1,
                ..pull::Config::default()
            })
            .await
            .map_err(LogError::nats("creating a pull consumer"))?;
        let consumer_name = consumer.cached_info().name.clone();
        let stream_name = consumer.cached_info().stream_name.clone();
        let inbox = format!("_INBOX.claimledger.{}", uuid::Uuid::new_v4().simple());
        let mut reader = Self {
            socket,
            buffer,
            inbox,
            next_subject: format!("$JS.API.CONSUMER.MSG.NEXT.{stream_name}.{consumer_name}"),
            follow,
            outstanding: 0,
            delivered_in_request: 0,
            unanswered_requests: 0,
            consumer_sequence: 0,
            consumer: Some((stream.clone(), consumer_name)),
        };
        let subscribe = format!("SUB {} 1\r\n", reader.inbox);
        reader
            .socket
            .write_all(subscribe.as_bytes())
            .await
            .map_err(io_error("subscribing a direct reader"))?;
        Ok(Some(reader))
    }

    /// The next message, or [`Pulled::Exhausted`] in snapshot mode once nothing is left.
    pub(crate) async fn next(&mut self) -> Result<Pulled, LogError> {
        loop {
            if self.outstanding == 0 {
                self.request().await?;
            }
            match self.read_frame().await? {
                Frame::Message(message) => {
                    self.unanswered_requests = 0;
                    self.delivered_in_request += 1;
                    if self.delivered_in_request >= self.outstanding {
                        self.outstanding = 0;
                    }
                    return Ok(Pulled::Message(message));
                }
                Frame::RequestEnded { no_messages } => {
                    let nothing_delivered = self.delivered_in_request == 0;
                    self.outstanding = 0;
                    if !self.follow && (no_messages || nothing_delivered) {
                        return Ok(Pulled::Exhausted);
                    }
                }
                Frame::NoResponders => {
                    self.outstanding = 0;
                    self.unanswered_requests += 1;
                    if self.unanswered_requests > MAX_UNANSWERED_REQUESTS {
                        return Err(protocol_error(
                            "reading from the log",
                            "nothing answered the consumer's pull requests (503 No Responders)"
                                .to_owned(),
                        ));
                    }
                    tokio::time::sleep(UNANSWERED_REQUEST_PAUSE).await;
                }
                Frame::Ping => self
                    .socket
                    .write_all(b"PONG\r\n")
                    .await
                    .map_err(io_error("answering the server's ping"))?,
                Frame::Other => {}
            }
        }
    }

    async fn request(&mut self) -> Result<(), LogError> {
        let body = if self.follow {
            format!(
                "{{\"batch\":{PULL_BATCH},\"expires\":{}}}",
                FOLLOW_EXPIRES.as_nanos()
            )
        } else {
            format!("{{\"batch\":{PULL_BATCH},\"no_wait\":true}}")
        };
        let frame = format!(
            "PUB {} {} {}\r\n{body}\r\n",
            self.next_subject,
            self.inbox,
            body.len()
        );
        self.socket
            .write_all(frame.as_bytes())
            .await
            .map_err(io_error("requesting messages"))?;
        self.outstanding = PULL_BATCH;
        self.delivered_in_request = 0;
        Ok(())
    }

    /// Reads until one protocol frame is complete and interprets it.
    async fn read_frame(&mut self) -> Result<Frame, LogError> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(frame);
            }
            self.buffer.reserve(64 * 1024);
            let read = tokio::time::timeout(SILENCE_LIMIT, self.socket.read_buf(&mut self.buffer))
                .await
                .map_err(|_| {
                    protocol_error(
                        "reading from the log",
                        format!("no data from the server for {SILENCE_LIMIT:?}"),
                    )
                })?
                .map_err(io_error("reading from the log"))?;
            if read == 0 {
                return Err(protocol_error(
                    "reading from the log",
                    "the server closed the connection".to_owned(),
                ));
            }
        }
    }

    /// One frame from the buffer, if it holds a whole one.
    fn parse_frame(&mut self) -> Result<Option<Frame>, LogError> {
        let Some(line_end) = find_crlf(&self.buffer) else {
            return Ok(None);
        };
        let line = &self.buffer[..line_end];
        if line.starts_with(b"HMSG ") || line.starts_with(b"MSG ") {
            let header = parse_message_line(line)?;
            let frame_len = line_end + 2 + header.total_len + 2;
            if self.buffer.len() < frame_len {
                self.buffer.reserve(frame_len - self.buffer.len());
                return Ok(None);
            }
            let subject =
                String::from_utf8(line[header.subject.clone()].to_vec()).map_err(|_| {
                    protocol_error("reading from the log", "a non-UTF-8 subject".into())
                })?;
            // Read before the buffer moves on; status messages have no ack subject.
            let positions = ack_reply_positions(&line[header.reply.clone()]);
            let reply_text = || String::from_utf8_lossy(&line[header.reply.clone()]).into_owned();
            let unexpected_reply = positions.is_none().then(reply_text);
            self.buffer.advance(line_end + 2);
            let headers = self.buffer.split_to(header.header_len);
            let payload = self
                .buffer
                .split_to(header.total_len - header.header_len)
                .freeze();
            self.buffer.advance(2);
            if let Some(status) = status_of(&headers) {
                return self.status_frame(status, &headers);
            }
            let Some((stream_sequence, consumer_sequence, pending)) = positions else {
                return Err(protocol_error(
                    "reading message metadata",
                    format!(
                        "unexpected reply subject {:?}",
                        unexpected_reply.unwrap_or_default()
                    ),
                ));
            };
            if consumer_sequence != self.consumer_sequence + 1 {
                return Err(protocol_error(
                    "reading from the log",
                    format!(
                        "consumer sequence jumped from {} to {consumer_sequence}",
                        self.consumer_sequence
                    ),
                ));
            }
            self.consumer_sequence = consumer_sequence;
            return Ok(Some(Frame::Message(DirectMessage {
                subject,
                stream_sequence,
                pending,
                payload,
            })));
        }
        if line.starts_with(b"-ERR") {
            let text = String::from_utf8_lossy(line).into_owned();
            return Err(protocol_error("reading from the log", text));
        }
        let frame = if line == b"PING" {
            Frame::Ping
        } else {
            // +OK, PONG, INFO updates.
            Frame::Other
        };
        self.buffer.advance(line_end + 2);
        Ok(Some(frame))
    }

    fn status_frame(&self, status: u16, headers: &[u8]) -> Result<Option<Frame>, LogError> {
        match status {
            // 404 No Messages (no_wait, nothing left); 408 Request Timeout (expired, or a no_wait
            // request that delivered fewer than it asked for).
            404 => Ok(Some(Frame::RequestEnded { no_messages: true })),
            408 => Ok(Some(Frame::RequestEnded { no_messages: false })),
            // On a cluster the new consumer may live on another node, and its interest in the pull
            // subject reaches this node a moment after the consumer was created.
            503 => Ok(Some(Frame::NoResponders)),
            // Idle heartbeats and flow control are not asked for, but harmless.
            100 => Ok(Some(Frame::Other)),
            _ => Err(protocol_error(
                "reading from the log",
                format!(
                    "the server ended the pull request: {}",
                    String::from_utf8_lossy(headers).trim()
                ),
            )),
        }
    }
}

impl Drop for DirectPull {
    fn drop(&mut self) {
        // Delete the ephemeral consumer now rather than after its inactivity threshold; if this
        // fails (no runtime, server gone), the server removes it by itself.
        if let Some((stream, name)) = self.consumer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }
}

/// What one frame meant.
enum Frame {
    Message(DirectMessage),
    RequestEnded {
        no_messages: bool,
    },
    /// 503 No Responders: nothing answers the consumer's pull subject on this server yet.
    NoResponders,
    /// The server's keep-alive; it drops a client that leaves pings unanswered.
    Ping,
    Other,
}

/// Connects and exchanges INFO, CONNECT and PING/PONG; `None` when this server is not the one the
/// client is connected to, or the handshake fails for any reason (the caller falls back).
async fn handshake(target: &DirectTarget) -> Option<(TcpStream, BytesMut)> {
    let attempt = async {
        let mut socket = TcpStream::connect(&target.address).await.ok()?;
        socket.set_nodelay(true).ok()?;
        let mut buffer = BytesMut::with_capacity(256 * 1024);
        let info_end = loop {
            if let Some(end) = find_crlf(&buffer) {
                break end;
            }
            if socket.read_buf(&mut buffer).await.ok()? == 0 {
                return None;
            }
        };
        let info: serde_json::Value =
            serde_json::from_slice(buffer[..info_end].strip_prefix(b"INFO ")?).ok()?;
        let same_server = info.get("server_id")?.as_str()? == target.server_id;
        let plain = !info
            .get("auth_required")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
            && !info
                .get("tls_required")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
        if !(same_server && plain) {
            return None;
        }
        buffer.advance(info_end + 2);
        socket
            .write_all(
                b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\
                  \"no_responders\":true,\"protocol\":1,\"lang\":\"rust\",\
                  \"name\":\"claimledger-log-direct\"}\r\nPING\r\n",
            )
            .await
            .ok()?;
        loop {
            if let Some(end) = find_crlf(&buffer) {
                let line = buffer.split_to(end + 2);
                match &line[..end] {
                    b"PONG" => return Some((socket, buffer)),
                    b"+OK" => continue,
                    _ => return None,
                }
            }
            if socket.read_buf(&mut buffer).await.ok()? == 0 {
                return None;
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(Some(connected)) => Some(connected),
        Ok(None) | Err(_) => {
            tracing::info!(
                address = %target.address,
                "no direct connection for bulk reads; reading through async-nats"
            );
            None
        }
    }
}

/// The position of the first "\r\n". memchr's SIMD search: this runs once or more per message.
fn find_crlf(buffer: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(offset) = memchr::memchr(b'\r', &buffer[start..]) {
        let at = start + offset;
        match buffer.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => start = at + 1,
            None => return None,
        }
    }
    None
}

/// The fields of a `MSG`/`HMSG` line, as ranges into the line.
#[derive(Debug, PartialEq, Eq)]
struct MessageLine {
    subject: std::ops::Range<usize>,
    reply: std::ops::Range<usize>,
    header_len: usize,
    total_len: usize,
}

/// Parses `HMSG <subject> <sid> [reply] <header len> <total len>` or
/// `MSG <subject> <sid> [reply] <len>`.
fn parse_message_line(line: &[u8]) -> Result<MessageLine, LogError> {
    let bad = || {
        protocol_error(
            "reading from the log",
            format!("malformed message line {:?}", String::from_utf8_lossy(line)),
        )
    };
    let with_headers = line.starts_with(b"HMSG ");
    let mut fields: [std::ops::Range<usize>; 6] = Default::default();
    let mut count = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b' ', line).chain(std::iter::once(line.len())) {
        // Runs of spaces give empty fields, which are skipped.
        if start < end {
            if count == fields.len() {
                return Err(bad());
            }
            fields[count] = start..end;
            count += 1;
        }
        start = end + 1;
    }
    let number = |range: &std::ops::Range<usize>| -> Result<usize, LogError> {
        std::str::from_utf8(&line[range.clone()])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(bad)
    };
    // fields[0] is the verb, [1] the subject, [2] the sid.
    let (reply, header_len, total_len) = match (with_headers, count) {
        (true, 5) => (0..0, number(&fields[3])?, number(&fields[4])?),
        (true, 6) => (fields[3].clone(), number(&fields[4])?, number(&fields[5])?),
        (false, 4) => (0..0, 0, number(&fields[3])?),
        (false, 5) => (fields[3].clone(), 0, number(&fields[4])?),
        _ => return Err(bad()),
    };
    if header_len > total_len {
        return Err(bad());
    }
    Ok(MessageLine {
        subject: fields[1].clone(),
        reply,
        header_len,
        total_len,
    })
}

/// The status code of a header block that carries one (`NATS/1.0 408 Request Timeout`).
fn status_of(headers: &[u8]) -> Option<u16> {
    let first_line = &headers[..find_crlf(headers).unwrap_or(headers.len())];
    let rest = first_line.strip_prefix(b"NATS/1.0")?;
    let code = rest.trim_ascii_start().get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Stream sequence, consumer sequence and pending count from a JetStream ack subject, in either
/// form: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>` or the form with
/// domain and account hash (`$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>
/// .<time>.<pending>.<token>`).
fn ack_reply_positions(reply: &[u8]) -> Option<(u64, u64, u64)> {
    // Called for every message: tokens go into a fixed array, not a vector, and are read as bytes
    // (the numbers are ASCII digits; nothing here needs the subject as text).
    let mut tokens: [&[u8]; 12] = [&[]; 12];
    let mut count = 0;
    for token in reply.split(|&byte| byte == b'.') {
        *tokens.get_mut(count)? = token;
        count += 1;
    }
    if tokens[0] != b"$JS" || tokens[1] != b"ACK" {
        return None;
    }
    let offset = match count {
        9 => 2,
        11 | 12 => 4,
        _ => return None,
    };
    let number = |index: usize| decimal(tokens[offset + index]);
    Some((number(3)?, number(4)?, number(6)?))
}

/// An unsigned decimal number made only of ASCII digits.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lines_parse_with_and_without_reply_and_headers() {
        let line = b"HMSG ev.a.b 1 $JS.ACK.S.C.1.10.1.1700000000.5 40 120";
        let parsed = parse_message_line(line).expect("a valid line");
        assert_eq!(&line[parsed.subject.clone()], b"ev.a.b");
        assert_eq!(
            &line[parsed.reply.clone()],
            b"$JS.ACK.S.C.1.10.1.1700000000.5"
        );
        assert_eq!((parsed.header_len, parsed.total_len), (40, 120));
        let parsed = parse_message_line(b"HMSG _INBOX.x 1 16 16").expect("a status line");
        assert!(parsed.reply.is_empty());
        assert_eq!((parsed.header_len, parsed.total_len), (16, 16));
        let parsed = parse_message_line(b"MSG a 1 r 7").expect("a plain message");
        assert_eq!((parsed.header_len, parsed.total_len), (0, 7));
        let spaced = b"MSG  a   1 r 7 ";
        let parsed = parse_message_line(spaced).expect("runs of spaces separate fields too");
        assert_eq!(&spaced[parsed.subject.clone()], b"a");
        assert_eq!(&spaced[parsed.reply.clone()], b"r");
        for bad in [
            &b"HMSG a 1"[..],
            b"HMSG a 1 r x 5",
            b"HMSG a 1 r 9 5",
            b"MSG a 1 r 5 6 7",
            b"HMSG a 1 r 5 6 7 8",
        ] {
            assert!(parse_message_line(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn ack_subjects_give_stream_and_consumer_sequences_in_both_forms() {
        assert_eq!(
            ack_reply_positions(b"$JS.ACK.LOG.c1.1.42.7.1700000000000.99"),
            Some((42, 7, 99))
        );
        assert_eq!(
            ack_reply_positions(b"$JS.ACK.hub.ACC.LOG.c1.1.42.7.1700000000000.99.tok"),
            Some((42, 7, 99))
        );
        assert_eq!(ack_reply_positions(b"_INBOX.abc"), None);
        assert_eq!(ack_reply_positions(b"$JS.ACK.LOG.c1.1.x.7.1.0"), None);
        assert_eq!(ack_reply_positions(b"$JS.ACK.LOG.c1.1.+4.7.1.0"), None);
        assert_eq!(ack_reply_positions(b"$JS.ACK.LOG.c1.1..7.1.0"), None);
        assert_eq!(
            ack_reply_positions(b"$JS.ACK.LOG.c1.1.99999999999999999999.7.1.0"),
            None
        );
    }

    #[test]
    fn status_codes_come_from_the_version_line() {
        assert_eq!(
            status_of(b"NATS/1.0 408 Request Timeout\r\n\r\n"),
            Some(408)
        );
        assert_eq!(status_of(b"NATS/1.0 404 No Messages\r\n\r\n"), Some(404));
        assert_eq!(status_of(b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n"), None);
    }

    #[test]
    fn crlf_is_found_only_as_a_pair() {
        assert_eq!(find_crlf(b"ab\rc\r\n"), Some(4));
        assert_eq!(find_crlf(b"ab\r"), None);
        assert_eq!(find_crlf(b"abc"), None);
        assert_eq!(find_crlf(b"\r\r\n"), Some(1));
        assert_eq!(find_crlf(b"\n\r"), None);
    }
}
