//! Header blocks: decoding a request's (HPACK by `loona-hpack`, with the
//! RFC 9113 §8 checks on what it decodes) and encoding a response's.
//!
//! Why the encoder is our own: a response block needs only the static
//! table and literals, about forty lines. `loona-hpack`'s encoder scans
//! the whole static and dynamic table for every field and indexes every
//! value (the `date` of each second, each `content-length`), which costs
//! more per response than the rest of the frame work together.

use bytes::{BufMut, BytesMut};

/// A request's head, decoded and checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestFields {
    pub method: Vec<u8>,
    pub scheme: Vec<u8>,
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    /// Regular fields as HTTP/1.1 lines (`name: value\r\n`), in order;
    /// `cookie` crumbs are joined into one line (RFC 9113 §8.2.3) and a
    /// `host` field yields to `:authority`.
    pub lines: BytesMut,
    /// The request's Content-Length, if it has one.
    pub content_length: Option<u64>,
}

impl RequestFields {
    /// Writes the head in HTTP/1.1 form, so one parser and one set of
    /// limits judge requests of both versions.
    pub fn write_http1(&self, out: &mut BytesMut) {
        out.reserve(self.method.len() + self.path.len() + self.authority.len() + self.lines.len() + 32);
        out.put_slice(&self.method);
        out.put_u8(b' ');
        if self.method == b"CONNECT" {
            out.put_slice(&self.authority);
        } else {
            out.put_slice(&self.path);
        }
        out.put_slice(b" HTTP/1.1\r\n");
        if !self.authority.is_empty() {
            out.put_slice(b"host: ");
            out.put_slice(&self.authority);
            out.put_slice(b"\r\n");
        }
        out.put_slice(&self.lines);
        out.put_slice(b"\r\n");
    }
}

/// What was wrong with a decoded header list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Malformed (RFC 9113 §8.1.1): the stream is reset with PROTOCOL_ERROR.
    Malformed(&'static str),
    /// Larger than SETTINGS_MAX_HEADER_LIST_SIZE: answered 431.
    TooLarge,
}

/// The HPACK block could not be decoded: a COMPRESSION_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionError;

pub(crate) struct Decoder {
    hpack: loona_hpack::Decoder<'static>,
    max_list: usize,
}

/// `tchar` of RFC 9110 §5.6.2, lowercase only (RFC 9113 §8.2.1).
fn name_ok(name: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().all(|&b| {
            matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*'
                | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
        })
}

