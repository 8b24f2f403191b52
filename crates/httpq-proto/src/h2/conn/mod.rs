//! One HTTP/2 server connection, sans-IO: bytes from the client go in,
//! events (requests, body, resets) and frames for the client come out.
//! Stream states, flow control both ways, settings, limits and every
//! connection and stream error of RFC 9113 are decided here.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::frame::{self, code, flag, kind, setting, Head, HEADER_LEN, MAX_WINDOW, PREFACE};
use super::hpack::{Decoder, HeadError, RequestFields};

mod send;

/// What the server offers and enforces (sent in its SETTINGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: more are refused (REFUSED_STREAM).
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a larger request is answered 431.
    pub max_header_list_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: request body a stream may have unread.
    pub initial_window_size: u32,
    /// The connection's receive window, over all streams.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload accepted.
    pub max_frame_size: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_concurrent_streams: 100,
            max_header_list_size: 64 * 1024,
            initial_window_size: 1024 * 1024,
            connection_window_size: 4 * 1024 * 1024,
            max_frame_size: frame::DEFAULT_MAX_FRAME,
        }
    }
}

/// What the client did, in the order it did it.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A new stream's request head. `Err(TooLarge)`: the head exceeded
    /// the header list limit; the server should answer 431.
    Request {
        stream: u32,
        head: Result<RequestFields, HeadError>,
        /// No body follows.
        end_stream: bool,
    },
    /// Request body. Its bytes hold the stream's and the connection's
    /// windows until [`Conn::release`] gives them back.
    Data {
        stream: u32,
        data: Bytes,
        end_stream: bool,
    },
    /// A stream the server was told of ended before both sides finished:
    /// the client's RST_STREAM (`remote`), or a stream error the engine
    /// found and answered with RST_STREAM.
    Reset {
        stream: u32,
        code: u32,
        remote: bool,
    },
    /// A new stream was refused before the server saw it (malformed
    /// head, too many streams); it was answered with RST_STREAM `code`.
    Refused {
        stream: u32,
        code: u32,
        why: &'static str,
    },
    /// The client sent GOAWAY: it opens no more streams.
    GoAway { code: u32 },
}

/// The connection failed: GOAWAY with `code` is queued; write the output
/// and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnError {
    pub code: u32,
    pub why: &'static str,
}

/// The stream is no longer open for what was asked (reset, or its
/// response already complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamGone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    /// No response yet.
    Idle,
    /// The response began; body may follow.
    Open,
    /// END_STREAM was queued.
    Done,
}

struct Stream {
    id: u32,
    /// The client may send more (not half-closed remote).
    recv_open: bool,
    recv_window: i64,
    /// Bytes the server took and gave back, not yet announced.
    unacked: u32,
    /// Body delivered to the server, not yet given back.
    unreleased: u64,
    content_length: Option<u64>,
    received: u64,
    send: Send,
    send_window: i64,
    /// Body waiting for window; `true`: END_STREAM goes with the piece.
    pending: VecDeque<(Bytes, bool)>,
    pending_len: usize,
    /// In the connection's list of streams waiting for its window.
    blocked: bool,
    /// Reset with this code once the response is all sent.
    reset_after: Option<u32>,
}

/// A header block being gathered from HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    /// The HEADERS frame named its own stream as its dependency.
    self_dependent: bool,
    buf: Vec<u8>,
}

/// One HTTP/2 connection, server side.
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::h2::{Config, Conn, Event};
/// let mut conn = Conn::new(Config::default());
/// let mut out = Vec::new();
/// conn.take_output(&mut out); // the server's SETTINGS
/// let mut input = BytesMut::from(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0"[..]);
/// conn.recv(&mut input).unwrap();
/// assert!(conn.poll_event().is_none());
/// ```
pub struct Conn {
    cfg: Config,
    /// Preface bytes still expected.
    preface: usize,
    /// The client's first SETTINGS came.
    settled: bool,
    decoder: Decoder,
    streams: Vec<Stream>,
    /// The highest stream id the client opened.
    last_client: u32,
    /// After our GOAWAY: streams above this id are ignored.
    goaway_last: Option<u32>,
    block: Option<Block>,
    recv_window: i64,
    /// Connection-level bytes given back, not yet announced.
    unacked: u32,
    send_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// Streams waiting for the connection's window, in order.
    blocked: VecDeque<u32>,
    events: VecDeque<Event>,
    out: BytesMut,
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    chunks_len: usize,
    /// Streams that sent queued body since the last look.
    progressed: Vec<u32>,
    failed: Option<ConnError>,
    /// Where a response's header block is built.
    scratch: Vec<u8>,
    /// The client acknowledged our SETTINGS (until then it may send as
    /// if stream windows were the default 65,535).
    acked: bool,
    /// Bytes of answers the client asked for (PING and SETTINGS acks,
    /// resets) since the output was last taken.
    owed: usize,
    /// Streams this side reset or refused lately: what the client sent
    /// on them before it learned so is ignored, not an error (§5.1).
    recent: VecDeque<u32>,
    /// The client lowered SETTINGS_HEADER_TABLE_SIZE: the next response
    /// block begins with a table size update (RFC 7541 §4.2).
    table_size_update: Option<u32>,
}

