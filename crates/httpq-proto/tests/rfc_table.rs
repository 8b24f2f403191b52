//! Table-driven conformance tests for the protocol core, grouped by the RFC
//! section each table exercises.
//!
//! Every request and response row is run three ways — the whole input at
//! once, split at every byte boundary, and fed one byte at a time — and all
//! three must agree exactly, errors included. A row either expects success
//! and checks a few properties of the parsed message, or expects one exact
//! [`Error`] variant together with its `status()`.

mod support;

use std::net::SocketAddr;

use bytes::BytesMut;
use httpq_proto::{
    encode_request_head, encode_response_head, BodyDecoder, BodyLength, ChunkHeader,
    ChunkedDecoder, ChunkedEncoder, Error, Limits, RequestParser, ResponseParser, TargetForm,
    Version,
};
use support::{pieces, read_body, read_request_head};

// ---------------------------------------------------------------------------
// Shared machinery
// ---------------------------------------------------------------------------

/// The defaults, as a constant so small-limit rows can be constants.
const DEFAULT: Limits = Limits::DEFAULT;

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Everything observable about one parsed request, its body and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Req {
    method: Vec<u8>,
    target: Vec<u8>,
    form: TargetForm,
    version: Version,
    headers: Fields,
    host_header: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    framing: BodyLength,
    keep_alive: bool,
    expects_continue: bool,
    upgrade: bool,
    body: Vec<u8>,
    trailers: Option<Fields>,
    rest: Vec<u8>,
}

/// Everything observable about a response exchange: interim responses, the
/// final head, its body and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    interim: Vec<u16>,
    status: u16,
    reason: Vec<u8>,
    version: Version,
    headers: Fields,
    framing: BodyLength,
    keep_alive: bool,
    body: Vec<u8>,
    trailers: Option<Fields>,
    rest: Vec<u8>,
}

fn fields<'a>(it: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Fields {
    it.map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

fn trailer_fields(map: Option<&http::HeaderMap>) -> Option<Fields> {
    map.map(|m| {
        m.iter()
            .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    })
}

/// Parses one request (head and body) from `input` fed in pieces cut at `cuts`.
fn parse_request_cut(input: &[u8], limits: Limits, cuts: &[usize]) -> Result<Req, Error> {
    let mut pieces = pieces(input, cuts).into_iter();
    let mut buf = BytesMut::new();
    let head = read_request_head(limits, &mut buf, &mut pieces)?;
    let dec = BodyDecoder::new(head.body(), &limits);
    let (body, trailers, rest) = read_body(dec, &mut buf, &mut pieces)?;
    let trailers = trailer_fields(trailers.as_ref());
    Ok(Req {
        method: head.method().to_vec(),
        target: head.target().to_vec(),
        form: head.target_form(),
        version: head.version(),
        headers: fields(head.headers()),
        host_header: head.host_header().map(<[u8]>::to_vec),
        authority: head.authority().map(<[u8]>::to_vec),
        framing: head.body(),
        keep_alive: head.keep_alive(),
        expects_continue: head.expects_continue(),
        upgrade: head.is_upgrade(),
        body,
        trailers,
        rest,
    })
}

/// Parses a response exchange (interim responses, final head, body).
fn parse_response_cut(
    input: &[u8],
    method: &http::Method,
    limits: Limits,
    cuts: &[usize],
) -> Result<Resp, Error> {
    let mut pieces = pieces(input, cuts).into_iter();
    let mut parser = ResponseParser::new(limits);
    let mut buf = BytesMut::new();
    let mut interim = Vec::new();
    let head = loop {
        match parser.parse(&mut buf, method)? {
            Some(h) if h.is_informational() => {
                // RFC 9112 §6.3: a 1xx response never has a body.
                assert_eq!(h.body(), BodyLength::Empty, "{} has a body", h.status());
                interim.push(h.status())
            }
            Some(h) => break h,
            None => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => {
                    parser.eof(&buf)?;
                    return Err(Error::IncompleteHead);
                }
            },
        }
    };
    let dec = BodyDecoder::new(head.body(), &limits);
    let (body, trailers, rest) = read_body(dec, &mut buf, &mut pieces)?;
    let trailers = trailer_fields(trailers.as_ref());
    Ok(Resp {
        interim,
        status: head.status(),
        reason: head.reason().to_vec(),
        version: head.version(),
        headers: fields(head.headers()),
        framing: head.body(),
        keep_alive: head.keep_alive(),
        body,
        trailers,
        rest,
    })
}

