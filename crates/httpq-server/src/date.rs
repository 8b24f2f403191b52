//! The `Date` header, formatted at most once a second per thread, together
//! with the fixed lines every response starts with, so writing them is one
//! copy instead of a dozen small ones.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

struct Cache {
    secs: u64,
    server: Option<Box<[u8]>>,
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

/// Calls `f` with the `Server` and `Date` field lines for this second, and
/// the same preceded by the status line `HTTP/1.1 200 OK`.
pub(crate) fn with_fixed_lines<R>(server: Option<&[u8]>, f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.secs != secs || c.server.as_deref() != server {
            let mut fields = Vec::with_capacity(64);
            if let Some(s) = server {
                fields.extend_from_slice(b"Server: ");
                fields.extend_from_slice(s);
                fields.extend_from_slice(b"\r\n");
            }
            fields.extend_from_slice(b"Date: ");
            fields.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
            fields.extend_from_slice(b"\r\n");
            let mut ok_11 = b"HTTP/1.1 200 OK\r\n".to_vec();
            ok_11.extend_from_slice(&fields);
            *c = Cache {
                secs,
                server: server.map(Into::into),
                fields,
                ok_11,
            };
        }
        f(&c.fields, &c.ok_11)
    })
}
