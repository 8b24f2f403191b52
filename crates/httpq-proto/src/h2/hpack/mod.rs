//! Header blocks (HPACK, RFC 7541): decoding a request's, with the
//! RFC 9113 §8 checks on what it holds, and encoding a response's.
//! Huffman strings are decoded by `httlib-huffman`.
//!
//! Why the rest is our own, measured (perf, h2load against `httpq serve`):
//! - `loona-hpack`, the decoder tried first, builds a hash map of the
//!   Huffman code for every Huffman string it decodes; that and its
//!   hashing took over half the server's time, and held it to 41,000
//!   requests/s on one core;
//! - its encoder scans the whole static and dynamic table for every
//!   field and indexes every value (the `date` of each second, each
//!   `content-length`), while a response needs only the static table and
//!   literals.
//!
//! What is left here is integers, strings, the two tables and the five
//! field representations.

mod block;

use bytes::BytesMut;

use block::BlockDecoder;

/// A request's head, decoded and checked, in HTTP/1.1 form (request
/// line; `host` from `:authority`; the regular fields in order, `cookie`
/// crumbs joined into one line as RFC 9113 §8.2.3 asks, a `host` field
/// yielding to `:authority`; a blank line), so one parser and one set of
/// limits judge requests of both versions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestFields {
    head: BytesMut,
    method: (usize, usize),
    target: (usize, usize),
    /// The request's Content-Length, if it has one.
    pub content_length: Option<u64>,
}

impl RequestFields {
    /// `:method`.
    pub fn method(&self) -> &[u8] {
        &self.head[self.method.0..self.method.1]
    }

    /// The request target: `:path`, or `:authority` for CONNECT.
    pub fn target(&self) -> &[u8] {
        &self.head[self.target.0..self.target.1]
    }

    /// The head in HTTP/1.1 form.
    pub fn http1(&self) -> &[u8] {
        &self.head
    }

    /// The head in HTTP/1.1 form, to parse in place.
    pub fn into_http1(self) -> BytesMut {
        self.head
    }
}

