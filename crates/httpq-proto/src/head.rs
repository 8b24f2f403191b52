//! What request and response heads share: the version, zero-copy header
//! storage, finding the end of a head incrementally, and header-field rules.

use bytes::Bytes;
use smallvec::SmallVec;

use crate::{Error, Limits};

/// The HTTP versions a request can arrive in. The core parses and
/// writes HTTP/1.x; `Http2` marks requests the server took from h2
/// streams (never parsed from, nor written to, an HTTP/1 wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
    /// HTTP/2
    Http2,
}

impl Version {
    /// The version as it appears on the wire.
    ///
    /// ```
    /// assert_eq!(httpq_proto::Version::Http11.as_str(), "HTTP/1.1");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2",
        }
    }

    pub(crate) fn from_httparse(v: u8) -> Version {
        if v == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }
}

impl From<Version> for http::Version {
    fn from(v: Version) -> http::Version {
        match v {
            Version::Http10 => http::Version::HTTP_10,
            Version::Http11 => http::Version::HTTP_11,
            Version::Http2 => http::Version::HTTP_2,
        }
    }
}

/// A byte range inside a head buffer. `u16` keeps the header table small
/// (a field is 8 bytes, 16 of them fit inline in 128); heads are capped at
/// [`MAX_HEAD_BYTES`] so every offset fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: u16,
    pub end: u16,
}

impl Span {
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u16,
            end: (start + part.len()) as u16,
        }
    }

    #[inline]
    pub(crate) fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FieldSpan {
    pub name: Span,
    pub value: Span,
}

/// The largest head the core accepts, whatever [`Limits::max_head_bytes`] says.
pub const MAX_HEAD_BYTES: usize = u16::MAX as usize;

/// Header table stored inline for typical heads: no allocation per request
/// unless a head has more than 16 fields.
pub(crate) type Fields = SmallVec<[FieldSpan; 16]>;

/// The header fields of a parsed head, in wire order, as `(name, value)` byte
/// slices of the head buffer.
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::{RequestParser, Limits};
/// let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nX-Y: 1\r\n\r\n"[..]);
/// let head = RequestParser::new(Limits::default()).parse(&mut buf).unwrap().unwrap();
/// let names: Vec<&[u8]> = head.headers().map(|(n, _)| n).collect();
/// assert_eq!(names, [&b"Host"[..], &b"X-Y"[..]]);
/// ```
#[derive(Clone)]
pub struct HeaderIter<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) fields: std::slice::Iter<'a, FieldSpan>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        self.fields
            .next()
            .map(|f| (f.name.get(self.buf), f.value.get(self.buf)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

/// Looks up the first field named `name` (ASCII case-insensitive).
pub(crate) fn find_field<'a>(buf: &'a [u8], fields: &[FieldSpan], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value.get(buf))
}

/// Builds an [`http::HeaderMap`] whose values share the head buffer.
pub(crate) fn to_header_map(buf: &Bytes, fields: &[FieldSpan]) -> http::HeaderMap {
    let mut map = http::HeaderMap::with_capacity(fields.len());
    for f in fields {
        // Names and values were validated by the parser, so these conversions
        // cannot fail; a failure would be a bug, and dropping the field is safer
        // than panicking on network input.
        let name = http::HeaderName::from_bytes(f.name.get(buf));
        let value = http::HeaderValue::from_maybe_shared(
            buf.slice(f.value.start as usize..f.value.end as usize),
        );
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

/// Incremental search for the end of a head. Remembers how far it has looked,
/// so a head trickled in one byte per read costs linear time, not quadratic.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadScan {
    /// Bytes already known not to contain the end of the head.
    scanned: usize,
    /// The first [`EARLY_CHECK_BYTES`] of a longer head have been checked by httparse.
    pub first_line_checked: bool,
}

/// Inputs shorter than this are run through httparse on every call so that
/// garbage is rejected early instead of waiting for the head limit.
pub(crate) const EARLY_CHECK_BYTES: usize = 1024;

impl HeadScan {
    /// Nothing of the current head has been looked at yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.scanned == 0 && !self.first_line_checked
    }

    pub(crate) fn reset(&mut self) {
        *self = HeadScan::default();
    }

    /// Returns the length of the head (through its empty line) once present.
    /// Leading empty lines (RFC 9112 §2.2) are skipped, not taken as the end.
    pub(crate) fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        let mut lead = 0;
        while lead < buf.len() && (buf[lead] == b'\r' || buf[lead] == b'\n') {
            lead += 1;
        }
        let mut i = self.scanned.max(lead);
        while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
            let nl = i + off;
            match (buf.get(nl + 1), buf.get(nl + 2)) {
                (Some(b'\n'), _) => return Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
                (Some(b'\r'), None) | (None, _) => {
                    self.scanned = nl;
                    return None;
                }
                _ => i = nl + 1,
            }
        }
        self.scanned = buf.len();
        None
    }
}

