//! URL groups and their prefixes: parsing `scheme://host:port/path/`, the four
//! host categories, and routing a request to the best-matching registration.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::properties::Timeouts;
use crate::request_queue::{QueueInner, RequestQueue};
use crate::ServerError;

/// What a URL group needs of its session: registering and removing its
/// prefixes (which opens and closes listening sockets), and being told
/// when its binding or timeouts change where requests go.
pub(crate) trait Registrar: Send + Sync {
    fn add(
        &self,
        prefix: UrlPrefix,
        context: u64,
        group: &Arc<GroupInner>,
    ) -> Result<(), ServerError>;
    fn remove(&self, prefix: &UrlPrefix, group_id: u64) -> Result<(), ServerError>;
    fn changed(&self);
}

/// How a prefix's host element matches, in routing precedence order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostSpec {
    /// `+`: every host name, before anything else.
    StrongWildcard,
    /// A host name, matched against the request's host (case-insensitive).
    Explicit(String),
    /// An IP literal: any host name on requests that arrived on that
    /// address; `0.0.0.0` (or `[::]`) is every address of its family,
    /// after the exact ones, and binds that family alone.
    IpBound(IpAddr),
    /// `*`: any host name not matched by the categories above.
    WeakWildcard,
}

/// A parsed URL prefix.
///
/// ```
/// use httpq_server::url_group::{HostSpec, UrlPrefix};
/// let p = UrlPrefix::parse("http://+:8080/api/").unwrap();
/// assert_eq!(p.host, HostSpec::StrongWildcard);
/// assert_eq!((p.port, p.path.as_str()), (8080, "/api/"));
/// assert!(UrlPrefix::parse("http://+:8080/api").is_err()); // no trailing slash
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlPrefix {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host element.
    pub host: HostSpec,
    /// The port (1–65535).
    pub port: u16,
    /// The path, lower-cased, starting and ending with `/`.
    pub path: String,
}

impl UrlPrefix {
    /// Parses a prefix as the HTTP Server API defines it; every malformation
    /// is an [`ServerError::InvalidPrefix`] naming what is wrong.
    pub fn parse(s: &str) -> Result<UrlPrefix, ServerError> {
        let bad = |why: &'static str| ServerError::InvalidPrefix {
            prefix: s.to_string(),
            why,
        };
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = s.strip_prefix("https://") {
            ("https", r)
        } else {
            return Err(bad("scheme must be http:// or https:// (lower case)"));
        };
        if s.contains('?') || s.contains('#') {
            return Err(bad("a prefix has no query or fragment"));
        }
        let slash = rest
            .find('/')
            .ok_or(bad("missing path (a prefix ends with '/')"))?;
        let (hostport, path) = rest.split_at(slash);
        if !path.ends_with('/') {
            return Err(bad("path must end with '/'"));
        }
        if path.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(bad("path has dot-segments"));
        }
        let colon = if hostport.starts_with('[') {
            let close = hostport.find(']').ok_or(bad("unterminated IPv6 literal"))?;
            hostport[close..].find(':').map(|i| close + i)
        } else {
            hostport.rfind(':')
        };
        let colon = colon.ok_or(bad("missing port"))?;
        let (host, port) = (&hostport[..colon], &hostport[colon + 1..]);
        if port.is_empty() || port.starts_with('0') || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("port must be 1-65535 without leading zeros"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port must be 1-65535 without leading zeros"))?;
        let host = match host {
            "" => return Err(bad("missing host")),
            "+" => HostSpec::StrongWildcard,
            "*" => HostSpec::WeakWildcard,
            h if h.starts_with('[') && h.ends_with(']') => {
                let ip: std::net::Ipv6Addr = h[1..h.len() - 1]
                    .parse()
                    .map_err(|_| bad("invalid IPv6 literal"))?;
                HostSpec::IpBound(IpAddr::V6(ip))
            }
            h => match h.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => HostSpec::IpBound(IpAddr::V4(ip)),
                Err(_) => {
                    let ok = h
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
                    if !ok {
                        return Err(bad("invalid host name"));
                    }
                    HostSpec::Explicit(h.to_ascii_lowercase())
                }
            },
        };
        Ok(UrlPrefix {
            scheme,
            host,
            port,
            path: path.to_ascii_lowercase(),
        })
    }

    /// The addresses a listener must be bound to for this prefix.
    pub(crate) fn listen_addrs(&self) -> Vec<SocketAddr> {
        match &self.host {
            HostSpec::IpBound(ip) => vec![SocketAddr::new(*ip, self.port)],
            _ => Self::wildcard_addrs(self.port),
        }
    }

    /// The IPv4 and IPv6 wildcard addresses of `port`.
    pub(crate) fn wildcard_addrs(port: u16) -> Vec<SocketAddr> {
        vec![
            SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port),
        ]
    }

    /// Whole-segment, case-insensitive prefix match: `/a/b/` matches
    /// `/a/b`, `/a/b/` and `/a/b/c`, not `/a/bc`.
    pub(crate) fn path_matches(&self, q: &[u8]) -> bool {
        let p = self.path.as_bytes();
        if q.len() >= p.len() {
            q[..p.len()].eq_ignore_ascii_case(p)
        } else {
            // `/a/b` against prefix `/a/b/`
            q.len() + 1 == p.len() && p[..q.len()].eq_ignore_ascii_case(q)
        }
    }
}

