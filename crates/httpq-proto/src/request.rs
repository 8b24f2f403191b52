//! Request heads: incremental, zero-copy parsing with every RFC 9112 check a
//! server needs before it lets an application see a request.

use bytes::{Bytes, BytesMut};

use crate::framing::{request_body, BodyLength};
use crate::head::{
    collect_fields, find_field, first_line, is_token, map_httparse, to_header_map,
    with_header_table, Fields, HeadScan, HeaderIter, Span, Special, EARLY_CHECK_BYTES,
};
use crate::url::{parse_authority, split_authority, Authority, CookedUrl};
use crate::{Error, Limits, Version};

/// The four forms of request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host:port/path?query` (its authority overrides Host)
    Absolute,
    /// `host:port`, CONNECT only
    Authority,
    /// `*`, OPTIONS only
    Asterisk,
}

/// A parsed, validated request head. Holds the head's bytes; every accessor
/// returns a slice of them.
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::{BodyLength, Limits, RequestParser, Version};
/// let mut buf = BytesMut::from(&b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"[..]);
/// let head = RequestParser::new(Limits::default()).parse(&mut buf).unwrap().unwrap();
/// assert_eq!(head.method(), b"POST");
/// assert_eq!(head.target(), b"/up");
/// assert_eq!(head.version(), Version::Http11);
/// assert_eq!(head.body(), BodyLength::Length(5));
/// assert_eq!(&buf[..], b"hello"); // the body stays in the buffer
/// ```
#[derive(Debug, Clone)]
// In declaration order: the fields table last, so a head's scalars and its
// first fields share cache lines (servers keep many heads in flight).
#[repr(C)]
pub struct RequestHead {
    buf: Bytes,
    method: Span,
    target: Span,
    /// The effective host without its port (the target's authority wins).
    host_name: Option<Span>,
    host: Option<Span>,
    body: BodyLength,
    version: Version,
    form: TargetForm,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
    fields: Fields,
}

/// An empty head (no method, target or fields): the thing
/// [`RequestParser::parse_into`] fills.
impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            buf: Bytes::new(),
            method: Span::default(),
            target: Span::default(),
            version: Version::Http11,
            fields: Fields::new(),
            form: TargetForm::Origin,
            host: None,
            host_name: None,
            body: BodyLength::Empty,
            keep_alive: true,
            expect_continue: false,
            upgrade: false,
        }
    }
}

impl RequestHead {
    /// Empties the head and lets go of the bytes it pointed into (a head
    /// kept for reuse must not hold the read buffer).
    pub fn clear(&mut self) {
        self.buf = Bytes::new();
        self.method = Span::default();
        self.target = Span::default();
        self.fields.clear();
        self.host = None;
        self.host_name = None;
        self.body = BodyLength::Empty;
    }

    /// The method token as sent (unknown methods included).
    pub fn method(&self) -> &[u8] {
        self.method.get(&self.buf)
    }

    /// The method as an [`http::Method`].
    pub fn http_method(&self) -> http::Method {
        // The parser accepted only tokens, which http::Method accepts too.
        http::Method::from_bytes(self.method()).unwrap_or(http::Method::GET)
    }

