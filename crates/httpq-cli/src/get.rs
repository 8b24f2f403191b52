//! `httpq get`: one HTTP request from the command line, curl-style — the
//! body to stdout or atomically to a file, status notifications as JSON lines.
//!
//! The transfer is the WinInet shape the client library models: a session
//! (with the `--events` callback), one request handle, `send`, then
//! `RequestHandle::read` into one reused 256 KiB buffer until it returns 0.
//! That loop is the path benchmarked against curl, so it allocates nothing
//! per chunk and never flushes per chunk: stdout is a `BufWriter` over a
//! duplicate of fd 1 (bypassing std's line-buffered `Stdout`).
//!
//! With `-o FILE` the body goes to `.FILE.httpq-partial-<pid>` in FILE's
//! directory and is renamed onto FILE only once the body is complete and
//! flushed; on any error (or Ctrl-C) the temporary file is removed, so FILE
//! is either the whole body or what it was before (curl truncates FILE first;
//! we do not).
//!
//! Exit codes follow curl's where the two overlap: 2 bad usage, 3 bad URL,
//! 6 cannot resolve, 7 cannot connect, 8 malformed response head, 22 `--fail`
//! and status >= 400, 23 cannot write the output, 26 cannot read a `@file`,
//! 18 the body cut short (the server closed before its Content-Length or
//! its last chunk), 28 any timeout, 35 TLS, 47 too many redirects, 52 empty
//! reply, 55 send failure, 56 receive failure (a reset) or another protocol
//! violation in the body, 61 bad content encoding, 63 body
//! over `--max-filesize` or over a decoding limit (a decompression bomb),
//! 130 interrupted, 1 anything else.
//!
//! `-w/--write-out FORMAT` prints curl's transfer variables to stdout after
//! the body (also after a failure, as curl), expanded by `write_out`.
//!
//! Not as curl: `-s` silences the progress bar but not error messages
//! (curl's `-sS`). As curl: `-H 'Name:'` removes a header the client would
//! send by default; `-i -L` prints every response head on the way.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httpq_client::{
    ClientError, Config, Notification, Payload, Proxy, Query, RequestHandle, Session, TlsRoots,
    Violation,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::write_out::Transfer;

/// The body read buffer, reused for every read.
const READ_BUF: usize = 256 * 1024;
/// The output buffer in front of stdout or the file.
const WRITE_BUF: usize = 256 * 1024;
/// The request handle's context value (shown as `context` by `--events`).
const REQUEST_CONTEXT: u64 = 1;

