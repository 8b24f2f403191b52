//! Static files for `httpq serve`: GET and HEAD of files under one root,
//! with Content-Type, Last-Modified / If-Modified-Since, single byte ranges,
//! index.html or a listing for directories — and no way out of the root.
//!
//! Files are served on the worker that received the request, in one call:
//! small ones from memory, large ones straight from the file (`sendfile`).
//! Each worker keeps a file cache, like nginx's `open_file_cache`: a path
//! resolved once maps to its file (identity, size, mtime, type, and for
//! small files their bytes), checked on every request and resolved anew
//! at least once a second. The check is inotify's word that nothing
//! under the file's directories changed (`file_watch`: no path walk),
//! else one `stat`. It holds no descriptors: a large
//! file is opened per request and must still be the file the cache knows.
//! Every open goes through `openat2` beneath the root with no symlinks
//! (the path was resolved to one without), so nothing swapped in between
//! can lead outside. Directory listings are built on the blocking pool.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::HeaderValue;
use httpq_server::{FileChunk, Request, RequestQueue, Response, SendFlags, ServerError};

use crate::file_watch::{self, FileWatch};

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
    /// The root, opened: files are opened beneath it.
    root_dir: File,
    /// Cache entries per worker (0: no cache, every request opens its file).
    cache_entries: usize,
    /// What changed under the root (no watch: a `stat` per cached request).
    watch: Option<Arc<FileWatch>>,
}

/// A file as served: where it is, what it is, and for small files their bytes.
struct Entry {
    real: PathBuf,
    resolved: Instant,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: SystemTime,
    /// The bytes of a small file; `None`: opened per request.
    content: Option<Bytes>,
    /// The watch generation this entry was last known good at
    /// ([`file_watch::NEVER`]: not watched).
    checked: AtomicU64,
    content_type: HeaderValue,
    last_modified: Option<HeaderValue>,
}

/// Where a response's body comes from.
enum Body {
    Memory(Bytes),
    File(Arc<File>),
}

impl Entry {
    /// `m` describes the file this entry does.
    fn same(&self, m: &std::fs::Metadata) -> bool {
        m.dev() == self.dev
            && m.ino() == self.ino
            && m.len() == self.len
            && m.modified().ok() == Some(self.mtime)
    }

    /// The file at `real` is still the one this entry describes: nothing
    /// under its watched directories changed since it was last known good,
    /// or a `stat` says so.
    fn fresh(&self, now: Instant, watch: Option<&FileWatch>) -> bool {
        if now.duration_since(self.resolved) > REVALIDATE {
            return false;
        }
        // Read before the stat: a change after it moves the generation on.
        let generation = watch.map(FileWatch::generation);
        if generation.is_some_and(|g| g == self.checked.load(Ordering::Acquire)) {
            return true;
        }
        let same = std::fs::metadata(&self.real).is_ok_and(|m| self.same(&m));
        if let (true, Some(g)) = (same, generation) {
            if self.checked.load(Ordering::Acquire) != file_watch::NEVER {
                self.checked.store(g, Ordering::Release);
            }
        }
        same
    }
}

/// One worker's open files, by cooked path. Owned by the worker's
/// consumer loop: no lock, no sharing.
pub struct FileCache {
    map: HashMap<Box<str>, Arc<Entry>>,
    bytes: usize,
    max: usize,
    watch: Option<Arc<FileWatch>>,
}

impl FileCache {
    fn get(&mut self, path: &str, now: Instant) -> Option<Arc<Entry>> {
        let e = self.map.get(path)?;
        if e.fresh(now, self.watch.as_deref()) {
            return Some(e.clone());
        }
        let gone = self.map.remove(path)?;
        self.bytes -= gone.memory();
        None
    }

    fn forget(&mut self, path: &str) {
        if let Some(gone) = self.map.remove(path) {
            self.bytes -= gone.memory();
        }
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
        self.content.as_ref().map_or(0, Bytes::len)
    }
}

/// What opening a resolved file found.
enum Opened {
    File(Box<Entry>, Body),
    Gone,
    /// It changed while being read: look again.
    Changed,
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
        let root_dir = File::from(rustix::fs::open(
            &root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?);
        Ok(StaticSite {
            root: root.into(),
            root_dir,
            cache_entries,
            watch: if cache_entries > 0 {
                FileWatch::new().map(Arc::new)
            } else {
                None
            },
        })
    }

    /// A cache for one worker.
    pub fn cache(&self) -> FileCache {
        FileCache {
            map: HashMap::new(),
            bytes: 0,
            max: self.cache_entries,
            watch: self.watch.clone(),
        }
    }