    /// The raw request target, exactly as sent.
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.buf)
    }

    /// Which of the four target forms the request used.
    pub fn target_form(&self) -> TargetForm {
        self.form
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields in wire order.
    pub fn headers(&self) -> HeaderIter<'_> {
        HeaderIter {
            buf: &self.buf,
            fields: self.fields.iter(),
        }
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_field(&self.buf, &self.fields, name)
    }

    /// The first value of field `name` as an [`http::HeaderValue`] sharing
    /// the head's memory (no copy), for passing a field on.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use httpq_proto::{Limits, RequestParser};
    /// let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\n\r\n"[..]);
    /// let head = RequestParser::new(Limits::default()).parse(&mut buf).unwrap().unwrap();
    /// assert_eq!(head.header_value("content-type").unwrap(), "text/x");
    /// ```
    pub fn header_value(&self, name: &str) -> Option<http::HeaderValue> {
        let v = self.header(name)?;
        // The parser admitted only valid field values.
        http::HeaderValue::from_maybe_shared(self.buf.slice_ref(v)).ok()
    }

    /// The fields as an [`http::HeaderMap`], sharing the head's memory.
    pub fn header_map(&self) -> http::HeaderMap {
        to_header_map(&self.buf, &self.fields)
    }

    /// The Host header's value, if sent.
    pub fn host_header(&self) -> Option<&[u8]> {
        self.host.map(|s| s.get(&self.buf))
    }

    /// The origin-form path (without query) when it is already what the
    /// cooked URL's path would be: no escapes, no backslashes, no dot
    /// segments, within the segment limits. Lets a server route the common
    /// request without building the cooked URL (no allocation).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use httpq_proto::{Limits, RequestParser};
    /// let l = Limits::default();
    /// let mut b = BytesMut::from(&b"GET /a/b.txt?x HTTP/1.1\r\nHost: h\r\n\r\nGET /a/../b HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
    /// let mut p = RequestParser::new(l);
    /// assert_eq!(p.parse(&mut b).unwrap().unwrap().simple_path(&l), Some(&b"/a/b.txt"[..]));
    /// assert_eq!(p.parse(&mut b).unwrap().unwrap().simple_path(&l), None);
    /// ```
    pub fn simple_path(&self, limits: &Limits) -> Option<&[u8]> {
        if self.form != TargetForm::Origin {
            return None;
        }
        let t = self.target();
        let path = &t[..t.iter().position(|&b| b == b'?').unwrap_or(t.len())];
        if path.iter().any(|&b| b == b'%' || b == b'\\') {
            return None;
        }
        let mut count = 0;
        for seg in path.split(|&b| b == b'/').skip(1) {
            if seg == b"." || seg == b".." {
                return None;
            }
            if seg.is_empty() {
                continue;
            }
            count += 1;
            if count > limits.max_url_segments || seg.len() > limits.max_url_segment_len {
                return None;
            }
        }
        // Bytes, not str: the parser admitted only ASCII targets, and the
        // router compares bytes (no UTF-8 check per request).
        Some(path)
    }

    /// The host the request names, without port (from the target's
    /// authority or the Host header), as sent; `None` if it names none.
    pub fn host(&self) -> Option<&[u8]> {
        self.host_name.map(|s| s.get(&self.buf))
    }

    /// The authority the request is for: the target's for absolute- and
    /// authority-form targets (which override Host), else the Host header's.
    pub fn authority(&self) -> Option<&[u8]> {
        match self.form {
            TargetForm::Absolute => {
                let t = self.target();
                let rest = &t[t.iter().position(|&b| b == b':').map_or(0, |i| i + 3)..];
                let end = rest
                    .iter()
                    .position(|&b| b == b'/' || b == b'?')
                    .unwrap_or(rest.len());
                Some(&rest[..end])
            }
            TargetForm::Authority => Some(self.target()),
            _ => self.host_header(),
        }
    }

    /// How the body is framed.
    pub fn body(&self) -> BodyLength {
        self.body
    }

    /// Whether the connection may carry another request after this one
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// `Expect: 100-continue` on an HTTP/1.1 request with a body (never for 1.0).
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// The client asks to switch protocols (`Connection: upgrade` + `Upgrade`).
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// The whole head as received (request line through the empty line).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The "cooked" URL an HTTP Server API application sees: scheme, host and
    /// port (from the target's authority, else Host, else the local address),
    /// the percent-decoded path with dot-segments removed, and the raw query.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use httpq_proto::{Limits, RequestParser};
    /// let mut buf = BytesMut::from(&b"GET /a/%2e%2e/b%20c/./d?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n"[..]);
    /// let head = RequestParser::new(Limits::default()).parse(&mut buf).unwrap().unwrap();
    /// let url = head.cooked_url("http", "127.0.0.1:80".parse().unwrap(), &Limits::default()).unwrap();
    /// assert_eq!(url.full(), "http://example.com:8080/b c/d?x=1");
    /// ```
    pub fn cooked_url(
        &self,
        scheme: &'static str,
        local: std::net::SocketAddr,
        limits: &Limits,
    ) -> Result<CookedUrl, Error> {
        let default_port = if scheme == "https" { 443 } else { 80 };
        let auth = match self.authority() {
            Some(a) if !a.is_empty() => parse_authority(a)?,
            _ => Authority::from_socket(local),
        };
        let port = auth.port.unwrap_or(match self.authority() {
            Some(a) if !a.is_empty() => default_port,
            _ => local.port(),
        });
        let (path, query) = match self.form {
            TargetForm::Origin => split_query(self.target()),
            TargetForm::Absolute => {
                let t = self.target();
                let after_scheme = t.iter().position(|&b| b == b':').map_or(0, |i| i + 3);
                let rest = &t[after_scheme..];
                let path_at = rest
                    .iter()
                    .position(|&b| b == b'/' || b == b'?')
                    .unwrap_or(rest.len());
                split_query(&rest[path_at..])
            }
            TargetForm::Authority => (&b""[..], &b""[..]),
            TargetForm::Asterisk => (&b"*"[..], &b""[..]),
        };
        CookedUrl::new(scheme, auth.host, port, path, query, limits)
    }
}

