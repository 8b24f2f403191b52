//! Property tests for the protocol core.
//!
//! - generated valid requests and responses parse to what was generated,
//!   whole, split at every byte boundary, and fed byte by byte;
//! - head encoders round-trip through the parsers;
//! - the chunked decoder agrees with a tiny reference decoder on random valid
//!   encodings fed in random pieces, and `ChunkedEncoder` output decodes back.

mod support;

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use support::{pieces, read_body, read_request_head};

use httpq_proto::{
    encode_request_head, encode_response_head, BodyDecoder, BodyLength, ChunkedDecoder,
    ChunkedEncoder, Error, Limits, RequestHead, RequestParser, ResponseParser, Version,
};

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Field names with framing or connection meaning; generated names avoid them
/// (the tests add those fields deliberately).
const SPECIAL: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
    "upgrade",
];

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn field_name() -> impl Strategy<Value = String> {
    token().prop_map(|n| {
        if SPECIAL.contains(&n.to_ascii_lowercase().as_str()) {
            format!("X-{n}")
        } else {
            n
        }
    })
}

/// A field value: visible ASCII, obs-text, inner SP/HTAB; no surrounding
/// whitespace (parsers trim it, so it would not round-trip).
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            8 => 0x21u8..=0x7e,
            1 => 0x80u8..=0xff,
            2 => Just(b' '),
            1 => Just(b'\t'),
        ],
        0..24,
    )
    .prop_map(|mut v| {
        while v.last().is_some_and(|&b| b == b' ' || b == b'\t') {
            v.pop();
        }
        let lead = v.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        v.drain(..lead);
        v
    })
}

fn fields() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    vec((field_name(), field_value()), 0..8)
}

/// An origin-form target: `/` then visible ASCII other than `#`.
fn origin_target() -> impl Strategy<Value = String> {
    vec(0x21u8..=0x7e, 0..40).prop_map(|v| {
        let mut t = String::from("/");
        t.extend(
            v.into_iter()
                .map(|b| if b == b'#' { 'x' } else { b as char }),
        );
        t
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("HEAD".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        Just("OPTIONS".to_string()),
        Just("PATCH".to_string()),
        Just("M-SEARCH".to_string()),
        Just("PROPFIND".to_string()),
        // unknown methods: any token but CONNECT (which needs authority-form)
        token().prop_filter("CONNECT needs authority-form", |m| m != "CONNECT"),
    ]
}

/// A quoted-string chunk-extension value (qdtext and quoted-pairs).
fn quoted() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            4 => prop_oneof![
                Just(b'\t'),
                Just(b' '),
                Just(b'!'),
                0x23u8..=0x5b,
                0x5du8..=0x7e,
                0x80u8..=0xff
            ]
            .prop_map(|b| vec![b]),
            1 => prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff].prop_map(|b| vec![b'\\', b]),
        ],
        0..8,
    )
    .prop_map(|parts| {
        let mut q = vec![b'"'];
        q.extend(parts.concat());
        q.push(b'"');
        q
    })
}

/// Zero or more chunk extensions, each `;name[=value]` with optional BWS.
fn extensions() -> impl Strategy<Value = Vec<u8>> {
    let item = (
        prop_oneof![Just(""), Just(" "), Just("\t ")],
        token(),
        prop_oneof![
            Just(Vec::new()),
            token().prop_map(|t| format!("={t}").into_bytes()),
            token().prop_map(|t| format!(" = {t}").into_bytes()),
            quoted().prop_map(|q| [&b"="[..], &q].concat()),
        ],
    )
        .prop_map(|(ws, name, val)| [b";", ws.as_bytes(), name.as_bytes(), &val].concat());
    prop_oneof![
        2 => Just(Vec::new()),
        1 => vec(item, 1..3).prop_map(|v| v.concat()),
    ]
}

#[derive(Debug, Clone)]
struct Chunk {
    data: Vec<u8>,
    /// Extra leading zeros on the size.
    pad: usize,
    upper: bool,
    /// Whitespace between the size and the first `;` (only with extensions).
    bws: &'static str,
    ext: Vec<u8>,
}

