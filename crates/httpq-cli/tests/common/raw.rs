//! Fixtures of the `httpq get` tests: temporary directories, raw TCP
//! servers that misbehave on purpose, and a bounded run of `httpq get`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::LIMIT;

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "httpq-get-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The names in the directory, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that do not compress (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A raw TCP server: each accepted connection goes to `handler` on its own
/// thread. Dropping it stops accepting (and joins the accept thread).
pub struct RawServer {
    pub port: u16,
    pub stop: Arc<AtomicBool>,
    pub accept: Option<JoinHandle<()>>,
}

impl RawServer {
    pub fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let accept = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = handler.clone();
                    std::thread::spawn(move || handler(stream));
                }
            })
        };
        RawServer {
            port,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// One request read off a raw connection.
pub struct RawRequest {
    /// Request line and header lines, CRLFs included.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    pub fn path(&self) -> &str {
        self.request_line().split(' ').nth(1).unwrap_or("")
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// Reads one request (head, and a Content-Length body); `None` at EOF.
pub fn read_request(r: &mut BufReader<TcpStream>) -> Option<RawRequest> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut req = RawRequest {
        head,
        body: Vec::new(),
    };
    let len = req
        .header_values("content-length")
        .first()
        .map_or(0, |v| v.parse::<usize>().unwrap());
    req.body = vec![0; len];
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

/// Serves requests on one connection with `respond` until the client closes.
pub fn keep_alive(stream: TcpStream, respond: impl Fn(&RawRequest) -> Vec<u8>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r) {
        if w.write_all(&respond(&req)).is_err() {
            return;
        }
    }
}

pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What a finished `httpq get` did.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `httpq get ARGS` (stdin closed) to its end. The end is seen as EOF
/// on both pipes; past [`LIMIT`] the process is killed and the test fails.
pub fn httpq_get(args: &[&str]) -> Out {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    httpq(&all, &[])
}

/// Runs `httpq ARGS` as [`httpq_get`] does, with `env` added to an
/// environment that has no `RUST_LOG` of its own (so the caller's shell
/// cannot add log lines to what a test reads).
pub fn httpq(args: &[&str], env: &[(&str, &str)]) -> Out {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpq"))
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn httpq get");
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        let _ = tx.send((true, v));
    });
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        let _ = tx2.send((false, v));
    });
    let (mut out, mut err) = (None, None);
    let deadline = started + LIMIT;
    while out.is_none() || err.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, v)) => out = Some(v),
            Ok((false, v)) => err = Some(v),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("httpq {args:?} did not finish within {LIMIT:?}");
            }
        }
    }
    let status = child.wait().unwrap();
    Out {
        code: status.code(),
        stdout: out.unwrap(),
        stderr: String::from_utf8_lossy(&err.unwrap()).into_owned(),
        elapsed: started.elapsed(),
    }
}

pub fn assert_code(out: &Out, code: i32) {
    assert_eq!(
        out.code,
        Some(code),
        "exit code; stderr: {}; stdout: {:?}",
        out.stderr,
        String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(300)])
    );
}
