//! Absolute http/https URLs as the client needs them: scheme, host, port,
//! path and query, credentials; and resolving a redirect's Location.

use std::fmt;

use crate::ClientError;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed absolute URL.
///
/// ```
/// use httpq_client::Url;
/// let u = Url::parse("http://user:pw@example.com:8080/a/b?q=1#frag").unwrap();
/// assert_eq!((u.host(), u.port(), u.path_and_query()), ("example.com", 8080, "/a/b?q=1"));
/// assert_eq!(u.join("../c").unwrap().to_string(), "http://example.com:8080/c");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path_and_query: String,
    credentials: Option<(String, String)>,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL (a fragment is dropped).
    pub fn parse(s: &str) -> Result<Url, ClientError> {
        let bad = || ClientError::InvalidUrl(s.to_string());
        let s = s.trim();
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(s, "http://") {
            (Scheme::Http, r)
        } else if let Some(r) = strip_prefix_ci(s, "https://") {
            (Scheme::Https, r)
        } else {
            return Err(bad());
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (credentials, hostport) = match authority.rfind('@') {
            Some(at) => {
                let (user, pass) = authority[..at]
                    .split_once(':')
                    .unwrap_or((&authority[..at], ""));
                (
                    Some((percent_decode(user), percent_decode(pass))),
                    &authority[at + 1..],
                )
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        let port = port.unwrap_or(scheme.default_port());
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:%!$&'()*+,;=".contains(&b))
        {
            return Err(bad());
        }
        let mut path_and_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        if !path_and_query.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            // Spaces and non-ASCII are sent percent-encoded, as browsers do.
            path_and_query = encode_unsafe(&path_and_query);
        }
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
            credentials,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, without brackets for IPv6 literals.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target in origin form.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// User name and password from the URL, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The Host header value: host, plus the port when it is not the default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub(crate) fn with_credentials(mut self, user: &str, password: &str) -> Url {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// Scheme, host and port: what decides whether credentials may follow a redirect.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// Resolves a redirect's Location against this URL (RFC 3986 §5.2).
    pub fn join(&self, location: &str) -> Result<Url, ClientError> {
        // The fragment is the client's own: never part of the path or query.
        let loc = location.trim();
        let loc = loc.split('#').next().unwrap_or("");
        if strip_prefix_ci(loc, "http://").is_some() || strip_prefix_ci(loc, "https://").is_some() {
            return Url::parse(loc);
        }
        // Another scheme; a "://" later on (in a query, say) is just data.
        if has_scheme(loc) {
            return Err(ClientError::InvalidUrl(location.trim().to_string()));
        }
        if let Some(rest) = loc.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        let base = format!("{}://{}", self.scheme.as_str(), self.authority());
        let current_path = self
            .path_and_query
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        let target = if loc.starts_with('/') {
            loc.to_string()
        } else if loc.starts_with('?') {
            format!("{current_path}{loc}")
        } else if loc.is_empty() {
            self.path_and_query.clone()
        } else {
            let dir = &current_path[..current_path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{loc}")
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target, None),
        };
        let path = remove_dot_segments(&path);
        let full = match query {
            Some(q) => format!("{base}{path}?{q}"),
            None => format!("{base}{path}"),
        };
        Url::parse(&full)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path_and_query
        )
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get`: `s` may have a multi-byte character across the prefix's end.
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// Whether a reference starts with a scheme (RFC 3986 §3.1: `ALPHA *(ALPHA
/// / DIGIT / "+" / "-" / ".") ":"`), so is absolute, not relative.
fn has_scheme(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }
        None => false,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let port = if after.is_empty() || after == ":" {
            None
        } else {
            Some(after.strip_prefix(':')?.parse().ok()?)
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((h, "")) => Some((h, None)),
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            // On bytes: a multi-byte character may follow the '%'.
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_unsafe(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let u = Url::parse("HTTPS://Example.COM").unwrap();
        assert_eq!(u.to_string(), "https://example.com/");
        let u = Url::parse("http://[::1]:8080/x?y").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.authority()),
            ("::1", 8080, "[::1]:8080".to_string())
        );
        let u = Url::parse("http://a:b%40c@h/").unwrap();
        assert_eq!(u.credentials(), Some(("a", "b@c")));
        let u = Url::parse("http://h/a b").unwrap();
        assert_eq!(u.path_and_query(), "/a%20b");
        for bad in [
            "ftp://h/",
            "http://",
            "http://h:99999/",
            "h/x",
            "http://h h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_locations() {
        let base = Url::parse("http://h:81/a/b/c?q").unwrap();
        let cases = [
            ("/x", "http://h:81/x"),
            ("x", "http://h:81/a/b/x"),
            ("../x", "http://h:81/a/x"),
            ("../../../../x", "http://h:81/x"),
            ("?z", "http://h:81/a/b/c?z"),
            ("//other/p", "http://other/p"),
            ("https://s/", "https://s/"),
            ("./", "http://h:81/a/b/"),
        ];
        for (loc, want) in cases {
            assert_eq!(base.join(loc).unwrap().to_string(), want, "{loc}");
        }
    }
}