/// Where the pseudo-header values of a block being decoded are, in the
/// decoder's scratch.
#[derive(Default)]
struct Pseudo {
    method: Option<(usize, usize)>,
    scheme: Option<(usize, usize)>,
    authority: Option<(usize, usize)>,
    path: Option<(usize, usize)>,
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

/// Writes the HTTP/1.1 form of a decoded request, once its fields are
/// known good.
fn build(
    p: &Pseudo,
    pseudo: &[u8],
    lines: &[u8],
    cookie: &[u8],
    content_length: Option<u64>,
) -> Result<RequestFields, HeadError> {
    let get = |r: Option<(usize, usize)>| r.map(|(a, b)| &pseudo[a..b]);
    let method = get(p.method).ok_or(HeadError::Malformed(":method is missing"))?;
    let authority = get(p.authority);
    let connect = method == b"CONNECT";
    let target = if connect {
        if authority.is_none() || p.scheme.is_some() || p.path.is_some() {
            return Err(HeadError::Malformed("CONNECT takes :authority alone"));
        }
        authority.unwrap_or_default()
    } else {
        match (p.scheme, get(p.path)) {
            (Some(_), Some(path))
                if path.starts_with(b"/") || (path == b"*" && method == b"OPTIONS") =>
            {
                path
            }
            (Some(_), Some(_)) => return Err(HeadError::Malformed(":path is not origin form")),
            _ => return Err(HeadError::Malformed(":scheme or :path is missing")),
        }
    };
    let host = authority.map_or(0, |a| a.len() + 8);
    let mut head = BytesMut::with_capacity(
        method.len() + target.len() + 13 + host + lines.len() + cookie.len() + 12,
    );
    head.extend_from_slice(method);
    head.extend_from_slice(b" ");
    let t = head.len();
    head.extend_from_slice(target);
    let target_range = (t, head.len());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority.filter(|a| !a.is_empty()) {
        head.extend_from_slice(b"host: ");
        head.extend_from_slice(a);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(lines);
    if !cookie.is_empty() {
        head.extend_from_slice(b"cookie: ");
        head.extend_from_slice(cookie);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok(RequestFields {
        method: (0, method.len()),
        target: target_range,
        head,
        content_length,
    })
}

pub(crate) struct Decoder {
    block: BlockDecoder,
    max_list: usize,
    /// Pseudo-header values, regular field lines and cookie crumbs of the
    /// block being decoded (kept between blocks: no allocation per request).
    pseudo: Vec<u8>,
    lines: Vec<u8>,
    cookie: Vec<u8>,
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
        Decoder {
            block: BlockDecoder::default(),
            max_list: max_list as usize,
            pseudo: Vec::new(),
            lines: Vec::new(),
            cookie: Vec::new(),
        }
    }

    /// Decodes a request's header block. The outer error is the
    /// connection's (HPACK state is lost); the inner is the stream's.
    pub fn request(
        &mut self,
        block: &[u8],
    ) -> Result<Result<RequestFields, HeadError>, CompressionError> {
        let mut pseudo_buf = std::mem::take(&mut self.pseudo);
        let mut lines = std::mem::take(&mut self.lines);
        let mut cookie = std::mem::take(&mut self.cookie);
        pseudo_buf.clear();
        lines.clear();
        cookie.clear();
        let mut p = Pseudo::default();
        let mut content_length: Option<u64> = None;
        let mut err: Option<HeadError> = None;
        let mut size = 0usize;
        let mut regular = false;
        let max_list = self.max_list;
        let decoded = self.block.decode(block, |name, value| {
            size += name.len() + value.len() + 32;
            if err.is_some() {
                return;
            }
            if size > max_list {
                err = Some(HeadError::TooLarge);
                return;
            }
            if !value_ok(value) {
                err = Some(HeadError::Malformed("a field value holds a forbidden byte"));
                return;
            }
            if let Some(pseudo) = name.strip_prefix(b":") {
                if regular {
                    err = Some(HeadError::Malformed(
                        "a pseudo-header follows a regular field",
                    ));
                    return;
                }
                let slot = match pseudo {
                    b"method" => &mut p.method,
                    b"scheme" => &mut p.scheme,
                    b"authority" => &mut p.authority,
                    b"path" => &mut p.path,
                    _ => {
                        err = Some(HeadError::Malformed("unknown pseudo-header"));
                        return;
                    }
                };
                if slot.is_some() || (pseudo == b"path" && value.is_empty()) {
                    err = Some(HeadError::Malformed("repeated or empty pseudo-header"));
                    return;
                }
                let at = pseudo_buf.len();
                pseudo_buf.extend_from_slice(value);
                *slot = Some((at, pseudo_buf.len()));
                return;
            }
            regular = true;
            if !name_ok(name) {
                err = Some(HeadError::Malformed("invalid field name"));
                return;
            }
            match name {
                b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
                | b"upgrade" => {
                    err = Some(HeadError::Malformed("connection-specific field"));
                    return;
                }
                b"te" if value != b"trailers" => {
                    err = Some(HeadError::Malformed("te other than trailers"));
                    return;
                }
                b"content-length" => match parse_length(value) {
                    Some(n) if content_length.is_none_or(|m| m == n) => content_length = Some(n),
                    _ => {
                        err = Some(HeadError::Malformed("invalid content-length"));
                        return;
                    }
                },
                b"cookie" => {
                    if !cookie.is_empty() {
                        cookie.extend_from_slice(b"; ");
                    }
                    cookie.extend_from_slice(value);
                    return;
                }
                // :authority wins over Host (RFC 9113 §8.3.1).
                b"host" if p.authority.is_some() => return,
                _ => {}
            }
            lines.extend_from_slice(name);
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value);
            lines.extend_from_slice(b"\r\n");
        });
        let result = decoded.map(|()| match err {
            Some(e) => Err(e),
            None => build(&p, &pseudo_buf, &lines, &cookie, content_length),
        });
        self.pseudo = pseudo_buf;
        self.lines = lines;
        self.cookie = cookie;
        result
    }

    /// Decodes a trailer block: fields are checked and dropped (requests
    /// reach the application without trailers, as over HTTP/1.1).
    pub fn trailers(&mut self, block: &[u8]) -> Result<Result<(), HeadError>, CompressionError> {
        let mut err = None;
        self.block.decode(block, |name, value| {
            if err.is_none() && (name.first() == Some(&b':') || !name_ok(name) || !value_ok(value))
            {
                err = Some(HeadError::Malformed("invalid trailer field"));
            }
        })?;
        Ok(err.map_or(Ok(()), Err))
    }
}

/// Writes an HPACK integer with an `n`-bit prefix; `first` holds the
/// representation's flag bits.
/// (Blocks are built in a `Vec`: a push there is inlined, where a
/// `BytesMut` put of one byte is a call with its own capacity check.)
fn put_int(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// How a response field name is sent: by its static-table index (RFC
/// 7541 Appendix A), as a literal, or not at all (the connection-specific
/// fields RFC 9113 §8.2.2 forbids).
enum Name {
    Static(usize),
    Literal,
    Forbidden,
}

fn name_repr(name: &[u8]) -> Name {
    Name::Static(match name {
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
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
        | b"te" => return Name::Forbidden,
        _ => return Name::Literal,
    })
}

/// Encodes a dynamic table size update (RFC 7541 §6.3).
pub(crate) fn put_table_size(out: &mut Vec<u8>, size: u32) {
    put_int(out, 0x20, 5, size as usize);
}

/// Encodes `:status`, as an index where the static table has it.
pub(crate) fn put_status(out: &mut Vec<u8>, status: u16) {
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
        out.push(0x80 | index);
        return;
    }
    // Literal without indexing, name :status (index 8).
    put_int(out, 0, 4, 8);
    let mut buf = itoa::Buffer::new();
    put_str(out, buf.format(status).as_bytes());
}

/// Encodes one field as a literal without indexing (the name indexed
/// where the static table has it); a connection-specific field is
/// dropped. Names must be lowercase.
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match name_repr(name) {
        Name::Static(i) => put_int(out, 0, 4, i),
        Name::Literal => {
            out.push(0);
            put_str(out, name);
        }
        Name::Forbidden => return,
    }
    put_str(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of literal fields without indexing, new names.
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in fields {
            out.push(0);
            put_str(&mut out, n.as_bytes());
            put_str(&mut out, v.as_bytes());
        }
        out
    }

