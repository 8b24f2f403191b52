//! The access log: one line per response in nginx's Combined Log Format,
//! with the request id appended, written by a thread of its own.
//!
//! The request path moves one allocation (the head's fields) and a few
//! numbers into a bounded channel; the writer thread formats and writes
//! through a buffer. While lines keep coming it looks every few
//! milliseconds and flushes each time (so senders never wake it: waking a
//! thread per response cost more than the rest of the log); idle, it sleeps
//! until the next line. A `tail -f` sees a line within those milliseconds.
//! A writer that cannot keep up (a stalled pipe, a slow disk) does not make
//! the server hold lines in memory without end: once the channel is full,
//! lines are dropped and counted.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, SystemTime};

/// Lines that may wait for the writer; beyond, they are dropped (counted).
const CAPACITY: usize = 64 * 1024;

/// How often a busy writer looks for lines (and flushes).
const BUSY_POLL: Duration = Duration::from_millis(5);

/// What a line needs of its request head, taken when the head is parsed:
/// `METHOD target HTTP/x.y`, the Referer and the User-Agent, in one
/// allocation.
#[derive(Debug, Clone)]
pub(crate) struct LogHead {
    bytes: Box<[u8]>,
    /// Where the request line ends and the Referer begins.
    line_end: u32,
    referer_end: u32,
}

impl LogHead {
    /// From a parsed head.
    pub(crate) fn of(head: &httpq_proto::RequestHead, http2: bool) -> LogHead {
        let version: &[u8] = match head.version() {
            _ if http2 => b"HTTP/2.0",
            httpq_proto::Version::Http10 => b"HTTP/1.0",
            httpq_proto::Version::Http11 => b"HTTP/1.1",
            httpq_proto::Version::Http2 => b"HTTP/2.0",
        };
        let referer = head.header("referer").unwrap_or_default();
        let agent = head.header("user-agent").unwrap_or_default();
        LogHead::new(
            &[head.method(), b" ", head.target(), b" ", version],
            referer,
            agent,
        )
    }

    fn new(line: &[&[u8]], referer: &[u8], agent: &[u8]) -> LogHead {
        let line_len: usize = line.iter().map(|p| p.len()).sum();
        let mut bytes = Vec::with_capacity(line_len + referer.len() + agent.len());
        for p in line {
            bytes.extend_from_slice(p);
        }
        bytes.extend_from_slice(referer);
        let referer_end = bytes.len();
        bytes.extend_from_slice(agent);
        // A head is at most 64 KiB (the parser's limit), so offsets fit.
        LogHead {
            bytes: bytes.into(),
            line_end: line_len as u32,
            referer_end: referer_end as u32,
        }
    }

    fn line(&self) -> &[u8] {
        &self.bytes[..self.line_end as usize]
    }

    fn referer(&self) -> &[u8] {
        &self.bytes[self.line_end as usize..self.referer_end as usize]
    }

    fn user_agent(&self) -> &[u8] {
        &self.bytes[self.referer_end as usize..]
    }
}

/// One response, as handed to the writer.
#[derive(Debug)]
pub(crate) struct Entry {
    pub peer: IpAddr,
    /// `None`: a head that never parsed (its line shows `-`).
    pub head: Option<Box<LogHead>>,
    pub status: u16,
    pub body_bytes: u64,
    pub request_id: u64,
    /// When the response completed (seconds since the epoch, from the
    /// server's once-a-second clock, not a clock read per line).
    pub secs: u64,
}

enum Msg {
    Line(Entry),
    /// Everything sent before it is written and flushed; then the ack.
    Flush(SyncSender<()>),
}

/// An access log a session writes to (the HTTP Server API's logging
/// property, in nginx's format):
/// `127.0.0.1 - - [02/Dec/2026:07:30:00 +0000] "GET /x HTTP/1.1" 200 1234 "referer" "user-agent" 18374686479671623681`.
///
/// ```no_run
/// # fn f(session: &httpq_server::ServerSession) -> std::io::Result<()> {
/// let log = httpq_server::AccessLog::new(std::fs::File::create("access.log")?);
/// session.set_access_log(Some(&log));
/// // … serve …
/// log.flush(); // every line of every response so far is in the file
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl AccessLog {
    /// Starts the writer thread over `out`. The thread ends, having
    /// written everything, once the last sender (this handle and every
    /// connection that took a copy) is gone.
    pub fn new(out: impl Write + Send + 'static) -> AccessLog {
        let (tx, rx) = mpsc::sync_channel(CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("httpq-access-log".into())
            .spawn(move || write_loop(rx, out));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the access log writer; lines are dropped");
        }
        AccessLog { tx }
    }

    /// Blocks until every line handed over so far is written and flushed
    /// (at most 10 s: a stuck disk does not hang a shutdown forever).
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
    }

    pub(crate) fn sender(&self) -> LogSender {
        LogSender(self.tx.clone())
    }
}

/// A connection's handle on the log.
#[derive(Clone)]
pub(crate) struct LogSender(SyncSender<Msg>);