impl std::fmt::Display for UrlPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = match &self.host {
            HostSpec::StrongWildcard => "+".to_string(),
            HostSpec::WeakWildcard => "*".to_string(),
            HostSpec::Explicit(h) => h.clone(),
            HostSpec::IpBound(IpAddr::V4(ip)) => ip.to_string(),
            HostSpec::IpBound(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        write!(f, "{}://{}:{}{}", self.scheme, host, self.port, self.path)
    }
}

/// One registered prefix in the session's routing table.
#[derive(Clone)]
pub(crate) struct Registration {
    pub prefix: UrlPrefix,
    pub context: u64,
    pub group: Weak<crate::url_group::GroupInner>,
}

/// Picks the registration for a request: categories in order (`+`,
/// explicit host, IP-bound, `*`), longest path within a category.
pub(crate) fn route(
    table: &[Registration],
    scheme: &str,
    host: &[u8],
    local: SocketAddr,
    path: &[u8],
) -> Option<(u64, Arc<GroupInner>)> {
    let mut best: Option<(u8, usize, &Registration)> = None;
    for r in table {
        let p = &r.prefix;
        if p.scheme != scheme || p.port != local.port() || !p.path_matches(path) {
            continue;
        }
        let category = match &p.host {
            HostSpec::StrongWildcard => 0,
            HostSpec::Explicit(h) if h.as_bytes().eq_ignore_ascii_case(host) => 1,
            HostSpec::Explicit(_) => continue,
            HostSpec::IpBound(ip) if same_ip(*ip, local.ip()) => 2,
            // 0.0.0.0 or [::]: every address of its family, after exact ones.
            HostSpec::IpBound(ip) if ip.is_unspecified() && same_family(*ip, local.ip()) => 3,
            HostSpec::IpBound(_) => continue,
            HostSpec::WeakWildcard => 4,
        };
        let better = match best {
            None => true,
            Some((c, len, _)) => category < c || (category == c && p.path.len() > len),
        };
        if better {
            best = Some((category, p.path.len(), r));
        }
    }
    let (_, _, r) = best?;
    Some((r.context, r.group.upgrade()?))
}

/// IPv4 clients reaching an IPv6 socket appear as mapped addresses.
fn canon(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canon(a) == canon(b)
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    canon(a).is_ipv4() == canon(b).is_ipv4()
}

/// The state of a URL group: its binding and its timeout overrides.
pub(crate) struct GroupInner {
    pub id: u64,
    queue: Mutex<Option<Arc<QueueInner>>>,
    timeouts: RwLock<Option<Timeouts>>,
    prefixes: Mutex<Vec<UrlPrefix>>,
}