#[derive(Debug, Clone)]
struct ChunkedBody {
    chunks: Vec<Chunk>,
    last_pad: usize,
    last_ext: Vec<u8>,
    /// Any token names, framing names included: trailers never frame.
    trailers: Vec<(String, Vec<u8>)>,
}

impl ChunkedBody {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.chunks {
            let hex = if c.upper {
                format!("{:X}", c.data.len())
            } else {
                format!("{:x}", c.data.len())
            };
            let pad = c.pad.min(16 - hex.len());
            out.extend(std::iter::repeat_n(b'0', pad));
            out.extend_from_slice(hex.as_bytes());
            if !c.ext.is_empty() {
                out.extend_from_slice(c.bws.as_bytes());
                out.extend_from_slice(&c.ext);
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&c.data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend(std::iter::repeat_n(b'0', 1 + self.last_pad));
        out.extend_from_slice(&self.last_ext);
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.trailers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn body(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.data.clone()).collect()
    }

    fn trailers(&self) -> Vec<(String, Vec<u8>)> {
        sorted(
            self.trailers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
        )
    }
}

fn chunked_body() -> impl Strategy<Value = ChunkedBody> {
    let chunk = (
        vec(any::<u8>(), 1..40),
        0usize..16,
        any::<bool>(),
        prop_oneof![Just(""), Just(" "), Just("\t"), Just(" \t ")],
        extensions(),
    )
        .prop_map(|(data, pad, upper, bws, ext)| Chunk {
            data,
            pad,
            upper,
            bws,
            ext,
        });
    (
        vec(chunk, 0..5),
        0usize..4,
        extensions(),
        vec((token(), field_value()), 0..3),
    )
        .prop_map(|(chunks, last_pad, last_ext, trailers)| ChunkedBody {
            chunks,
            last_pad,
            last_ext,
            trailers,
        })
}

/// Bytes after a message: nothing, the next request, or garbage.
fn trailing() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"GET /next HTTP/1.1\r\nHost: b\r\n\r\n".to_vec()),
        vec(any::<u8>(), 1..16),
    ]
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Parsing a message from pieces
// ---------------------------------------------------------------------------

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// What a parse produced, for comparison with what was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// Request: method. Response: interim statuses then the status, as text.
    start: Vec<Vec<u8>>,
    version: Version,
    headers: Fields,
    framing: BodyLength,
    keep_alive: bool,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    rest: Vec<u8>,
}

type SortedBody = (Vec<u8>, Vec<(String, Vec<u8>)>, Vec<u8>);