/// Arguments of `httpq get`.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// The URL (`http://` is assumed when no scheme is given).
    pub url: String,
    /// Write the body to FILE (atomically: a temporary file renamed when
    /// complete; devices, pipes and symlinks are written through); `-` is stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The request method [GET; POST with -d; HEAD with -I].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Send DATA as a form body (POST, application/x-www-form-urlencoded); `@FILE`
    /// reads FILE (`@-` stdin) without its CR and LF; repeated: joined with `&`.
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        conflicts_with = "data_binary"
    )]
    pub data: Vec<String>,
    /// Like -d, but `@FILE` is sent byte for byte.
    #[arg(long = "data-binary", value_name = "DATA")]
    pub data_binary: Vec<String>,
    /// An extra request header, `'Name: value'` (`'Name;'` sends it empty); repeatable.
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// The User-Agent header.
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    pub user_agent: Option<String>,
    /// Follow redirects.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Redirects -L follows at most (default: 10); -1 for no limit.
    #[arg(long = "max-redirs", value_name = "N", allow_negative_numbers = true)]
    pub max_redirs: Option<i64>,
    /// Ask for a compressed response (gzip, deflate, br) and decode it.
    #[arg(long)]
    pub compressed: bool,
    /// Seconds to resolve and connect (TLS handshake included) (default: 60); 0: no limit.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub connect_timeout: Option<Duration>,
    /// Seconds each write of the request may wait (default: 30); 0: no limit.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub send_timeout: Option<Duration>,
    /// Seconds to wait for the response head, then for each body read (default: 30); 0: no limit.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub receive_timeout: Option<Duration>,
    /// Seconds the whole transfer may take [no limit]; 0: no limit.
    #[arg(short = 'm', long = "max-time", value_name = "S", value_parser = parse_seconds)]
    pub max_time: Option<Duration>,
    /// Print every status notification as one JSON line on stderr.
    #[arg(long)]
    pub events: bool,
    /// Send HEAD and print the response head.
    #[arg(short = 'I', long = "head")]
    pub head: bool,
    /// Print the response head before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// Exit 22, printing nothing, when the status is 400 or more.
    #[arg(short = 'f', long = "fail")]
    pub fail: bool,
    /// An HTTP proxy, `http://[user:pass@]host[:port]`.
    #[arg(short = 'x', long = "proxy", value_name = "URL")]
    pub proxy: Option<String>,
    /// No progress bar.
    #[arg(short = 's', long = "silent")]
    pub silent: bool,
    /// Download at most BYTES (as delivered, after --compressed decoding):
    /// a larger declared length fails before anything is written, a body
    /// that grows past it fails when it does; exit 63 either way, as curl.
    #[arg(long = "max-filesize", value_name = "BYTES")]
    pub max_filesize: Option<u64>,
    /// Trust only the CA certificates in FILE (PEM) for HTTPS, as curl's
    /// --cacert: e.g. the certificate `httpq serve --tls-self-signed` wrote.
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Accept any server certificate (no authentication; encryption only).
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// After the transfer, print FORMAT to stdout with curl's variables
    /// expanded: %{http_code} %{time_namelookup} %{time_connect}
    /// %{time_appconnect} %{time_starttransfer} %{time_total}
    /// %{size_download} %{speed_download} %{num_redirects}
    /// %{url_effective}, %{json} for all of them; \n \t \r and %%.
    /// `@FILE` reads FORMAT from FILE (`@-` stdin).
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    pub write_out: Option<String>,
}

/// Parses a non-negative number of seconds (fractions allowed).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a number of seconds"))
}

/// Why `httpq get` failed: the exit code and the message for stderr.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A client error, with curl's exit code; `in_body` tells a protocol
    /// violation in the body (56) from one in the head (8).
    fn client(e: ClientError, in_body: bool) -> Failure {
        let code = match &e {
            ClientError::InvalidUrl(_) => 3,
            ClientError::InvalidRequest(_) => 2,
            ClientError::CannotResolve { .. } => 6,
            ClientError::CannotConnect { .. } => 7,
            ClientError::Timeout(_) => 28,
            // curl: 60 when the peer's certificate is not trusted.
            ClientError::Tls(m) if m.contains("invalid peer certificate") => 60,
            ClientError::Tls(_) => 35,
            ClientError::TooManyRedirects(_) => 47,
            ClientError::Protocol(Violation::ClosedBeforeResponse) => 52,
            ClientError::Protocol(Violation::ShortBody { .. }) => 18,
            ClientError::Send(_) => 55,
            ClientError::Receive(_) | ClientError::Proxy(_) => 56,
            ClientError::Protocol(Violation::Decoding(_)) => 61,
            ClientError::Protocol(_) if in_body => 56,
            ClientError::Protocol(_) => 8,
            ClientError::BodyTooLarge | ClientError::LimitExceeded(_) => 63,
            ClientError::Cancelled | ClientError::InvalidState(_) => 1,
        };
        Failure::new(code, e.to_string())
    }

    fn write(e: io::Error) -> Failure {
        Failure::new(23, format!("cannot write the output: {e}"))
    }
}

