//! Response heads for the client: incremental zero-copy parsing, interim
//! (1xx) responses, and the body rules that depend on the request.

use bytes::{Bytes, BytesMut};

use crate::framing::{response_body, BodyLength};
use crate::head::{
    collect_fields, find_field, first_line, map_httparse, to_header_map, with_header_table, Fields,
    HeadScan, HeaderIter, Span, Special, EARLY_CHECK_BYTES,
};
use crate::{Error, Limits, Version};

/// A parsed, validated response head.
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::{BodyLength, Limits, ResponseParser};
/// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
/// let mut p = ResponseParser::new(Limits::default());
/// let head = p.parse(&mut buf, &http::Method::GET).unwrap().unwrap();
/// assert_eq!((head.status(), head.reason()), (200, &b"OK"[..]));
/// assert_eq!(head.body(), BodyLength::Length(2));
/// ```
#[derive(Debug, Clone)]
pub struct ResponseHead {
    buf: Bytes,
    version: Version,
    status: u16,
    reason: Span,
    fields: Fields,
    body: BodyLength,
    keep_alive: bool,
}

impl ResponseHead {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(&self.buf)
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// An interim response (1xx other than 101): the final one is still to come.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// The header fields in wire order.
    pub fn headers(&self) -> HeaderIter<'_> {
        HeaderIter {
            buf: &self.buf,
            fields: self.fields.iter(),
        }
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_field(&self.buf, &self.fields, name)
    }

    /// The fields as an [`http::HeaderMap`], sharing the head's memory.
    pub fn header_map(&self) -> http::HeaderMap {
        to_header_map(&self.buf, &self.fields)
    }

    /// How the body is framed.
    pub fn body(&self) -> BodyLength {
        self.body
    }

    /// Whether the connection can carry another request once this response's
    /// body is read: the Connection rules, and never after a close-delimited body.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
            && self.body != BodyLength::CloseDelimited
            && self.body != BodyLength::Tunnel
    }

    /// The whole head as received.
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }
}

/// An incremental response-head parser for one request. Interim responses
/// are returned too (so a client can report them) and counted against
/// [`Limits::max_informational`].
///
/// ```
/// use bytes::BytesMut;
/// use httpq_proto::{Limits, ResponseParser};
/// let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..]);
/// let mut p = ResponseParser::new(Limits::default());
/// let first = p.parse(&mut buf, &http::Method::POST).unwrap().unwrap();
/// assert!(first.is_informational());
/// let last = p.parse(&mut buf, &http::Method::POST).unwrap().unwrap();
/// assert_eq!(last.status(), 204);
/// ```
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    scan: HeadScan,
    informational: usize,
}

impl ResponseParser {
    /// A parser enforcing `limits`.
    pub fn new(mut limits: Limits) -> Self {
        limits.max_head_bytes = limits.max_head_bytes.min(crate::head::MAX_HEAD_BYTES);
        ResponseParser {
            limits,
            scan: HeadScan::default(),
            informational: 0,
        }
    }

    /// Parses a head from the front of `buf`, splitting it off on success.
    /// `method` is the request's: HEAD and CONNECT change the body rules.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        method: &http::Method,
    ) -> Result<Option<ResponseHead>, Error> {
        let Some(end) = self.scan.find_end(buf) else {
            if buf.len() > self.limits.max_head_bytes {
                return Err(Error::HeadTooLarge);
            }
            if buf.len() <= EARLY_CHECK_BYTES {
                self.early_check(buf)?;
            }
            return Ok(None);
        };
        if end > self.limits.max_head_bytes {
            return Err(Error::HeadTooLarge);
        }
        self.scan.reset();
        let head = buf.split_to(end).freeze();
        let limits = self.limits;
        let parsed = with_header_table(limits.max_headers, |table| {
            let mut res = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut res, &head, table)
            {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => return Err(Error::InvalidNewLine),
                Err(e) => return Err(map_httparse(e, first_line(&head), false)),
            }
            let status = res.code.unwrap_or(0);
            if status < 100 {
                return Err(Error::BadStatusLine);
            }
            let version = Version::from_httparse(res.version.unwrap_or(1));
            let mut special = Special::default();
            let mut fields = Fields::new();
            collect_fields(&head, res.headers, &limits, &mut special, &mut fields)?;
            let body = response_body(&special, version, status, method, &limits)?;
            Ok((version, status, fields, body, special.keep_alive(version)))
        })?;
        let (version, status, fields, body, keep_alive) = parsed;
        let reason = reason_span(&head);
        let resp = ResponseHead {
            buf: head,
            version,
            status,
            reason,
            fields,
            body,
            keep_alive,
        };
        if resp.is_informational() {
            self.informational += 1;
            if self.informational > self.limits.max_informational {
                return Err(Error::TooManyInformational);
            }
        }
        Ok(Some(resp))
    }

    /// The connection closed with `partial` bytes of a head buffered.
    pub fn eof(&self, partial: &[u8]) -> Result<(), Error> {
        if partial.iter().all(|&b| b == b'\r' || b == b'\n') {
            Ok(())
        } else {
            Err(Error::IncompleteHead)
        }
    }

    fn early_check(&mut self, buf: &[u8]) -> Result<(), Error> {
        with_header_table(self.limits.max_headers, |table| {
            let mut res = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut res, buf, table)
            {
                Ok(_) => Ok(()),
                // Until the status line ends, a bad version may yet prove
                // well-formed (505) or malformed (502): decide on the whole line,
                // so the answer never depends on how the bytes arrived.
                Err(httparse::Error::Version) if !first_line_ended(buf) => Ok(()),
                Err(e) => Err(map_httparse(e, first_line(buf), false)),
            }
        })
    }
}

/// The first line (after leading empty lines) has its line feed.
fn first_line_ended(buf: &[u8]) -> bool {
    buf.iter()
        .skip_while(|&&b| b == b'\r' || b == b'\n')
        .any(|&b| b == b'\n')
}

/// The reason phrase: everything after `HTTP/1.1 200 ` on the status line.
/// httparse hides reasons with obs-text; we keep the bytes.
fn reason_span(head: &[u8]) -> Span {
    let line = first_line(head);
    let reason: &[u8] = if line.len() > 13 {
        &line[13..]
    } else {
        &line[line.len()..]
    };
    Span::of(head, reason)
}