    /// Answers `req` on the calling worker, in one call. Only a directory
    /// listing is left to a task (on the blocking pool).
    pub async fn handle(
        &self,
        q: &RequestQueue,
        req: Request,
        cache: &mut FileCache,
        strip: usize,
    ) -> Result<(), ServerError> {
        let id = req.id();
        let method = req.method();
        if method != http::Method::GET && method != http::Method::HEAD {
            let r = text(405, "method not allowed\n").header("allow", "GET, HEAD");
            return q.send_response(id, r, SendFlags::NONE).await;
        }
        let now = Instant::now();
        // Under a prefix `/a/`, `/a/x` is the root's `/x` (`strip` is the
        // prefix's length without its last slash).
        let full = req.path();
        let path = full.get(strip..).unwrap_or("");
        // A file that changes while it is read is looked at again; one
        // that keeps changing gets 503.
        for _ in 0..3 {
            if let Some(e) = cache.get(path, now) {
                match self.body_of(&e) {
                    Some(body) => return serve(q, &req, &e, body).await,
                    // Not the file the cache knows any more.
                    None => cache.forget(path),
                }
            }
            let real = match resolve(&self.root, path) {
                Target::File(real) => real,
                Target::NotFound => {
                    return q
                        .send_response(id, text(404, "not found\n"), SendFlags::NONE)
                        .await
                }
                Target::AddSlash => {
                    let location = format!("{}{}", redirect_path(full), req.url().query);
                    let r = text(301, "moved\n").header("location", &location);
                    return q.send_response(id, r, SendFlags::NONE).await;
                }
                Target::Listing(dir) => {
                    // Reading a directory can take long (millions of
                    // entries, a slow disk): on the blocking pool, answered
                    // from a task.
                    let (q, url_path) = (q.clone(), full.to_string());
                    tokio::spawn(async move {
                        let page =
                            tokio::task::spawn_blocking(move || listing(&dir, &url_path)).await;
                        let r = match page {
                            Ok(html) => Response::new(200)
                                .header("content-type", "text/html; charset=utf-8")
                                .body(html),
                            Err(_) => text(500, "listing failed\n"),
                        };
                        let _ = q.send_response(req.id(), r, SendFlags::NONE).await;
                    });
                    return Ok(());
                }
            };
            // Watched before it is opened: a change after the open moves
            // the generation past the one the entry is stamped with.
            let checked = (self.watch.as_ref())
                .and_then(|w| w.watch(&self.root, &real))
                .unwrap_or(file_watch::NEVER);
            match self.open(real, now, checked) {
                Opened::File(e, body) => {
                    let e = Arc::new(*e);
                    cache.put(path, e.clone());
                    return serve(q, &req, &e, body).await;
                }
                Opened::Gone => {
                    return q
                        .send_response(id, text(404, "not found\n"), SendFlags::NONE)
                        .await
                }
                Opened::Changed => continue,
            }
        }
        let r = text(503, "the file keeps changing\n").header("retry-after", "1");
        q.send_response(id, r, SendFlags::NONE).await
    }

    /// Opens `real` (a path under the root with no symlinks) beneath the
    /// root, refusing symlinks: a directory swapped for a symlink since the
    /// path was resolved cannot lead outside.
    fn open_beneath(&self, real: &Path) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let rel = real
            .strip_prefix(&self.root)
            .map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
        match rustix::fs::openat2(
            &self.root_dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        ) {
            Ok(fd) => Ok(File::from(fd)),
            // Kernels before 5.6 have no openat2: the canonical path, as is.
            Err(rustix::io::Errno::NOSYS) => File::open(real),
            Err(e) => Err(e.into()),
        }
    }

    /// The body of a cached file: its bytes, or the file opened anew if it
    /// is still the one the entry describes.
    fn body_of(&self, e: &Entry) -> Option<Body> {
        if let Some(b) = &e.content {
            return Some(Body::Memory(b.clone()));
        }
        let file = self.open_beneath(&e.real).ok()?;
        let m = file.metadata().ok()?;
        e.same(&m).then(|| Body::File(Arc::new(file)))
    }

    /// Opens the file at `real` and describes it; small files are read whole.
    fn open(&self, real: PathBuf, now: Instant, checked: u64) -> Opened {
        use std::io::Read;
        let Ok(mut file) = self.open_beneath(&real) else {
            return Opened::Gone;
        };
        let Ok(meta) = file.metadata() else {
            return Opened::Gone;
        };
        let (true, Ok(mtime)) = (meta.is_file(), meta.modified()) else {
            return Opened::Gone;
        };
        let len = meta.len();
        let (content, body) = if len <= IN_MEMORY {
            let mut buf = Vec::with_capacity(len as usize);
            if file.read_to_end(&mut buf).is_err() || buf.len() as u64 != len {
                return Opened::Changed;
            }
            let b = Bytes::from(buf);
            (Some(b.clone()), Body::Memory(b))
        } else {
            (None, Body::File(Arc::new(file)))
        };
        let e = Entry {
            content_type: HeaderValue::from_static(content_type(&real)),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(mtime)).ok(),
            real,
            resolved: now,
            dev: meta.dev(),
            ino: meta.ino(),
            len,
            mtime,
            content,
            checked: AtomicU64::new(checked),
        };
        Opened::File(Box::new(e), body)
    }
}

/// The response for file `e`: conditional, ranged, or whole; HEAD without body.
async fn serve(q: &RequestQueue, req: &Request, e: &Entry, body: Body) -> Result<(), ServerError> {
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
    match body {
        Body::Memory(b) => r.body = b.slice(start as usize..(start + count) as usize),
        Body::File(file) => {
            r.file = Some(FileChunk {
                file,
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
            // The index is held to the root like any file (a symlink out
            // of it is no index).
            match real.join("index.html").canonicalize() {
                Ok(index) if index.starts_with(root) && index.is_file() => Target::File(index),
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