/// RFC 9113 §8.2.1: no NUL, CR or LF, no leading or trailing whitespace.
fn value_ok(v: &[u8]) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    !v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && !v.first().is_some_and(ws)
        && !v.last().is_some_and(ws)
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl Decoder {
    pub fn new(max_list: u32) -> Decoder {
        let mut hpack = loona_hpack::Decoder::new();
        // The table size this server allows (it never raises the default).
        hpack.set_max_allowed_table_size(4096);
        Decoder {
            hpack,
            max_list: max_list as usize,
        }
    }

    /// Decodes a request's header block. The outer error is the
    /// connection's (HPACK state is lost); the inner is the stream's.
    pub fn request(
        &mut self,
        block: &[u8],
    ) -> Result<Result<RequestFields, HeadError>, CompressionError> {
        let mut f = RequestFields::default();
        let mut err: Option<HeadError> = None;
        let mut size = 0usize;
        let mut regular = false;
        let mut cookie: Vec<u8> = Vec::new();
        let max_list = self.max_list;
        self.hpack
            .decode_with_cb(block, |name, value| {
                size += name.len() + value.len() + 32;
                if err.is_some() {
                    return;
                }
                if size > max_list {
                    err = Some(HeadError::TooLarge);
                    return;
                }
                if !value_ok(&value) {
                    err = Some(HeadError::Malformed("a field value holds a forbidden byte"));
                    return;
                }
                if let Some(pseudo) = name.strip_prefix(b":") {
                    if regular {
                        err = Some(HeadError::Malformed("a pseudo-header follows a regular field"));
                        return;
                    }
                    let slot = match pseudo {
                        b"method" => &mut f.method,
                        b"scheme" => &mut f.scheme,
                        b"authority" => &mut f.authority,
                        b"path" => &mut f.path,
                        _ => {
                            err = Some(HeadError::Malformed("unknown pseudo-header"));
                            return;
                        }
                    };
                    if !slot.is_empty() || (pseudo == b"path" && value.is_empty()) {
                        err = Some(HeadError::Malformed("repeated or empty pseudo-header"));
                        return;
                    }
                    slot.extend_from_slice(&value);
                    return;
                }
                regular = true;
                if !name_ok(&name) {
                    err = Some(HeadError::Malformed("invalid field name"));
                    return;
                }
                match &*name {
                    b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
                    | b"upgrade" => {
                        err = Some(HeadError::Malformed("connection-specific field"));
                        return;
                    }
                    b"te" if &*value != b"trailers" => {
                        err = Some(HeadError::Malformed("te other than trailers"));
                        return;
                    }
                    b"content-length" => match parse_length(&value) {
                        Some(n) if f.content_length.is_none_or(|m| m == n) => {
                            f.content_length = Some(n)
                        }
                        _ => {
                            err = Some(HeadError::Malformed("invalid content-length"));
                            return;
                        }
                    },
                    b"cookie" => {
                        if !cookie.is_empty() {
                            cookie.extend_from_slice(b"; ");
                        }
                        cookie.extend_from_slice(&value);
                        return;
                    }
                    // :authority wins over Host (RFC 9113 §8.3.1).
                    b"host" if !f.authority.is_empty() => return,
                    _ => {}
                }
                f.lines.reserve(name.len() + value.len() + 4);
                f.lines.put_slice(&name);
                f.lines.put_slice(b": ");
                f.lines.put_slice(&value);
                f.lines.put_slice(b"\r\n");
            })
            .map_err(|_| CompressionError)?;
        if let Some(e) = err {
            return Ok(Err(e));
        }
        if !cookie.is_empty() {
            f.lines.put_slice(b"cookie: ");
            f.lines.put_slice(&cookie);
            f.lines.put_slice(b"\r\n");
        }
        if f.method.is_empty() {
            return Ok(Err(HeadError::Malformed(":method is missing")));
        }
        if f.method == b"CONNECT" {
            if f.authority.is_empty() || !f.scheme.is_empty() || !f.path.is_empty() {
                return Ok(Err(HeadError::Malformed("CONNECT takes :authority alone")));
            }
        } else if f.scheme.is_empty() || f.path.is_empty() {
            return Ok(Err(HeadError::Malformed(":scheme or :path is missing")));
        }
        Ok(Ok(f))
    }

    /// Decodes a trailer block: fields are checked and dropped (requests
    /// reach the application without trailers, as over HTTP/1.1).
    pub fn trailers(&mut self, block: &[u8]) -> Result<Result<(), HeadError>, CompressionError> {
        let mut err = None;
        self.hpack
            .decode_with_cb(block, |name, value| {
                if err.is_none() && (name.first() == Some(&b':') || !name_ok(&name) || !value_ok(&value)) {
                    err = Some(HeadError::Malformed("invalid trailer field"));
                }
            })
            .map_err(|_| CompressionError)?;
        Ok(err.map_or(Ok(()), Err))
    }
}

/// Writes an HPACK integer with an `n`-bit prefix; `first` holds the
/// representation's flag bits.
fn put_int(out: &mut BytesMut, first: u8, n: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.put_u8(first | v as u8);
        return;
    }
    out.put_u8(first | max as u8);
    v -= max;
    while v >= 128 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.put_slice(s);
}

