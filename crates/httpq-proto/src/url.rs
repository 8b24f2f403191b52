//! Authorities and the "cooked" URL: what an HTTP Server API application is
//! handed instead of the raw target — decoded, normalised and bounded.

use crate::{Error, Limits};

/// A host and optional port taken from a Host header or a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// Lower-cased host; IPv6 literals keep their brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl Authority {
    pub(crate) fn from_socket(addr: std::net::SocketAddr) -> Authority {
        let host = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Authority {
            host,
            port: Some(addr.port()),
        }
    }
}

/// Parses `host[:port]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name, an IPv4
/// address or a bracketed IPv6 literal, then an optional decimal port. No
/// userinfo.
pub(crate) fn parse_authority(a: &[u8]) -> Result<Authority, Error> {
    let (host, port) = split_authority(a)?;
    Ok(Authority {
        // reg-names are ASCII (checked by split_authority), so this is lossless.
        host: String::from_utf8_lossy(host).to_ascii_lowercase(),
        port,
    })
}

/// RFC 3986 reg-name bytes: unreserved, pct-encoded (`%`) and sub-delims
/// — except the comma: no host name has one, and it is how a list of
/// authorities arrives (`Host: a,b`), which must be refused.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b';'
                    | b'='
            );
        i += 1;
    }
    t
};

/// Validates an authority without allocating: the host bytes and the port.
pub(crate) fn split_authority(a: &[u8]) -> Result<(&[u8], Option<u16>), Error> {
    let (host, port) = if a.first() == Some(&b'[') {
        let close = a
            .iter()
            .position(|&b| b == b']')
            .ok_or(Error::InvalidHost)?;
        let inner = &a[1..close];
        let ok = !inner.is_empty()
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return Err(Error::InvalidHost);
        }
        match &a[close + 1..] {
            [] => (&a[..=close], None),
            [b':', port @ ..] => (&a[..=close], Some(port)),
            _ => return Err(Error::InvalidHost),
        }
    } else {
        // One pass up to the first colon, every byte a reg-name byte; what
        // follows must be the port (checked below: digits only, so a second
        // colon is rejected there).
        // ':' is not a reg-name byte, so the scan stops at the port too.
        let end = a
            .iter()
            .position(|&b| !REG_NAME[b as usize])
            .unwrap_or(a.len());
        match a.get(end) {
            None => (a, None),
            Some(b':') => (&a[..end], Some(&a[end + 1..])),
            Some(_) => return Err(Error::InvalidHost),
        }
    };
    if host.is_empty() {
        return Err(Error::InvalidHost);
    }
    let port = match port {
        None | Some([]) => None,
        Some(p) => {
            if p.len() > 5 {
                return Err(Error::InvalidHost);
            }
            let mut n: u32 = 0;
            for &d in p {
                if !d.is_ascii_digit() {
                    return Err(Error::InvalidHost);
                }
                n = n * 10 + u32::from(d - b'0');
            }
            Some(u16::try_from(n).map_err(|_| Error::InvalidHost)?)
        }
    };
    Ok((host, port))
}

/// The URL as an HTTP Server API application sees it.
///
/// The path is percent-decoded (so `%2e%2e` is `..`), backslashes count as
/// slashes, and dot-segments are removed after decoding — so no form of
/// `..` can climb above `/`. The query is kept raw, with its `?`.
///
/// ```
/// # use httpq_proto::{Limits, RequestParser};
/// # let mut buf = bytes::BytesMut::from(&b"GET /%2E%2E/%2e%2e/etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
/// # let head = RequestParser::new(Limits::default()).parse(&mut buf).unwrap().unwrap();
/// let url = head.cooked_url("http", "127.0.0.1:8080".parse().unwrap(), &Limits::default()).unwrap();
/// assert_eq!(url.path, "/etc/passwd");
/// assert_eq!(url.port, 80);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookedUrl {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Lower-cased host name or address (IPv6 in brackets).
    pub host: String,
    /// The port: explicit, else the scheme's default (or the local port when
    /// the request named no host at all).
    pub port: u16,
    /// Decoded, normalised absolute path (`*` for `OPTIONS *`).
    pub path: String,
    /// The raw query including its leading `?`, or empty.
    pub query: String,
}

impl CookedUrl {
    pub(crate) fn new(
        scheme: &'static str,
        host: String,
        port: u16,
        raw_path: &[u8],
        query: &[u8],
        limits: &Limits,
    ) -> Result<CookedUrl, Error> {
        let path = if raw_path == b"*" {
            "*".to_string()
        } else {
            let decoded = percent_decode(raw_path)?;
            // Most paths have no `.` or `..` segment: keep them as decoded
            // (normalising costs three allocations on every cooked URL).
            let normalised = if decoded.contains("/.") {
                remove_dot_segments(&decoded)
            } else {
                decoded
            };
            check_segments(&normalised, limits)?;
            normalised
        };
        Ok(CookedUrl {
            scheme,
            host,
            port,
            path,
            // The target was checked to be ASCII, so this is lossless.
            query: String::from_utf8_lossy(query).into_owned(),
        })
    }

    /// `host:port`, as in the http.sys cooked URL's host part.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The full URL: `scheme://host:port/path?query`.
    pub fn full(&self) -> String {
        format!(
            "{}://{}:{}{}{}",
            self.scheme, self.host, self.port, self.path, self.query
        )
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8 without NUL. `\` becomes `/`.
pub(crate) fn percent_decode(raw: &[u8]) -> Result<String, Error> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let b = if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            match (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    i += 2;
                    (h << 4) | l
                }
                _ => return Err(Error::InvalidUrlEncoding),
            }
        } else {
            b
        };
        if b == 0 {
            return Err(Error::InvalidUrlEncoding);
        }
        out.push(if b == b'\\' { b'/' } else { b });
        i += 1;
    }
    if out.first() != Some(&b'/') {
        out.insert(0, b'/');
    }
    String::from_utf8(out).map_err(|_| Error::InvalidUrlEncoding)
}

/// RFC 3986 §5.2.4, on an absolute path: `.` segments vanish, `..` removes
/// the segment before it and never climbs above the root.
pub(crate) fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if trailing_slash || s.is_empty() {
        s.push('/');
    }
    s
}

fn check_segments(path: &str, limits: &Limits) -> Result<(), Error> {
    let mut count = 0;
    for seg in path.split('/').skip(1).filter(|s| !s.is_empty()) {
        count += 1;
        if count > limits.max_url_segments {
            return Err(Error::TooManyUrlSegments);
        }
        if seg.len() > limits.max_url_segment_len {
            return Err(Error::UrlSegmentTooLong);
        }
    }
    Ok(())
}