impl GroupInner {
    /// The queue the group is bound to.
    pub(crate) fn queue(&self) -> Option<Arc<QueueInner>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The group's own timeouts (zero fields: the session's).
    pub(crate) fn timeouts(&self) -> Option<Timeouts> {
        *self.timeouts.read().unwrap_or_else(|e| e.into_inner())
    }
}

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// A set of URL prefixes, each with a 64-bit context, bound to one request
/// queue. Dropping the group removes its prefixes.
///
/// ```no_run
/// # fn f(session: &httpq_server::ServerSession) -> Result<(), httpq_server::ServerError> {
/// let queue = httpq_server::RequestQueue::new("api");
/// let group = session.create_url_group();
/// group.bind(&queue);
/// group.add_url("http://+:8080/api/", 7)?;      // requests under /api/ carry context 7
/// group.add_url("http://localhost:8080/", 8)?;   // explicit host
/// # Ok(()) }
/// ```
pub struct UrlGroup {
    session: Arc<dyn Registrar>,
    inner: Arc<GroupInner>,
}

impl std::fmt::Debug for UrlGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlGroup")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl UrlGroup {
    pub(crate) fn new(session: Arc<dyn Registrar>) -> UrlGroup {
        UrlGroup {
            session,
            inner: Arc::new(GroupInner {
                id: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
                queue: Mutex::new(None),
                timeouts: RwLock::new(None),
                prefixes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends this group's requests to `queue` (replacing any earlier binding).
    pub fn bind(&self, queue: &RequestQueue) {
        *self.inner.queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(queue.inner.clone());
        self.session.changed();
    }

    /// Stops delivering this group's requests (they are answered 503).
    pub fn unbind(&self) {
        *self.inner.queue.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.session.changed();
    }

    /// Registers `prefix` with `context`, opening listening sockets as needed.
    /// Malformed prefixes, duplicates and ports held elsewhere are errors.
    pub fn add_url(&self, prefix: &str, context: u64) -> Result<(), ServerError> {
        let p = UrlPrefix::parse(prefix)?;
        self.session.add(p.clone(), context, &self.inner)?;
        self.inner
            .prefixes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
        Ok(())
    }

    /// Removes a prefix registered in this group.
    pub fn remove_url(&self, prefix: &str) -> Result<(), ServerError> {
        let p = UrlPrefix::parse(prefix)?;
        let mut mine = self
            .inner
            .prefixes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pos = mine
            .iter()
            .position(|q| *q == p)
            .ok_or_else(|| ServerError::PrefixNotFound(p.to_string()))?;
        self.session.remove(&p, self.inner.id)?;
        mine.remove(pos);
        Ok(())
    }

    /// Removes every prefix of this group (http.sys's
    /// `HttpRemoveUrlFromUrlGroup(id, NULL, HTTP_URL_FLAG_REMOVE_ALL)`).
    ///
    /// ```no_run
    /// # fn f(session: &httpq_server::ServerSession) -> Result<(), httpq_server::ServerError> {
    /// let group = session.create_url_group();
    /// group.add_url("http://+:8080/a/", 1)?;
    /// group.add_url("http://+:8080/b/", 2)?;
    /// group.remove_all_urls(); // both gone; the port closes if nothing else uses it
    /// # Ok(()) }
    /// ```
    pub fn remove_all_urls(&self) {
        let mine = std::mem::take(
            &mut *self
                .inner
                .prefixes
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for p in mine {
            let _ = self.session.remove(&p, self.inner.id);
        }
    }

    /// Overrides the session's timeouts for requests routed here; zero
    /// fields fall back to the session's values.
    pub fn set_timeouts(&self, t: Timeouts) {
        *self
            .inner
            .timeouts
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(t);
        self.session.changed();
    }
}

impl Drop for UrlGroup {
    fn drop(&mut self) {
        let prefixes = std::mem::take(
            &mut *self
                .inner
                .prefixes
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for p in prefixes {
            let _ = self.session.remove(&p, self.inner.id);
        }
    }
}