/// How many reset or refused stream ids are remembered.
const RECENT: usize = 128;

/// DATA payloads up to this size are copied into the output buffer;
/// larger ones go out as their own buffer (no copy).
const COPY_MAX: usize = 4096;

/// Frames awaiting the client past this many bytes, while it keeps
/// asking for answers (PING, SETTINGS, resets), mean it does not read:
/// ENHANCE_YOUR_CALM.
const MAX_UNREAD_OUTPUT: usize = 1 << 20;

impl Conn {
    /// A connection whose server preface (SETTINGS) is already queued.
    pub fn new(cfg: Config) -> Conn {
        let max = MAX_WINDOW as u32;
        let cfg = Config {
            max_concurrent_streams: cfg.max_concurrent_streams,
            max_header_list_size: cfg.max_header_list_size,
            initial_window_size: cfg.initial_window_size.min(max),
            connection_window_size: cfg.connection_window_size.min(max),
            max_frame_size: cfg
                .max_frame_size
                .clamp(frame::DEFAULT_MAX_FRAME, (1 << 24) - 1),
        };
        let mut out = BytesMut::with_capacity(4096);
        let mut settings = vec![
            (setting::MAX_CONCURRENT_STREAMS, cfg.max_concurrent_streams),
            (setting::MAX_HEADER_LIST_SIZE, cfg.max_header_list_size),
        ];
        if cfg.initial_window_size != frame::DEFAULT_WINDOW {
            settings.push((setting::INITIAL_WINDOW_SIZE, cfg.initial_window_size));
        }
        if cfg.max_frame_size != frame::DEFAULT_MAX_FRAME {
            settings.push((setting::MAX_FRAME_SIZE, cfg.max_frame_size));
        }
        frame::put_settings(&mut out, &settings);
        let mut recv_window = i64::from(frame::DEFAULT_WINDOW);
        if cfg.connection_window_size > frame::DEFAULT_WINDOW {
            frame::put_window_update(
                &mut out,
                0,
                cfg.connection_window_size - frame::DEFAULT_WINDOW,
            );
            recv_window = i64::from(cfg.connection_window_size);
        }
        Conn {
            decoder: Decoder::new(cfg.max_header_list_size),
            cfg,
            preface: PREFACE.len(),
            settled: false,
            streams: Vec::new(),
            last_client: 0,
            goaway_last: None,
            block: None,
            recv_window,
            unacked: 0,
            send_window: i64::from(frame::DEFAULT_WINDOW),
            peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
            peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
            blocked: VecDeque::new(),
            events: VecDeque::new(),
            out,
            chunks: VecDeque::new(),
            chunks_len: 0,
            progressed: Vec::new(),
            failed: None,
            scratch: Vec::new(),
            acked: false,
            owed: 0,
            recent: VecDeque::new(),
            table_size_update: None,
        }
    }

    /// Takes in what the client sent: whole frames are consumed from
    /// `input`, a partial one is left for the next call. After an error
    /// the connection takes nothing more.
    pub fn recv(&mut self, input: &mut BytesMut) -> Result<(), ConnError> {
        if let Some(e) = self.failed {
            input.clear();
            return Err(e);
        }
        let r = self.recv_frames(input);
        if let Err(e) = r {
            self.failed = Some(e);
            self.block = None;
            let last = self.goaway_last.unwrap_or(self.last_client);
            frame::put_goaway(&mut self.out, last, e.code);
            input.clear();
        }
        r
    }

