//! The harness of the `httpq serve` end-to-end tests: a temporary site,
//! the real binary started on a free port, and a raw client connection
//! that reads responses with the protocol core.
#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use httpq_proto::{BodyDecoder, Limits, ResponseParser};

/// Generous bound for anything that should happen promptly.
pub const LIMIT: Duration = Duration::from_secs(20);

pub const SECRET: &str = "TOP SECRET: outside the served root";
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake";

// ---------------------------------------------------------------- fixtures

/// A temporary site, removed on drop: `secret.txt` and `outside/` beside
/// `root/`, which is what gets served.
pub struct Site {
    dir: raw::TempDir,
}

impl Site {
    pub fn new() -> Site {
        let dir = raw::TempDir::new();
        let base = dir.path().to_path_buf();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("site")).unwrap();
        std::fs::create_dir_all(root.join("files/sub dir")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        let write = |p: &str, b: &[u8]| std::fs::write(base.join(p), b).unwrap();
        write("secret.txt", SECRET.as_bytes());
        write("outside/secret2.txt", SECRET.as_bytes());
        write("root/page.html", b"<!doctype html><p>page</p>");
        write("root/style.css", b"p { color: red }");
        write("root/notes.txt", b"0123456789abcdef");
        write("root/image.png", PNG);
        write("root/blob.qqq", b"unknown bytes");
        write("root/site/index.html", b"<p>the index</p>");
        write("root/files/a.txt", b"a");
        write("root/files/b&c.txt", b"b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(base.join("secret.txt"), root.join("link-out")).unwrap();
            symlink("../secret.txt", root.join("rel-link-out")).unwrap();
            symlink(base.join("outside"), root.join("dir-out")).unwrap();
            symlink("notes.txt", root.join("link-in.txt")).unwrap();
        }
        Site { dir }
    }

    /// The directory that holds `root/` and what lies outside it.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

/// A port free on `ip` (and, for a wildcard, on the loopback of its family).
pub fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this machine can listen on the IPv6 loopback.
pub fn have_ipv6_loopback() -> Result<(), std::io::Error> {
    std::net::TcpListener::bind("[::1]:0").map(drop)
}

/// Lines of a child's output stream, as they come.
pub fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `httpq serve`; killed on drop, so a failing test never leaves
/// a server behind.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Where the test connects (the loopback for a wildcard).
    pub addr: SocketAddr,
    /// The "listening on" line.
    pub listening: String,
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `httpq serve ARGS --listen 127.0.0.1:PORT` and waits for its
    /// "listening on" line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), args)
    }

    /// Starts `httpq serve ARGS --listen IP:PORT` and waits for its
    /// "listening on" line.
    pub fn start_on(ip: IpAddr, args: &[&str]) -> Server {
        let port = free_port(ip);
        let listen = SocketAddr::new(ip, port).to_string();
        let addr = match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => (Ipv4Addr::LOCALHOST, port).into(),
            IpAddr::V6(v6) if v6.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, port).into(),
            _ => SocketAddr::new(ip, port),
        };
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--listen", &listen]);
        Server::spawn(&all, addr, &listen)
    }

    /// Starts `httpq serve ARGS --threads 2`, to be reached at `addr`, and
    /// waits for a "listening on" line that names `expect`.
    pub fn spawn(args: &[&str], addr: SocketAddr, expect: &str) -> Server {
        let (port, listen) = (addr.port(), expect.to_string());
        let mut child = Command::new(env!("CARGO_BIN_EXE_httpq"))
            .arg("serve")
            .args(args)
            .args(["--threads", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn httpq");
        let rx = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let mut server = Server {
            child,
            port,
            addr,
            listening: String::new(),
            stderr,
        };
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => {
                    assert!(line.contains(&listen), "{line}");
                    server.listening = line;
                    return server;
                }
                Ok(_) => continue,
                Err(_) => {
                    let _ = server.child.kill();
                    let _ = server.child.wait();
                    // The process is gone, so its stderr ends: read it all.
                    let mut err = Vec::new();
                    while let Ok(line) = server.stderr.recv_timeout(LIMIT) {
                        err.push(line);
                    }
                    panic!("httpq serve did not become ready; stderr: {err:?}");
                }
            }
        }
    }

    pub fn serve(dir: &Path) -> Server {
        Server::start(&[dir.to_str().unwrap()])
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a fresh connection.
    pub fn ask(&self, request: &str) -> Resp {
        let method = request.split(' ').next().unwrap().to_string();
        let mut c = self.connect();
        c.send(request.as_bytes());
        c.response(&method).expect("a response")
    }

    pub fn get(&self, target: &str) -> Resp {
        self.ask(&format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    }

    pub fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        let r = self.get("/_httpq/stats");
        assert_eq!(r.status, 200);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        match serde_json::from_slice(&r.body).expect("stats are JSON") {
            serde_json::Value::Object(m) => m,
            other => panic!("stats are not an object: {other}"),
        }
    }

    pub fn stat(&self, key: &str) -> u64 {
        self.stats()[key].as_u64().unwrap()
    }

    /// Waits until a request sent since `before` (a `requests_received`
    /// reading) has been received: every stats call counts itself, so one
    /// more than the calls made means the other request is in.
    pub fn wait_received(&self, before: u64) {
        let deadline = Instant::now() + LIMIT;
        let mut calls = 0;
        loop {
            calls += 1;
            if self.stat("requests_received") > before + calls {
                return;
            }
            assert!(Instant::now() < deadline, "the request never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls the stats until `done` holds, for at most `limit`; no event
    /// reaches the test from inside the server. The last reading.
    pub fn wait_stats(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&serde_json::Map<String, serde_json::Value>) -> bool,
    ) -> serde_json::Map<String, serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.stats();
            if done(&now) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Waits (bounded) for the process to exit.
    pub fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "httpq did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sigint(pid: &str) {
    let ok = Command::new("kill")
        .args(["-INT", pid])
        .status()
        .expect("run kill");
    assert!(ok.success());
}

// ------------------------------------------------------------------ client

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client connection that reads responses with the protocol core.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// More bytes; false at the end of the stream. A read timeout fails the test.
    pub fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no response within {LIMIT:?}")
            }
            Err(_) => false,
        }
    }

    /// The next response to a request with `method`; `None` if the
    /// connection ended first.
    pub fn response(&mut self, method: &str) -> Option<Resp> {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut parser = ResponseParser::new(Limits::default());
        let head = loop {
            match parser.parse(&mut self.buf, &method).unwrap() {
                Some(h) if h.is_informational() => continue,
                Some(h) => break h,
                None => {
                    if !self.fill() {
                        return None;
                    }
                }
            }
        };
        let mut dec = BodyDecoder::new(head.body(), &Limits::default());
        let mut body = Vec::new();
        while !dec.is_done() {
            if self.buf.is_empty() && !self.fill() {
                dec.finish_at_eof().unwrap();
                break;
            }
            let d = dec.decode(&self.buf).unwrap();
            body.extend_from_slice(&self.buf[d.data.clone()]);
            let _ = self.buf.split_to(d.consumed);
        }
        Some(Resp {
            status: head.status(),
            headers: head.header_map(),
            body,
        })
    }
}

/// What a process holds: resident memory (KiB) and open descriptors.
pub fn footprint(pid: &str) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}
