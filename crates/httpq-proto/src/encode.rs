//! Head encoders for responses (server) and requests (client), writing into
//! a caller buffer and refusing anything that could split a message.

use crate::head::{is_field_value, is_token};
use crate::{Error, Version};

/// A growable byte buffer the encoders write into: `Vec<u8>` or `BytesMut`.
///
/// On error an encoder truncates back to where it started, so a rejected
/// head leaves no partial bytes behind.
pub trait HeadBuf {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Current length.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shortens to `len`.
    fn truncate(&mut self, len: usize);
}

impl HeadBuf for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
}

impl HeadBuf for bytes::BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn len(&self) -> usize {
        bytes::BytesMut::len(self)
    }
    fn truncate(&mut self, len: usize) {
        bytes::BytesMut::truncate(self, len)
    }
}

/// Writes `name: value\r\n` for each field after validating it.
pub(crate) fn put_fields<I, K, V, B>(fields: I, out: &mut B) -> Result<(), Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    B: HeadBuf + ?Sized,
{
    for (k, v) in fields {
        let (k, v) = (k.as_ref(), v.as_ref());
        if !is_token(k) {
            return Err(Error::InvalidHeaderName);
        }
        if !is_field_value(v) {
            return Err(Error::InvalidHeaderValue);
        }
        out.put(k);
        out.put(b": ");
        out.put(v);
        out.put(b"\r\n");
    }
    Ok(())
}

/// Encodes a response head (status line, fields, empty line) into `out`.
///
/// The caller supplies every field, framing included; the server layer
/// decides Content-Length or chunked. Nothing is written on error.
///
/// ```
/// use httpq_proto::{encode_response_head, Version};
/// let mut out = Vec::new();
/// encode_response_head(&mut out, Version::Http11, 200, "OK", [("Content-Length", "2")]).unwrap();
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
/// let bad = encode_response_head(&mut out, Version::Http11, 200, "OK", [("X", "a\r\nSet-Cookie: x")]);
/// assert!(bad.is_err());
/// ```
pub fn encode_response_head<B, I, K, V>(
    out: &mut B,
    version: Version,
    status: u16,
    reason: &str,
    fields: I,
) -> Result<(), Error>
where
    B: HeadBuf + ?Sized,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mark = out.len();
    encode_status_line(out, version, status, reason)?;
    if let Err(e) = put_fields(fields, out) {
        out.truncate(mark);
        return Err(e);
    }
    out.put(b"\r\n");
    Ok(())
}

/// Encodes only the status line (`HTTP/1.1 200 OK\r\n`), for callers whose
/// fields are valid by construction (an [`http::HeaderMap`] cannot hold CR,
/// LF or NUL) and who append them and the final CRLF themselves. The status
/// must be 100–999 and the reason free of control bytes.
///
/// ```
/// use httpq_proto::{encode_status_line, Version};
/// let mut out = Vec::new();
/// encode_status_line(&mut out, Version::Http11, 404, "Not Found").unwrap();
/// assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n");
/// assert!(encode_status_line(&mut out, Version::Http11, 200, "O\rK").is_err());
/// ```
pub fn encode_status_line<B: HeadBuf + ?Sized>(
    out: &mut B,
    version: Version,
    status: u16,
    reason: &str,
) -> Result<(), Error> {
    if !(100..=999).contains(&status) || !is_field_value(reason.as_bytes()) {
        return Err(Error::BadStatusLine);
    }
    out.put(version.as_str().as_bytes());
    let digits = [
        b' ',
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ];
    out.put(&digits);
    out.put(reason.as_bytes());
    out.put(b"\r\n");
    Ok(())
}

/// Encodes a request head into `out`. The method must be a token and the
/// target must be visible ASCII without spaces. Nothing is written on error.
///
/// ```
/// use httpq_proto::{encode_request_head, Version};
/// let mut out = Vec::new();
/// encode_request_head(&mut out, "GET", "/x?y=1", Version::Http11, [("Host", "a")]).unwrap();
/// assert_eq!(out, b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n");
/// ```
pub fn encode_request_head<B, I, K, V>(
    out: &mut B,
    method: &str,
    target: &str,
    version: Version,
    fields: I,
) -> Result<(), Error>
where
    B: HeadBuf + ?Sized,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    if !is_token(method.as_bytes()) {
        return Err(Error::BadRequestLine);
    }
    if target.is_empty() || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::InvalidTarget);
    }
    let mark = out.len();
    out.put(method.as_bytes());
    out.put(b" ");
    out.put(target.as_bytes());
    out.put(b" ");
    out.put(version.as_str().as_bytes());
    out.put(b"\r\n");
    if let Err(e) = put_fields(fields, out) {
        out.truncate(mark);
        return Err(e);
    }
    out.put(b"\r\n");
    Ok(())
}