impl LogSender {
    /// Hands a line to the writer; one it drops (the writer is that far
    /// behind, or could not start) is counted in `dropped`.
    pub(crate) fn send(&self, e: Entry, dropped: &AtomicU64) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.0.try_send(Msg::Line(e))
        {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_loop(rx: Receiver<Msg>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut line = Vec::with_capacity(256);
    let mut stamp = Stamp::default();
    loop {
        let mut got = 0usize;
        let mut ended = false;
        loop {
            match rx.try_recv() {
                Ok(m) => {
                    got += 1;
                    write_msg(&mut out, &mut line, &mut stamp, m);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        let _ = out.flush();
        if ended {
            return;
        }
        if got > 0 {
            // Busy: look again soon, without asking anyone to wake us.
            std::thread::sleep(BUSY_POLL);
            continue;
        }
        // Idle: sleep until a line comes (one wake per busy spell).
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => write_msg(&mut out, &mut line, &mut stamp, m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn write_msg(out: &mut impl Write, line: &mut Vec<u8>, stamp: &mut Stamp, m: Msg) {
    match m {
        Msg::Line(e) => {
            line.clear();
            format_line(line, &e, stamp.at(e.secs));
            if let Err(err) = out.write_all(line) {
                tracing::warn!(error = %err, "access log write failed");
            }
        }
        Msg::Flush(ack) => {
            let _ = out.flush();
            let _ = ack.send(());
        }
    }
}

/// The CLF time, formatted once per second.
#[derive(Default)]
struct Stamp {
    secs: u64,
    text: String,
}

impl Stamp {
    fn at(&mut self, secs: u64) -> &str {
        if secs != self.secs || self.text.is_empty() {
            self.secs = secs;
            self.text = clf_time(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        }
        &self.text
    }
}

/// `02/Dec/2026:07:30:00 +0000` (always UTC), from the HTTP date's fields.
fn clf_time(t: SystemTime) -> String {
    // "Wed, 02 Dec 2026 07:30:00 GMT"
    let http = httpdate::fmt_http_date(t);
    let p: Vec<&str> = http.split(' ').collect();
    match p.as_slice() {
        [_, day, mon, year, time, _] => format!("{day}/{mon}/{year}:{time} +0000"),
        _ => http,
    }
}

fn format_line(buf: &mut Vec<u8>, e: &Entry, time: &str) {
    use std::io::Write as _;
    let mut num = itoa::Buffer::new();
    match e.peer {
        // The common case without `fmt`: this runs for every response.
        IpAddr::V4(ip) => {
            for (i, o) in ip.octets().iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(num.format(*o).as_bytes());
            }
        }
        IpAddr::V6(ip) => {
            let _ = write!(buf, "{ip}");
        }
    }
    buf.extend_from_slice(b" - - [");
    buf.extend_from_slice(time.as_bytes());
    buf.extend_from_slice(b"] \"");
    match &e.head {
        Some(h) => escape(buf, h.line()),
        None => buf.push(b'-'),
    }
    buf.extend_from_slice(b"\" ");
    buf.extend_from_slice(num.format(e.status).as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(num.format(e.body_bytes).as_bytes());
    buf.extend_from_slice(b" \"");
    field(buf, e.head.as_ref().map(|h| h.referer()));
    buf.extend_from_slice(b"\" \"");
    field(buf, e.head.as_ref().map(|h| h.user_agent()));
    buf.extend_from_slice(b"\" ");
    buf.extend_from_slice(num.format(e.request_id).as_bytes());
    buf.push(b'\n');
}

fn field(buf: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escape(buf, v),
        _ => buf.push(b'-'),
    }
}

/// As nginx: `"`, `\` and bytes outside printable ASCII become `\xHH`, so
/// a line is one line and its quoted fields cannot be forged.
fn escape(buf: &mut Vec<u8>, v: &[u8]) {
    let plain = |b: &u8| *b != b'"' && *b != b'\\' && (0x20..0x7f).contains(b);
    if v.iter().all(plain) {
        buf.extend_from_slice(v);
        return;
    }
    for &b in v {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(buf, "\\x{b:02X}");
        } else {
            buf.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_combined_format_with_the_id_last_and_quotes_escaped() {
        let e = Entry {
            peer: "127.0.0.1".parse().unwrap(),
            head: Some(Box::new(LogHead::new(
                &[b"GET /x?a=\"1\" HTTP/1.1"],
                b"",
                b"curl/8\n",
            ))),
            status: 200,
            body_bytes: 1234,
            request_id: 18374686479671623681,
            secs: 0,
        };
        let mut buf = Vec::new();
        format_line(&mut buf, &e, "02/Dec/2026:07:30:00 +0000");
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "127.0.0.1 - - [02/Dec/2026:07:30:00 +0000] \"GET /x?a=\\x221\\x22 HTTP/1.1\" 200 1234 \"-\" \"curl/8\\x0A\" 18374686479671623681\n"
        );
    }

    #[test]
    fn clf_time_is_utc_with_a_three_letter_month() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_196_600);
        assert_eq!(clf_time(t), "02/Dec/2026:07:30:00 +0000");
    }

    #[test]
    fn flush_returns_once_every_line_is_written() {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let log = AccessLog::new(out.clone());
        let tx = log.sender();
        let dropped = AtomicU64::new(0);
        for i in 0..1000 {
            tx.send(
                Entry {
                    peer: "::1".parse().unwrap(),
                    head: None,
                    status: 400,
                    body_bytes: 0,
                    request_id: i,
                    secs: 1_796_196_600,
                },
                &dropped,
            );
        }
        log.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text
            .lines()
            .last()
            .unwrap()
            .ends_with("\"-\" 400 0 \"-\" \"-\" 999"));
        assert!(
            text.starts_with("::1 - - [02/Dec/2026:07:30:00 +0000] \"-\" 400 0 "),
            "{text}"
        );
    }
}