/// The static-table index of a response field name (RFC 7541 Appendix A).
fn static_name(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"accept-ranges" => 18,
        b"age" => 21,
        b"allow" => 22,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"date" => 33,
        b"etag" => 34,
        b"expires" => 36,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// Encodes `:status`, as an index where the static table has it.
pub(crate) fn put_status(out: &mut BytesMut, status: u16) {
    let index = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if index > 0 {
        out.put_u8(0x80 | index);
        return;
    }
    // Literal without indexing, name :status (index 8).
    put_int(out, 0, 4, 8);
    let mut buf = itoa::Buffer::new();
    put_str(out, buf.format(status).as_bytes());
}

/// Encodes one field as a literal without indexing (the name indexed
/// where the static table has it). Names must be lowercase.
pub(crate) fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    match static_name(name) {
        Some(i) => put_int(out, 0, 4, i),
        None => {
            out.put_u8(0);
            put_str(out, name);
        }
    }
    put_str(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of literal fields without indexing, new names.
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for (n, v) in fields {
            out.put_u8(0);
            put_str(&mut out, n.as_bytes());
            put_str(&mut out, v.as_bytes());
        }
        out.to_vec()
    }

    fn get(extra: &[(&str, &str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![(":method", "GET"), (":scheme", "https"), (":path", "/a?b"), (":authority", "x.test")];
        for (n, val) in extra {
            v.push((Box::leak(n.to_string().into_boxed_str()), Box::leak(val.to_string().into_boxed_str())));
        }
        v
    }

    #[test]
    fn a_request_becomes_its_http1_form() {
        let mut d = Decoder::new(16 * 1024);
        let f = d
            .request(&block(&get(&[("accept", "*/*"), ("cookie", "a=1"), ("host", "other"), ("cookie", "b=2")])))
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        f.write_http1(&mut out);
        assert_eq!(
            &out[..],
            b"GET /a?b HTTP/1.1\r\nhost: x.test\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
        );
    }

    #[test]
    fn malformed_requests_are_named_and_the_decoder_stays_in_step() {
        let mut d = Decoder::new(16 * 1024);
        let cases: &[&[(&str, &str)]] = &[
            &[(":method", "GET"), (":path", "/")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")],
            &[(":method", "GET"), ("accept", "x"), (":scheme", "http"), (":path", "/")],
            &[(":method", "GET"), (":method", "GET"), (":scheme", "http"), (":path", "/")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("Accept", "x")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("connection", "close")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "gzip")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x", "a\r\nb: c")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("content-length", "1x")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("content-length", "1"), ("content-length", "2")],
        ];
        for c in cases {
            let r = d.request(&block(c)).unwrap();
            assert!(matches!(r, Err(HeadError::Malformed(_))), "{c:?}: {r:?}");
        }
        let ok = d.request(&block(&get(&[("te", "trailers"), ("content-length", "5")]))).unwrap().unwrap();
        assert_eq!(ok.content_length, Some(5));
    }

    #[test]
    fn a_list_over_the_limit_is_too_large_and_garbage_is_a_compression_error() {
        let mut d = Decoder::new(200);
        let big = "v".repeat(200);
        assert_eq!(d.request(&block(&get(&[("x", &big)]))).unwrap(), Err(HeadError::TooLarge));
        // Index 0 and an index past the tables.
        assert_eq!(d.request(&[0x80]), Err(CompressionError));
        assert_eq!(d.request(&[0xff, 0x10]), Err(CompressionError));
        assert!(d.trailers(&block(&[(":path", "/")])).unwrap().is_err());
        assert!(d.trailers(&block(&[("x-sum", "1")])).unwrap().is_ok());
    }

    #[test]
    fn responses_decode_as_they_were_encoded() {
        let mut out = BytesMut::new();
        put_status(&mut out, 200);
        put_field(&mut out, b"content-length", b"99");
        put_field(&mut out, b"x-long-name-past-the-prefix", &[b'v'; 300]);
        put_status(&mut out, 418);
        let mut d = loona_hpack::Decoder::new();
        let got = d.decode(&out).unwrap();
        assert_eq!(got[0], (b":status".to_vec(), b"200".to_vec()));
        assert_eq!(got[1], (b"content-length".to_vec(), b"99".to_vec()));
        assert_eq!(got[2], (b"x-long-name-past-the-prefix".to_vec(), vec![b'v'; 300]));
        assert_eq!(got[3], (b":status".to_vec(), b"418".to_vec()));
    }
}