    fn get(extra: &[(&str, &str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/a?b"),
            (":authority", "x.test"),
        ];
        for (n, val) in extra {
            v.push((
                Box::leak(n.to_string().into_boxed_str()),
                Box::leak(val.to_string().into_boxed_str()),
            ));
        }
        v
    }

    #[test]
    fn a_request_becomes_its_http1_form() {
        let mut d = Decoder::new(16 * 1024);
        let f = d
            .request(&block(&get(&[
                ("accept", "*/*"),
                ("cookie", "a=1"),
                ("host", "other"),
                ("cookie", "b=2"),
            ])))
            .unwrap()
            .unwrap();
        assert_eq!(
            f.http1(),
            b"GET /a?b HTTP/1.1\r\nhost: x.test\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
        );
    }

    #[test]
    fn malformed_requests_are_named_and_the_decoder_stays_in_step() {
        let mut d = Decoder::new(16 * 1024);
        let cases: &[&[(&str, &str)]] = &[
            &[(":method", "GET"), (":path", "/")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "")],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":status", "200"),
            ],
            &[
                (":method", "GET"),
                ("accept", "x"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            &[
                (":method", "GET"),
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("Accept", "x"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("connection", "close"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("te", "gzip"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("x", "a\r\nb: c"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("content-length", "1x"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("content-length", "1"),
                ("content-length", "2"),
            ],
        ];
        for c in cases {
            let r = d.request(&block(c)).unwrap();
            assert!(matches!(r, Err(HeadError::Malformed(_))), "{c:?}: {r:?}");
        }
        let ok = d
            .request(&block(&get(&[("te", "trailers"), ("content-length", "5")])))
            .unwrap()
            .unwrap();
        assert_eq!(ok.content_length, Some(5));
    }

    #[test]
    fn a_list_over_the_limit_is_too_large_and_garbage_is_a_compression_error() {
        let mut d = Decoder::new(200);
        let big = "v".repeat(200);
        assert_eq!(
            d.request(&block(&get(&[("x", &big)]))).unwrap(),
            Err(HeadError::TooLarge)
        );
        // Index 0 and an index past the tables.
        assert_eq!(d.request(&[0x80]), Err(CompressionError));
        assert_eq!(d.request(&[0xff, 0x10]), Err(CompressionError));
        assert!(d.trailers(&block(&[(":path", "/")])).unwrap().is_err());
        assert!(d.trailers(&block(&[("x-sum", "1")])).unwrap().is_ok());
    }

    #[test]
    fn responses_decode_as_they_were_encoded() {
        let mut out = Vec::new();
        put_status(&mut out, 200);
        put_field(&mut out, b"content-length", b"99");
        put_field(&mut out, b"x-long-name-past-the-prefix", &[b'v'; 300]);
        put_field(&mut out, b"connection", b"close");
        put_status(&mut out, 418);
        let mut d = loona_hpack::Decoder::new();
        let got = d.decode(&out).unwrap();
        assert_eq!(got[0], (b":status".to_vec(), b"200".to_vec()));
        assert_eq!(got[1], (b"content-length".to_vec(), b"99".to_vec()));
        assert_eq!(
            got[2],
            (b"x-long-name-past-the-prefix".to_vec(), vec![b'v'; 300])
        );
        assert_eq!(got[3], (b":status".to_vec(), b"418".to_vec()));
        assert_eq!(got.len(), 4, "connection-specific fields are not sent");
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, CompressionError> {
        let mut v = Vec::new();
        d.block.decode(block, |n, val| {
            v.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(val).into_owned(),
            ))
        })?;
        Ok(v)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_rfc_7541_examples_decode_with_and_without_huffman() {
        // C.3.1 and C.3.2: literals indexed, then found in the dynamic table.
        let mut d = Decoder::new(1 << 16);
        let first = fields(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        )
        .unwrap();
        assert_eq!(
            first,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        let second = fields(&mut d, &hex("8286 84be 5808 6e6f 2d63 6163 6865")).unwrap();
        assert_eq!(
            second[3],
            (":authority".to_string(), "www.example.com".to_string())
        );
        assert_eq!(
            second[4],
            ("cache-control".to_string(), "no-cache".to_string())
        );
        // C.4.1: the same request, Huffman-coded.
        let mut d = Decoder::new(1 << 16);
        let h = fields(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).unwrap();
        assert_eq!(h, first);
        // Again (from the cache of decoded strings), and a different one.
        let again = fields(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).unwrap();
        assert_eq!(again, first);
        // C.4.2: another Huffman string, not the cached one.
        let next = fields(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
        assert_eq!(
            next[4],
            ("cache-control".to_string(), "no-cache".to_string())
        );
    }

    #[test]
    fn the_static_table_matches_an_independent_encoder() {
        // loona-hpack encodes each static entry by its index (name and
        // value both, or the name with a literal value).
        let mut enc = loona_hpack::Encoder::new();
        let mut d = Decoder::new(1 << 20);
        for (n, v) in block::STATIC {
            let v: &[u8] = if v.is_empty() { b"x" } else { v };
            let block = enc.encode([(n, v)]);
            let got = fields(&mut d, &block).unwrap();
            assert_eq!(
                got,
                [(
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned()
                )]
            );
        }
    }

    #[test]
    fn bad_blocks_are_compression_errors() {
        let mut d = Decoder::new(1 << 16);
        for bad in [
            &hex("80")[..],                // index 0
            &hex("ff 00")[..],             // index 127 past both tables
            &hex("82 3f e1 1f")[..],       // a size update after a field
            &hex("3f e2 1f")[..],          // a size update past 4096
            &hex("0f 0d 05 61")[..],       // a string past the block
            &hex("ff ff ff ff ff 7f")[..], // an integer too long
            &hex("00 81 ff 01 61")[..],    // Huffman padding of 8 bits
            &hex("00 81 00 01 61")[..],    // Huffman padding of zeros
            &hex("00 82 1f 00 01 61")[..], // "a" then zero padding
        ] {
            assert_eq!(fields(&mut d, bad), Err(CompressionError), "{bad:02x?}");
        }
    }

    #[test]
    fn the_dynamic_table_evicts_the_oldest_within_its_size() {
        let mut d = Decoder::new(1 << 16);
        // A size update to 100 bytes, then two indexed literals of 64
        // bytes each (name 1 + value 31 + 32): the first is evicted.
        let mut block = hex("3f 45");
        for (n, v) in [("a", "1".repeat(31)), ("b", "2".repeat(31))] {
            block.push(0x40);
            put_str_vec(&mut block, n.as_bytes());
            put_str_vec(&mut block, v.as_bytes());
        }
        fields(&mut d, &block).unwrap();
        assert_eq!(fields(&mut d, &[0x80 | 62]).unwrap()[0].0, "b");
        assert_eq!(fields(&mut d, &[0x80 | 63]), Err(CompressionError));
    }

    fn put_str_vec(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
}