fn split_query(t: &[u8]) -> (&[u8], &[u8]) {
    match t.iter().position(|&b| b == b'?') {
        Some(q) => (&t[..q], &t[q..]),
        None => (t, &t[t.len()..]),
    }
}

/// An incremental request-head parser. Call [`parse`](Self::parse) after
/// every read; it answers `Ok(None)` until a whole head is buffered.
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::{Limits, RequestParser};
/// let mut p = RequestParser::new(Limits::default());
/// let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHo"[..]);
/// assert!(p.parse(&mut buf).unwrap().is_none());
/// buf.extend_from_slice(b"st: a\r\n\r\n");
/// assert!(p.parse(&mut buf).unwrap().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    scan: HeadScan,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(mut limits: Limits) -> Self {
        limits.max_head_bytes = limits.max_head_bytes.min(crate::head::MAX_HEAD_BYTES);
        RequestParser {
            limits,
            scan: HeadScan::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses a head from the front of `buf`. On success the head's bytes are
    /// split off `buf` (no copy) and whatever follows (body, pipelined
    /// requests) stays in it.
    #[inline]
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, Error> {
        let mut head = RequestHead::default();
        Ok(self.parse_into(buf, &mut head)?.then_some(head))
    }

    /// Like [`parse`](Self::parse), but fills `head` in place (no moves of
    /// the ~200-byte head between layers; a server keeps the head where the
    /// request will live). `Ok(true)`: a head was parsed into `head`.
    /// `Ok(false)`: more bytes are needed. After `Ok(false)` or an error,
    /// `head` holds unspecified (but valid) contents.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use httpq_proto::{Limits, RequestHead, RequestParser};
    /// let mut parser = RequestParser::new(Limits::default());
    /// let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    /// let mut head = RequestHead::default();
    /// assert!(parser.parse_into(&mut buf, &mut head)?);
    /// assert_eq!(head.target(), b"/");
    /// # Ok::<(), httpq_proto::Error>(())
    /// ```
    #[inline]
    pub fn parse_into(
        &mut self,
        buf: &mut BytesMut,
        head: &mut RequestHead,
    ) -> Result<bool, Error> {
        match self.parse_layout(buf, head)? {
            None => Ok(false),
            Some(len) => {
                head.buf = buf.split_to(len).freeze();
                Ok(true)
            }
        }
    }

    /// Like [`parse`](Self::parse) for an immutable buffer: returns the head
    /// and its length; the head shares `buf`'s memory.
    pub fn parse_bytes(&mut self, buf: &Bytes) -> Result<Option<(RequestHead, usize)>, Error> {
        let mut head = RequestHead::default();
        match self.parse_layout(buf, &mut head)? {
            None => Ok(None),
            Some(len) => {
                head.buf = buf.slice(..len);
                Ok(Some((head, len)))
            }
        }
    }

    /// Parses into `out` (all but its `buf`); returns the head's length.
    #[inline]
    fn parse_layout(&mut self, buf: &[u8], out: &mut RequestHead) -> Result<Option<usize>, Error> {
        // Fast path: a head that arrived whole is parsed by one httparse
        // call, with no separate scan for its end. Anything else (partial,
        // malformed, oversized) takes the incremental path below, so the
        // outcome never depends on how the bytes were split.
        if self.scan.is_fresh() && buf.len() >= 16 {
            if let Some(done) = self.parse_whole(buf, out) {
                return done.map(Some);
            }
        }
        let end = match self.scan.find_end(buf) {
            Some(end) => end,
            None => {
                if buf.len() > self.limits.max_head_bytes {
                    return Err(oversize(buf, self.limits.max_head_bytes));
                }
                // Small inputs are checked on every call; the first
                // EARLY_CHECK_BYTES of longer ones once, so trickled input
                // never costs quadratic time.
                if buf.len() <= EARLY_CHECK_BYTES {
                    self.early_check(buf)?;
                } else if !self.scan.first_line_checked {
                    // Always the same prefix, however the bytes arrived.
                    self.early_check(&buf[..EARLY_CHECK_BYTES])?;
                    self.scan.first_line_checked = true;
                }
                return Ok(None);
            }
        };
        if end > self.limits.max_head_bytes {
            // The same answer as when the head arrives piece by piece.
            return Err(oversize(buf, self.limits.max_head_bytes));
        }
        self.scan.reset();
        let head = &buf[..end];
        let limits = &self.limits;
        with_header_table(limits.max_headers, |table| {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(head, table) {
                Ok(httparse::Status::Complete(_)) => {}
                // find_end saw the empty line, so httparse must too.
                Ok(httparse::Status::Partial) => return Err(Error::InvalidNewLine),
                Err(e) => return Err(map_request_error(e, head)),
            }
            let method = req.method.unwrap_or_default().as_bytes();
            let target = req.path.unwrap_or_default().as_bytes();
            let version = Version::from_httparse(req.version.unwrap_or(1));
            let mut special = Special::default();
            collect_fields(head, req.headers, limits, &mut special, &mut out.fields)?;
            build(head, method, target, version, special, limits, out).map(Some)
        })
    }

    /// One httparse pass over `buf`; `Some` only if it holds a complete head within the limit.
    #[inline]
    fn parse_whole(&mut self, buf: &[u8], out: &mut RequestHead) -> Option<Result<usize, Error>> {
        let limits = &self.limits;
        with_header_table(limits.max_headers, |table| {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(buf, table) {
                Ok(httparse::Status::Complete(end)) if end <= limits.max_head_bytes => {
                    let head = &buf[..end];
                    let method = req.method.unwrap_or_default().as_bytes();
                    let target = req.path.unwrap_or_default().as_bytes();
                    let version = Version::from_httparse(req.version.unwrap_or(1));
                    let mut special = Special::default();
                    Some(
                        collect_fields(head, req.headers, limits, &mut special, &mut out.fields)
                            .and_then(|()| {
                                build(head, method, target, version, special, limits, out)
                            }),
                    )
                }
                _ => None,
            }
        })
    }

    /// Runs httparse over a partial head to reject garbage before the whole
    /// head (or the size limit) arrives.
    fn early_check(&mut self, buf: &[u8]) -> Result<(), Error> {
        let limits = &self.limits;
        with_header_table(limits.max_headers, |table| {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(buf, table) {
                Ok(_) => Ok(()),
                // Until the first line ends, a bad version may yet prove
                // well-formed (505) or malformed (400): decide on the whole line.
                Err(httparse::Error::Version) if !first_line_ended(buf) => Ok(()),
                Err(e) => Err(map_request_error(e, buf)),
            }
        })
    }
}

