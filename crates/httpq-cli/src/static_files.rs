//! Static files for `httpq serve`: GET and HEAD of files under one root,
//! with Content-Type, Last-Modified / If-Modified-Since, single byte ranges,
//! index.html or a listing for directories — and no way out of the root.
//!
//! Files are served on the worker that received the request, in one call:
//! small ones from memory, large ones straight from the file (`sendfile`).
//! Each worker keeps an open-file cache, like nginx's `open_file_cache`:
//! a path resolved once maps to its file's descriptor (and, for small
//! files, its bytes), checked against the file's identity, size and mtime
//! on every request (one `stat`) and resolved anew at least once a second.
//! Directory listings are built on the blocking pool.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderValue;
use httpq_server::{FileChunk, Request, RequestQueue, Response, SendFlags, ServerError};

/// Files up to this size are kept in memory and sent from there.
const IN_MEMORY: u64 = 64 * 1024;

/// Bytes of small files one worker's cache keeps at most.
const CACHE_BYTES: usize = 32 << 20;

/// A cached path is resolved anew (symlinks, index.html) after this long.
const REVALIDATE: Duration = Duration::from_secs(1);

/// Entries shown in a directory listing at most: the page is built in memory,
/// and a directory of millions of files must not make it unbounded.
const MAX_LISTING: usize = 10_000;

pub struct StaticSite {
    /// Shared with the blocking-pool closures that build listings.
    root: Arc<Path>,
    /// Cache entries per worker (0: no cache, every request opens its file).
    cache_entries: usize,
}

/// A file as served: where it is, what it is, and its bytes or descriptor.
struct Entry {
    real: PathBuf,
    resolved: Instant,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: SystemTime,
    body: Body,
    content_type: HeaderValue,
    last_modified: Option<HeaderValue>,
}

enum Body {
    Memory(Bytes),
    File(Arc<File>),
}

impl Entry {
    /// The file at `real` is still the one this entry describes.
    fn fresh(&self, now: Instant) -> bool {
        if now.duration_since(self.resolved) > REVALIDATE {
            return false;
        }
        match std::fs::metadata(&self.real) {
            Ok(m) => {
                m.dev() == self.dev
                    && m.ino() == self.ino
                    && m.len() == self.len
                    && m.modified().ok() == Some(self.mtime)
            }
            Err(_) => false,
        }
    }
}

/// One worker's open files, by cooked path. Owned by the worker's
/// consumer loop: no lock, no sharing.
pub struct FileCache {
    map: HashMap<Box<str>, Arc<Entry>>,
    bytes: usize,
    max: usize,
}

impl FileCache {
    fn get(&mut self, path: &str, now: Instant) -> Option<Arc<Entry>> {
        let e = self.map.get(path)?;
        if e.fresh(now) {
            return Some(e.clone());
        }
        let gone = self.map.remove(path)?;
        self.bytes -= gone.memory();
        None
    }

    fn put(&mut self, path: &str, e: Arc<Entry>) {
        if self.max == 0 {
            return;
        }
        while self.map.len() >= self.max || self.bytes + e.memory() > CACHE_BYTES {
            // Any entry will do: a cache that is full is one whose working
            // set does not fit, and then which one goes matters little.
            let Some(k) = self.map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = self.map.remove(&k) {
                self.bytes -= old.memory();
            }
        }
        self.bytes += e.memory();
        if let Some(old) = self.map.insert(path.into(), e) {
            self.bytes -= old.memory();
        }
    }
}

impl Entry {
    fn memory(&self) -> usize {
        match &self.body {
            Body::Memory(b) => b.len(),
            Body::File(_) => 0,
        }
    }
}

/// What a path resolved to.
enum Target {
    /// A file, or a directory's index.html.
    File(PathBuf),
    /// A directory without an index: its listing page.
    Listing(PathBuf),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
}