/// The body, its trailers as sorted (name, value) pairs, and what follows.
fn read_body_sorted<'a>(
    dec: BodyDecoder,
    buf: &mut BytesMut,
    pieces: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<SortedBody, Error> {
    let (body, trailers, rest) = read_body(dec, buf, pieces)?;
    let trailers = trailers
        .map(|m| {
            m.iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Ok((body, sorted(trailers), rest))
}

fn parse_request(input: &[u8], cuts: &[usize]) -> Result<Message, Error> {
    let limits = Limits::default();
    let mut pieces = pieces(input, cuts).into_iter();
    let mut buf = BytesMut::new();
    let head = read_request_head(limits, &mut buf, &mut pieces)?;
    let (body, trailers, rest) = read_body_sorted(
        BodyDecoder::new(head.body(), &limits),
        &mut buf,
        &mut pieces,
    )?;
    Ok(Message {
        start: vec![head.method().to_vec(), head.target().to_vec()],
        version: head.version(),
        headers: head
            .headers()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect(),
        framing: head.body(),
        keep_alive: head.keep_alive(),
        body,
        trailers,
        rest,
    })
}

fn parse_response(input: &[u8], method: &http::Method, cuts: &[usize]) -> Result<Message, Error> {
    let limits = Limits::default();
    let mut pieces = pieces(input, cuts).into_iter();
    let mut parser = ResponseParser::new(limits);
    let mut buf = BytesMut::new();
    let mut start = Vec::new();
    let head = loop {
        match parser.parse(&mut buf, method)? {
            Some(h) if h.is_informational() => start.push(h.status().to_string().into_bytes()),
            Some(h) => break h,
            None => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return Err(Error::IncompleteHead),
            },
        }
    };
    start.push(head.status().to_string().into_bytes());
    start.push(head.reason().to_vec());
    let (body, trailers, rest) = read_body_sorted(
        BodyDecoder::new(head.body(), &limits),
        &mut buf,
        &mut pieces,
    )?;
    Ok(Message {
        start,
        version: head.version(),
        headers: head
            .headers()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect(),
        framing: head.body(),
        keep_alive: head.keep_alive(),
        body,
        trailers,
        rest,
    })
}

/// `parse` gives `expected` whole, split at every byte boundary, and byte by byte.
fn check_all_splits(
    input: &[u8],
    expected: &Message,
    parse: impl Fn(&[usize]) -> Result<Message, Error>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&parse(&[])?, expected, "whole input");
    for k in 0..=input.len() {
        prop_assert_eq!(&parse(&[k])?, expected, "split at {}", k);
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    prop_assert_eq!(&parse(&bytewise)?, expected, "byte by byte");
    Ok(())
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum ReqBody {
    None,
    Length(Vec<u8>),
    Chunked(ChunkedBody),
}

#[derive(Debug, Clone)]
struct GenRequest {
    method: String,
    target: String,
    v11: bool,
    fields: Vec<(String, Vec<u8>)>,
    /// Where the framing field goes among the others.
    framing_at: usize,
    body: ReqBody,
    connection: Option<&'static str>,
    trailing: Vec<u8>,
}

fn gen_request() -> impl Strategy<Value = GenRequest> {
    (
        method(),
        origin_target(),
        any::<bool>(),
        fields(),
        any::<usize>(),
        prop_oneof![
            Just(ReqBody::None),
            vec(any::<u8>(), 0..60).prop_map(ReqBody::Length),
            chunked_body().prop_map(ReqBody::Chunked),
        ],
        prop_oneof![
            Just(None),
            Just(Some("close")),
            Just(Some("keep-alive")),
            Just(Some("Keep-Alive, x-other")),
            Just(Some("x-other")),
        ],
        trailing(),
    )
        .prop_map(
            |(method, target, v11, fields, framing_at, body, connection, trailing)| {
                // HTTP/1.0 has no chunked coding.
                let body = match (v11, body) {
                    (false, ReqBody::Chunked(c)) => ReqBody::Length(c.body()),
                    (_, b) => b,
                };
                GenRequest {
                    method,
                    target,
                    v11,
                    fields,
                    framing_at,
                    body,
                    connection,
                    trailing,
                }
            },
        )
}

impl GenRequest {
    /// The header fields in wire order.
    fn wire_fields(&self) -> Vec<(String, Vec<u8>)> {
        let mut f = Vec::new();
        if self.v11 || !self.fields.is_empty() {
            f.push(("Host".to_string(), b"example.com:8080".to_vec()));
        }
        f.extend(self.fields.iter().cloned());
        let framing = match &self.body {
            ReqBody::None => None,
            ReqBody::Length(b) => Some(("Content-Length", b.len().to_string().into_bytes())),
            ReqBody::Chunked(_) => Some(("Transfer-Encoding", b"chunked".to_vec())),
        };
        if let Some((n, v)) = framing {
            let at = self.framing_at % (f.len() + 1);
            f.insert(at, (n.to_string(), v));
        }
        if let Some(c) = self.connection {
            f.push(("Connection".to_string(), c.as_bytes().to_vec()));
        }
        f
    }

    fn encode(&self) -> Vec<u8> {
        let version = if self.v11 { "HTTP/1.1" } else { "HTTP/1.0" };
        let mut out = format!("{} {} {version}\r\n", self.method, self.target).into_bytes();
        for (n, v) in self.wire_fields() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        match &self.body {
            ReqBody::None => {}
            ReqBody::Length(b) => out.extend_from_slice(b),
            ReqBody::Chunked(c) => out.extend_from_slice(&c.encode()),
        }
        out.extend_from_slice(&self.trailing);
        out
    }

    fn expected(&self) -> Message {
        let conn = self.connection.unwrap_or("").to_ascii_lowercase();
        let keep_alive = if self.v11 {
            !conn.contains("close")
        } else {
            conn.contains("keep-alive")
        };
        let (framing, body, trailers) = match &self.body {
            ReqBody::None => (BodyLength::Empty, Vec::new(), Vec::new()),
            ReqBody::Length(b) if b.is_empty() => (BodyLength::Empty, Vec::new(), Vec::new()),
            ReqBody::Length(b) => (BodyLength::Length(b.len() as u64), b.clone(), Vec::new()),
            ReqBody::Chunked(c) => (BodyLength::Chunked, c.body(), c.trailers()),
        };
        Message {
            start: vec![
                self.method.clone().into_bytes(),
                self.target.clone().into_bytes(),
            ],
            version: if self.v11 {
                Version::Http11
            } else {
                Version::Http10
            },
            headers: self
                .wire_fields()
                .into_iter()
                .map(|(n, v)| (n.into_bytes(), v))
                .collect(),
            framing,
            keep_alive,
            body,
            trailers,
            rest: self.trailing.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum RespBody {
    /// No framing: the body runs to the end of the input.
    Close(Vec<u8>),
    Length(Vec<u8>),
    Chunked(ChunkedBody),
}

#[derive(Debug, Clone)]
struct GenResponse {
    head_request: bool,
    v11: bool,
    interim: Vec<u16>,
    status: u16,
    reason: Vec<u8>,
    fields: Vec<(String, Vec<u8>)>,
    body: RespBody,
    connection: Option<&'static str>,
    trailing: Vec<u8>,
}

fn reason() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![8 => 0x20u8..=0x7e, 1 => Just(b'\t'), 1 => 0x80u8..=0xff],
        0..20,
    )
}

fn gen_response() -> impl Strategy<Value = GenResponse> {
    (
        any::<bool>(),
        any::<bool>(),
        vec(prop_oneof![Just(100u16), Just(102), Just(103)], 0..3),
        prop_oneof![200u16..600, Just(204), Just(304)],
        reason(),
        fields(),
        prop_oneof![
            vec(any::<u8>(), 0..60).prop_map(RespBody::Close),
            vec(any::<u8>(), 0..60).prop_map(RespBody::Length),
            chunked_body().prop_map(RespBody::Chunked),
        ],
        prop_oneof![
            Just(None),
            Just(Some("close")),
            Just(Some("keep-alive")),
            Just(Some("x-other, Keep-Alive"))
        ],
        trailing(),
    )
        .prop_map(
            |(head_request, v11, interim, status, reason, fields, body, connection, trailing)| {
                let (interim, body) = if v11 {
                    (interim, body)
                } else {
                    // HTTP/1.0: no interim responses, no chunked coding.
                    let body = match body {
                        RespBody::Chunked(c) => RespBody::Length(c.body()),
                        b => b,
                    };
                    (Vec::new(), body)
                };
                GenResponse {
                    head_request,
                    v11,
                    interim,
                    status,
                    reason,
                    fields,
                    body,
                    connection,
                    trailing,
                }
            },
        )
}

impl GenResponse {
    fn method(&self) -> http::Method {
        if self.head_request {
            http::Method::HEAD
        } else {
            http::Method::GET
        }
    }

    /// No body bytes follow the head whatever the fields say.
    fn bodiless(&self) -> bool {
        self.head_request || self.status == 204 || self.status == 304
    }

    fn wire_fields(&self) -> Vec<(String, Vec<u8>)> {
        let mut f = self.fields.clone();
        match &self.body {
            RespBody::Close(_) => {}
            RespBody::Length(b) => f.push((
                "Content-Length".to_string(),
                b.len().to_string().into_bytes(),
            )),
            RespBody::Chunked(_) => f.push(("Transfer-Encoding".into(), b"chunked".to_vec())),
        }
        if let Some(c) = self.connection {
            f.push(("Connection".to_string(), c.as_bytes().to_vec()));
        }
        f
    }

    fn encode(&self) -> Vec<u8> {
        let version = if self.v11 { "HTTP/1.1" } else { "HTTP/1.0" };
        let mut out = Vec::new();
        for s in &self.interim {
            out.extend_from_slice(
                format!("HTTP/1.1 {s} Interim\r\nX-Hint: {s}\r\n\r\n").as_bytes(),
            );
        }
        out.extend_from_slice(format!("{version} {} ", self.status).as_bytes());
        out.extend_from_slice(&self.reason);
        out.extend_from_slice(b"\r\n");
        for (n, v) in self.wire_fields() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.bodiless() {
            match &self.body {
                RespBody::Close(b) => {
                    out.extend_from_slice(b);
                    return out;
                }
                RespBody::Length(b) => out.extend_from_slice(b),
                RespBody::Chunked(c) => out.extend_from_slice(&c.encode()),
            }
        }
        out.extend_from_slice(&self.trailing);
        out
    }

    fn expected(&self) -> Message {
        let conn = self.connection.unwrap_or("").to_ascii_lowercase();
        let persistent = if self.v11 {
            !conn.contains("close")
        } else {
            conn.contains("keep-alive")
        };
        let (framing, body, trailers, rest) = if self.bodiless() {
            (
                BodyLength::Empty,
                Vec::new(),
                Vec::new(),
                self.trailing.clone(),
            )
        } else {
            match &self.body {
                RespBody::Close(b) => (
                    BodyLength::CloseDelimited,
                    b.clone(),
                    Vec::new(),
                    Vec::new(),
                ),
                RespBody::Length(b) if b.is_empty() => (
                    BodyLength::Empty,
                    Vec::new(),
                    Vec::new(),
                    self.trailing.clone(),
                ),
                RespBody::Length(b) => (
                    BodyLength::Length(b.len() as u64),
                    b.clone(),
                    Vec::new(),
                    self.trailing.clone(),
                ),
                RespBody::Chunked(c) => (
                    BodyLength::Chunked,
                    c.body(),
                    c.trailers(),
                    self.trailing.clone(),
                ),
            }
        };
        let mut start: Vec<Vec<u8>> = self
            .interim
            .iter()
            .map(|s| s.to_string().into_bytes())
            .collect();
        start.push(self.status.to_string().into_bytes());
        start.push(self.reason.clone());
        Message {
            start,
            version: if self.v11 {
                Version::Http11
            } else {
                Version::Http10
            },
            headers: self
                .wire_fields()
                .into_iter()
                .map(|(n, v)| (n.into_bytes(), v))
                .collect(),
            keep_alive: persistent && framing != BodyLength::CloseDelimited,
            framing,
            body,
            trailers,
            rest,
        }
    }
}

// ---------------------------------------------------------------------------
// The reference chunked decoder
// ---------------------------------------------------------------------------

/// What a whole valid chunked body holds.
#[derive(Debug, PartialEq, Eq)]
struct RefDecoded {
    body: Vec<u8>,
    chunks: usize,
    trailers: Vec<(String, Vec<u8>)>,
    /// Bytes the chunked body occupies.
    len: usize,
}

/// A deliberately naive decoder for *valid* input, straight from the grammar
/// of RFC 9112 §7.1: lines end at the first CRLF (quoted extension values
/// cannot hold CR or LF), the size is the leading hex digits, everything
/// else on a size line is extension; trailers are `name: value` lines.
fn reference_decode(input: &[u8]) -> Option<RefDecoded> {
    fn line(input: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = input[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&input[at..end], end + 2))
    }
    let mut at = 0;
    let mut body = Vec::new();
    let mut chunks = 0;
    loop {
        let (size_line, next) = line(input, at)?;
        let digits = size_line
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let size =
            usize::from_str_radix(std::str::from_utf8(&size_line[..digits]).ok()?, 16).ok()?;
        at = next;
        if size == 0 {
            break;
        }
        body.extend_from_slice(input.get(at..at + size)?);
        at += size;
        if input.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        at += 2;
        chunks += 1;
    }
    let mut trailers = Vec::new();
    loop {
        let (l, next) = line(input, at)?;
        at = next;
        if l.is_empty() {
            break;
        }
        let colon = l.iter().position(|&b| b == b':')?;
        let value = &l[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        trailers.push((
            String::from_utf8(l[..colon].to_ascii_lowercase()).ok()?,
            value.to_vec(),
        ));
    }
    Some(RefDecoded {
        body,
        chunks,
        trailers: sorted(trailers),
        len: at,
    })
}

/// Body, sorted trailers, bytes consumed.
type Decoded = (Vec<u8>, Vec<(String, Vec<u8>)>, usize);

/// Runs `ChunkedDecoder` over `input` delivered in pieces of the given sizes
/// (cycled); returns the body, the trailers and the bytes consumed.
fn decode_in_pieces(input: &[u8], sizes: &[usize]) -> Result<Decoded, Error> {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    for &size in sizes.iter().cycle() {
        let n = size.min(input.len() - fed);
        pending.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            let d = dec.decode(&pending)?;
            body.extend_from_slice(&pending[d.data.clone()]);
            pending.drain(..d.consumed);
            consumed += d.consumed;
            if d.done {
                let trailers = dec
                    .take_trailers()
                    .expect("a finished decoder has trailers")
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect();
                return Ok((body, sorted(trailers), consumed));
            }
            if d.consumed == 0 || pending.is_empty() {
                break;
            }
        }
        if fed == input.len() {
            return Err(Error::IncompleteBody);
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A valid request parses to what was generated, however it is split.
    #[test]
    fn request_parses_the_same_at_every_split(req in gen_request()) {
        let input = req.encode();
        let expected = req.expected();
        check_all_splits(&input, &expected, |cuts| parse_request(&input, cuts))?;
    }

    /// A valid response exchange (interim responses, final head, body)
    /// parses to what was generated, however it is split.
    #[test]
    fn response_parses_the_same_at_every_split(resp in gen_response()) {
        let input = resp.encode();
        let expected = resp.expected();
        let method = resp.method();
        check_all_splits(&input, &expected, |cuts| parse_response(&input, &method, cuts))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// encode_request_head output parses back to the same head.
    #[test]
    fn request_head_round_trips(
        method in method(),
        target in origin_target(),
        v11 in any::<bool>(),
        fields in fields(),
    ) {
        let version = if v11 { Version::Http11 } else { Version::Http10 };
        let mut all = vec![("Host".to_string(), b"h".to_vec())];
        all.extend(fields);
        let mut out = BytesMut::new();
        encode_request_head(&mut out, &method, &target, version, all.iter().map(|(n, v)| (n, v)))?;
        let wire_len = out.len();
        let head = RequestParser::new(Limits::default())
            .parse(&mut out)?
            .expect("an encoded head is complete");
        prop_assert!(out.is_empty());
        prop_assert_eq!(head.as_bytes().len(), wire_len);
        prop_assert_eq!(head.method(), method.as_bytes());
        prop_assert_eq!(head.target(), target.as_bytes());
        prop_assert_eq!(head.version(), version);
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            head.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            all.into_iter().map(|(n, v)| (n.into_bytes(), v)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(head.body(), BodyLength::Empty);
    }

    /// A head parsed in place over an earlier one (as a server reusing its
    /// request allocation does) is the same as one parsed fresh: nothing of
    /// the earlier head survives.
    #[test]
    fn parse_into_a_used_head_equals_a_fresh_parse(first in gen_request(), second in gen_request()) {
        let mut parser = RequestParser::new(Limits::default());
        let mut head = RequestHead::default();
        let mut a = BytesMut::from(&first.encode()[..]);
        prop_assume!(matches!(parser.parse_into(&mut a, &mut head), Ok(true)));
        let mut b = BytesMut::from(&second.encode()[..]);
        let mut fresh_buf = b.clone();
        let reused = parser.parse_into(&mut b, &mut head).map(|done| done.then(|| format!("{head:?}")));
        let fresh = RequestParser::new(Limits::default())
            .parse(&mut fresh_buf)
            .map(|h| h.map(|h| format!("{h:?}")));
        prop_assert_eq!(reused, fresh);
        prop_assert_eq!(b, fresh_buf);
    }

    /// encode_response_head output parses back to the same head.
    #[test]
    fn response_head_round_trips(
        v11 in any::<bool>(),
        status in 100u16..1000,
        reason in "[\t -~\u{e0}\u{e9}\u{fc}\u{20ac}\u{6f22}]{0,16}",
        fields in fields(),
    ) {
        let version = if v11 { Version::Http11 } else { Version::Http10 };
        let mut out = Vec::new();
        encode_response_head(&mut out, version, status, &reason, fields.iter().map(|(n, v)| (n, v)))?;
        let mut buf = BytesMut::from(&out[..]);
        let head = ResponseParser::new(Limits::default())
            .parse(&mut buf, &http::Method::GET)?
            .expect("an encoded head is complete");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(head.version(), version);
        prop_assert_eq!(head.status(), status);
        prop_assert_eq!(head.reason(), reason.as_bytes());
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            head.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            fields.into_iter().map(|(n, v)| (n.into_bytes(), v)).collect();
        prop_assert_eq!(got, want);
    }

    /// The chunked decoder agrees with the reference decoder on random valid
    /// encodings fed in random pieces, and stops exactly at the body's end.
    #[test]
    fn chunked_decoder_matches_reference(
        body in chunked_body(),
        after in trailing(),
        sizes in vec(1usize..24, 1..8),
    ) {
        let encoded = body.encode();
        let reference = reference_decode(&encoded).expect("the reference decodes valid input");
        // The reference itself agrees with what was generated.
        prop_assert_eq!(&reference.body, &body.body());
        prop_assert_eq!(&reference.trailers, &body.trailers());
        prop_assert_eq!(reference.len, encoded.len());

        let input = [&encoded[..], &after[..]].concat();
        let (got_body, got_trailers, consumed) = decode_in_pieces(&input, &sizes)?;
        prop_assert_eq!(got_body, reference.body);
        prop_assert_eq!(got_trailers, reference.trailers);
        prop_assert_eq!(consumed, reference.len);
    }

    /// ChunkedEncoder output decodes back to the original body and trailers,
    /// with one chunk per non-empty piece.
    #[test]
    fn chunked_encoder_round_trips(
        pieces in vec(prop_oneof![1 => Just(Vec::new()), 4 => vec(any::<u8>(), 1..50)], 0..8),
        trailers in vec((field_name(), field_value()), 0..3),
        sizes in vec(1usize..24, 1..8),
    ) {
        let mut out = Vec::new();
        for p in &pieces {
            ChunkedEncoder::chunk(p, &mut out);
        }
        ChunkedEncoder::finish(&trailers, &mut out)?;
        let body = pieces.concat();
        let want_trailers = sorted(
            trailers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect(),
        );

        let reference = reference_decode(&out).expect("encoder output is valid");
        prop_assert_eq!(&reference.body, &body);
        prop_assert_eq!(reference.chunks, pieces.iter().filter(|p| !p.is_empty()).count());
        prop_assert_eq!(&reference.trailers, &want_trailers);

        let (got_body, got_trailers, consumed) = decode_in_pieces(&out, &sizes)?;
        prop_assert_eq!(got_body, body);
        prop_assert_eq!(got_trailers, want_trailers);
        prop_assert_eq!(consumed, out.len());
    }
}