/// The error for a head longer than `max`: 414 when the request line alone
/// does not end within `max` bytes, else 431.
fn oversize(buf: &[u8], max: usize) -> Error {
    if first_line_ended(&buf[..max.min(buf.len())]) {
        Error::HeadTooLarge
    } else {
        Error::UriTooLong
    }
}

/// The first line (after leading empty lines) has its line feed.
fn first_line_ended(buf: &[u8]) -> bool {
    buf.iter()
        .skip_while(|&&b| b == b'\r' || b == b'\n')
        .any(|&b| b == b'\n')
}

fn map_request_error(e: httparse::Error, head: &[u8]) -> Error {
    let line = first_line(head);
    // httparse reports whitespace before a colon and obs-fold as a bad name;
    // say which, since both are classic smuggling vectors.
    if e == httparse::Error::HeaderName && has_obs_fold(head) {
        return Error::ObsoleteLineFolding;
    }
    map_httparse(e, line, true)
}

/// Whether the header line httparse stopped at (the first one not starting
/// with `token:`) is an obs-fold. Only that line counts, so the answer does
/// not depend on how much of the head has arrived.
fn has_obs_fold(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    for line in head[start..].split(|&b| b == b'\n').skip(1) {
        if let [b' ' | b'\t', ..] = line {
            return true;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) if is_token(&line[..colon]) => {}
            _ => return false,
        }
    }
    false
}