/// Maps an httparse error to ours. `line` is the first line of the head, used
/// to tell a malformed version (400) from a well-formed unsupported one (505).
pub(crate) fn map_httparse(e: httparse::Error, first_line: &[u8], request: bool) -> Error {
    match e {
        httparse::Error::HeaderName => Error::InvalidHeaderName,
        httparse::Error::HeaderValue => Error::InvalidHeaderValue,
        httparse::Error::NewLine => Error::InvalidNewLine,
        httparse::Error::Status => Error::BadStatusLine,
        httparse::Error::TooManyHeaders => Error::TooManyHeaders,
        httparse::Error::Token => {
            if request {
                Error::BadRequestLine
            } else {
                Error::BadStatusLine
            }
        }
        httparse::Error::Version => {
            // The version is what follows the second space of a request line
            // (method and target hold no spaces), the first token of a status line.
            let version = if request {
                first_line.splitn(3, |&b| b == b' ').nth(2).unwrap_or(b"")
            } else {
                first_line.split(|&b| b == b' ').next().unwrap_or(b"")
            };
            let version = version.strip_suffix(b"\r").unwrap_or(version);
            if is_wellformed_version(version) {
                Error::VersionNotSupported
            } else if request {
                Error::BadVersion
            } else {
                Error::BadStatusLine
            }
        }
    }
}

/// `HTTP/<digit>.<digit>` (RFC 9112 §2.3): anything else, `HTTP/2` and
/// `HTTP/3` included, is a syntax error (400), not a version to refuse (505).
fn is_wellformed_version(v: &[u8]) -> bool {
    match v {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] => a.is_ascii_digit() && b.is_ascii_digit(),
        _ => false,
    }
}

/// The first line of a head (without its line ending), after leading empty lines.
pub(crate) fn first_line(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = &rest[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Headers whose meaning is framing or connection management, gathered in
/// the same pass that copies spans out of httparse's table.
#[derive(Debug, Default)]
pub(crate) struct Special {
    pub content_length: Option<u64>,
    pub transfer_encoding: bool,
    /// The last coding listed (over all Transfer-Encoding fields) is `chunked`.
    pub te_last_chunked: bool,
    /// How often `chunked` is listed; more than once is an error.
    pub te_chunked_count: u32,
    /// A coding other than `chunked` is listed.
    pub te_other: bool,
    pub host: Option<Span>,
    pub host_count: u32,
    pub conn_close: bool,
    pub conn_keep_alive: bool,
    pub conn_upgrade: bool,
    pub upgrade: bool,
    pub expect_continue: bool,
    pub expect_other: bool,
}

#[inline]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

/// Splits a field value on commas into trimmed list elements (RFC 9110 §5.6.1),
/// skipping empty elements as recipients must.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// RFC 9110 §5.6.2 `tchar`, as a table: one load per byte on hot paths.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
            | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        i += 1;
    }
    t
};

/// Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text.
static FIELD_VALUE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i == 0x09 || (i >= 0x20 && i != 0x7f);
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// A field value holds no CR, LF, NUL or other control byte.
#[inline]
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| FIELD_VALUE[b as usize])
}