/// Runs `parse` whole, at every single split point and byte by byte; all
/// runs must agree. Returns the whole-input result.
fn all_ways<T: PartialEq + std::fmt::Debug>(
    name: &str,
    input: &[u8],
    parse: impl Fn(&[usize]) -> Result<T, Error>,
) -> Result<T, Error> {
    let whole = parse(&[]);
    for k in 0..=input.len() {
        assert_eq!(
            parse(&[k]),
            whole,
            "{name}: split at {k} differs from whole"
        );
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(parse(&bytewise), whole, "{name}: byte-by-byte differs");
    whole
}

fn parse_request(name: &str, input: &[u8], limits: Limits) -> Result<Req, Error> {
    all_ways(name, input, |cuts| parse_request_cut(input, limits, cuts))
}

fn parse_response(
    name: &str,
    input: &[u8],
    method: &http::Method,
    limits: Limits,
) -> Result<Resp, Error> {
    all_ways(name, input, |cuts| {
        parse_response_cut(input, method, limits, cuts)
    })
}

/// One property of a successfully parsed message.
#[derive(Debug, Clone)]
enum Check {
    Method(&'static [u8]),
    Target(&'static [u8]),
    Form(TargetForm),
    Version(Version),
    Framing(BodyLength),
    Body(&'static [u8]),
    BodyLen(usize),
    /// The first field with this name (case-insensitive) has this value.
    Header(&'static str, &'static [u8]),
    HeaderCount(usize),
    HostHeader(Option<&'static [u8]>),
    Authority(Option<&'static [u8]>),
    KeepAlive(bool),
    Continue(bool),
    Upgrade(bool),
    /// A trailer field (lower-case name) with this value.
    Trailer(&'static str, &'static [u8]),
    TrailerCount(usize),
    /// Bytes left over after the message (the next message, or garbage).
    Rest(&'static [u8]),
    // response only
    Status(u16),
    Reason(&'static [u8]),
    Interim(&'static [u16]),
}

enum Expect {
    Ok(Vec<Check>),
    Err(Error, u16),
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    limits: Limits,
    /// Request method, for response rows.
    method: http::Method,
    expect: Expect,
}

fn ok(name: &'static str, input: impl AsRef<[u8]>, checks: &[Check]) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        limits: DEFAULT,
        method: http::Method::GET,
        expect: Expect::Ok(checks.to_vec()),
    }
}

fn err(name: &'static str, input: impl AsRef<[u8]>, e: Error, status: u16) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        limits: DEFAULT,
        method: http::Method::GET,
        expect: Expect::Err(e, status),
    }
}

impl Case {
    fn limits(mut self, limits: Limits) -> Case {
        self.limits = limits;
        self
    }
    fn method(mut self, m: http::Method) -> Case {
        self.method = m;
        self
    }
}

fn header<'a>(headers: &'a Fields, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| &v[..])
}

fn trailer<'a>(trailers: &'a Option<Fields>, name: &str) -> Option<&'a [u8]> {
    trailers
        .as_ref()
        .and_then(|t| t.iter().find(|(n, _)| n == name.as_bytes()))
        .map(|(_, v)| &v[..])
}

fn check_error(name: &str, got: Error, want: Error, status: u16) {
    assert_eq!(got, want, "{name}: wrong error");
    assert_eq!(got.status(), status, "{name}: wrong status for {got:?}");
}

fn run_request_table(cases: Vec<Case>) {
    for c in cases {
        let got = parse_request(c.name, &c.input, c.limits);
        match (&c.expect, got) {
            (Expect::Err(e, s), Err(g)) => check_error(c.name, g, *e, *s),
            (Expect::Err(e, _), Ok(r)) => panic!("{}: expected {e:?}, parsed {r:#?}", c.name),
            (Expect::Ok(_), Err(g)) => panic!("{}: expected success, got {g:?}", c.name),
            (Expect::Ok(checks), Ok(r)) => {
                assert!(!checks.is_empty(), "{}: a row must check something", c.name);
                for check in checks {
                    let n = c.name;
                    match *check {
                        Check::Method(m) => assert_eq!(r.method, m, "{n}: method"),
                        Check::Target(t) => assert_eq!(r.target, t, "{n}: target"),
                        Check::Form(f) => assert_eq!(r.form, f, "{n}: form"),
                        Check::Version(v) => assert_eq!(r.version, v, "{n}: version"),
                        Check::Framing(b) => assert_eq!(r.framing, b, "{n}: framing"),
                        Check::Body(b) => assert_eq!(r.body, b, "{n}: body"),
                        Check::BodyLen(l) => assert_eq!(r.body.len(), l, "{n}: body length"),
                        Check::Header(h, v) => {
                            assert_eq!(header(&r.headers, h), Some(v), "{n}: header {h}")
                        }
                        Check::HeaderCount(k) => assert_eq!(r.headers.len(), k, "{n}: count"),
                        Check::HostHeader(h) => {
                            assert_eq!(r.host_header.as_deref(), h, "{n}: Host")
                        }
                        Check::Authority(a) => {
                            assert_eq!(r.authority.as_deref(), a, "{n}: authority")
                        }
                        Check::KeepAlive(k) => assert_eq!(r.keep_alive, k, "{n}: keep-alive"),
                        Check::Continue(k) => assert_eq!(r.expects_continue, k, "{n}: continue"),
                        Check::Upgrade(u) => assert_eq!(r.upgrade, u, "{n}: upgrade"),
                        Check::Trailer(t, v) => {
                            assert_eq!(trailer(&r.trailers, t), Some(v), "{n}: trailer {t}")
                        }
                        Check::TrailerCount(k) => assert_eq!(
                            r.trailers.as_ref().map_or(0, Vec::len),
                            k,
                            "{n}: trailer count"
                        ),
                        Check::Rest(rest) => assert_eq!(r.rest, rest, "{n}: rest"),
                        ref other => panic!("{n}: {other:?} is not a request check"),
                    }
                }
            }
        }
    }
}

fn run_response_table(cases: Vec<Case>) {
    for c in cases {
        let got = parse_response(c.name, &c.input, &c.method, c.limits);
        match (&c.expect, got) {
            (Expect::Err(e, s), Err(g)) => check_error(c.name, g, *e, *s),
            (Expect::Err(e, _), Ok(r)) => panic!("{}: expected {e:?}, parsed {r:#?}", c.name),
            (Expect::Ok(_), Err(g)) => panic!("{}: expected success, got {g:?}", c.name),
            (Expect::Ok(checks), Ok(r)) => {
                assert!(!checks.is_empty(), "{}: a row must check something", c.name);
                for check in checks {
                    let n = c.name;
                    match *check {
                        Check::Status(s) => assert_eq!(r.status, s, "{n}: status"),
                        Check::Reason(s) => assert_eq!(r.reason, s, "{n}: reason"),
                        Check::Interim(i) => assert_eq!(r.interim, i, "{n}: interim"),
                        Check::Version(v) => assert_eq!(r.version, v, "{n}: version"),
                        Check::Framing(b) => assert_eq!(r.framing, b, "{n}: framing"),
                        Check::Body(b) => assert_eq!(r.body, b, "{n}: body"),
                        Check::Header(h, v) => {
                            assert_eq!(header(&r.headers, h), Some(v), "{n}: header {h}")
                        }
                        Check::KeepAlive(k) => assert_eq!(r.keep_alive, k, "{n}: keep-alive"),
                        Check::Trailer(t, v) => {
                            assert_eq!(trailer(&r.trailers, t), Some(v), "{n}: trailer {t}")
                        }
                        Check::Rest(rest) => assert_eq!(r.rest, rest, "{n}: rest"),
                        ref other => panic!("{n}: {other:?} is not a response check"),
                    }
                }
            }
        }
    }
}

use Check::*;

const H: &str = "Host: a\r\n";

/// `POST / HTTP/1.1` with Host and `Transfer-Encoding: chunked`, then `body`.
fn chunked(body: &[u8]) -> Vec<u8> {
    [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        body,
    ]
    .concat()
}

/// `GET / HTTP/1.1` with Host and the given extra header lines.
fn get_with(lines: &str) -> String {
    format!("GET / HTTP/1.1\r\n{H}{lines}\r\n")
}

// ---------------------------------------------------------------------------
// RFC 9112 §2.2 — message parsing: line endings, leading empty lines
// ---------------------------------------------------------------------------

fn message_parsing_cases() -> Vec<Case> {
    vec![
        ok(
            "minimal GET",
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[
                Method(b"GET"),
                Target(b"/"),
                Version(Version::Http11),
                Framing(BodyLength::Empty),
                HeaderCount(1),
            ],
        ),
        ok(
            "leading CRLFs before the request line are ignored",
            "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Method(b"GET"), HostHeader(Some(b"a"))],
        ),
        ok(
            "leading bare LF before the request line is ignored",
            "\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Target(b"/x")],
        ),
        ok(
            "bare LF line endings are accepted (RFC 9112 §2.2 MAY)",
            "GET / HTTP/1.1\nHost: a\nX: y\n\n",
            &[Header("x", b"y"), HeaderCount(2)],
        ),
        ok(
            "mixed CRLF and LF endings",
            "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n",
            &[Header("X", b"y")],
        ),
        err(
            "bare CR ends the request line",
            "GET / HTTP/1.1\rHost: a\r\n\r\n",
            Error::InvalidNewLine,
            400,
        ),
        err(
            "bare CR in leading empty lines",
            "\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::InvalidNewLine,
            400,
        ),
        err(
            "whitespace before the request line",
            " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        ok(
            "pipelined request stays in the buffer",
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Target(b"/1"), Rest(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")],
        ),
        err(
            "only empty lines never make a head",
            "\r\n\r\n\r\n",
            Error::IncompleteHead,
            400,
        ),
        err(
            "truncated head never makes a head",
            "GET / HTTP/1.1\r\nHost: a\r\n",
            Error::IncompleteHead,
            400,
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §3 — request line and methods (unknown methods included)
// ---------------------------------------------------------------------------

fn request_line_cases() -> Vec<Case> {
    vec![
        ok(
            "unknown method",
            "FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Method(b"FOO")],
        ),
        ok(
            "method is case-sensitive and kept as sent",
            "get / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Method(b"get")],
        ),
        ok(
            "extension method with tchar punctuation",
            "M-SEARCH.x_y!~ / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Method(b"M-SEARCH.x_y!~")],
        ),
        ok(
            "extension method with origin target",
            "PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Method(b"PROPFIND"), Target(b"/dav")],
        ),
        err(
            "method with a non-token byte",
            "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "two spaces after the method",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "tab as separator",
            "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "HTTP/0.9 style line without version",
            "GET /\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "missing target",
            "GET HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "empty request line",
            "\r\n \r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §3.2 — request target forms
// ---------------------------------------------------------------------------

fn target_form_cases() -> Vec<Case> {
    vec![
        ok(
            "origin-form with query",
            "GET /a/b?c=d&e HTTP/1.1\r\nHost: h\r\n\r\n",
            &[
                Target(b"/a/b?c=d&e"),
                Form(TargetForm::Origin),
                Authority(Some(b"h")),
            ],
        ),
        ok(
            "absolute-form: its authority overrides Host",
            "GET http://example.com:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
            &[
                Form(TargetForm::Absolute),
                Authority(Some(b"example.com:8080")),
                HostHeader(Some(b"other")),
            ],
        ),
        ok(
            "absolute-form, upper-case https scheme, no path",
            "GET HTTPS://Example.com HTTP/1.1\r\nHost: x\r\n\r\n",
            &[Form(TargetForm::Absolute), Authority(Some(b"Example.com"))],
        ),
        ok(
            "absolute-form with query but no path",
            "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
            &[Form(TargetForm::Absolute), Authority(Some(b"h"))],
        ),
        err(
            "absolute-form with empty authority",
            "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "absolute-form with userinfo",
            "GET http://user@h/x HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "absolute-form with other scheme",
            "GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        ok(
            "authority-form for CONNECT",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &[
                Form(TargetForm::Authority),
                Authority(Some(b"example.com:443")),
            ],
        ),
        ok(
            "authority-form with IPv6 literal",
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
            &[Form(TargetForm::Authority), Authority(Some(b"[::1]:8443"))],
        ),
        err(
            "authority-form without port",
            "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "CONNECT with origin-form",
            "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "CONNECT with absolute-form",
            "CONNECT http://h:80/ HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "authority-form for GET",
            "GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        ok(
            "asterisk-form for OPTIONS",
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            &[Form(TargetForm::Asterisk), Target(b"*")],
        ),
        err(
            "asterisk-form for GET",
            "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "fragment in target",
            "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "non-ASCII byte in target",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
        err(
            "relative path target",
            "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n",
            Error::InvalidTarget,
            400,
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §2.3 — HTTP version
// ---------------------------------------------------------------------------

fn version_cases() -> Vec<Case> {
    vec![
        ok(
            "HTTP/1.1",
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[Version(Version::Http11)],
        ),
        ok(
            "HTTP/1.0",
            "GET / HTTP/1.0\r\n\r\n",
            &[Version(Version::Http10), HeaderCount(0)],
        ),
        err(
            "HTTP/2.0 is well-formed but unsupported",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            Error::VersionNotSupported,
            505,
        ),
        err(
            "HTTP/3.0",
            "GET / HTTP/3.0\r\nHost: a\r\n\r\n",
            Error::VersionNotSupported,
            505,
        ),
        // RFC 9112 §2.3: HTTP-version is HTTP-name "/" DIGIT "." DIGIT; what
        // does not have that syntax is a malformed request line (400), and
        // 505 is kept for a well-formed version this server does not speak.
        err(
            "HTTP/2 without minor is not HTTP/DIGIT.DIGIT",
            "GET / HTTP/2\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "HTTP/3 without minor is not HTTP/DIGIT.DIGIT",
            "GET / HTTP/3\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            // `HTTP/1.1` is read, then a `0` stands where the line must end.
            "HTTP/1.10 has two minor digits",
            "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
            Error::InvalidNewLine,
            400,
        ),
        err(
            "HTTP/1.x",
            "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "lower-case http/1.1",
            "GET / http/1.1\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "HTTP/11",
            "GET / HTTP/11\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "HTTP/ only",
            "GET / HTTP/\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "version followed by garbage",
            "GET / HTTP/2.0 x HTTP/2.0\r\nHost: a\r\n\r\n",
            Error::BadVersion,
            400,
        ),
        err(
            "HTTP/1.1 with trailing garbage",
            "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
            Error::InvalidNewLine,
            400,
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §5 / RFC 9110 §5 — field syntax and size limits
// ---------------------------------------------------------------------------

const SMALL_FIELDS: Limits = Limits {
    max_field_bytes: 16,
    ..DEFAULT
};
const THREE_HEADERS: Limits = Limits {
    max_headers: 3,
    ..DEFAULT
};
const SMALL_HEAD: Limits = Limits {
    max_head_bytes: 48,
    ..DEFAULT
};

fn field_cases() -> Vec<Case> {
    vec![
        err(
            "whitespace between name and colon",
            get_with("X : y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "tab between name and colon",
            get_with("X\t: y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "obs-fold with space",
            get_with("X: y\r\n  z\r\n"),
            Error::ObsoleteLineFolding,
            400,
        ),
        err(
            "obs-fold with tab",
            get_with("X: y\r\n\tz\r\n"),
            Error::ObsoleteLineFolding,
            400,
        ),
        err(
            "whitespace before the first field",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            Error::ObsoleteLineFolding,
            400,
        ),
        err(
            "NUL in value",
            get_with("X: a\0b\r\n"),
            Error::InvalidHeaderValue,
            400,
        ),
        err(
            "CTL 0x01 in value",
            get_with("X: a\x01b\r\n"),
            Error::InvalidHeaderValue,
            400,
        ),
        err(
            "DEL in value",
            get_with("X: a\x7fb\r\n"),
            Error::InvalidHeaderValue,
            400,
        ),
        err(
            "bare CR in value",
            get_with("X: a\rb\r\n"),
            Error::InvalidHeaderValue,
            400,
        ),
        err(
            "NUL in name",
            get_with("X\0: y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "'(' in name",
            get_with("X(Y: y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "'@' in name",
            get_with("X@Y: y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "empty name",
            get_with(": y\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "line without colon",
            get_with("NoColon\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "non-ASCII name",
            [b"GET / HTTP/1.1\r\nHost: a\r\nX\xe9: y\r\n\r\n".as_slice()].concat(),
            Error::InvalidHeaderName,
            400,
        ),
        ok(
            "obs-text in value is kept",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n",
            &[Header("x", b"caf\xe9")],
        ),
        ok(
            "OWS around the value is trimmed, inner whitespace kept",
            get_with("X: \t a \t b \t\r\n"),
            &[Header("x", b"a \t b")],
        ),
        ok(
            "empty value",
            get_with("X:\r\n"),
            &[Header("x", b""), HeaderCount(2)],
        ),
        ok(
            "names keep their case; repeated fields keep order",
            get_with("X-A: 1\r\nx-a: 2\r\n"),
            &[Header("x-a", b"1"), HeaderCount(3)],
        ),
        ok(
            "field exactly at the field limit",
            get_with("X-Field: 123456789\r\n"), // 7 + 9 = 16 bytes
            &[Header("x-field", b"123456789")],
        )
        .limits(SMALL_FIELDS),
        err(
            "field one byte over the field limit",
            get_with("X-Field: 1234567890\r\n"),
            Error::FieldTooLarge,
            431,
        )
        .limits(SMALL_FIELDS),
        ok(
            "exactly max_headers fields",
            get_with("A: 1\r\nB: 2\r\n"),
            &[HeaderCount(3)],
        )
        .limits(THREE_HEADERS),
        err(
            "one field more than max_headers",
            get_with("A: 1\r\nB: 2\r\nC: 3\r\n"),
            Error::TooManyHeaders,
            431,
        )
        .limits(THREE_HEADERS),
        ok(
            "head exactly at the head limit",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef\r\n\r\n", // 48 bytes
            &[Header("x", b"0123456789abcdef")],
        )
        .limits(SMALL_HEAD),
        err(
            "head one byte over the head limit",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdefg\r\n\r\n",
            Error::HeadTooLarge,
            431,
        )
        .limits(SMALL_HEAD),
        err(
            "request line longer than the head limit",
            "GET /0123456789012345678901234567890123456789012345 HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::UriTooLong,
            414,
        )
        .limits(SMALL_HEAD),
        err(
            "request line longer than the head limit, never ended",
            "GET /0123456789012345678901234567890123456789012345678901234567890",
            Error::UriTooLong,
            414,
        )
        .limits(SMALL_HEAD),
        err(
            "many fields exceed the head limit",
            "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n",
            Error::HeadTooLarge,
            431,
        )
        .limits(SMALL_HEAD),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9110 §7.2 — Host
// ---------------------------------------------------------------------------

fn host_cases() -> Vec<Case> {
    vec![
        err(
            "HTTP/1.1 without Host",
            "GET / HTTP/1.1\r\n\r\n",
            Error::MissingHost,
            400,
        ),
        err(
            "HTTP/1.1 absolute-form still needs Host",
            "GET http://h/ HTTP/1.1\r\n\r\n",
            Error::MissingHost,
            400,
        ),
        err(
            "repeated Host",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            Error::MultipleHost,
            400,
        ),
        err(
            "repeated identical Host",
            "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            Error::MultipleHost,
            400,
        ),
        err(
            "repeated Host in HTTP/1.0",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
            Error::MultipleHost,
            400,
        ),
        err(
            "Host with a space",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "Host with a slash",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        // RFC 9112 §3.2: a Host with an invalid value is 400, and a value
        // is one authority; a comma is how a list of them arrives.
        err(
            "Host with a list of two authorities",
            "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "Host with two authorities and a port",
            "GET / HTTP/1.1\r\nHost: a:80,b:80\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "absolute-form target with a list of authorities",
            "GET http://a,b/ HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "Host with userinfo",
            "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "Host port out of range",
            "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "Host port not digits",
            "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "unclosed IPv6 literal",
            "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        err(
            "port without host",
            "GET / HTTP/1.1\r\nHost: :80\r\n\r\n",
            Error::InvalidHost,
            400,
        ),
        ok(
            "Host with IPv6 and port",
            "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            &[HostHeader(Some(b"[::1]:8080"))],
        ),
        ok(
            "Host with empty port",
            "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
            &[HostHeader(Some(b"a:"))],
        ),
        ok(
            "empty Host is allowed",
            "GET / HTTP/1.1\r\nHost:\r\n\r\n",
            &[HostHeader(Some(b"")), Authority(Some(b""))],
        ),
        ok(
            "HTTP/1.0 without Host",
            "GET / HTTP/1.0\r\n\r\n",
            &[HostHeader(None), Authority(None)],
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §6.1–6.3 — message body framing (requests)
// ---------------------------------------------------------------------------

const BODY_10: Limits = Limits {
    max_body_bytes: 10,
    ..DEFAULT
};

fn post(lines: &str, body: &str) -> String {
    format!("POST / HTTP/1.1\r\n{H}{lines}\r\n{body}")
}

fn framing_cases() -> Vec<Case> {
    vec![
        ok(
            "Content-Length",
            post("Content-Length: 5\r\n", "hello"),
            &[Framing(BodyLength::Length(5)), Body(b"hello"), Rest(b"")],
        ),
        ok(
            "Content-Length 0 is an empty body",
            post("Content-Length: 0\r\n", "GET"),
            &[Framing(BodyLength::Empty), Body(b""), Rest(b"GET")],
        ),
        ok(
            "no framing headers means no body",
            post("", "hello"),
            &[Framing(BodyLength::Empty), Rest(b"hello")],
        ),
        ok(
            "body ends exactly at Content-Length",
            post("Content-Length: 3\r\n", "abcGET / HTTP/1.1\r\n"),
            &[Body(b"abc"), Rest(b"GET / HTTP/1.1\r\n")],
        ),
        ok(
            "\"5, 5\" is 5",
            post("Content-Length: 5, 5\r\n", "hello"),
            &[Framing(BodyLength::Length(5))],
        ),
        ok(
            "two identical Content-Length fields",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            &[Framing(BodyLength::Length(5))],
        ),
        ok(
            "leading zeros are plain digits",
            post("Content-Length: 005\r\n", "hello"),
            &[Framing(BodyLength::Length(5))],
        ),
        err(
            "conflicting list",
            post("Content-Length: 5, 6\r\n", ""),
            Error::ConflictingContentLength,
            400,
        ),
        err(
            "conflicting fields",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", ""),
            Error::ConflictingContentLength,
            400,
        ),
        err(
            "+5",
            post("Content-Length: +5\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "-1",
            post("Content-Length: -1\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "hex",
            post("Content-Length: 0x10\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "space inside",
            post("Content-Length: 1 0\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "empty value",
            post("Content-Length:\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "empty list element",
            post("Content-Length: 5,\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "u64 overflow",
            post("Content-Length: 18446744073709551616\r\n", ""),
            Error::InvalidContentLength,
            400,
        ),
        err(
            "u64::MAX parses, then exceeds max_body_bytes",
            post("Content-Length: 18446744073709551615\r\n", ""),
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_10),
        err(
            "Content-Length over max_body_bytes",
            post("Content-Length: 11\r\n", "01234567890"),
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_10),
        ok(
            "Content-Length exactly max_body_bytes",
            post("Content-Length: 10\r\n", "0123456789"),
            &[BodyLen(10)],
        )
        .limits(BODY_10),
        err(
            "Transfer-Encoding with Content-Length",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "0\r\n\r\n",
            ),
            Error::ContentLengthWithTransferEncoding,
            400,
        ),
        err(
            "Content-Length with Transfer-Encoding",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            Error::ContentLengthWithTransferEncoding,
            400,
        ),
        ok(
            "chunked is final",
            post("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            &[Framing(BodyLength::Chunked), Body(b"abc")],
        ),
        ok(
            "Chunked in mixed case",
            post("Transfer-Encoding: ChUnKeD\r\n", "0\r\n\r\n"),
            &[Framing(BodyLength::Chunked), Body(b"")],
        ),
        err(
            "gzip, chunked is unsupported",
            post("Transfer-Encoding: gzip, chunked\r\n", ""),
            Error::UnsupportedTransferCoding,
            501,
        ),
        err(
            "gzip and chunked in separate fields",
            post(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "",
            ),
            Error::UnsupportedTransferCoding,
            501,
        ),
        err(
            "chunked, gzip: chunked not final",
            post("Transfer-Encoding: chunked, gzip\r\n", ""),
            Error::ChunkedNotFinal,
            400,
        ),
        err(
            "identity alone",
            post("Transfer-Encoding: identity\r\n", ""),
            Error::ChunkedNotFinal,
            400,
        ),
        err(
            "chunked twice in one field",
            post("Transfer-Encoding: chunked, chunked\r\n", ""),
            Error::ChunkedNotFinal,
            400,
        ),
        err(
            "chunked twice in two fields",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "",
            ),
            Error::ChunkedNotFinal,
            400,
        ),
        err(
            "Transfer-Encoding in HTTP/1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Error::TransferEncodingInHttp10,
            400,
        ),
        err(
            "empty Transfer-Encoding",
            post("Transfer-Encoding:\r\n", ""),
            Error::InvalidTransferEncoding,
            400,
        ),
        err(
            "Transfer-Encoding not a token list",
            post("Transfer-Encoding: chu nked\r\n", ""),
            Error::InvalidTransferEncoding,
            400,
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §7.1 — chunked transfer coding
// ---------------------------------------------------------------------------

const EXT_8: Limits = Limits {
    max_chunk_ext_bytes: 8,
    ..DEFAULT
};
const TRAILER_16: Limits = Limits {
    max_trailer_bytes: 16,
    ..DEFAULT
};
const ONE_TRAILER: Limits = Limits {
    max_trailers: 1,
    ..DEFAULT
};
const BODY_5: Limits = Limits {
    max_body_bytes: 5,
    ..DEFAULT
};

fn chunked_cases() -> Vec<Case> {
    vec![
        ok(
            "one chunk",
            chunked(b"5\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello"), TrailerCount(0), Rest(b"")],
        ),
        ok(
            "several chunks",
            chunked(b"1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n"),
            &[Body(b"abcdef")],
        ),
        ok(
            "upper-case hex",
            chunked(b"A\r\n0123456789\r\n0\r\n\r\n"),
            &[BodyLen(10)],
        ),
        ok(
            "lower-case hex",
            chunked(b"b\r\n0123456789a\r\n0\r\n\r\n"),
            &[BodyLen(11)],
        ),
        ok(
            "16 hex digits",
            chunked(b"0000000000000003\r\nabc\r\n0\r\n\r\n"),
            &[Body(b"abc")],
        ),
        ok(
            "last chunk with several zeros",
            chunked(b"2\r\nab\r\n000\r\n\r\n"),
            &[Body(b"ab")],
        ),
        err(
            "17 hex digits",
            chunked(b"00000000000000003\r\nabc\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "16 f's fit, then exceed max_body_bytes",
            chunked(b"ffffffffffffffff\r\nabc"),
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_5),
        err(
            "empty chunk size",
            chunked(b"\r\nabc\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "whitespace before size",
            chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "0x prefix",
            chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "negative size",
            chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "non-hex digit",
            chunked(b"5g\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        ok(
            "extension with token value",
            chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        ),
        ok(
            "extension without value",
            chunked(b"5;flag\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        ),
        ok(
            "several extensions, quoted string with escapes, ';' and spaces",
            chunked(b"5;a=1;b=\"x; y \\\" z\";c\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        ),
        ok(
            "BWS before ';'",
            chunked(b"5 \t ;a=b\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        ),
        ok(
            "extension on the last chunk",
            chunked(b"5\r\nhello\r\n0;end=1\r\n\r\n"),
            &[Body(b"hello")],
        ),
        err(
            "whitespace then CRLF",
            chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "whitespace then data",
            chunked(b"5 x\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkSize,
            400,
        ),
        err(
            "invalid byte in extension",
            chunked(b"5;a=(b)\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkExtension,
            400,
        ),
        err(
            "bare LF in extension",
            chunked(b"5;a\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkExtension,
            400,
        ),
        err(
            "CR inside a quoted extension",
            chunked(b"5;a=\"x\r\n\"\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkExtension,
            400,
        ),
        err(
            "NUL in extension",
            chunked(b"5;a=\0\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkExtension,
            400,
        ),
        ok(
            "extensions exactly at their cap",
            chunked(b"5;1234567\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        )
        .limits(EXT_8),
        err(
            "extensions over their cap (summed over chunks)",
            chunked(b"1;abcd\r\na\r\n1;abcd\r\nb\r\n0\r\n\r\n"),
            Error::ChunkExtensionsTooLarge,
            400,
        )
        .limits(EXT_8),
        err(
            "missing CRLF after data",
            chunked(b"5\r\nhelloX\r\n0\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "data longer than its size",
            chunked(b"3\r\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "LF only after data",
            chunked(b"5\r\nhello\n0\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "LF only after size",
            chunked(b"5\nhello\r\n0\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "CR without LF after size",
            chunked(b"5\rhello\r\n0\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "LF only after last chunk",
            chunked(b"0\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "LF only as final line",
            chunked(b"0\r\n\nGET / HTTP/1.1\r\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "CR without LF as final line",
            chunked(b"0\r\n\rX"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "LF only after a trailer",
            chunked(b"0\r\nX: a\n\r\n"),
            Error::InvalidChunkTerminator,
            400,
        ),
        err(
            "body ends before the last chunk",
            chunked(b"5\r\nhel"),
            Error::IncompleteBody,
            502,
        ),
        ok(
            "trailers are parsed",
            chunked(b"3\r\nabc\r\n0\r\nX-T: v\r\nEtag: \"w\"\r\n\r\n"),
            &[
                Body(b"abc"),
                Trailer("x-t", b"v"),
                Trailer("etag", b"\"w\""),
                TrailerCount(2),
            ],
        ),
        ok(
            "Content-Length in trailers never affects framing",
            chunked(b"3\r\nabc\r\n0\r\nContent-Length: 100\r\n\r\nGET / HTTP/1.1\r\n"),
            &[
                Body(b"abc"),
                Trailer("content-length", b"100"),
                Rest(b"GET / HTTP/1.1\r\n"),
            ],
        ),
        ok(
            "Transfer-Encoding in trailers never affects framing",
            chunked(b"0\r\nTransfer-Encoding: chunked\r\n\r\nxyz"),
            &[
                Body(b""),
                Trailer("transfer-encoding", b"chunked"),
                Rest(b"xyz"),
            ],
        ),
        err(
            "trailer section over its size cap",
            chunked(b"0\r\nX-Long: 0123456789\r\n\r\n"),
            Error::TrailersTooLarge,
            431,
        )
        .limits(TRAILER_16),
        err(
            "more trailers than max_trailers",
            chunked(b"0\r\nA: 1\r\nB: 2\r\n\r\n"),
            Error::TrailersTooLarge,
            431,
        )
        .limits(ONE_TRAILER),
        err(
            "invalid trailer name",
            chunked(b"0\r\nX Y: a\r\n\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "NUL in trailer value",
            chunked(b"0\r\nX: a\0\r\n\r\n"),
            Error::InvalidHeaderValue,
            400,
        ),
        err(
            "chunked body over max_body_bytes",
            chunked(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_5),
        ok(
            "chunked body exactly max_body_bytes",
            chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            &[Body(b"abcde")],
        )
        .limits(BODY_5),
        ok(
            "pipelined request after a chunked body",
            chunked(b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
            &[Body(b"x"), Rest(b"GET / HTTP/1.1\r\n\r\n")],
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §9.3 — persistence (keep-alive), RFC 9110 §7.8 upgrade
// ---------------------------------------------------------------------------

fn keep_alive_cases() -> Vec<Case> {
    vec![
        ok(
            "1.1 persists by default",
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &[KeepAlive(true)],
        ),
        ok(
            "1.1 close",
            get_with("Connection: close\r\n"),
            &[KeepAlive(false)],
        ),
        ok(
            "1.1 CLOSE in upper case",
            get_with("Connection: CLOSE\r\n"),
            &[KeepAlive(false)],
        ),
        ok(
            "1.1 close in a list",
            get_with("Connection: keep-alive, Close\r\n"),
            &[KeepAlive(false)],
        ),
        ok(
            "1.1 close in a second Connection field",
            get_with("Connection: x-foo\r\nConnection: close\r\n"),
            &[KeepAlive(false)],
        ),
        ok(
            "1.1 'closed' is not 'close'",
            get_with("Connection: closed\r\n"),
            &[KeepAlive(true)],
        ),
        ok(
            "1.0 closes by default",
            "GET / HTTP/1.0\r\n\r\n",
            &[KeepAlive(false)],
        ),
        ok(
            "1.0 keep-alive",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &[KeepAlive(true)],
        ),
        ok(
            "1.0 Keep-Alive mixed case",
            "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            &[KeepAlive(true)],
        ),
        ok(
            "1.0 keep-alive later in a list",
            "GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n",
            &[KeepAlive(true)],
        ),
        ok(
            "1.0 keep-alive and close in two fields",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            &[KeepAlive(false)],
        ),
        ok(
            "upgrade request",
            get_with("Connection: Upgrade\r\nUpgrade: websocket\r\n"),
            &[Upgrade(true), KeepAlive(true)],
        ),
        ok(
            "Upgrade without Connection: upgrade",
            get_with("Upgrade: websocket\r\n"),
            &[Upgrade(false)],
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9110 §10.1.1 — Expect: 100-continue
// ---------------------------------------------------------------------------

fn expect_cases() -> Vec<Case> {
    vec![
        ok(
            "1.1 with a Content-Length body",
            post("Content-Length: 2\r\nExpect: 100-continue\r\n", "hi"),
            &[Continue(true), Body(b"hi")],
        ),
        ok(
            "1.1 with a chunked body, mixed case",
            post(
                "Transfer-Encoding: chunked\r\nExpect: 100-Continue\r\n",
                "0\r\n\r\n",
            ),
            &[Continue(true)],
        ),
        ok(
            "1.1 without a body",
            get_with("Expect: 100-continue\r\n"),
            &[Continue(false)],
        ),
        ok(
            "1.1 with Content-Length 0",
            post("Content-Length: 0\r\nExpect: 100-continue\r\n", ""),
            &[Continue(false)],
        ),
        ok(
            "1.0 never",
            "POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
            &[Continue(false), Body(b"hi")],
        ),
        err(
            "1.1 other expectation",
            get_with("Expect: something\r\n"),
            Error::ExpectationFailed,
            417,
        ),
        err(
            "1.1 100-continue plus another",
            post("Content-Length: 0\r\nExpect: 100-continue, x\r\n", ""),
            Error::ExpectationFailed,
            417,
        ),
        ok(
            "1.0 ignores other expectations",
            "GET / HTTP/1.0\r\nExpect: something\r\n\r\n",
            &[Continue(false)],
        ),
    ]
}

// ---------------------------------------------------------------------------
// RFC 9112 §4 and §6.3 — responses (status line, body length rules)
// ---------------------------------------------------------------------------

const INTERIM: &str = "HTTP/1.1 100 Continue\r\n\r\n";

fn response_cases() -> Vec<Case> {
    use http::Method as M;
    vec![
        ok(
            "200 with Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            &[
                Status(200),
                Reason(b"OK"),
                Framing(BodyLength::Length(2)),
                Body(b"hi"),
                KeepAlive(true),
            ],
        ),
        ok(
            "bytes past Content-Length are not body",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n",
            &[Body(b"hi"), Rest(b"HTTP/1.1 200 OK\r\n")],
        ),
        ok(
            "HEAD response has no body whatever it says",
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            &[Framing(BodyLength::Empty), Body(b""), KeepAlive(true)],
        )
        .method(M::HEAD),
        ok(
            "HEAD response with chunked has no body",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &[Framing(BodyLength::Empty)],
        )
        .method(M::HEAD),
        ok(
            "204 has no body",
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nabcde",
            &[Framing(BodyLength::Empty), Rest(b"abcde")],
        ),
        ok(
            "304 has no body",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            &[Framing(BodyLength::Empty)],
        ),
        ok(
            "100 then 200",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            &[Interim(&[100]), Status(200), Body(b"x")],
        )
        .method(M::POST),
        ok(
            "103 with fields then 204",
            "HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            &[Interim(&[103]), Status(204)],
        ),
        ok(
            "CONNECT 200 is a tunnel",
            "HTTP/1.1 200 Connection Established\r\n\r\nraw bytes",
            &[
                Framing(BodyLength::Tunnel),
                KeepAlive(false),
                Rest(b"raw bytes"),
            ],
        )
        .method(M::CONNECT),
        ok(
            "CONNECT 407 has a normal body",
            "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 1\r\n\r\nx",
            &[Framing(BodyLength::Length(1)), Body(b"x")],
        )
        .method(M::CONNECT),
        ok(
            "101 is a tunnel",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
            &[
                Status(101),
                Interim(&[]),
                Framing(BodyLength::Tunnel),
                KeepAlive(false),
                Rest(b"\x81\x00"),
            ],
        ),
        ok(
            "no framing: close-delimited",
            "HTTP/1.1 200 OK\r\n\r\nuntil the end",
            &[
                Framing(BodyLength::CloseDelimited),
                Body(b"until the end"),
                KeepAlive(false),
            ],
        ),
        ok(
            "chunked response with a trailer",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX: y\r\n\r\n",
            &[
                Framing(BodyLength::Chunked),
                Body(b"hi"),
                Trailer("x", b"y"),
            ],
        ),
        ok(
            "HTTP/1.0 response closes by default",
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            &[Version(Version::Http10), KeepAlive(false)],
        ),
        ok(
            "HTTP/1.0 response with keep-alive",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            &[KeepAlive(true)],
        ),
        ok(
            "HTTP/1.1 response with Connection: close",
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            &[KeepAlive(false)],
        ),
        ok(
            "reason with obs-text is kept",
            b"HTTP/1.1 200 \xe9t\xe9 OK\r\nContent-Length: 0\r\n\r\n",
            &[Reason(b"\xe9t\xe9 OK")],
        ),
        ok(
            "empty reason",
            "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
            &[Reason(b""), Status(200)],
        ),
        ok(
            "no reason at all",
            "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
            &[Reason(b""), Status(404)],
        ),
        ok(
            "leading CRLF before the status line",
            "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &[Status(200)],
        ),
        err(
            "Transfer-Encoding with Content-Length",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            Error::ContentLengthWithTransferEncoding,
            400,
        ),
        err(
            "final coding not chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            Error::UnsupportedTransferCoding,
            501,
        ),
        err(
            "Transfer-Encoding in an HTTP/1.0 response",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Error::TransferEncodingInHttp10,
            400,
        ),
        err(
            "conflicting Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            Error::ConflictingContentLength,
            400,
        ),
        err(
            "status below 100",
            "HTTP/1.1 099 Low\r\n\r\n",
            Error::BadStatusLine,
            502,
        ),
        err(
            "four-digit status",
            "HTTP/1.1 2000 OK\r\n\r\n",
            Error::BadStatusLine,
            502,
        ),
        err(
            "two-digit status",
            "HTTP/1.1 20 OK\r\n\r\n",
            Error::BadStatusLine,
            502,
        ),
        err(
            "not HTTP",
            "HTTX/1.1 200 OK\r\n\r\n",
            Error::BadStatusLine,
            502,
        ),
        err(
            "HTTP/2.0 status line",
            "HTTP/2.0 200 OK\r\n\r\n",
            Error::VersionNotSupported,
            505,
        ),
        err(
            "obs-fold in a response",
            "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "body shorter than Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            Error::IncompleteBody,
            502,
        ),
        err(
            "connection closed mid-head",
            "HTTP/1.1 200 OK\r\nContent-Le",
            Error::IncompleteHead,
            400,
        ),
        ok(
            "exactly max_informational interim responses",
            format!(
                "{}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                INTERIM.repeat(10)
            ),
            &[Interim(&[100; 10]), Status(200)],
        ),
        err(
            "too many interim responses",
            format!(
                "{}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                INTERIM.repeat(11)
            ),
            Error::TooManyInformational,
            502,
        ),
        err(
            "Content-Length over max_body_bytes",
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_10),
        err(
            "close-delimited body over max_body_bytes",
            "HTTP/1.1 200 OK\r\n\r\n0123456789A",
            Error::BodyTooLarge,
            413,
        )
        .limits(BODY_10),
    ]
}

#[test]
fn rfc9112_2_2_message_parsing() {
    run_request_table(message_parsing_cases());
}

#[test]
fn rfc9112_3_request_line() {
    run_request_table(request_line_cases());
}

#[test]
fn rfc9112_3_2_target_forms() {
    run_request_table(target_form_cases());
}

#[test]
fn rfc9112_2_3_versions() {
    run_request_table(version_cases());
}

#[test]
fn rfc9112_5_fields() {
    run_request_table(field_cases());
}

#[test]
fn rfc9110_7_2_host() {
    run_request_table(host_cases());
}

#[test]
fn rfc9112_6_framing() {
    run_request_table(framing_cases());
}

#[test]
fn rfc9112_7_1_chunked() {
    run_request_table(chunked_cases());
}

#[test]
fn rfc9112_9_3_keep_alive() {
    run_request_table(keep_alive_cases());
}

#[test]
fn rfc9110_10_1_1_expect() {
    run_request_table(expect_cases());
}

#[test]
fn rfc9112_6_3_responses() {
    run_response_table(response_cases());
}

#[test]
fn musts_of_the_2026_12_audit() {
    run_request_table(audit_cases());
}

// ---------------------------------------------------------------------------
// One walk through RFC 9112 §2–§9 and RFC 9110 §5 for every server MUST
// (2026-12): the rows below are those the tables above did not yet hold.
// The MUSTs about what the server sends (§9.6 nothing after a request that
// closes; no 2xx to CONNECT without a tunnel; no Content-Length on 204 or
// a HEAD answer that is not the GET's) are in tests/server_conn.rs.
// ---------------------------------------------------------------------------

fn audit_cases() -> Vec<Case> {
    use Check::*;
    vec![
        err(
            "§2.2: a bare CR inside the target",
            "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n",
            Error::BadRequestLine,
            400,
        ),
        err(
            "§5.1: whitespace between a trailer's name and its colon",
            chunked(b"0\r\nX : a\r\n\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "§5.2: obs-fold in a trailer",
            chunked(b"0\r\nX: a\r\n b\r\n\r\n"),
            Error::InvalidHeaderName,
            400,
        ),
        err(
            "§6.1: HTTP/1.0 with Transfer-Encoding is faulty even with Content-Length",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
            Error::TransferEncodingInHttp10,
            400,
        ),
        ok(
            "§7.1.1: BWS around a chunk extension's '=' is allowed",
            chunked(b"5 ; a = b\r\nhello\r\n0\r\n\r\n"),
            &[Body(b"hello")],
        ),
        ok(
            "RFC 9110 §5.6.1: empty list elements are ignored (Connection)",
            get_with("Connection: , close\r\n"),
            &[KeepAlive(false)],
        ),
        ok(
            "RFC 9110 §5.6.1: empty list elements are ignored (Transfer-Encoding)",
            post("Transfer-Encoding: , chunked\r\n", "0\r\n\r\n"),
            &[Framing(BodyLength::Chunked)],
        ),
    ]
}

// ---------------------------------------------------------------------------
// Cooked URL (DESIGN.md §1, http.sys semantics; RFC 3986 §5.2.4 dot segments)
// ---------------------------------------------------------------------------

struct UrlCase {
    name: &'static str,
    input: Vec<u8>,
    scheme: &'static str,
    local: &'static str,
    /// `(host, port, path, query)` or the error and its status.
    expect: Result<(&'static str, u16, String, &'static str), (Error, u16)>,
}

fn url_ok(
    name: &'static str,
    input: impl AsRef<[u8]>,
    host: &'static str,
    port: u16,
    path: impl Into<String>,
    query: &'static str,
) -> UrlCase {
    UrlCase {
        name,
        input: input.as_ref().to_vec(),
        scheme: "http",
        local: "10.0.0.1:8080",
        expect: Ok((host, port, path.into(), query)),
    }
}

fn url_err(name: &'static str, input: impl AsRef<[u8]>, e: Error, status: u16) -> UrlCase {
    UrlCase {
        name,
        input: input.as_ref().to_vec(),
        scheme: "http",
        local: "10.0.0.1:8080",
        expect: Err((e, status)),
    }
}

impl UrlCase {
    fn https(mut self) -> UrlCase {
        self.scheme = "https";
        self
    }
    fn local(mut self, local: &'static str) -> UrlCase {
        self.local = local;
        self
    }
}

fn get_path(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n")
}

fn url_cases() -> Vec<UrlCase> {
    let seg260 = "a".repeat(260);
    let seg261 = "a".repeat(261);
    let encoded260 = "%41".repeat(260);
    let segs255 = "/s".repeat(255);
    let segs256 = "/s".repeat(256);
    vec![
        url_ok("plain path", get_path("/a/b"), "h", 80, "/a/b", ""),
        url_ok(
            "percent-decoding",
            get_path("/a%20b/caf%C3%A9"),
            "h",
            80,
            "/a b/café",
            "",
        ),
        url_ok(
            "%2e%2e is a dot-segment after decoding",
            get_path("/a/%2e%2e/b"),
            "h",
            80,
            "/b",
            "",
        ),
        url_ok(
            "%2E%2E cannot climb above root",
            get_path("/%2E%2E/%2e%2e/etc/passwd"),
            "h",
            80,
            "/etc/passwd",
            "",
        ),
        url_ok(
            "plain .. cannot climb above root",
            get_path("/../../x"),
            "h",
            80,
            "/x",
            "",
        ),
        url_ok(
            r"..\ counts as a separator",
            get_path(r"/a/..\..\..\win.ini"),
            "h",
            80,
            "/win.ini",
            "",
        ),
        url_ok(
            "%5c is a separator too",
            get_path("/a/..%5c..%5cb"),
            "h",
            80,
            "/b",
            "",
        ),
        url_ok(
            ". segments vanish, trailing slash kept",
            get_path("/a/./b/./"),
            "h",
            80,
            "/a/b/",
            "",
        ),
        url_ok(
            "trailing .. leaves a slash",
            get_path("/a/b/.."),
            "h",
            80,
            "/a/",
            "",
        ),
        url_ok(
            "query kept raw with its '?'",
            get_path("/p?x=%20&y=/../"),
            "h",
            80,
            "/p",
            "?x=%20&y=/../",
        ),
        url_ok(
            "empty query keeps its '?'",
            get_path("/p?"),
            "h",
            80,
            "/p",
            "?",
        ),
        url_err(
            "encoded NUL",
            get_path("/a%00b"),
            Error::InvalidUrlEncoding,
            400,
        ),
        url_err(
            "bad escape",
            get_path("/a%zzb"),
            Error::InvalidUrlEncoding,
            400,
        ),
        url_err(
            "truncated escape",
            get_path("/a%2"),
            Error::InvalidUrlEncoding,
            400,
        ),
        url_err(
            "invalid UTF-8 after decoding",
            get_path("/%ff%fe"),
            Error::InvalidUrlEncoding,
            400,
        ),
        url_ok(
            "segment of 260 bytes",
            get_path(&format!("/{seg260}")),
            "h",
            80,
            format!("/{seg260}"),
            "",
        ),
        url_err(
            "segment of 261 bytes",
            get_path(&format!("/{seg261}")),
            Error::UrlSegmentTooLong,
            400,
        ),
        url_ok(
            "segment length counts decoded bytes",
            get_path(&format!("/{encoded260}")),
            "h",
            80,
            format!("/{}", "A".repeat(260)),
            "",
        ),
        url_ok(
            "255 segments",
            get_path(&segs255),
            "h",
            80,
            segs255.clone(),
            "",
        ),
        url_err(
            "256 segments",
            get_path(&segs256),
            Error::TooManyUrlSegments,
            400,
        ),
        url_ok(
            "segments removed by .. do not count",
            get_path(&format!("{segs256}/..")),
            "h",
            80,
            format!("{segs255}/"),
            "",
        ),
        url_ok(
            "absolute-form authority overrides Host",
            "GET http://A.Example:8081/x?q HTTP/1.1\r\nHost: other:9\r\n\r\n",
            "a.example",
            8081,
            "/x",
            "?q",
        ),
        url_ok(
            "absolute-form without path",
            "GET http://a.example?q HTTP/1.1\r\nHost: other\r\n\r\n",
            "a.example",
            80,
            "/",
            "?q",
        ),
        url_ok(
            "Host without port: http default",
            get_path("/"),
            "h",
            80,
            "/",
            "",
        ),
        url_ok(
            "Host without port: https default",
            get_path("/"),
            "h",
            443,
            "/",
            "",
        )
        .https(),
        url_ok(
            "Host with port, lower-cased",
            "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n",
            "example.com",
            8080,
            "/",
            "",
        ),
        url_ok(
            "IPv6 Host",
            "GET / HTTP/1.1\r\nHost: [::1]:81\r\n\r\n",
            "[::1]",
            81,
            "/",
            "",
        ),
        url_ok(
            "HTTP/1.0 without Host falls back to the local address",
            "GET /x HTTP/1.0\r\n\r\n",
            "10.0.0.1",
            8080,
            "/x",
            "",
        ),
        url_ok(
            "empty Host falls back to the local address (IPv6)",
            "GET /x HTTP/1.1\r\nHost:\r\n\r\n",
            "[::1]",
            8443,
            "/x",
            "",
        )
        .local("[::1]:8443")
        .https(),
        url_ok(
            "OPTIONS *",
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            "h",
            80,
            "*",
            "",
        ),
        url_ok(
            "CONNECT",
            "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            "h",
            443,
            "/",
            "",
        ),
    ]
}

#[test]
fn cooked_urls() {
    for c in url_cases() {
        let mut buf = BytesMut::from(&c.input[..]);
        let head = RequestParser::new(DEFAULT)
            .parse(&mut buf)
            .unwrap_or_else(|e| panic!("{}: head rejected: {e:?}", c.name))
            .unwrap_or_else(|| panic!("{}: head incomplete", c.name));
        let local: SocketAddr = c.local.parse().unwrap();
        let got = head.cooked_url(c.scheme, local, &DEFAULT);
        match (c.expect, got) {
            (Ok((host, port, path, query)), Ok(url)) => {
                assert_eq!(url.scheme, c.scheme, "{}", c.name);
                assert_eq!(url.host, host, "{}: host", c.name);
                assert_eq!(url.port, port, "{}: port", c.name);
                assert_eq!(url.path, path, "{}: path", c.name);
                assert_eq!(url.query, query, "{}: query", c.name);
                assert_eq!(
                    url.full(),
                    format!("{}://{host}:{port}{path}{query}", c.scheme),
                    "{}: full",
                    c.name
                );
            }
            (Err((e, s)), Err(g)) => check_error(c.name, g, e, s),
            (want, got) => panic!("{}: expected {want:?}, got {got:?}", c.name),
        }
    }
}

// ---------------------------------------------------------------------------
// Encoders: head encoders (never split a message), ChunkHeader, ChunkedEncoder
// ---------------------------------------------------------------------------

type StaticFields = &'static [(&'static [u8], &'static [u8])];

enum Enc {
    Response(Version, u16, &'static str, StaticFields),
    Request(&'static str, &'static str, Version, StaticFields),
    /// Body pieces written with `ChunkedEncoder::chunk`, then `finish(trailers)`.
    Chunked(&'static [&'static [u8]], StaticFields),
}

struct EncCase {
    name: &'static str,
    enc: Enc,
    expect: Result<&'static [u8], (Error, u16)>,
}

fn enc_ok(name: &'static str, enc: Enc, out: &'static [u8]) -> EncCase {
    EncCase {
        name,
        enc,
        expect: Ok(out),
    }
}

fn enc_err(name: &'static str, enc: Enc, e: Error, status: u16) -> EncCase {
    EncCase {
        name,
        enc,
        expect: Err((e, status)),
    }
}

fn encoder_cases() -> Vec<EncCase> {
    use Enc::*;
    use Version::*;
    vec![
        enc_ok(
            "response head",
            Response(
                Http11,
                200,
                "OK",
                &[(b"Content-Length", b"2"), (b"X-A", b"b c")],
            ),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b c\r\n\r\n",
        ),
        enc_ok(
            "HTTP/1.0 response, empty reason",
            Response(Http10, 404, "", &[]),
            b"HTTP/1.0 404 \r\n\r\n",
        ),
        enc_ok(
            "obs-text (UTF-8) value and reason are allowed",
            Response(Http11, 200, "Tr\u{e8}s bien", &[(b"X", b"caf\xc3\xa9")]),
            "HTTP/1.1 200 Tr\u{e8}s bien\r\nX: caf\u{e9}\r\n\r\n".as_bytes(),
        ),
        enc_ok(
            "status 999",
            Response(Http11, 999, "X", &[]),
            b"HTTP/1.1 999 X\r\n\r\n",
        ),
        enc_err(
            "CRLF in a response value",
            Response(
                Http11,
                200,
                "OK",
                &[(b"A", b"1"), (b"X", b"a\r\nSet-Cookie: x")],
            ),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "bare LF in a response value",
            Response(Http11, 200, "OK", &[(b"X", b"a\nb")]),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "bare CR in a response value",
            Response(Http11, 200, "OK", &[(b"X", b"a\rb")]),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "NUL in a response value",
            Response(Http11, 200, "OK", &[(b"X", b"a\0b")]),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "DEL in a response value",
            Response(Http11, 200, "OK", &[(b"X", b"a\x7f")]),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "CRLF in a response name",
            Response(Http11, 200, "OK", &[(b"X\r\nY", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_err(
            "colon in a response name",
            Response(Http11, 200, "OK", &[(b"X:", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_err(
            "NUL in a response name",
            Response(Http11, 200, "OK", &[(b"X\0", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_err(
            "space in a response name",
            Response(Http11, 200, "OK", &[(b"X Y", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_err(
            "empty response name",
            Response(Http11, 200, "OK", &[(b"", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_err(
            "CRLF in the reason",
            Response(Http11, 200, "OK\r\nX: y", &[]),
            Error::BadStatusLine,
            502,
        ),
        enc_err(
            "status 99",
            Response(Http11, 99, "X", &[]),
            Error::BadStatusLine,
            502,
        ),
        enc_err(
            "status 1000",
            Response(Http11, 1000, "X", &[]),
            Error::BadStatusLine,
            502,
        ),
        enc_ok(
            "request head",
            Request(
                "PATCH",
                "/x?y=1",
                Http11,
                &[(b"Host", b"a"), (b"Content-Length", b"0")],
            ),
            b"PATCH /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        ),
        enc_ok(
            "unknown method, HTTP/1.0",
            Request("BREW", "/pot", Http10, &[]),
            b"BREW /pot HTTP/1.0\r\n\r\n",
        ),
        enc_ok(
            "absolute-form target",
            Request("GET", "http://h:1/p", Http11, &[(b"Host", b"h:1")]),
            b"GET http://h:1/p HTTP/1.1\r\nHost: h:1\r\n\r\n",
        ),
        enc_err(
            "space in the method",
            Request("GE T", "/", Http11, &[]),
            Error::BadRequestLine,
            400,
        ),
        enc_err(
            "empty method",
            Request("", "/", Http11, &[]),
            Error::BadRequestLine,
            400,
        ),
        enc_err(
            "space in the target",
            Request("GET", "/a b", Http11, &[]),
            Error::InvalidTarget,
            400,
        ),
        enc_err(
            "CRLF in the target",
            Request("GET", "/\r\nX: y", Http11, &[]),
            Error::InvalidTarget,
            400,
        ),
        enc_err(
            "empty target",
            Request("GET", "", Http11, &[]),
            Error::InvalidTarget,
            400,
        ),
        enc_err(
            "non-ASCII target",
            Request("GET", "/caf\u{e9}", Http11, &[]),
            Error::InvalidTarget,
            400,
        ),
        enc_err(
            "LF in a request value",
            Request(
                "GET",
                "/",
                Http11,
                &[(b"Host", b"a"), (b"X", b"\nGET /admin")],
            ),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "CR in a request name",
            Request("GET", "/", Http11, &[(b"X\r", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
        enc_ok(
            "chunks, empty pieces skipped, no trailers",
            Chunked(&[b"hello", b"", b" world"], &[]),
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        ),
        enc_ok("only empty pieces", Chunked(&[b"", b""], &[]), b"0\r\n\r\n"),
        enc_ok(
            "chunk sizes in lower-case hex",
            Chunked(&[b"0123456789abcdefXYZ"], &[]),
            b"13\r\n0123456789abcdefXYZ\r\n0\r\n\r\n",
        ),
        enc_ok(
            "trailers",
            Chunked(&[b"x"], &[(b"Etag", b"\"v\""), (b"X-Sum", b"1")]),
            b"1\r\nx\r\n0\r\nEtag: \"v\"\r\nX-Sum: 1\r\n\r\n",
        ),
        enc_err(
            "CRLF in a trailer value",
            Chunked(&[b"x"], &[(b"X", b"a\r\nb")]),
            Error::InvalidHeaderValue,
            400,
        ),
        enc_err(
            "bad trailer name",
            Chunked(&[b"x"], &[(b"A", b"1"), (b"B C", b"1")]),
            Error::InvalidHeaderName,
            400,
        ),
    ]
}

/// What an encoder writes is a message the parsers accept, field for field.
fn check_round_trip(name: &str, enc: &Enc, wire: &[u8]) {
    match enc {
        Enc::Response(version, status, reason, fields_in) => {
            let mut buf = BytesMut::from(wire);
            let head = ResponseParser::new(DEFAULT)
                .parse(&mut buf, &http::Method::GET)
                .unwrap_or_else(|e| panic!("{name}: encoded response rejected: {e:?}"))
                .unwrap_or_else(|| panic!("{name}: encoded response incomplete"));
            assert_eq!(head.version(), *version, "{name}");
            assert_eq!(head.status(), *status, "{name}");
            assert_eq!(head.reason(), reason.as_bytes(), "{name}");
            assert_eq!(
                fields(head.headers()),
                fields(fields_in.iter().copied()),
                "{name}"
            );
            assert!(buf.is_empty(), "{name}: head not consumed whole");
        }
        Enc::Request(method, target, version, fields_in) => {
            let mut buf = BytesMut::from(wire);
            let head = RequestParser::new(DEFAULT)
                .parse(&mut buf)
                .unwrap_or_else(|e| panic!("{name}: encoded request rejected: {e:?}"))
                .unwrap_or_else(|| panic!("{name}: encoded request incomplete"));
            assert_eq!(head.method(), method.as_bytes(), "{name}");
            assert_eq!(head.target(), target.as_bytes(), "{name}");
            assert_eq!(head.version(), *version, "{name}");
            assert_eq!(
                fields(head.headers()),
                fields(fields_in.iter().copied()),
                "{name}"
            );
            assert!(buf.is_empty(), "{name}: head not consumed whole");
        }
        Enc::Chunked(body, trailers) => {
            let mut dec = ChunkedDecoder::new(&DEFAULT);
            let d = dec.decode(wire).unwrap();
            let mut got = wire[d.data.clone()].to_vec();
            let mut pos = d.consumed;
            while !dec.is_done() {
                let d = dec.decode(&wire[pos..]).unwrap();
                got.extend_from_slice(&wire[pos..][d.data.clone()]);
                pos += d.consumed;
            }
            assert_eq!(pos, wire.len(), "{name}: decoder stopped early");
            assert_eq!(got, body.concat(), "{name}: body");
            let want: Fields = trailers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
                .collect();
            assert_eq!(
                trailer_fields(dec.trailers()),
                Some(want),
                "{name}: trailers"
            );
        }
    }
}

#[test]
fn encoders() {
    const PRE: &[u8] = b"earlier bytes|";
    for c in encoder_cases() {
        // The output buffer already holds bytes: they must survive untouched,
        // and an error must leave nothing of its own behind.
        let mut out = PRE.to_vec();
        let got = match &c.enc {
            Enc::Response(v, s, r, f) => {
                encode_response_head(&mut out, *v, *s, r, f.iter().copied())
            }
            Enc::Request(m, t, v, f) => encode_request_head(&mut out, m, t, *v, f.iter().copied()),
            Enc::Chunked(body, trailers) => {
                let mut o = BytesMut::from(PRE);
                for piece in *body {
                    ChunkedEncoder::chunk(piece, &mut o);
                }
                let r = ChunkedEncoder::finish(trailers, &mut o);
                if r.is_err() {
                    // Only the trailer section is rolled back.
                    let mut want = PRE.to_vec();
                    for piece in *body {
                        ChunkedEncoder::chunk(piece, &mut want);
                    }
                    assert_eq!(
                        &o[..],
                        &want[..],
                        "{}: partial trailer section written",
                        c.name
                    );
                    o = BytesMut::from(PRE);
                }
                out = o.to_vec();
                r
            }
        };
        match (c.expect, got) {
            (Ok(wire), Ok(())) => {
                assert_eq!(
                    &out[..PRE.len()],
                    PRE,
                    "{}: earlier bytes clobbered",
                    c.name
                );
                assert_eq!(
                    String::from_utf8_lossy(&out[PRE.len()..]),
                    String::from_utf8_lossy(wire),
                    "{}: encoding",
                    c.name
                );
                check_round_trip(c.name, &c.enc, wire);
            }
            (Err((e, s)), Err(g)) => {
                check_error(c.name, g, e, s);
                assert_eq!(out, PRE, "{}: bytes written despite the error", c.name);
            }
            (want, got) => panic!("{}: expected {want:?}, got {got:?}", c.name),
        }
    }
}

#[test]
fn chunk_header_hex() {
    let table: &[(u64, &[u8])] = &[
        (1, b"1\r\n"),
        (9, b"9\r\n"),
        (10, b"a\r\n"),
        (15, b"f\r\n"),
        (16, b"10\r\n"),
        (255, b"ff\r\n"),
        (256, b"100\r\n"),
        (300, b"12c\r\n"),
        (4096, b"1000\r\n"),
        (0xdead_beef, b"deadbeef\r\n"),
        (1 << 60, b"1000000000000000\r\n"),
        (u64::MAX, b"ffffffffffffffff\r\n"),
    ];
    for &(size, want) in table {
        let h = ChunkHeader::new(size);
        assert_eq!(h.as_bytes(), want, "ChunkHeader::new({size})");
        // The decoder reads the size back.
        let line = h.as_bytes();
        let hex = std::str::from_utf8(&line[..line.len() - 2]).unwrap();
        assert_eq!(u64::from_str_radix(hex, 16).unwrap(), size);
    }
}

// ---------------------------------------------------------------------------
// Table size
// ---------------------------------------------------------------------------

#[test]
fn table_has_at_least_100_cases() {
    let sections = [
        (
            "RFC 9112 §2.2 message parsing",
            message_parsing_cases().len(),
        ),
        ("RFC 9112 §3 request line", request_line_cases().len()),
        ("RFC 9112 §3.2 target forms", target_form_cases().len()),
        ("RFC 9112 §2.3 versions", version_cases().len()),
        ("RFC 9112 §5 fields", field_cases().len()),
        ("RFC 9110 §7.2 Host", host_cases().len()),
        ("RFC 9112 §6 framing", framing_cases().len()),
        ("RFC 9112 §7.1 chunked", chunked_cases().len()),
        ("RFC 9112 §9.3 keep-alive", keep_alive_cases().len()),
        ("RFC 9110 §10.1.1 Expect", expect_cases().len()),
        ("RFC 9112 §6.3 responses", response_cases().len()),
        ("cooked URL", url_cases().len()),
        ("encoders", encoder_cases().len()),
    ];
    let total: usize = sections.iter().map(|s| s.1).sum();
    for (name, n) in sections {
        println!("{name}: {n}");
    }
    println!("total: {total} (+ chunk header rows)");
    assert!(total >= 100, "only {total} table cases");
}