/// Validates a parsed head and fills `out` with it (all but `out.buf`,
/// which the caller attaches once it has split the bytes off; `out.fields`
/// is already filled). Returns the head's length.
#[inline]
fn build(
    head: &[u8],
    method: &[u8],
    target: &[u8],
    version: Version,
    s: Special,
    limits: &Limits,
    out: &mut RequestHead,
) -> Result<usize, Error> {
    let form = classify_target(method, target)?;
    if version == Version::Http11 && s.host_count == 0 {
        return Err(Error::MissingHost);
    }
    if s.host_count > 1 {
        return Err(Error::MultipleHost);
    }
    // The host name the request is for (no port), kept for routing.
    let mut name: Option<Span> = None;
    if let Some(h) = s.host {
        let h = h.get(head);
        if !h.is_empty() {
            name = Some(Span::of(head, split_authority(h)?.0));
        }
    }
    if form == TargetForm::Absolute || form == TargetForm::Authority {
        let t = target;
        let auth = if form == TargetForm::Authority {
            t
        } else {
            let rest = &t[t.iter().position(|&b| b == b':').map_or(0, |i| i + 3)..];
            &rest[..rest
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(rest.len())]
        };
        let (host, port) = split_authority(auth)?;
        if host.is_empty() || (form == TargetForm::Authority && port.is_none()) {
            return Err(Error::InvalidTarget);
        }
        name = Some(Span::of(head, host));
    }
    let body = request_body(&s, version, limits)?;
    if s.expect_other && version == Version::Http11 {
        return Err(Error::ExpectationFailed);
    }
    out.method = Span::of(head, method);
    out.target = Span::of(head, target);
    out.version = version;
    out.form = form;
    out.host = s.host;
    out.host_name = name;
    out.keep_alive = s.keep_alive(version);
    out.expect_continue = s.expect_continue && version == Version::Http11 && !body.is_empty();
    out.upgrade = s.conn_upgrade && s.upgrade;
    out.body = body;
    Ok(head.len())
}

/// RFC 9112 §3.2: which form the target takes, and whether the method allows it.
fn classify_target(method: &[u8], target: &[u8]) -> Result<TargetForm, Error> {
    // httparse lets obs-text and '#' through; a request target has neither.
    if !target.is_ascii() || target.contains(&b'#') {
        return Err(Error::InvalidTarget);
    }
    if method == b"CONNECT" {
        if target.starts_with(b"/") || target.contains(&b'/') {
            return Err(Error::InvalidTarget);
        }
        return Ok(TargetForm::Authority);
    }
    match target {
        [b'/', ..] => Ok(TargetForm::Origin),
        b"*" if method == b"OPTIONS" => Ok(TargetForm::Asterisk),
        _ => {
            let lower_is =
                |p: &[u8]| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p);
            if lower_is(b"http://") || lower_is(b"https://") {
                Ok(TargetForm::Absolute)
            } else {
                Err(Error::InvalidTarget)
            }
        }
    }
}