/// Parses a Content-Length value: a list of identical runs of plain digits.
/// `"42, 42"` is 42 (RFC 9110 §8.6); signs, spaces inside, hex, or overflow are not.
pub(crate) fn parse_content_length(value: &[u8], prev: Option<u64>) -> Result<u64, Error> {
    let mut result = prev;
    let mut any = false;
    for elem in value.split(|&b| b == b',') {
        let elem = trim_ows(elem);
        if elem.is_empty() || !elem.iter().all(u8::is_ascii_digit) {
            return Err(Error::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for &d in elem {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(Error::InvalidContentLength)?;
        }
        match result {
            Some(p) if p != n => return Err(Error::ConflictingContentLength),
            _ => result = Some(n),
        }
        any = true;
    }
    match (any, result) {
        (true, Some(n)) => Ok(n),
        _ => Err(Error::InvalidContentLength),
    }
}

impl Special {
    /// Reads one field; called for every header in order.
    #[inline]
    pub(crate) fn observe(&mut self, base: &[u8], name: &[u8], value: &[u8]) -> Result<(), Error> {
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            4 if name_is(name, b"host") => {
                self.host = Some(Span::of(base, value));
                self.host_count += 1;
            }
            6 if name_is(name, b"expect") => {
                for e in list_elements(value) {
                    if e.eq_ignore_ascii_case(b"100-continue") {
                        self.expect_continue = true;
                    } else {
                        self.expect_other = true;
                    }
                }
            }
            7 if name_is(name, b"upgrade") => self.upgrade = true,
            10 if name_is(name, b"connection") => {
                for t in list_elements(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        self.conn_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        self.conn_keep_alive = true;
                    } else if t.eq_ignore_ascii_case(b"upgrade") {
                        self.conn_upgrade = true;
                    }
                }
            }
            14 if name_is(name, b"content-length") => {
                self.content_length = Some(parse_content_length(value, self.content_length)?);
            }
            17 if name_is(name, b"transfer-encoding") => {
                let mut any = false;
                for coding in list_elements(value) {
                    if !is_token(coding) {
                        return Err(Error::InvalidTransferEncoding);
                    }
                    any = true;
                    self.te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if self.te_last_chunked {
                        self.te_chunked_count += 1;
                    } else {
                        self.te_other = true;
                    }
                }
                if !any {
                    return Err(Error::InvalidTransferEncoding);
                }
                self.transfer_encoding = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// Keep-alive default for the version, overridden by Connection tokens.
    pub(crate) fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::Http11 | Version::Http2 => !self.conn_close,
            Version::Http10 => self.conn_keep_alive && !self.conn_close,
        }
    }
}

/// Copies httparse's header table into spans, enforcing the field limit and
/// collecting the framing headers.
pub(crate) fn collect_fields(
    base: &[u8],
    headers: &[httparse::Header<'_>],
    limits: &Limits,
    special: &mut Special,
    fields: &mut Fields,
) -> Result<(), Error> {
    fields.clear();
    fields.reserve(headers.len());
    for h in headers {
        let name = h.name.as_bytes();
        if name.len() + h.value.len() > limits.max_field_bytes {
            return Err(Error::FieldTooLarge);
        }
        special.observe(base, name, h.value)?;
        fields.push(FieldSpan {
            name: Span::of(base, name),
            value: Span::of(base, h.value),
        });
    }
    Ok(())
}

/// Runs `f` with an uninitialised header table sized for the limit, on the
/// stack for the default limit.
#[inline]
pub(crate) fn with_header_table<'b, R>(
    max_headers: usize,
    f: impl FnOnce(&mut [std::mem::MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    const STACK: usize = 128;
    if max_headers <= STACK {
        let mut table = [std::mem::MaybeUninit::<httparse::Header<'b>>::uninit(); STACK];
        f(&mut table[..max_headers])
    } else {
        let mut table = vec![std::mem::MaybeUninit::<httparse::Header<'b>>::uninit(); max_headers];
        f(&mut table)
    }
}
