//! Builds the C programs in `tests/c/` with the contract's command line
//! (`cc -fshort-wchar -I include prog.c -L <target> -lhttpq_capi -lpthread
//! -ldl -lm`) and runs them; where a program is a server, the test drives
//! it over TCP and checks what a client sees.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put libhttpq_capi.so for this test build: next to the test
/// binary in target/<profile>/deps (`cargo test` does not copy it up to
/// target/<profile>, where `cargo build` puts it).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn have_cc() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compiles `tests/c/NAME.c` once per test process (tests run in parallel,
/// and running a binary while another test rewrites it fails with ETXTBSY);
/// None (with the reason printed) without a C compiler.
fn build(name: &str) -> Option<PathBuf> {
    static BUILT: std::sync::Mutex<Vec<(String, Option<PathBuf>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(n, _)| n == name) {
        return exe.clone();
    }
    let exe = compile(name);
    built.push((name.to_string(), exe.clone()));
    exe
}

fn compile(name: &str) -> Option<PathBuf> {
    if !have_cc() {
        println!("SKIPPED {name}: no C compiler (`cc`) on this machine");
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    assert!(
        lib.join("libhttpq_capi.so").exists(),
        "{} missing: cargo builds the cdylib with the tests",
        lib.join("libhttpq_capi.so").display()
    );
    windows_c_check(name);
    let out = std::env::temp_dir().join(format!("httpq-capi-{name}-{}", std::process::id()));
    let o = Command::new("cc")
        .arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-fshort-wchar")
        .arg("-I")
        .arg(dir.join("include"))
        .arg(dir.join("tests/c").join(format!("{name}.c")))
        .arg("-L")
        .arg(&lib)
        .args(["-lhttpq_capi", "-lpthread", "-ldl", "-lm"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cc {name}.c failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(out)
}

/// Keeps the test programs honest Windows C: they must also compile
/// against mingw-w64's own windows.h and http.h (Debian's
/// gcc-mingw-w64-x86-64), not only against ours.
fn windows_c_check(name: &str) {
    const MINGW: &str = "x86_64-w64-mingw32-gcc";
    if Command::new(MINGW).arg("--version").output().is_err() {
        println!("SKIPPED the Windows C check of {name}.c: {MINGW} is not installed (apt-get install gcc-mingw-w64-x86-64)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let o = Command::new(MINGW)
        .args(["-std=c11", "-fsyntax-only", "-Wall", "-Werror"])
        .arg(dir.join(format!("{name}.c")))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name}.c is not valid Windows C (mingw-w64):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A program running in the background, its stdout read line by line.
struct Prog {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    seen: String,
}

impl Prog {
    fn start(exe: &Path, args: &[&str]) -> Prog {
        // cargo test's own LD_LIBRARY_PATH names target/<profile>, which may
        // hold an older libhttpq_capi.so from `cargo build`: this build's first.
        let mut child = Command::new(exe)
            .args(args)
            .env("LD_LIBRARY_PATH", lib_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Prog {
            child,
            out,
            seen: String::new(),
        }
    }

    /// The next line the program prints (panics at EOF, with what it said).
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "program ended; it said:\n{}", self.seen);
        self.seen.push_str(&l);
        assert!(!l.starts_with("FAILED"), "{}", self.seen);
        l.trim_end().to_string()
    }

    /// Lets a program waiting on its stdin go on.
    fn go(&mut self) {
        self.child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    }

    /// Waits for a line starting with `prefix`, returning it.
    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line();
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    fn finish(mut self) {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        self.seen.push_str(&rest);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit {status}; it said:\n{}", self.seen);
    }
}

impl Drop for Prog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The test failed: what the program said tells why.
            let mut rest = String::new();
            let _ = self.out.read_to_string(&mut rest);
            eprintln!("--- the C program said:\n{}{rest}---", self.seen);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `raw` and reads one response: (status line, head, body).
fn exchange(s: &mut TcpStream, raw: &str) -> (String, String, Vec<u8>) {
    s.write_all(raw.as_bytes()).unwrap();
    read_response(s)
}

fn read_response(s: &mut TcpStream) -> (String, String, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "closed in the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head.lines().next().unwrap().to_string();
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(cl) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
    {
        body.resize(cl.trim().parse().unwrap(), 0);
        s.read_exact(&mut body).unwrap();
    } else if lower.contains("transfer-encoding: chunked") {
        let mut r = BufReader::new(s.try_clone().unwrap());
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        s.read_to_end(&mut body).unwrap();
    }
    (status, head, body)
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect {port}: {e}"),
        }
    }
}

#[test]
fn win32_plumbing_works_without_the_network() {
    let Some(exe) = build("win32_basics") else {
        return;
    };
    let mut p = Prog::start(&exe, &[]);
    assert_eq!(p.expect("OK"), "OK win32_basics");
    p.finish();
}

#[test]
fn an_http_server_api_v2_program_serves_as_on_windows() {
    let Some(exe) = build("httpapi_server") else {
        return;
    };
    let port = free_port();
    let mut p = Prog::start(&exe, &[&port.to_string()]);

    p.expect("READY more_data");
    let mut s = connect(port);
    let (status, head, body) = exchange(
        &mut s,
        &format!(
            "GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: c-test\r\nX-Test: yes\r\n\r\n"
        ),
    );
    assert_eq!(
        p.expect("URL"),
        format!("URL http://127.0.0.1:{port}/hello?x=1")
    );
    assert_eq!(status, "HTTP/1.1 201 Made");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nretry-after: 5\r\n"), "{head}");
    assert!(lower.contains("\r\nx-reply: ok\r\n"), "{head}");
    assert!(lower.contains("\r\ndate: "), "{head}");
    assert!(lower.contains("\r\ncontent-length: 12\r\n"), "{head}");
    assert_eq!(body, b"hello from C");

    p.expect("READY bodies");
    let (status, _, body) = exchange(
        &mut s,
        "POST /copy HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
    );
    assert_eq!(
        (status.as_str(), body.as_slice()),
        ("HTTP/1.1 200 OK", &b"copied 10"[..])
    );
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sum: u64 = big.iter().map(|&b| u64::from(b)).sum();
    s.write_all(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    s.write_all(&big).unwrap();
    let (_, _, body) = read_response(&mut s);
    assert_eq!(String::from_utf8(body).unwrap(), format!("100000 {sum}"));
    // The same body again, flushed: the answer comes, and the connection
    // goes on (the server drains what the application dropped).
    s.write_all(b"POST /flush HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    s.write_all(&big).unwrap();
    assert_eq!(read_response(&mut s).2, b"flushed");

    p.expect("READY file");
    let (status, head, body) = exchange(&mut s, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 2005"),
        "{head}"
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut want = b"HEAD:".to_vec();
    want.extend_from_slice(&data[10..1010]);
    want.extend_from_slice(&data[99_000..]);
    assert_eq!(body, want);

    p.expect("READY more");
    let (status, head, body) = exchange(&mut s, "GET /more HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, b"one two three");
    // DISCONNECT: the server closes after the response.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    p.expect("READY routing");
    let mut s = connect(port);
    let (_, _, body) = exchange(&mut s, "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(body, b"api");
    let (_, _, body) = exchange(&mut s, "GET /apix HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(body, b"main");

    // Garbage is answered 400 by the server while no receive is pending.
    p.expect("IDLE");
    let mut g = connect(port);
    let (status, _, _) = exchange(&mut g, "GARBAGE\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    p.go();
    // Two pipelined requests: the second waits for the first's answer.
    p.expect("READY pipelining");
    s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).2, b"one");
    assert_eq!(read_response(&mut s).2, b"two");

    p.expect("READY overlapped");
    let (_, _, body) = exchange(&mut s, "GET /ov HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(body, b"overlapped");

    assert_eq!(p.expect("OK"), "OK httpapi_server");
    p.finish();
}

/// Closes `s` with a FIN, or with a RST (SO_LINGER 0).
fn hang_up(s: TcpStream, rst: bool) {
    if rst {
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    drop(s);
}

#[test]
fn disconnect_waits_complete_when_the_client_goes() {
    let Some(exe) = build("httpapi_disconnect") else {
        return;
    };
    let port = free_port();
    let rounds = [
        ("iocp", false),
        ("blocking", true),
        ("event", false),
        ("iocp", true),
        ("event", true),
    ];
    let mut args = vec![port.to_string()];
    args.extend(rounds.iter().map(|(m, _)| m.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Prog::start(&exe, &args);
    for (mode, rst) in rounds {
        p.expect(&format!("READY {mode}"));
        let mut s = connect(port);
        let (_, _, body) = exchange(&mut s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(body, mode.as_bytes());
        p.expect(&format!("WAITING {mode}"));
        let t = Instant::now();
        hang_up(s, rst);
        p.expect(&format!("DISCONNECTED {mode}"));
        let how = if rst { "RST" } else { "FIN" };
        println!("{mode} wait, client {how}: seen after {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    p.expect("READY cancel");
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // a FIN or a RST, with no response
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));

    p.expect("READY shutdown");
    let mut s = connect(port);
    let (_, _, body) = exchange(&mut s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(body, b"shutdown");
    assert_eq!(p.expect("OK"), "OK httpapi_disconnect");
    p.finish();
}

#[test]
fn the_structs_have_the_same_layout_in_c_and_in_rust() {
    use httpq_capi::httpapi::types::*;
    use httpq_capi::win32::io::OVERLAPPED;
    use std::mem::{offset_of, size_of};
    let Some(exe) = build("layout") else { return };
    let out = Command::new(&exe)
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("OK layout\n"), "{text}");
    let rust: Vec<(&str, usize)> = vec![
        ("OVERLAPPED", size_of::<OVERLAPPED>()),
        (
            "OVERLAPPED.InternalHigh",
            offset_of!(OVERLAPPED, internal_high),
        ),
        ("OVERLAPPED.Offset", offset_of!(OVERLAPPED, offset)),
        ("OVERLAPPED.hEvent", offset_of!(OVERLAPPED, h_event)),
        ("HTTP_REQUEST_V1", size_of::<HTTP_REQUEST_V1>()),
        ("HTTP_REQUEST_V2", size_of::<HTTP_REQUEST_V2>()),
        (
            "HTTP_REQUEST_V1.ConnectionId",
            offset_of!(HTTP_REQUEST_V1, connection_id),
        ),
        ("HTTP_REQUEST_V1.Verb", offset_of!(HTTP_REQUEST_V1, verb)),
        (
            "HTTP_REQUEST_V1.pRawUrl",
            offset_of!(HTTP_REQUEST_V1, raw_url),
        ),
        (
            "HTTP_REQUEST_V1.CookedUrl",
            offset_of!(HTTP_REQUEST_V1, cooked_url),
        ),
        (
            "HTTP_REQUEST_V1.Address",
            offset_of!(HTTP_REQUEST_V1, address),
        ),
        (
            "HTTP_REQUEST_V1.Headers",
            offset_of!(HTTP_REQUEST_V1, headers),
        ),
        (
            "HTTP_REQUEST_V1.BytesReceived",
            offset_of!(HTTP_REQUEST_V1, bytes_received),
        ),
        (
            "HTTP_REQUEST_V1.EntityChunkCount",
            offset_of!(HTTP_REQUEST_V1, entity_chunk_count),
        ),
        (
            "HTTP_REQUEST_V1.pEntityChunks",
            offset_of!(HTTP_REQUEST_V1, entity_chunks),
        ),
        (
            "HTTP_REQUEST_V1.RawConnectionId",
            offset_of!(HTTP_REQUEST_V1, raw_connection_id),
        ),
        (
            "HTTP_REQUEST_V1.pSslInfo",
            offset_of!(HTTP_REQUEST_V1, ssl_info),
        ),
        (
            "HTTP_REQUEST_V2.RequestInfoCount",
            offset_of!(HTTP_REQUEST_V2, request_info_count),
        ),
        (
            "HTTP_REQUEST_V2.pRequestInfo",
            offset_of!(HTTP_REQUEST_V2, request_info),
        ),
        ("HTTP_REQUEST_HEADERS", size_of::<HTTP_REQUEST_HEADERS>()),
        ("HTTP_COOKED_URL", size_of::<HTTP_COOKED_URL>()),
        ("HTTP_DATA_CHUNK", size_of::<HTTP_DATA_CHUNK>()),
        ("HTTP_UNKNOWN_HEADER", size_of::<HTTP_UNKNOWN_HEADER>()),
        ("HTTP_RESPONSE_V1", size_of::<HTTP_RESPONSE_V1>()),
        (
            "HTTP_RESPONSE_V1.Headers",
            offset_of!(HTTP_RESPONSE_V1, headers),
        ),
        (
            "HTTP_RESPONSE_V1.EntityChunkCount",
            offset_of!(HTTP_RESPONSE_V1, entity_chunk_count),
        ),
        (
            "HTTP_RESPONSE_V1.pEntityChunks",
            offset_of!(HTTP_RESPONSE_V1, entity_chunks),
        ),
        (
            "HTTP_TIMEOUT_LIMIT_INFO",
            size_of::<HTTP_TIMEOUT_LIMIT_INFO>(),
        ),
        (
            "HTTP_TIMEOUT_LIMIT_INFO.MinSendRate",
            offset_of!(HTTP_TIMEOUT_LIMIT_INFO, min_send_rate),
        ),
        ("HTTP_BINDING_INFO", size_of::<HTTP_BINDING_INFO>()),
    ];
    for (name, n) in rust {
        let line = text
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not printed"));
        assert_eq!(line, format!("{name} {n}"), "C and Rust disagree");
    }
}

/// An httpq server answering every request with `body`, on its own port.
fn httpq_server(body: Vec<u8>) -> (httpq_server::ServerSession, u16) {
    use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};
    let port = free_port();
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("wininet-test");
    let group = session.create_url_group();
    group.bind(&queue);
    group
        .add_url(&format!("http://127.0.0.1:{port}/"), 0)
        .unwrap();
    std::mem::forget(group); // lives as long as the session
    let body = bytes::Bytes::from(body);
    std::thread::spawn(move || {
        while let Ok(req) = queue.receive_blocking() {
            let r = Response::new(200).body(body.clone());
            let _ = queue.send_response_blocking(req.id(), r, SendFlags::NONE);
        }
    });
    (session, port)
}

/// Runs the seed 004 program against `url`, which serves `body`.
fn seed_download(exe: &Path, url: &str, body: &[u8]) {
    // Tests run in parallel: one file per download.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("httpq-capi-download-{}-{n}", std::process::id()));
    let mut p = Prog::start(exe, &[url, out.to_str().unwrap()]);
    // The seed's order: created, resolve, connect, send, receive, complete.
    // (An address that refuses — ::1 for localhost when the server is on
    // 127.0.0.1 only — adds a CONNECTING_TO_SERVER of its own.)
    let mut open: Vec<String> = p.expect("OPEN").split(' ').map(str::to_string).collect();
    open.dedup();
    assert_eq!(open.join(" "), "OPEN 60 10 11 20 21 30 31 40 41 100");
    let read = p.expect("READ");
    // Every read that had to wait ends with its REQUEST_COMPLETE.
    assert!(read.ends_with(" 100") || read == "READ", "{read}");
    assert_eq!(p.expect("CLOSE"), "CLOSE 70");
    assert_eq!(p.expect("OK"), format!("OK wininet_async {}", body.len()));
    p.finish();
    assert!(
        std::fs::read(&out).unwrap() == body,
        "the download from {url} differs"
    );
    let _ = std::fs::remove_file(out);
}

fn seed_body() -> Vec<u8> {
    (0..1_000_003u32).map(|i| (i * 31 % 253) as u8).collect()
}

#[test]
fn the_seed_004_async_download_is_byte_exact_with_its_notifications_in_order() {
    let Some(exe) = build("wininet_async") else {
        return;
    };
    let body = seed_body();
    let (_server, port) = httpq_server(body.clone());
    seed_download(&exe, &format!("http://localhost:{port}/file"), &body);
}

/// A directory holding `name` with `body`, removed on drop.
struct Site(PathBuf);

impl Site {
    fn new(name: &str, body: &[u8]) -> Site {
        // One directory per site: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("httpq-capi-site-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www").join(name), body).unwrap();
        Site(dir)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_seed_004_download_works_against_httpq_serve() {
    let Some(exe) = build("wininet_async") else {
        return;
    };
    // The workspace's `httpq` binary, built beside this test (cargo test
    // --workspace builds it for the CLI's own tests; alone, build it).
    let httpq = lib_dir().parent().unwrap().join("httpq");
    if !httpq.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "httpq-cli"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && httpq.exists(), "could not build {}", httpq.display());
    }
    let body = seed_body();
    let site = Site::new("seed.bin", &body);
    let port = free_port();
    let _server = Server(
        Command::new(&httpq)
            .arg("serve")
            .arg(site.0.join("www"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    drop(connect(port));
    seed_download(&exe, &format!("http://localhost:{port}/seed.bin"), &body);
}

#[test]
fn the_seed_004_download_works_against_nginx() {
    let Some(exe) = build("wininet_async") else {
        return;
    };
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(nginx) = nginx else {
        println!(
            "SKIPPED the nginx download: nginx is not installed (apt-get install nginx-light)"
        );
        return;
    };
    let body = seed_body();
    let site = Site::new("seed.bin", &body);
    let port = free_port();
    let d = site.0.display();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
         server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n"
    );
    std::fs::write(site.0.join("nginx.conf"), conf).unwrap();
    let _server = Server(
        Command::new(nginx)
            .arg("-c")
            .arg(site.0.join("nginx.conf"))
            .arg("-e")
            .arg(site.0.join("error.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    drop(connect(port));
    seed_download(&exe, &format!("http://localhost:{port}/seed.bin"), &body);
}

/// A raw-socket HTTP/1.1 server: echoes each request's body, and its
/// X-Test header as X-Echo; keep-alive.
fn raw_echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let (mut length, mut echo) = (0usize, None);
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        let (k, v) = line.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => length = v.trim().parse().unwrap(),
                            "x-test" => echo = Some(v.trim().to_string()),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    r.read_exact(&mut body).unwrap();
                    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n");
                    if let Some(e) = echo {
                        head.push_str(&format!("X-Echo: {e}\r\n"));
                    }
                    head.push_str("\r\n");
                    w.write_all(head.as_bytes()).unwrap();
                    w.write_all(&body).unwrap();
                }
            });
        }
    });
    port
}

#[test]
fn wininet_without_async_mode_sends_queries_reads_and_uploads() {
    let Some(exe) = build("wininet_sync") else {
        return;
    };
    let port = raw_echo_server();
    let mut p = Prog::start(&exe, &[&port.to_string()]);
    assert_eq!(p.expect("OK"), "OK wininet_sync");
    p.finish();
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_receive_timeout_fires_on_time_and_leaks_nothing() {
    let Some(exe) = build("wininet_timeout") else {
        return;
    };
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let url = format!("http://127.0.0.1:{port}/stall");
    let mut child = Command::new(&exe)
        .arg(&url)
        .env("LD_LIBRARY_PATH", lib_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut counts = Vec::new();
    let mut said = String::new();
    loop {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        said.push_str(&l);
        assert!(!l.starts_with("FAILED"), "{said}");
        if l.starts_with("TIMEOUT") {
            println!("{}", l.trim_end());
        }
        if l.starts_with("COUNT") {
            counts.push(open_fds(pid));
            stdin.write_all(b"\n").unwrap();
        }
    }
    assert!(child.wait().unwrap().success(), "{said}");
    assert!(said.ends_with("OK wininet_timeout\n"), "{said}");
    // The first round makes the runtime and its descriptors; after it,
    // each round ends where the one before did.
    assert_eq!(counts.len(), 3, "{said}");
    assert_eq!(counts[1], counts[2], "descriptors after rounds: {counts:?}");
    assert_eq!(counts[0], counts[1], "descriptors after rounds: {counts:?}");
}

#[test]
fn closing_a_handle_cancels_its_pending_read_first() {
    let Some(exe) = build("wininet_cancel") else {
        return;
    };
    // A head, 10 of 100 body bytes, then nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            held.push(s);
        }
    });
    let mut p = Prog::start(&exe, &[&format!("http://127.0.0.1:{port}/stall")]);
    // REQUEST_COMPLETE (cancelled), then HANDLE_CLOSING, and nothing after.
    assert_eq!(p.expect("CLOSE"), "CLOSE 100 70");
    assert_eq!(p.expect("OK"), "OK wininet_cancel");
    p.finish();
}

#[test]
fn a_version_1_program_and_a_full_queue() {
    let Some(exe) = build("httpapi_v1") else {
        return;
    };
    let port = free_port();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let mut p = Prog::start(&exe, &[&port.to_string(), &busy_port]);
    p.expect("READY v1");
    let mut s = connect(port);
    let (_, _, body) = exchange(&mut s, "GET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(body, b"v1");
    p.expect("FULL");
    // Two clients while nobody receives: one waits in the queue (length 1),
    // the other is answered 503 at once; which is which is up to timing.
    let (tx, rx) = std::sync::mpsc::channel();
    for path in ["/v1/b", "/v1/c"] {
        let tx = tx.clone();
        let mut c = connect(port);
        std::thread::spawn(move || {
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            let _ = tx.send(exchange(&mut c, &req));
        });
    }
    let (first, _, _) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.starts_with("HTTP/1.1 503"), "{first}");
    p.go();
    let (second, _, body) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (second.as_str(), body.as_slice()),
        ("HTTP/1.1 200 OK", &b"v1"[..])
    );
    assert_eq!(p.expect("OK"), "OK httpapi_v1");
    p.finish();
}

#[test]
fn generic_names_follow_unicode_as_in_the_sdk() {
    let Some(exe) = build("unicode") else { return };
    let mut p = Prog::start(&exe, &[]);
    assert_eq!(p.expect("OK"), "OK unicode");
    p.finish();
}
