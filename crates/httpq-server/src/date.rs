//! The `Date` header, formatted at most once a second per thread, together
//! with the fixed lines every response starts with, so writing them is one
//! copy instead of a dozen small ones.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpq_proto::server_conn::FixedLines;

struct Cache {
    secs: u64,
    /// The session's Server value the lines were made with (kept alive
    /// here, so comparing pointers is enough).
    server: Option<Arc<[u8]>>,
    /// `Server: …\r\nDate: …\r\n`
    fields: Vec<u8>,
    /// `HTTP/1.1 200 OK\r\n` followed by `fields`.
    ok_11: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { secs: u64::MAX, server: None, fields: Vec::new(), ok_11: Vec::new() })
    };
}

/// Seconds since the epoch, kept current by one ticker thread, so a
/// response costs an atomic load instead of a clock read (a `Date` has
/// one-second resolution anyway).
static NOW_SECS: AtomicU64 = AtomicU64::new(0);
static TICKER: Once = Once::new();

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn now_secs() -> u64 {
    TICKER.call_once(|| {
        NOW_SECS.store(unix_secs(), Ordering::Relaxed);
        let started = std::thread::Builder::new()
            .name("httpq-date".into())
            .spawn(|| loop {
                // Wakes just after each second begins.
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let to_next = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
                std::thread::sleep(to_next + Duration::from_millis(1));
                NOW_SECS.store(unix_secs(), Ordering::Relaxed);
            });
        if started.is_err() {
            // No ticker: fall back to reading the clock per response.
            NOW_SECS.store(0, Ordering::Relaxed);
        }
    });
    match NOW_SECS.load(Ordering::Relaxed) {
        0 => unix_secs(),
        s => s,
    }
}

/// Calls `f` with the `Server` and `Date` field lines for this second, and
/// the same preceded by the status line `HTTP/1.1 200 OK`.
pub(crate) fn with_fixed_lines<R>(
    server: Option<&Arc<[u8]>>,
    f: impl FnOnce(&FixedLines<'_>) -> R,
) -> R {
    let secs = now_secs();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let same_server = match (&c.server, server) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if c.secs != secs || !same_server {
            let mut fields = Vec::with_capacity(64);
            if let Some(s) = server {
                fields.extend_from_slice(b"Server: ");
                fields.extend_from_slice(s);
                fields.extend_from_slice(b"\r\n");
            }
            fields.extend_from_slice(b"Date: ");
            let when = UNIX_EPOCH + Duration::from_secs(secs);
            fields.extend_from_slice(httpdate::fmt_http_date(when).as_bytes());
            fields.extend_from_slice(b"\r\n");
            let mut ok_11 = b"HTTP/1.1 200 OK\r\n".to_vec();
            ok_11.extend_from_slice(&fields);
            *c = Cache {
                secs,
                server: server.cloned(),
                fields,
                ok_11,
            };
        }
        f(&FixedLines {
            fields: &c.fields,
            ok_11: &c.ok_11,
        })
    })
}

thread_local! {
    static DATE_VALUE: RefCell<(u64, http::HeaderValue)> =
        const { RefCell::new((u64::MAX, http::HeaderValue::from_static(""))) };
}

/// This second's `Date` as a header value (HTTP/2 responses, whose fields
/// are not written as lines), formatted once a second per thread.
pub(crate) fn date_value() -> http::HeaderValue {
    let secs = now_secs();
    DATE_VALUE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            let when = UNIX_EPOCH + Duration::from_secs(secs);
            if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(when)) {
                *d = (secs, v);
            }
        }
        d.1.clone()
    })
}