impl StaticSite {
    pub fn new(root: &Path, cache_entries: usize) -> std::io::Result<StaticSite> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(StaticSite {
            root: root.into(),
            cache_entries,
        })
    }

    /// A cache for one worker.
    pub fn cache(&self) -> FileCache {
        FileCache {
            map: HashMap::new(),
            bytes: 0,
            max: self.cache_entries,
        }
    }

    /// Answers `req` on the calling worker, in one call. Only a directory
    /// listing is left to a task (on the blocking pool).
    pub async fn handle(
        &self,
        q: &RequestQueue,
        req: Request,
        cache: &mut FileCache,
    ) -> Result<(), ServerError> {
        let id = req.id();
        let method = req.method();
        if method != http::Method::GET && method != http::Method::HEAD {
            let r = text(405, "method not allowed\n").header("allow", "GET, HEAD");
            return q.send_response(id, r, SendFlags::NONE).await;
        }
        let now = Instant::now();
        let path = req.path();
        if let Some(e) = cache.get(path, now) {
            return serve(q, &req, &e).await;
        }
        match resolve(&self.root, path) {
            Target::NotFound => {
                q.send_response(id, text(404, "not found\n"), SendFlags::NONE)
                    .await
            }
            Target::AddSlash => {
                let location = format!("{}{}", redirect_path(path), req.url().query);
                let r = text(301, "moved\n").header("location", &location);
                q.send_response(id, r, SendFlags::NONE).await
            }
            Target::Listing(dir) => {
                // Reading a directory can take long (millions of entries, a
                // slow disk): on the blocking pool, answered from a task.
                let (q, url_path) = (q.clone(), path.to_string());
                tokio::spawn(async move {
                    let page = tokio::task::spawn_blocking(move || listing(&dir, &url_path)).await;
                    let r = match page {
                        Ok(html) => Response::new(200)
                            .header("content-type", "text/html; charset=utf-8")
                            .body(html),
                        Err(_) => text(500, "listing failed\n"),
                    };
                    let _ = q.send_response(req.id(), r, SendFlags::NONE).await;
                });
                Ok(())
            }
            Target::File(real) => match open(real, now) {
                Some(e) => {
                    let e = Arc::new(e);
                    cache.put(path, e.clone());
                    serve(q, &req, &e).await
                }
                None => {
                    q.send_response(id, text(404, "not found\n"), SendFlags::NONE)
                        .await
                }
            },
        }
    }
}

/// Opens the file at `real` and describes it; small files are read whole.
fn open(real: PathBuf, now: Instant) -> Option<Entry> {
    use std::io::Read;
    let mut file = File::open(&real).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let body = if len <= IN_MEMORY {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf).ok()?;
        if buf.len() as u64 != len {
            // Changed while read: the next request looks again.
            return None;
        }
        Body::Memory(Bytes::from(buf))
    } else {
        Body::File(Arc::new(file))
    };
    let mtime = meta.modified().ok()?;
    Some(Entry {
        content_type: HeaderValue::from_static(content_type(&real)),
        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(mtime)).ok(),
        real,
        resolved: now,
        dev: meta.dev(),
        ino: meta.ino(),
        len,
        mtime,
        body,
    })
}

/// The response for file `e`: conditional, ranged, or whole; HEAD without body.
async fn serve(q: &RequestQueue, req: &Request, e: &Entry) -> Result<(), ServerError> {
    let id = req.id();
    let len = e.len;
    if let Some(since) =
        header_str(req, "if-modified-since").and_then(|v| httpdate::parse_http_date(v).ok())
    {
        if truncate_secs(e.mtime) <= since {
            let mut r = Response::new(304);
            if let Some(lm) = &e.last_modified {
                r.headers.insert(http::header::LAST_MODIFIED, lm.clone());
            }
            return q.send_response(id, r, SendFlags::NONE).await;
        }
    }
    let if_range_ok = match header_str(req, "if-range") {
        None => true,
        Some(v) => e
            .last_modified
            .as_ref()
            .is_some_and(|lm| lm.as_bytes() == v.as_bytes()),
    };
    let range = match header_str(req, "range").filter(|_| if_range_ok) {
        None => None,
        Some(v) => match parse_range(v, len) {
            RangeSpec::Ignore => None,
            RangeSpec::Unsatisfiable => {
                let r = text(416, "range not satisfiable\n")
                    .header("content-range", &format!("bytes */{len}"));
                return q.send_response(id, r, SendFlags::NONE).await;
            }
            RangeSpec::Range(a, b) => Some((a, b)),
        },
    };
    let (status, start, count) = match range {
        Some((a, b)) => (206, a, b - a + 1),
        None => (200, 0, len),
    };
    let mut r = Response::new(status);
    r.headers
        .insert(http::header::CONTENT_TYPE, e.content_type.clone());
    r.headers.insert(
        http::header::ACCEPT_RANGES,
        HeaderValue::from_static("bytes"),
    );
    if let Some(lm) = &e.last_modified {
        r.headers.insert(http::header::LAST_MODIFIED, lm.clone());
    }
    if let Some((a, b)) = range {
        r = r.header("content-range", &format!("bytes {a}-{b}/{len}"));
    }
    if req.method() == http::Method::HEAD {
        // No body, but the length it would have.
        r = r.header("content-length", &count.to_string());
        return q.send_response(id, r, SendFlags::NONE).await;
    }
    match &e.body {
        Body::Memory(b) => r.body = b.slice(start as usize..(start + count) as usize),
        Body::File(f) => {
            r.file = Some(FileChunk {
                file: f.clone(),
                offset: start,
                len: count,
            })
        }
    }
    q.send_response(id, r, SendFlags::NONE).await
}