    fn recv_frames(&mut self, input: &mut BytesMut) -> Result<(), ConnError> {
        if self.preface > 0 {
            let at = PREFACE.len() - self.preface;
            let n = self.preface.min(input.len());
            if input[..n] != PREFACE[at..at + n] {
                return Err(err(code::PROTOCOL_ERROR, "invalid connection preface"));
            }
            input.advance(n);
            self.preface -= n;
            if self.preface > 0 {
                return Ok(());
            }
        }
        while input.len() >= HEADER_LEN {
            let head = Head::parse(input);
            if head.len > self.cfg.max_frame_size as usize {
                return Err(err(
                    code::FRAME_SIZE_ERROR,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            if input.len() < HEADER_LEN + head.len {
                input.reserve(HEADER_LEN + head.len - input.len());
                break;
            }
            if !self.settled && (head.kind != kind::SETTINGS || head.has(flag::ACK)) {
                return Err(err(code::PROTOCOL_ERROR, "the first frame is not SETTINGS"));
            }
            if self.block.is_some() && head.kind != kind::CONTINUATION {
                return Err(err(code::PROTOCOL_ERROR, "a header block was interrupted"));
            }
            if head.kind == kind::DATA {
                let frame = input.split_to(HEADER_LEN + head.len).freeze();
                self.on_data(head, frame.slice(HEADER_LEN..))?;
            } else {
                let r = self.on_frame(head, &input[HEADER_LEN..HEADER_LEN + head.len]);
                input.advance(HEADER_LEN + head.len);
                r?;
            }
        }
        Ok(())
    }

    fn on_frame(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        match head.kind {
            kind::HEADERS => self.on_headers(head, payload),
            kind::CONTINUATION => self.on_continuation(head, payload),
            kind::PRIORITY => self.on_priority(head, payload),
            kind::RST_STREAM => self.on_rst(head, payload),
            kind::SETTINGS => self.on_settings(head, payload),
            kind::PING => self.on_ping(head, payload),
            kind::GOAWAY => {
                if head.stream != 0 {
                    return Err(err(code::PROTOCOL_ERROR, "GOAWAY on a stream"));
                }
                if payload.len() < 8 {
                    return Err(err(code::FRAME_SIZE_ERROR, "short GOAWAY"));
                }
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                self.events.push_back(Event::GoAway { code });
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(head, payload),
            kind::PUSH_PROMISE => Err(err(code::PROTOCOL_ERROR, "PUSH_PROMISE from a client")),
            // Unknown types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// An id the client has not opened yet.
    fn idle(&self, id: u32) -> bool {
        id > self.last_client
    }

    fn on_headers(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        let id = head.stream;
        if id == 0 {
            return Err(err(code::PROTOCOL_ERROR, "HEADERS on stream 0"));
        }
        if id % 2 == 0 {
            return Err(err(code::PROTOCOL_ERROR, "a client stream with an even id"));
        }
        let (start, end) = frame::unpad(head.flags, payload)
            .ok_or(err(code::PROTOCOL_ERROR, "padding exceeds the frame"))?;
        let mut fragment = &payload[start..end];
        let mut self_dependent = false;
        if head.has(flag::PRIORITY) {
            if fragment.len() < 5 {
                return Err(err(code::FRAME_SIZE_ERROR, "short priority in HEADERS"));
            }
            let dep = u32::from_be_bytes([fragment[0], fragment[1], fragment[2], fragment[3]])
                & 0x7fff_ffff;
            self_dependent = dep == id;
            fragment = &fragment[5..];
        }
        let end_stream = head.has(flag::END_STREAM);
        if head.has(flag::END_HEADERS) {
            return self.on_block(id, end_stream, self_dependent, fragment);
        }
        self.block = Some(Block {
            stream: id,
            end_stream,
            self_dependent,
            buf: fragment.to_vec(),
        });
        Ok(())
    }

    fn on_continuation(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        let Some(block) = self.block.as_mut() else {
            return Err(err(
                code::PROTOCOL_ERROR,
                "CONTINUATION without a header block",
            ));
        };
        if head.stream != block.stream {
            return Err(err(code::PROTOCOL_ERROR, "CONTINUATION on another stream"));
        }
        // A block this much larger than the decoded list may be is a
        // CONTINUATION flood, not a request.
        let cap = (self.cfg.max_header_list_size as usize)
            .saturating_mul(2)
            .max(64 * 1024);
        if block.buf.len() + payload.len() > cap {
            return Err(err(code::ENHANCE_YOUR_CALM, "header block too large"));
        }
        block.buf.extend_from_slice(payload);
        if head.has(flag::END_HEADERS) {
            let b = self.block.take().expect("checked above");
            return self.on_block(b.stream, b.end_stream, b.self_dependent, &b.buf);
        }
        Ok(())
    }

    /// A whole header block for stream `id`.
    fn on_block(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
    ) -> Result<(), ConnError> {
        let compression = |_| err(code::COMPRESSION_ERROR, "undecodable header block");
        if let Some(i) = self.find(id) {
            // Trailers, or HEADERS after the client ended its side.
            let trailers = self.decoder.trailers(block).map_err(compression)?;
            if !self.streams[i].recv_open {
                self.stream_error(id, code::STREAM_CLOSED);
            } else if !end_stream || trailers.is_err() || self_dependent {
                self.stream_error(id, code::PROTOCOL_ERROR);
            } else {
                self.recv_end(i, Bytes::new())?;
            }
            return Ok(());
        }
        if !self.idle(id) {
            let _ = self.decoder.trailers(block).map_err(compression)?;
            if self.was_reset(id) {
                return Ok(());
            }
            return Err(err(code::STREAM_CLOSED, "HEADERS on a closed stream"));
        }
        let decoded = self.decoder.request(block).map_err(compression)?;
        self.last_client = id;
        if self.goaway_last.is_some_and(|last| id > last) {
            return Ok(());
        }
        let refuse = |conn: &mut Conn, code, why| {
            conn.put_rst(id, code);
            conn.events.push_back(Event::Refused {
                stream: id,
                code,
                why,
            });
            conn.calm()
        };
        if self_dependent {
            return refuse(self, code::PROTOCOL_ERROR, "a stream depends on itself");
        }
        if self.streams.len() >= self.cfg.max_concurrent_streams as usize {
            return refuse(self, code::REFUSED_STREAM, "too many concurrent streams");
        }
        if let Err(HeadError::Malformed(why)) = decoded {
            return refuse(self, code::PROTOCOL_ERROR, why);
        }
        let content_length = decoded.as_ref().ok().and_then(|f| f.content_length);
        if end_stream && content_length.is_some_and(|n| n > 0) {
            return refuse(self, code::PROTOCOL_ERROR, "content-length without a body");
        }
        self.streams.push(Stream {
            id,
            recv_open: !end_stream,
            // Before our SETTINGS are acknowledged the client may use
            // the default window.
            recv_window: i64::from(if self.acked {
                self.cfg.initial_window_size
            } else {
                self.cfg.initial_window_size.max(frame::DEFAULT_WINDOW)
            }),
            unacked: 0,
            unreleased: 0,
            content_length,
            received: 0,
            send: Send::Idle,
            send_window: self.peer_initial_window,
            pending: VecDeque::new(),
            pending_len: 0,
            blocked: false,
            reset_after: None,
        });
        self.events.push_back(Event::Request {
            stream: id,
            head: decoded,
            end_stream,
        });
        Ok(())
    }

    fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        let id = head.stream;
        if id == 0 {
            return Err(err(code::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let (start, end) = frame::unpad(head.flags, &payload)
            .ok_or(err(code::PROTOCOL_ERROR, "padding exceeds the frame"))?;
        let len = payload.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(err(
                code::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        let Some(i) = self.find(id) else {
            if self.idle(id) {
                return Err(err(code::PROTOCOL_ERROR, "DATA on an idle stream"));
            }
            // A stream already closed: its bytes go back to the
            // connection's window at once. One this side reset lately
            // may still get DATA the client sent before it knew.
            self.give_back_conn(len as u32);
            if !self.was_reset(id) {
                self.stream_error(id, code::STREAM_CLOSED);
            }
            return self.calm();
        };
        // Small or padded data is copied out: a slice would keep its whole
        // frame (and the read buffer around it) alive while the window
        // counts only the data.
        let data = if end - start >= COPY_MAX * 2 && start == 0 && end == payload.len() {
            payload.slice(start..end)
        } else {
            Bytes::copy_from_slice(&payload[start..end])
        };
        let s = &mut self.streams[i];
        let fault = if !s.recv_open {
            Some(code::STREAM_CLOSED)
        } else {
            s.recv_window -= len;
            s.received += data.len() as u64;
            if s.recv_window < 0 {
                Some(code::FLOW_CONTROL_ERROR)
            } else if s.content_length.is_some_and(|n| s.received > n) {
                Some(code::PROTOCOL_ERROR)
            } else {
                None
            }
        };
        if let Some(code) = fault {
            self.give_back_conn(len as u32);
            self.stream_error(id, code);
            return self.calm();
        }
        // Padding is given back at once; the data when the server reads it.
        let pad = payload.len() - data.len();
        s.unreleased += payload.len() as u64;
        if pad > 0 {
            self.release(id, pad);
        }
        if head.has(flag::END_STREAM) {
            return self.recv_end(i, data);
        }
        if !data.is_empty() {
            self.events.push_back(Event::Data {
                stream: id,
                data,
                end_stream: false,
            });
        }
        Ok(())
    }

    /// The client ended its side of stream `i`, with its last `data`.
    fn recv_end(&mut self, i: usize, data: Bytes) -> Result<(), ConnError> {
        let s = &mut self.streams[i];
        let id = s.id;
        if s.content_length.is_some_and(|n| n != s.received) {
            self.stream_error(id, code::PROTOCOL_ERROR);
            return Ok(());
        }
        s.recv_open = false;
        self.events.push_back(Event::Data {
            stream: id,
            data,
            end_stream: true,
        });
        // Done with nothing left waiting for window: the stream is over.
        // Body still waiting goes out first (`flush` closes it then).
        if s.send == Send::Done && s.pending.is_empty() {
            self.close(i);
        }
        Ok(())
    }

    fn on_priority(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(err(code::PROTOCOL_ERROR, "PRIORITY on stream 0"));
        }
        if payload.len() != 5 {
            if self.idle(head.stream) {
                // No RST_STREAM may go to an idle stream (§6.4).
                return Err(err(code::FRAME_SIZE_ERROR, "PRIORITY of a wrong length"));
            }
            self.stream_error(head.stream, code::FRAME_SIZE_ERROR);
            return self.calm();
        }
        let dep =
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
        if dep == head.stream {
            self.stream_error(head.stream, code::PROTOCOL_ERROR);
            return self.calm();
        }
        Ok(())
    }

    fn on_rst(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(err(code::PROTOCOL_ERROR, "RST_STREAM on stream 0"));
        }
        if payload.len() != 4 {
            return Err(err(code::FRAME_SIZE_ERROR, "RST_STREAM of the wrong size"));
        }
        if self.idle(head.stream) {
            return Err(err(code::PROTOCOL_ERROR, "RST_STREAM on an idle stream"));
        }
        let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        if let Some(i) = self.find(head.stream) {
            self.close(i);
            self.events.push_back(Event::Reset {
                stream: head.stream,
                code,
                remote: true,
            });
        }
        Ok(())
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(err(code::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if head.has(flag::ACK) {
            if !payload.is_empty() {
                return Err(err(code::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"));
            }
            self.acked = true;
            return Ok(());
        }
        if payload.len() % 6 != 0 {
            return Err(err(code::FRAME_SIZE_ERROR, "SETTINGS of a wrong length"));
        }
        self.settled = true;
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(err(code::PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > MAX_WINDOW {
                        return Err(err(
                            code::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE too large",
                        ));
                    }
                    let delta = i64::from(value) - self.peer_initial_window;
                    self.peer_initial_window = i64::from(value);
                    for st in &mut self.streams {
                        st.send_window += delta;
                        if st.send_window > MAX_WINDOW {
                            return Err(err(
                                code::FLOW_CONTROL_ERROR,
                                "a stream window overflowed",
                            ));
                        }
                    }
                    if delta > 0 {
                        let ids: Vec<u32> = self
                            .streams
                            .iter()
                            .filter(|s| s.pending_len > 0 || !s.pending.is_empty())
                            .map(|s| s.id)
                            .collect();
                        for id in ids {
                            self.flush(id, true);
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=(1 << 24) - 1).contains(&value) {
                        return Err(err(
                            code::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The encoder never inserts into the dynamic table, but a
                // smaller table must still be signalled to the client's
                // decoder before the next block (nghttp2 insists).
                setting::HEADER_TABLE_SIZE if value < 4096 => {
                    let v = self.table_size_update.map_or(value, |u| u.min(value));
                    self.table_size_update = Some(v);
                }
                // The rest concern a client's limits on pushes and fields
                // this server does not exceed.
                setting::HEADER_TABLE_SIZE
                | setting::MAX_CONCURRENT_STREAMS
                | setting::MAX_HEADER_LIST_SIZE => {}
                _ => {}
            }
        }
        frame::put_head(&mut self.out, 0, kind::SETTINGS, flag::ACK, 0);
        self.owed += HEADER_LEN;
        self.calm()
    }

    fn on_ping(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(err(code::PROTOCOL_ERROR, "PING on a stream"));
        }
        if payload.len() != 8 {
            return Err(err(code::FRAME_SIZE_ERROR, "PING of a wrong length"));
        }
        if !head.has(flag::ACK) {
            frame::put_head(&mut self.out, 8, kind::PING, flag::ACK, 0);
            self.out.put_slice(payload);
            self.owed += HEADER_LEN + 8;
            return self.calm();
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if payload.len() != 4 {
            return Err(err(
                code::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE of a wrong length",
            ));
        }
        let inc = i64::from(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff,
        );
        if head.stream == 0 {
            if inc == 0 {
                return Err(err(code::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            self.send_window += inc;
            if self.send_window > MAX_WINDOW {
                return Err(err(
                    code::FLOW_CONTROL_ERROR,
                    "the connection window overflowed",
                ));
            }
            for _ in 0..self.blocked.len() {
                let Some(id) = self.blocked.pop_front() else {
                    break;
                };
                if let Some(i) = self.find(id) {
                    self.streams[i].blocked = false;
                    self.flush(id, true);
                }
            }
            return Ok(());
        }
        if self.idle(head.stream) {
            return Err(err(code::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream"));
        }
        let Some(i) = self.find(head.stream) else {
            return Ok(());
        };
        if inc == 0 {
            self.stream_error(head.stream, code::PROTOCOL_ERROR);
            return self.calm();
        }
        let s = &mut self.streams[i];
        s.send_window += inc;
        if s.send_window > MAX_WINDOW {
            self.stream_error(head.stream, code::FLOW_CONTROL_ERROR);
            return self.calm();
        }
        self.flush(head.stream, true);
        Ok(())
    }

    /// Frames for the client are piling up unread while it asks for more.
    fn calm(&self) -> Result<(), ConnError> {
        if self.owed > MAX_UNREAD_OUTPUT {
            return Err(err(
                code::ENHANCE_YOUR_CALM,
                "the client asks for answers it does not read",
            ));
        }
        Ok(())
    }

    /// Queues RST_STREAM, and remembers the stream was reset.
    fn put_rst(&mut self, id: u32, code: u32) {
        frame::put_rst(&mut self.out, id, code);
        self.owed += HEADER_LEN + 4;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }

    /// Whether this side reset or refused stream `id` lately, or ignored
    /// it after GOAWAY.
    fn was_reset(&self, id: u32) -> bool {
        self.goaway_last.is_some_and(|last| id > last) || self.recent.contains(&id)
    }

    /// Ends stream `id` with RST_STREAM `code` (a stream error).
    fn stream_error(&mut self, id: u32, code: u32) {
        self.put_rst(id, code);
        if let Some(i) = self.find(id) {
            self.close(i);
            self.events.push_back(Event::Reset {
                stream: id,
                code,
                remote: false,
            });
        }
    }

    /// Forgets stream `i`; body the server had not given back returns
    /// to the connection's window.
    fn close(&mut self, i: usize) {
        let s = self.streams.swap_remove(i);
        self.give_back_conn(s.unreleased.min(u64::from(u32::MAX)) as u32);
    }

    fn give_back_conn(&mut self, n: u32) {
        self.unacked = self.unacked.saturating_add(n);
        if self.unacked >= self.cfg.connection_window_size.max(frame::DEFAULT_WINDOW) / 2 {
            frame::put_window_update(&mut self.out, 0, self.unacked);
            self.recv_window += i64::from(self.unacked);
            self.unacked = 0;
        }
    }
}

fn err(code: u32, why: &'static str) -> ConnError {
    ConnError { code, why }
}
