//! Server properties: the HTTP Server API's timeouts and limits, set on the
//! session and overridable per URL group (the group wins; zero restores the default).

use std::time::Duration;

use httpq_proto::Limits;

pub use httpq_proto::server_conn::{HalfClosePolicy, Timeouts};

/// What to do with a request when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Answer `503 Service Unavailable` and close the connection.
    #[default]
    ServiceUnavailable,
    /// Reset the connection.
    Reset,
    /// Answer 503 with a short reason body, and keep the connection.
    ServiceUnavailableWithReason,
}

/// TCP keepalive probing of idle connections: after `idle` without
/// traffic, a probe every `interval`; after `retries` unanswered probes the
/// kernel resets the connection and its waiters see `Reset`. So a peer
/// that vanished silently is noticed after about
/// `idle + interval * retries`.
///
/// ```
/// use std::time::Duration;
/// use httpq_server::properties::TcpKeepalive;
/// let k = TcpKeepalive { idle: Duration::from_secs(10), ..TcpKeepalive::default() };
/// assert_eq!((k.interval, k.retries), (Duration::from_secs(10), 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub retries: u32,
}

impl Default for TcpKeepalive {
    fn default() -> Self {
        TcpKeepalive {
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// HTTP/2, named after the HTTP Server API's registry settings where one
/// exists. h2 is offered by ALPN on TLS and taken with prior knowledge
/// (a connection that opens with the h2 preface) on plaintext ports.
///
/// ```
/// use httpq_server::properties::Http2Settings;
/// let h = Http2Settings::default();
/// assert!(h.enable_tls && h.enable_cleartext);
/// assert_eq!(h.max_concurrent_client_streams, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Settings {
    /// Offer `h2` by ALPN on TLS connections (EnableHttp2Tls).
    pub enable_tls: bool,
    /// Take h2 with prior knowledge on plaintext ports (EnableHttp2Cleartext).
    pub enable_cleartext: bool,
    /// Streams a client may have open at once; more are refused
    /// (Http2MaxConcurrentClientStreams, SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_client_streams: u32,
    /// Bytes of one request's decoded header list
    /// (SETTINGS_MAX_HEADER_LIST_SIZE; the HPACK-bomb bound). The request
    /// head's own limits ([`Limits`]) apply after decoding too.
    pub max_header_list_size: u32,
    /// A stream's receive window: request body bytes a client may send
    /// before the application reads them.
    pub initial_window_size: u32,
    /// The connection's receive window, over all its streams.
    pub connection_window_size: u32,
    /// Largest frame payload the server accepts (SETTINGS_MAX_FRAME_SIZE).
    pub max_frame_size: u32,
    /// Stream resets by the client tolerated per second, on average, with
    /// bursts of twice as many; beyond, the connection gets GOAWAY
    /// ENHANCE_YOUR_CALM (the rapid-reset defence, CVE-2023-44487).
    pub max_client_resets_per_second: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            enable_tls: true,
            enable_cleartext: true,
            max_concurrent_client_streams: 100,
            max_header_list_size: 64 * 1024,
            initial_window_size: 1024 * 1024,
            connection_window_size: 4 * 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_client_resets_per_second: 100,
        }
    }
}

/// Session-wide properties.
///
/// ```
/// use httpq_server::Properties;
/// let p = Properties { max_connections: 10_000, ..Properties::default() };
/// assert_eq!(p.limits.max_headers, 100);
/// ```
#[derive(Debug, Clone)]
pub struct Properties {
    /// The timeouts, unless a URL group overrides them.
    pub timeouts: Timeouts,
    /// Protocol limits for request heads and bodies.
    pub limits: Limits,
    /// Open connections allowed at once; beyond it, accepting pauses.
    pub max_connections: usize,
    /// The `Server` header written on every response (`None`: no header).
    pub server_header: Option<String>,
    /// What a client's FIN means.
    pub half_close: HalfClosePolicy,
    /// TCP keepalive, to find peers that vanished silently (`None`: off).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Requests parsed ahead on one connection (pipelining depth).
    pub max_pipelined: usize,
    /// Response bytes the kernel may hold unsent on one connection
    /// (`TCP_NOTSENT_LOWAT`; `None`: the kernel's choice). Without it the
    /// kernel grows a connection's send buffer up to `tcp_wmem`'s maximum
    /// (4 MiB) even for a client that reads nothing, and filling that
    /// buffer costs the worker milliseconds of kernel time per slow reader.
    pub max_unsent_bytes: Option<u32>,
    /// Hand free memory back to the system after a crowd of connections
    /// has gone (glibc's `malloc_trim`, from one thread per process; the
    /// first session's choice holds). Off, freed memory stays in malloc's
    /// arenas for reuse, and RSS stays at its peak.
    pub return_memory: bool,
    /// Worker threads, each with its own runtime, listening sockets
    /// (`SO_REUSEPORT`) and share of every request queue; 0: one per core.
    /// Ignored by [`ServerSession::with_runtime`](crate::ServerSession::with_runtime),
    /// whose connections all run on the runtime given.
    pub workers: usize,
    /// HTTP/2 settings.
    pub http2: Http2Settings,
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_connections: 100_000,
            server_header: Some(concat!("httpq/", env!("CARGO_PKG_VERSION")).to_string()),
            half_close: HalfClosePolicy::Disconnect,
            tcp_keepalive: Some(TcpKeepalive::default()),
            max_pipelined: 32,
            max_unsent_bytes: Some(128 * 1024),
            return_memory: true,
            workers: 0,
            http2: Http2Settings::default(),
        }
    }
}