/// Maps the cooked (decoded, dot-segment-free) path under the root. The
/// final path is canonicalised so a symlink cannot lead outside it.
fn resolve(root: &Path, path: &str) -> Target {
    let mut p = root.to_path_buf();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.contains('\0') {
            return Target::NotFound;
        }
        p.push(seg);
    }
    let Ok(real) = p.canonicalize() else {
        return Target::NotFound;
    };
    if !real.starts_with(root) {
        return Target::NotFound;
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => {
            if !path.ends_with('/') {
                return Target::AddSlash;
            }
            let index = real.join("index.html");
            match std::fs::metadata(&index) {
                Ok(m) if m.is_file() => Target::File(index),
                _ => Target::Listing(real),
            }
        }
        Ok(m) if m.is_file() => Target::File(real),
        _ => Target::NotFound,
    }
}

fn text(status: u16, body: &'static str) -> Response {
    Response::new(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
}

fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
}

fn truncate_secs(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// Absent, malformed or multi-range: serve the whole file (RFC 9110 §14.2 allows it).
    Ignore,
    Unsatisfiable,
    /// Inclusive first and last byte.
    Range(u64, u64),
}

/// One `bytes=` range against a file of `len` bytes.
pub(crate) fn parse_range(v: &str, len: u64) -> RangeSpec {
    let Some(spec) = v.strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeSpec::Ignore,
        (true, false) => match num(b) {
            None => RangeSpec::Ignore,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Range(len.saturating_sub(n), len - 1),
        },
        (false, _) => {
            let Some(first) = num(a) else {
                return RangeSpec::Ignore;
            };
            let last = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            let Some(last) = last else {
                return RangeSpec::Ignore;
            };
            if last < first {
                return RangeSpec::Ignore;
            }
            if first >= len {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Range(first, last.min(len - 1))
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "log" | "rs" | "toml" | "sh") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("tar") => "application/x-tar",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Percent-encodes a path for a URL (keeps unreserved characters and `/`).
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Location path that adds the slash to a directory. Built from the
/// non-empty segments only: the cooked path keeps empty ones (`//files`,
/// `/%2ffiles`), and `//files/` would be a protocol-relative URL that sends
/// the client to a host named `files`.
fn redirect_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(&encode_path(seg));
    }
    out.push('/');
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The listing page of `dir`. Blocking. Reading stops past [`MAX_LISTING`]
/// entries, so a cut-short page sorts the first ones the directory yields
/// (not the alphabetically first) and says it is incomplete.
fn listing(dir: &Path, url_path: &str) -> String {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .take(MAX_LISTING + 1)
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.file_type().is_ok_and(|t| t.is_dir()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let truncated = entries.len() > MAX_LISTING;
    entries.truncate(MAX_LISTING);
    entries.sort();
    let title = html_escape(url_path);
    let mut html = format!("<!doctype html>\n<meta charset=utf-8>\n<title>Index of {title}</title>\n<h1>Index of {title}</h1>\n<ul>\n");
    if url_path != "/" {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        html.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            encode_path(&name),
            html_escape(&name)
        ));
    }
    html.push_str("</ul>\n");
    if truncated {
        html.push_str(&format!(
            "<p>Listing truncated: only {MAX_LISTING} entries are shown.</p>\n"
        ));
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4", 10), RangeSpec::Range(0, 4));
        assert_eq!(parse_range("bytes=5-", 10), RangeSpec::Range(5, 9));
        assert_eq!(parse_range("bytes=-3", 10), RangeSpec::Range(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), RangeSpec::Range(0, 9));
        assert_eq!(parse_range("bytes=8-100", 10), RangeSpec::Range(8, 9));
        assert_eq!(parse_range("bytes=10-", 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 10), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=4-2", 10), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=a-2", 10), RangeSpec::Ignore);
    }

    #[test]
    fn path_encoding() {
        assert_eq!(encode_path("/a b/<x>.txt"), "/a%20b/%3Cx%3E.txt");
    }

    #[test]
    fn redirect_paths_have_one_leading_slash() {
        assert_eq!(redirect_path("/files"), "/files/");
        assert_eq!(redirect_path("//files"), "/files/");
        assert_eq!(redirect_path("///a//b c"), "/a/b%20c/");
        assert_eq!(redirect_path(""), "/");
        assert_eq!(redirect_path("//"), "/");
    }
}
