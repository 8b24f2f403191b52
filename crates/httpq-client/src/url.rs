//! Absolute http/https URLs as the client needs them, parsed by the `url`
//! crate (WHATWG: IDNA to punycode, dot segments, relative references).
//!
//! The wrapper keeps what the client asks of a URL — host without brackets,
//! the port always known, the origin-form target — and holds credentials
//! apart, decoded, so that neither `Display` nor a REDIRECT notification
//! ever shows a password.

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
    ///
    /// ```
    /// assert_eq!(httpq_client::Scheme::Https.default_port(), 443);
    /// ```
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    ///
    /// ```
    /// assert_eq!(httpq_client::Scheme::Http.as_str(), "http");
    /// ```
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
/// // International names travel as punycode (IDNA).
/// assert_eq!(Url::parse("http://bücher.example/").unwrap().host(), "xn--bcher-kva.example");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// No credentials and no fragment: those never go on the wire in it.
    inner: url::Url,
    scheme: Scheme,
    /// Without brackets for IPv6 (the form resolvers and TLS names take).
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL (a fragment is dropped).
    ///
    /// ```
    /// let u = httpq_client::Url::parse("HTTP://[::1]:8080/x y").unwrap();
    /// assert_eq!((u.host(), u.authority(), u.path_and_query()), ("::1", "[::1]:8080".into(), "/x%20y"));
    /// assert!(httpq_client::Url::parse("ftp://example.com/").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Url, ClientError> {
        let parsed = url::Url::parse(s).map_err(|_| ClientError::InvalidUrl(s.to_string()))?;
        Url::from_parsed(parsed, s)
    }

    fn from_parsed(mut inner: url::Url, original: &str) -> Result<Url, ClientError> {
        let bad = || ClientError::InvalidUrl(original.trim().to_string());
        let scheme = match inner.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad()),
        };
        let host = match inner.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(bad()),
        };
        let port = inner.port().unwrap_or(scheme.default_port());
        let credentials = if inner.username().is_empty() && inner.password().is_none() {
            None
        } else {
            Some((
                decode(inner.username()),
                decode(inner.password().unwrap_or("")),
            ))
        };
        // Both setters fail only for URLs that cannot have credentials,
        // which an http(s) URL with a host always can.
        let _ = inner.set_username("");
        let _ = inner.set_password(None);
        inner.set_fragment(None);
        Ok(Url {
            inner,
            scheme,
            host,
            port,
            credentials,
        })
    }

    /// The scheme.
    ///
    /// ```
    /// let u = httpq_client::Url::parse("https://example.com/").unwrap();
    /// assert_eq!(u.scheme(), httpq_client::Scheme::Https);
    /// ```
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, without brackets for IPv6 literals; an international name
    /// in its punycode (`xn--`) form.
    ///
    /// ```
    /// let u = httpq_client::Url::parse("http://Example.COM/").unwrap();
    /// assert_eq!(u.host(), "example.com");
    /// ```
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL has none).
    ///
    /// ```
    /// assert_eq!(httpq_client::Url::parse("https://example.com/").unwrap().port(), 443);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target in origin form: path and query, percent-encoded.
    ///
    /// ```
    /// let u = httpq_client::Url::parse("http://h/a/./b/../c?q=1#f").unwrap();
    /// assert_eq!(u.path_and_query(), "/a/c?q=1");
    /// ```
    pub fn path_and_query(&self) -> &str {
        &self.inner[url::Position::BeforePath..url::Position::AfterQuery]
    }

    /// User name and password from the URL, if any (percent-decoded).
    ///
    /// ```
    /// let u = httpq_client::Url::parse("http://a:b%40c@h/").unwrap();
    /// assert_eq!(u.credentials(), Some(("a", "b@c")));
    /// ```
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The Host header value: host, plus the port when it is not the default.
    ///
    /// ```
    /// let u = httpq_client::Url::parse("http://bücher.example:8080/").unwrap();
    /// assert_eq!(u.authority(), "xn--bcher-kva.example:8080");
    /// ```
    pub fn authority(&self) -> String {
        // `url` serializes the host as it goes on the wire (IPv6 bracketed)
        // and leaves a default port out.
        let host = self.inner.host_str().unwrap_or(&self.host);
        match self.inner.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    pub(crate) fn with_credentials(mut self, user: &str, password: &str) -> Url {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// Scheme, host and port: what decides whether credentials may follow a redirect.
    ///
    /// ```
    /// use httpq_client::Url;
    /// let a = Url::parse("http://h/a").unwrap();
    /// assert!(a.same_origin(&Url::parse("http://h:80/b").unwrap()));
    /// assert!(!a.same_origin(&Url::parse("https://h/a").unwrap()));
    /// ```
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// Resolves a redirect's Location against this URL (RFC 3986 §5.2, as
    /// the WHATWG URL standard does it); only http and https results are URLs here.
    ///
    /// ```
    /// let base = httpq_client::Url::parse("http://h:81/a/b/c?q").unwrap();
    /// assert_eq!(base.join("../x").unwrap().to_string(), "http://h:81/a/x");
    /// assert!(base.join("mailto:someone@h").is_err());
    /// ```
    pub fn join(&self, location: &str) -> Result<Url, ClientError> {
        let joined = self
            .inner
            .join(location)
            .map_err(|_| ClientError::InvalidUrl(location.trim().to_string()))?;
        Url::from_parsed(joined, location)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.as_str())
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
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
        assert_eq!(u.to_string(), "http://h/", "no credentials when shown");
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
    fn international_hosts_become_punycode() {
        let u = Url::parse("http://bücher.example/straße?ö").unwrap();
        assert_eq!(u.host(), "xn--bcher-kva.example");
        assert_eq!(u.authority(), "xn--bcher-kva.example");
        assert_eq!(u.path_and_query(), "/stra%C3%9Fe?%C3%B6");
        assert_eq!(
            u.to_string(),
            "http://xn--bcher-kva.example/stra%C3%9Fe?%C3%B6"
        );
        // Upper case folds before the encoding, as IDNA maps it.
        let v = Url::parse("http://BÜCHER.example:8080/").unwrap();
        assert_eq!(v.authority(), "xn--bcher-kva.example:8080");
        assert!(u.same_origin(&Url::parse("http://xn--bcher-kva.example/").unwrap()));
        // A Location may name an IDN host as well.
        let base = Url::parse("http://h/").unwrap();
        assert_eq!(
            base.join("//bücher.example/x").unwrap().host(),
            "xn--bcher-kva.example"
        );
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
            ("", "http://h:81/a/b/c?q"),
            ("#frag", "http://h:81/a/b/c?q"),
            ("x?u=http://y/", "http://h:81/a/b/x?u=http://y/"),
        ];
        for (loc, want) in cases {
            assert_eq!(base.join(loc).unwrap().to_string(), want, "{loc}");
        }
        for bad in ["ftp://s/", "javascript:alert(1)", "http://"] {
            assert!(base.join(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_join_keeps_no_credentials_of_its_own_base() {
        let base = Url::parse("http://u:p@h/a").unwrap();
        let next = base.join("/b").unwrap();
        assert_eq!(next.credentials(), None, "carry_credentials decides that");
        let next = base.join("http://v:q@h/c").unwrap();
        assert_eq!(next.credentials(), Some(("v", "q")));
    }
}