/// Runs `httpq get` on a current-thread runtime (one transfer needs no more).
pub fn run(args: GetArgs) -> ExitCode {
    let rt = match crate::build_runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let write_out = match args.write_out.as_deref().map(write_out_format).transpose() {
        Ok(w) => w,
        Err(f) => {
            eprintln!("httpq: {}", f.message);
            return ExitCode::from(f.code);
        }
    };
    let mut transfer = Transfer::new(&with_scheme(&args.url));
    let result = rt.block_on(async {
        // Ctrl-C drops the transfer: the handle closes and the partial file goes.
        tokio::select! {
            r = get(&args, &mut transfer) => r,
            _ = tokio::signal::ctrl_c() => Err(Failure::new(130, "interrupted")),
        }
    });
    if let Some(format) = write_out {
        let text = crate::write_out::render(&format, &transfer, &mut |w| eprintln!("httpq: {w}"));
        // After the body (already flushed through its own descriptor).
        let mut stdout = io::stdout().lock();
        if let Err(e) = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            if result.is_ok() {
                eprintln!("httpq: cannot write the output: {e}");
                return ExitCode::from(23);
            }
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("httpq: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The `-w` format: the text itself, or a file's (`@FILE`, `@-` stdin) as curl reads it.
fn write_out_format(arg: &str) -> Result<String, Failure> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(arg.to_string());
    };
    let mut text = String::new();
    let read = if path == "-" {
        io::stdin().lock().read_to_string(&mut text)
    } else {
        File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::new(26, format!("cannot read {path}: {e}")))?;
    Ok(text)
}

/// The URL as given, with `http://` when it names no scheme.
fn with_scheme(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

async fn get(args: &GetArgs, transfer: &mut Transfer) -> Result<(), Failure> {
    let body = request_body(args)?;
    let headers = parse_headers(&args.headers)?;
    let mut config = config(args)?;
    if let Some(ua) = &args.user_agent {
        config.user_agent = ua.clone();
    }
    let session = Session::new(config).map_err(|e| Failure::client(e, false))?;

    let url = with_scheme(&args.url);
    let method = match (&args.method, args.head, body.is_some()) {
        (Some(m), _, _) => m.as_str(),
        (None, true, _) => "HEAD",
        (None, false, true) => "POST",
        (None, false, false) => "GET",
    };
    let mut req = session
        .request(method, &url, REQUEST_CONTEXT)
        .map_err(|e| Failure::client(e, false))?;
    for (k, v) in &headers {
        match v {
            Some(v) => req.add_header(k, v),
            // `-H 'Name:'`: no such header at all, default or not.
            None => req.remove_header(k),
        }
        .map_err(|e| Failure::client(e, false))?;
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
            .map_err(|e| Failure::client(e, false))?;
    }
    let sent = req.send(body).await;
    transfer.note(&req);
    sent.map_err(|e| Failure::client(e, false))?;

    let status = req.status();
    if args.fail && status >= 400 {
        return Err(Failure::new(
            22,
            format!("the requested URL returned error: {status}"),
        ));
    }

    if let (Some(max), Some(len)) = (args.max_filesize, req.content_length()) {
        if len > max && !args.head {
            return Err(too_big(max));
        }
    }
    let mut sink = Sink::open(args.output.as_deref())?;
    if args.head || args.include {
        // With -L, every head on the way, as curl prints them.
        for hop in req.redirect_heads() {
            sink.out.write_all(hop).map_err(Failure::write)?;
        }
        let head = req.query_info(Query::RawHeaders).unwrap_or_default();
        sink.out
            .write_all(head.as_bytes())
            .map_err(Failure::write)?;
    }
    if !args.head {
        let progress = progress_bar(args, &sink, req.content_length());
        let copied = copy_body(
            &mut req,
            &mut sink,
            progress.as_ref(),
            args.max_filesize,
            &mut transfer.size_download,
        )
        .await;
        transfer.note(&req);
        if let Some(pb) = &progress {
            match copied {
                Ok(()) => pb.finish(),
                Err(_) => pb.abandon(),
            }
        }
        copied?;
    }
    sink.commit()?;
    // Request first, then session: the request's HANDLE_CLOSING precedes the session's.
    drop(req);
    drop(session);
    Ok(())
}

/// `--max-filesize` was exceeded.
fn too_big(max: u64) -> Failure {
    Failure::new(63, format!("maximum file size exceeded ({max} bytes)"))
}

/// The hot loop: read into one buffer, write it out, count it.
async fn copy_body(
    req: &mut RequestHandle,
    sink: &mut Sink,
    progress: Option<&ProgressBar>,
    max: Option<u64>,
    copied: &mut u64,
) -> Result<(), Failure> {
    let mut buf = vec![0u8; READ_BUF];
    let mut left = max.unwrap_or(u64::MAX);
    loop {
        let n = req
            .read(&mut buf)
            .await
            .map_err(|e| Failure::client(e, true))?;
        if n == 0 {
            return Ok(());
        }
        left = match left.checked_sub(n as u64) {
            Some(l) => l,
            None => return Err(too_big(max.unwrap_or(0))),
        };
        sink.out.write_all(&buf[..n]).map_err(Failure::write)?;
        *copied += n as u64;
        if let Some(pb) = progress {
            pb.inc(n as u64);
        }
    }
}

/// The session settings the flags ask for.
fn config(args: &GetArgs) -> Result<Config, Failure> {
    let mut c = Config {
        follow_redirects: args.location,
        decompress: args.compressed,
        ..Config::default()
    };
    if let Some(n) = args.max_redirs {
        c.max_redirects = u32::try_from(n).unwrap_or(u32::MAX);
    }
    let limit = |d: Duration| (!d.is_zero()).then_some(d);
    let t = &mut c.timeouts;
    if let Some(d) = args.connect_timeout {
        // curl's connect timeout covers name resolution too.
        t.connect = limit(d);
        t.resolve = limit(d);
    }
    if let Some(d) = args.send_timeout {
        t.send = limit(d);
    }
    if let Some(d) = args.receive_timeout {
        t.receive = limit(d);
    }
    if let Some(d) = args.max_time {
        t.total = limit(d);
    }
    if let Some(path) = &args.cacert {
        let pem = std::fs::read(path).map_err(|e| Failure {
            // curl: "error setting certificate file" is 77.
            code: 77,
            message: format!("cannot read CA file {}: {e}", path.display()),
        })?;
        c.tls_roots = TlsRoots::only_pem(&pem).map_err(|e| Failure {
            code: 77,
            message: format!("{}: {e}", path.display()),
        })?;
    }
    c.tls_roots.insecure = args.insecure;
    if let Some(p) = &args.proxy {
        c.proxy = Some(Proxy::parse(p).map_err(|e| Failure::client(e, false))?);
    }
    if args.events {
        c.callback = Some(Arc::new(|n: &Notification| {
            let line = event_line(n);
            // One write per line, so lines never interleave.
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }));
    }
    Ok(c)
}

/// One `--events` line: number, name, handle, context, microseconds since
/// the session started, then the payload's fields (in that order).
fn event_line(n: &Notification) -> String {
    use std::fmt::Write as _;
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let mut line = format!(
        "{{\"n\":{},\"name\":{},\"handle\":{},\"context\":{},\"us\":{}",
        n.status.number(),
        text(n.status.name()),
        n.handle,
        n.context,
        n.elapsed.as_micros()
    );
    let _ = match &n.payload {
        Payload::None => Ok(()),
        Payload::Host(h) => write!(line, ",\"host\":{}", text(h)),
        Payload::Address(a) => write!(line, ",\"address\":\"{a}\""),
        Payload::Bytes(b) => write!(line, ",\"bytes\":{b}"),
        Payload::Url(u) => write!(line, ",\"url\":{}", text(u)),
        Payload::Status(s) => write!(line, ",\"status\":{s}"),
        Payload::Connection(c) => write!(line, ",\"connection\":{c}"),
        Payload::Parent(p) => write!(line, ",\"parent\":{p}"),
        Payload::Complete(Ok(())) => write!(line, ",\"ok\":true"),
        Payload::Complete(Err(e)) => {
            write!(line, ",\"ok\":false,\"error\":{}", text(&e.to_string()))
        }
    };
    line.push_str("}\n");
    line
}

/// `-H` values as (name, value); `None` is `'Name:'` (remove, where possible).
fn parse_headers(raw: &[String]) -> Result<Vec<(String, Option<String>)>, Failure> {
    raw.iter()
        .map(|h| {
            let (name, value) = match h.split_once(':') {
                Some((n, v)) => {
                    let v = v.trim();
                    (n, (!v.is_empty()).then(|| v.to_string()))
                }
                None => match h.strip_suffix(';') {
                    Some(n) => (n, Some(String::new())),
                    None => {
                        return Err(Failure::new(
                            2,
                            format!("bad header {h:?}: want 'Name: value'"),
                        ))
                    }
                },
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(Failure::new(2, format!("bad header {h:?}: no name")));
            }
            Ok((name.to_string(), value))
        })
        .collect()
}

/// The body `-d` / `--data-binary` ask for, if any.
fn request_body(args: &GetArgs) -> Result<Option<Bytes>, Failure> {
    let (parts, binary) = if !args.data.is_empty() {
        (&args.data, false)
    } else if !args.data_binary.is_empty() {
        (&args.data_binary, true)
    } else {
        return Ok(None);
    };
    let mut body = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        match part.strip_prefix('@') {
            Some(path) => {
                let mut bytes = Vec::new();
                let read = if path == "-" {
                    io::stdin().lock().read_to_end(&mut bytes)
                } else {
                    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
                };
                read.map_err(|e| Failure::new(26, format!("cannot read {path}: {e}")))?;
                if !binary {
                    bytes.retain(|&b| b != b'\r' && b != b'\n');
                }
                body.extend_from_slice(&bytes);
            }
            None => body.extend_from_slice(part.as_bytes()),
        }
    }
    Ok(Some(Bytes::from(body)))
}

/// A progress bar on stderr when a person watches it: stderr is a terminal,
/// no `-s`, no `--events` (they share stderr), and the body is not going to
/// a terminal stdout (as curl, which hides its meter then).
fn progress_bar(args: &GetArgs, sink: &Sink, length: Option<u64>) -> Option<ProgressBar> {
    if args.silent
        || args.events
        || !io::stderr().is_terminal()
        || (sink.temp.is_none() && io::stdout().is_terminal())
    {
        return None;
    }
    let pb = match length {
        Some(len) => ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes:>10}/{total_bytes} {binary_bytes_per_sec:>12} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{spinner} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    Some(pb)
}

/// Where the body goes: stdout, or a temporary file renamed onto the
/// destination by [`commit`](Sink::commit) and removed if never committed.
struct Sink {
    out: BufWriter<File>,
    /// (temporary file, destination) for `-o FILE`.
    temp: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn open(output: Option<&Path>) -> Result<Sink, Failure> {
        let Some(dest) = output.filter(|p| *p != Path::new("-")) else {
            // A duplicate of fd 1 as a File: no line buffering, no lock per write.
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(Failure::write)?;
            return Ok(Sink {
                out: BufWriter::with_capacity(WRITE_BUF, File::from(fd)),
                temp: None,
            });
        };
        // A device, pipe or symbolic link is written through, as curl does:
        // renaming a file onto it would replace it (`-o /dev/null` once
        // turned /dev/null into a regular file).
        let special = std::fs::symlink_metadata(dest)
            .is_ok_and(|m| m.file_type().is_symlink() || !m.file_type().is_file());
        if special {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(dest)
                .map_err(|e| Failure::new(23, format!("cannot open {}: {e}", dest.display())))?;
            return Ok(Sink {
                out: BufWriter::with_capacity(WRITE_BUF, file),
                temp: None,
            });
        }
        let name = dest
            .file_name()
            .ok_or_else(|| Failure::new(23, format!("{}: not a file name", dest.display())))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".httpq-partial-{}", std::process::id()));
        let temp = dir.join(temp_name);
        let file = File::create(&temp)
            .map_err(|e| Failure::new(23, format!("cannot create {}: {e}", temp.display())))?;
        Ok(Sink {
            out: BufWriter::with_capacity(WRITE_BUF, file),
            temp: Some((temp, dest.to_path_buf())),
        })
    }

    /// Flushes, then (for a file) renames the temporary file onto the destination.
    fn commit(mut self) -> Result<(), Failure> {
        self.out.flush().map_err(Failure::write)?;
        if let Some((temp, dest)) = self.temp.take() {
            if let Err(e) = std::fs::rename(&temp, &dest) {
                let _ = std::fs::remove_file(&temp);
                return Err(Failure::new(
                    23,
                    format!("cannot rename onto {}: {e}", dest.display()),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some((temp, _)) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
    }
}
