//! Static files for `httpq serve`: GET and HEAD of files under one root,
//! with Content-Type, Last-Modified / If-Modified-Since, single byte ranges,
//! index.html or a listing for directories — and no way out of the root.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use httpq_server::{Request, RequestQueue, Response, SendFlags, ServerError};

/// Bytes read from disk per body chunk.
const CHUNK: usize = 256 * 1024;

/// Entries shown in a directory listing at most: the page is built in memory,
/// and a directory of millions of files must not make it unbounded.
const MAX_LISTING: usize = 10_000;

pub struct StaticSite {
    /// Shared with the blocking-pool closures that look paths up.
    root: Arc<Path>,
}

/// What a path resolved to.
enum Target {
    /// A file, or a directory's index.html.
    File(PathBuf, std::fs::Metadata),
    /// A directory without an index: its listing page.
    Listing(String),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
}

impl StaticSite {
    pub fn new(root: &Path) -> std::io::Result<StaticSite> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(StaticSite { root: root.into() })
    }

    pub async fn handle(&self, q: &RequestQueue, req: Request) -> Result<(), ServerError> {
        let id = req.id();
        let method = req.method();
        if method != http::Method::GET && method != http::Method::HEAD {
            let r = text(405, "method not allowed\n").header("allow", "GET, HEAD");
            return q.send_response(id, r, SendFlags::NONE).await;
        }
        let path = req.url().path.clone();
        // Filesystem calls can block for long (network mounts, a cold disk,
        // a huge directory): on the blocking pool, not a runtime worker.
        let root = self.root.clone();
        let looked_up = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || resolve(&root, &path)).await
        };
        let Ok(target) = looked_up else {
            return q
                .send_response(id, text(500, "lookup failed\n"), SendFlags::NONE)
                .await;
        };
        match target {
            Target::NotFound => {
                q.send_response(id, text(404, "not found\n"), SendFlags::NONE)
                    .await
            }
            Target::AddSlash => {
                let location = format!("{}{}", redirect_path(&path), req.url().query);
                let r = text(301, "moved\n").header("location", &location);
                q.send_response(id, r, SendFlags::NONE).await
            }
            Target::Listing(html) => {
                let r = Response::new(200)
                    .header("content-type", "text/html; charset=utf-8")
                    .body(html);
                q.send_response(id, r, SendFlags::NONE).await
            }
            Target::File(file, meta) => self.file(q, &req, file, meta).await,
        }
    }

    async fn file(
        &self,
        q: &RequestQueue,
        req: &Request,
        path: PathBuf,
        meta: std::fs::Metadata,
    ) -> Result<(), ServerError> {
        let id = req.id();
        let len = meta.len();
        let modified = meta.modified().ok();
        let last_modified = modified.map(httpdate::fmt_http_date);
        if let (Some(m), Some(since)) = (
            modified,
            header_str(req, "if-modified-since").and_then(|v| httpdate::parse_http_date(v).ok()),
        ) {
            if truncate_secs(m) <= since {
                let mut r = Response::new(304);
                if let Some(lm) = &last_modified {
                    r = r.header("last-modified", lm);
                }
                return q.send_response(id, r, SendFlags::NONE).await;
            }
        }
        let if_range_ok = match header_str(req, "if-range") {
            None => true,
            Some(v) => last_modified.as_deref() == Some(v),
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
        let mut r = Response::new(status)
            .header("content-type", content_type(&path))
            .header("accept-ranges", "bytes")
            .header("content-length", &count.to_string());
        if let Some(lm) = &last_modified {
            r = r.header("last-modified", lm);
        }
        if let Some((a, b)) = range {
            r = r.header("content-range", &format!("bytes {a}-{b}/{len}"));
        }
        if req.method() == http::Method::HEAD || count == 0 {
            return q.send_response(id, r, SendFlags::NONE).await;
        }
        // Plain std reads on the blocking pool, straight into the buffer that
        // is sent (tokio::fs would copy each chunk once more).
        let opened = tokio::task::spawn_blocking(move || {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(&path).map_err(|_| (404, "not found\n"))?;
            if start > 0 {
                f.seek(SeekFrom::Start(start))
                    .map_err(|_| (500, "seek failed\n"))?;
            }
            Ok(f)
        })
        .await
        .unwrap_or(Err((500, "read failed\n")));
        let mut file = match opened {
            Ok(f) => f,
            Err((status, why)) => {
                return q
                    .send_response(id, text(status, why), SendFlags::NONE)
                    .await
            }
        };
        q.send_response(id, r, SendFlags::MORE_DATA).await?;
        let mut left = count;
        while left > 0 {
            let want = (left as usize).min(CHUNK);
            let read = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut buf = vec![0u8; want];
                let r = file.read_exact(&mut buf);
                (file, r.map(|()| buf))
            })
            .await;
            let (f, buf) = match read {
                Ok((f, Ok(buf))) => (f, buf),
                _ => {
                    // The file shrank under us: the promised length cannot be
                    // met, so the only honest thing left is to cut the connection.
                    q.cancel_request(id)?;
                    return Ok(());
                }
            };
            file = f;
            left -= want as u64;
            let flags = if left == 0 {
                SendFlags::NONE
            } else {
                SendFlags::MORE_DATA
            };
            q.send_body(id, Bytes::from(buf), flags).await?;
        }
        Ok(())
    }
}

/// Maps the cooked (decoded, dot-segment-free) path under the root. The
/// final path is canonicalised so a symlink cannot lead outside it. Blocking.
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
                Ok(m) if m.is_file() => Target::File(index, m),
                _ => Target::Listing(listing(&real, path)),
            }
        }
        Ok(m) if m.is_file() => Target::File(real, m),
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
