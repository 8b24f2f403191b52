//! `httpq get` end to end: the real binary against `httpq serve` and against
//! raw TCP servers that misbehave on purpose (close mid-body, stay silent,
//! redirect, gzip). Bytes, files left behind, exit codes and `--events` lines.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::raw::*;
use common::{free_port, Server, LIMIT};

fn parse_events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))
        })
        .collect()
}

/// The server dir with `big.bin` (3 MiB + 17 bytes of noise) and `hello.txt`.
fn site() -> (TempDir, Vec<u8>) {
    let dir = TempDir::new();
    let big = noise(3 * 1024 * 1024 + 17);
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("hello.txt"), b"hello, httpq\n").unwrap();
    (dir, big)
}

// ---------------------------------------------------------------- tests

#[test]
fn downloads_a_served_file_byte_for_byte_to_stdout() {
    let (dir, big) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let out = httpq_get(&[&server.url("/big.bin")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big, "body differs from the served file");
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

#[test]
fn output_file_is_written_and_nothing_else_is_left() {
    let (site_dir, big) = site();
    let server = Server::start(&[site_dir.path().to_str().unwrap()]);
    let dest = TempDir::new();
    let file = dest.path().join("copy.bin");
    let out = httpq_get(&["-s", "-o", file.to_str().unwrap(), &server.url("/big.bin")]);
    assert_code(&out, 0);
    assert!(out.stdout.is_empty(), "stdout is not the body with -o");
    assert_eq!(dest.names(), ["copy.bin"]);
    assert!(std::fs::read(&file).unwrap() == big, "file differs");
}

/// `-o` onto something that is not a regular file (here a FIFO; `/dev/null`
/// in real use) writes through it and leaves it what it was — renaming a
/// temporary file onto it would replace it.
#[test]
fn output_to_a_fifo_writes_through_and_keeps_the_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let (site_dir, big) = site();
    let server = Server::start(&[site_dir.path().to_str().unwrap()]);
    let dest = TempDir::new();
    let fifo = dest.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let (tx, rx) = mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || tx.send(std::fs::read(fifo).unwrap()));
    }
    let out = httpq_get(&["-s", "-o", fifo.to_str().unwrap(), &server.url("/big.bin")]);
    assert_code(&out, 0);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "still a FIFO: {kind:?}");
    let got = rx.recv_timeout(LIMIT).expect("the reader got the body");
    assert!(got == big, "the body came through the FIFO");
    assert_eq!(dest.names(), ["pipe"], "no temporary file left");
}

/// Closes mid-body: after 1000 of 1,000,000 bytes on `/`, and inside the
/// second chunk of a chunked body on `/chunked`.
fn truncating_server() -> RawServer {
    RawServer::start(|stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let Some(req) = read_request(&mut r) else {
            return;
        };
        let chunked = req.path() == "/chunked";
        let mut w = stream;
        if chunked {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let _ = w.write_all(b"3e8\r\n");
            let _ = w.write_all(&[b'x'; 1000]);
            let _ = w.write_all(b"\r\n3e8\r\nxyz");
            return;
        }
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
        let _ = w.write_all(&[b'x'; 1000]);
        // Dropping the stream closes the connection mid-body.
    })
}

#[test]
fn close_mid_body_exits_18_as_curl_and_leaves_no_file() {
    let server = truncating_server();
    let dest = TempDir::new();
    let file = dest.path().join("out.bin");
    let out = httpq_get(&["-o", file.to_str().unwrap(), &server.url("/")]);
    assert_code(&out, 18);
    // The message comes last; before it, at the default level (warn), the
    // client's event for the protocol violation, with its handle.
    let (log, message) = out.stderr.trim_end().rsplit_once('\n').unwrap_or(("", ""));
    assert!(message.starts_with("httpq: "), "stderr: {}", out.stderr);
    assert!(
        log.contains("WARN") && log.contains("protocol violation") && log.contains("handle="),
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1000"),
        "names the bytes received: {}",
        out.stderr
    );
    assert_eq!(dest.names(), Vec::<String>::new(), "no file, no temp file");
}

#[test]
fn a_chunked_body_cut_short_exits_18_and_leaves_no_file() {
    let server = truncating_server();
    let dest = TempDir::new();
    let file = dest.path().join("out.bin");
    let out = httpq_get(&["-o", file.to_str().unwrap(), &server.url("/chunked")]);
    assert_code(&out, 18);
    assert!(out.stderr.contains("closed"), "says why: {}", out.stderr);
    assert_eq!(dest.names(), Vec::<String>::new(), "no file, no temp file");
}

#[test]
fn failed_download_keeps_an_existing_file_untouched() {
    let server = truncating_server();
    let dest = TempDir::new();
    let file = dest.path().join("out.bin");
    std::fs::write(&file, b"the old, whole file").unwrap();
    let out = httpq_get(&["-o", file.to_str().unwrap(), &server.url("/")]);
    assert_code(&out, 18);
    assert_eq!(std::fs::read(&file).unwrap(), b"the old, whole file");
    assert_eq!(dest.names(), ["out.bin"]);
}

#[test]
fn closed_port_exits_7() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again here
    let out = httpq_get(&[&format!("http://127.0.0.1:{port}/")]);
    assert_code(&out, 7);
    assert!(out.stderr.starts_with("httpq: "), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn unresolvable_host_exits_6() {
    let out = httpq_get(&["http://nonexistent.invalid/"]);
    assert_code(&out, 6);
    assert!(out.stderr.contains("nonexistent.invalid"), "{}", out.stderr);
}

#[test]
fn bad_url_exits_3() {
    let out = httpq_get(&["ftp://example.invalid/"]);
    assert_code(&out, 3);
    assert!(
        out.stderr.starts_with("httpq: invalid URL"),
        "{}",
        out.stderr
    );
}

#[test]
fn receive_timeout_against_a_silent_server_exits_28() {
    // Reads the request, then says nothing until the client goes away.
    let server = RawServer::start(|stream| {
        let mut r = BufReader::new(stream);
        if read_request(&mut r).is_some() {
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
        }
    });
    let out = httpq_get(&["--receive-timeout", "0.3", &server.url("/")]);
    assert_code(&out, 28);
    assert!(out.stderr.contains("receive timeout"), "{}", out.stderr);
    assert!(
        out.elapsed >= Duration::from_millis(300),
        "gave up early: {:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
}

#[test]
fn fail_on_404_exits_22_and_prints_nothing() {
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let out = httpq_get(&["--fail", &server.url("/missing.txt")]);
    assert_code(&out, 22);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    // Without --fail a 404 is a successful transfer, as in curl.
    let out = httpq_get(&[&server.url("/missing.txt")]);
    assert_code(&out, 0);
}

#[test]
fn head_prints_status_line_and_headers_only() {
    let (dir, big) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let out = httpq_get(&["-I", &server.url("/big.bin")]);
    assert_code(&out, 0);
    let text = out.stdout_text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    let want = format!("content-length: {}", big.len());
    assert!(
        text.lines().any(|l| l.eq_ignore_ascii_case(&want)),
        "{text}"
    );
    assert!(out.stdout.len() < 1024, "no body after the head");
}

#[test]
fn include_prints_head_then_body() {
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let out = httpq_get(&["-i", &server.url("/hello.txt")]);
    assert_code(&out, 0);
    let text = out.stdout_text();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("content-length: 13")),
        "{head}"
    );
    assert_eq!(body, "hello, httpq\n");
}

#[test]
fn events_are_json_lines_from_created_to_closing() {
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let out = httpq_get(&["--events", &server.url("/hello.txt")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"hello, httpq\n", "events do not touch stdout");
    let events = parse_events(&out.stderr);
    assert!(events.len() >= 5, "{}", out.stderr);
    for e in &events {
        for key in ["n", "handle", "context", "us"] {
            assert!(e[key].is_u64(), "{key} in {e}");
        }
        assert!(e["name"].is_string(), "{e}");
    }
    assert_eq!(events[0]["n"], 60);
    assert_eq!(events[0]["name"], "HANDLE_CREATED");
    let complete = events
        .iter()
        .find(|e| e["n"] == 100)
        .expect("a REQUEST_COMPLETE");
    assert_eq!(complete["name"], "REQUEST_COMPLETE");
    assert_eq!(complete["ok"], true);
    // The request handle's own notifications: created first, closing last.
    let request = complete["handle"].as_u64().unwrap();
    let mine: Vec<&serde_json::Value> = events.iter().filter(|e| e["handle"] == request).collect();
    assert_eq!(mine[0]["name"], "HANDLE_CREATED");
    assert_eq!(mine[0]["context"], 1);
    assert_eq!(mine.last().unwrap()["n"], 70);
    assert_eq!(mine.last().unwrap()["name"], "HANDLE_CLOSING");
    // Phases with their payloads.
    let named = |name: &str| mine.iter().find(|e| e["name"] == name).copied();
    // An IP literal needs no lookup, so there is none to notify.
    assert!(named("RESOLVING_NAME").is_none());
    let connected = named("CONNECTED_TO_SERVER").expect("connect");
    assert_eq!(
        connected["address"],
        format!("127.0.0.1:{}", server.port).as_str()
    );
    assert!(
        named("REQUEST_SENT").expect("sent")["bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    // And the session's HANDLE_CLOSING ends the stream.
    assert_eq!(events.last().unwrap()["name"], "HANDLE_CLOSING");
}

#[test]
fn events_report_a_failed_request_complete() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = httpq_get(&["--events", &format!("http://127.0.0.1:{port}/")]);
    assert_code(&out, 7);
    // JSON lines, then the error message.
    let (json, message) = out.stderr.trim_end().rsplit_once('\n').unwrap();
    assert!(message.starts_with("httpq: cannot connect"), "{message}");
    let events = parse_events(json);
    let complete = events
        .iter()
        .find(|e| e["n"] == 100)
        .expect("REQUEST_COMPLETE");
    assert_eq!(complete["ok"], false);
    assert!(
        complete["error"].as_str().unwrap().contains("connect"),
        "{complete}"
    );
    assert_eq!(events.last().unwrap()["name"], "HANDLE_CLOSING");
}

#[test]
fn data_posts_to_echo_and_gets_it_back() {
    let server = Server::start(&["--echo"]);
    let out = httpq_get(&["-d", "a=1&b=two", &server.url("/anything")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout_text(), "a=1&b=two");
    // --data-binary @file: byte for byte, newlines included.
    let dir = TempDir::new();
    let file = dir.path().join("payload");
    let payload = b"line 1\r\nline 2\n\0binary\xff".to_vec();
    std::fs::write(&file, &payload).unwrap();
    let arg = format!("@{}", file.display());
    let out = httpq_get(&["--data-binary", &arg, &server.url("/")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, payload);
    // -d @file drops CR and LF, as curl's does.
    let out = httpq_get(&["-d", &arg, &server.url("/")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"line 1line 2\0binary\xff");
}

#[test]
fn data_means_post_with_a_form_content_type_unless_one_is_given() {
    let (tx, rx) = mpsc::channel::<RawRequest>();
    let tx = std::sync::Mutex::new(tx);
    let server = RawServer::start(move |stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        if let Some(req) = read_request(&mut r) {
            let mut w = stream;
            let _ = w.write_all(&response("200 OK", &[], b"ok"));
            let _ = tx.lock().unwrap().send(req);
        }
    });
    let out = httpq_get(&["-d", "x=1", &server.url("/form")]);
    assert_code(&out, 0);
    let req = rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(req.request_line(), "POST /form HTTP/1.1");
    assert_eq!(
        req.header_values("content-type"),
        ["application/x-www-form-urlencoded"]
    );
    assert_eq!(req.body, b"x=1");

    let out = httpq_get(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: text/plain",
        "-H",
        "X-Extra: yes",
        "-d",
        "x=1",
        &server.url("/put"),
    ]);
    assert_code(&out, 0);
    let req = rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(req.request_line(), "PUT /put HTTP/1.1");
    assert_eq!(req.header_values("content-type"), ["text/plain"]);
    assert_eq!(req.header_values("x-extra"), ["yes"]);

    // `-H 'Name:'` removes a header the client sends by default.
    let out = httpq_get(&["-H", "Accept:", "-H", "User-Agent:", &server.url("/bare")]);
    assert_code(&out, 0);
    let req = rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(req.request_line(), "GET /bare HTTP/1.1");
    assert!(req.header_values("accept").is_empty());
    assert!(req.header_values("user-agent").is_empty());
    assert_eq!(req.header_values("host").len(), 1);
}

/// `/start` redirects to `/final`; `/loop` redirects to itself.
fn redirecting_server() -> RawServer {
    RawServer::start(|stream| {
        keep_alive(stream, |req| match req.path() {
            "/start" => response("302 Found", &[("Location", "/final")], b"moved"),
            "/final" => response("200 OK", &[], b"final body"),
            "/loop" => response("302 Found", &[("Location", "/loop")], b"again"),
            _ => response("404 Not Found", &[], b""),
        })
    })
}

#[test]
fn location_follows_redirects_and_without_it_the_302_body_is_printed() {
    let server = redirecting_server();
    let out = httpq_get(&["-L", &server.url("/start")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout_text(), "final body");

    let out = httpq_get(&[&server.url("/start")]);
    assert_code(&out, 0);
    assert_eq!(out.stdout_text(), "moved");

    let out = httpq_get(&["-i", &server.url("/start")]);
    assert!(out.stdout_text().starts_with("HTTP/1.1 302 Found\r\n"));

    // With -L, -i prints every head on the way, then the final body.
    let out = httpq_get(&["-i", "-L", &server.url("/start")]);
    assert_code(&out, 0);
    let text = out.stdout_text();
    let second = text.find("HTTP/1.1 200").expect("the final head");
    assert!(text.starts_with("HTTP/1.1 302 Found\r\n"), "{text}");
    assert!(text[..second].ends_with("\r\n\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nfinal body"), "{text}");
}

#[test]
fn too_many_redirects_exits_47() {
    let server = redirecting_server();
    let out = httpq_get(&["-L", "--max-redirs", "3", &server.url("/loop")]);
    assert_code(&out, 47);
    assert!(out.stderr.contains("redirects"), "{}", out.stderr);
}

#[test]
fn compressed_decodes_a_gzip_body() {
    use flate2::write::GzEncoder;
    let plain: Vec<u8> = b"a gzip body that repeats, repeats, repeats.\n".repeat(500);
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    let gz = enc.finish().unwrap();
    let (plain2, gz2) = (plain.clone(), gz.clone());
    let server = RawServer::start(move |stream| {
        let (plain, gz) = (plain2.clone(), gz2.clone());
        keep_alive(stream, move |req| {
            let accepts = req
                .header_values("accept-encoding")
                .iter()
                .any(|v| v.contains("gzip"));
            if accepts {
                response("200 OK", &[("Content-Encoding", "gzip")], &gz)
            } else {
                response("200 OK", &[], &plain)
            }
        })
    });
    let out = httpq_get(&["--compressed", &server.url("/")]);
    assert_code(&out, 0);
    assert!(out.stdout == plain, "decoded body differs");
    // Without --compressed nothing is asked for, and the plain body comes.
    let out = httpq_get(&[&server.url("/")]);
    assert_code(&out, 0);
    assert!(out.stdout == plain);
    // A gzip body sent unasked is passed through undecoded.
    let server = RawServer::start(move |stream| {
        let gz = gz.clone();
        keep_alive(stream, move |_| {
            response("200 OK", &[("Content-Encoding", "gzip")], &gz)
        })
    });
    let out = httpq_get(&[&server.url("/")]);
    assert_code(&out, 0);
    assert!(out.stdout.starts_with(&[0x1f, 0x8b]), "raw gzip bytes");
}

#[test]
fn max_time_bounds_the_whole_transfer() {
    // Sends the head and a trickle that never ends; --max-time stops it.
    let server = RawServer::start(|stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        if read_request(&mut r).is_none() {
            return;
        }
        let mut w = stream;
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome");
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
    });
    let out = httpq_get(&["--max-time", "1.0", &server.url("/")]);
    assert_code(&out, 28);
    assert!(out.stderr.contains("total timeout"), "{}", out.stderr);
    assert_eq!(out.stdout, b"some");
    assert!(
        out.elapsed >= Duration::from_millis(500),
        "{:?}",
        out.elapsed
    );
}

/// A server that answers every request with `body` under `encoding`.
fn encoded_server(encoding: &'static str, body: Vec<u8>) -> RawServer {
    RawServer::start(move |stream| {
        let body = body.clone();
        keep_alive(stream, move |_| {
            response("200 OK", &[("Content-Encoding", encoding)], &body)
        })
    })
}

/// Issue 12: a deflate bomb (512 MiB of zeros from about 0.5 MiB) and a
/// gzip bomb (1 GiB) with `--compressed` exit non-zero (63, as curl for a
/// body over a limit), say which limit fired, and leave no file.
#[test]
fn decompression_bombs_exit_63_and_leave_no_file() {
    use flate2::write::{GzEncoder, ZlibEncoder};
    let zeros = vec![0u8; 1 << 20];
    let mut deflate = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..512 {
        deflate.write_all(&zeros).unwrap();
    }
    let deflate = deflate.finish().unwrap();
    assert!(
        deflate.len() < 600 << 10,
        "about 0.5 MiB: {}",
        deflate.len()
    );
    let mut gzip = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..1024 {
        gzip.write_all(&zeros).unwrap();
    }
    let gzip = gzip.finish().unwrap();
    for (encoding, bomb) in [("deflate", deflate), ("gzip", gzip)] {
        let dir = TempDir::new();
        let file = dir.path().join("bomb.out");
        let server = encoded_server(encoding, bomb);
        let out = httpq_get(&[
            "--compressed",
            "-o",
            file.to_str().unwrap(),
            &server.url("/"),
        ]);
        assert_code(&out, 63);
        assert!(
            out.stderr.contains("times its encoded size"),
            "{encoding}: {}",
            out.stderr
        );
        assert!(dir.names().is_empty(), "{encoding}: left {:?}", dir.names());
        assert!(
            out.elapsed < Duration::from_secs(10),
            "{encoding}: stopped early"
        );
    }
}

/// `--max-filesize` as curl's: a declared length over it fails before
/// anything is written, a body that grows over it (chunked, or decoded)
/// fails when it does; exit 63 and no file either way.
#[test]
fn max_filesize_exits_63_and_leaves_no_file() {
    let body = noise(300_000);
    let b2 = body.clone();
    let server = RawServer::start(move |stream| {
        let body = b2.clone();
        keep_alive(stream, move |req| {
            if req.path() == "/chunked" {
                let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for part in body.chunks(10_000) {
                    out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    out.extend_from_slice(part);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            } else {
                response("200 OK", &[], &body)
            }
        })
    });
    for path in ["/", "/chunked"] {
        let dir = TempDir::new();
        let file = dir.path().join("big.out");
        let url = server.url(path);
        let out = httpq_get(&[
            "--max-filesize",
            "100000",
            "-o",
            file.to_str().unwrap(),
            &url,
        ]);
        assert_code(&out, 63);
        assert!(
            out.stderr.contains("maximum file size"),
            "{path}: {}",
            out.stderr
        );
        assert!(dir.names().is_empty(), "{path}: left {:?}", dir.names());
        // At or over the size, it downloads.
        let out = httpq_get(&[
            "--max-filesize",
            "300000",
            "-o",
            file.to_str().unwrap(),
            &url,
        ]);
        assert_code(&out, 0);
        assert!(std::fs::read(&file).unwrap() == body);
    }
}

// ---------------------------------------------------------------- -w, IDN, logs

/// The -w format both tools run with: the fields compared exactly, then
/// the times, which can only be checked for form and order.
const SIDE_BY_SIDE: &str = "%{http_code} %{size_download} %{num_redirects} %{url_effective} \
     %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\\n";

/// Whether curl can be run; says so on the test's output when it cannot.
fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: curl is not installed (apt-get install curl), nothing to compare with");
    }
    ok
}

/// Runs curl with `args` (bounded by --max-time); its stdout.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl");
    out.stdout
}

/// Splits the write-out after `body` into the exactly compared fields and
/// checks the five times: seconds with six decimals, in curl's order.
fn exact_fields(tool: &str, stdout: &[u8], body: &[u8]) -> String {
    assert!(
        stdout.starts_with(body),
        "{tool}: the body comes first: {:?}",
        String::from_utf8_lossy(stdout)
    );
    let text = String::from_utf8(stdout[body.len()..].to_vec()).unwrap();
    assert!(text.ends_with('\n'), "{tool}: {text:?}");
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 9, "{tool}: {text:?}");
    let times: Vec<f64> = fields[4..]
        .iter()
        .map(|t| {
            let (secs, frac) = t.split_once('.').unwrap_or_else(|| panic!("{tool}: {t}"));
            assert!(
                secs.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() == 6
                    && frac.bytes().all(|b| b.is_ascii_digit()),
                "{tool}: {t} is not seconds with six decimals"
            );
            t.parse().unwrap()
        })
        .collect();
    let [namelookup, connect, appconnect, starttransfer, total] = times[..] else {
        unreachable!()
    };
    let after_connect = if appconnect > 0.0 {
        appconnect
    } else {
        connect
    };
    assert!(
        namelookup <= connect
            && connect <= after_connect
            && after_connect <= starttransfer
            && starttransfer <= total,
        "{tool}: times out of order: {text:?}"
    );
    fields[..4].join(" ")
}

#[test]
fn write_out_prints_what_curl_prints() {
    if !have_curl() {
        return;
    }
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let redirects = redirecting_server();
    let hello = server.url("/hello.txt");
    let missing = server.url("/missing.txt");
    let start = redirects.url("/start");
    let cases: [(&[&str], &[u8]); 4] = [
        (&[&hello], b"hello, httpq\n"),
        (&[&missing], b"not found\n"),
        (&["-L", &start], b"final body"),
        (&[&start], b"moved"),
    ];
    for (args, body) in cases {
        let mut ours = vec!["-s", "-w", SIDE_BY_SIDE];
        ours.extend_from_slice(args);
        let out = httpq_get(&ours);
        assert_code(&out, 0);
        let mut theirs = vec!["-w", SIDE_BY_SIDE];
        theirs.extend_from_slice(args);
        let reference = curl(&theirs);
        let ours = exact_fields("httpq", &out.stdout, body);
        let theirs = exact_fields("curl", &reference, body);
        assert_eq!(ours, theirs, "httpq get {args:?}");
    }
}

#[test]
fn write_out_reads_a_format_file_and_prints_json_even_after_a_failure() {
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let tmp = TempDir::new();
    let format = tmp.path().join("format.txt");
    std::fs::write(&format, "%{json}\\n100%% %{nonsense}\\t!").unwrap();
    let at = format!("@{}", format.display());
    let out = httpq_get(&["-w", &at, &server.url("/hello.txt")]);
    assert_code(&out, 0);
    let text = out.stdout_text();
    let (json, rest) = text
        .strip_prefix("hello, httpq\n")
        .and_then(|t| t.split_once('\n'))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_eq!(rest, "100% \t!");
    assert!(out
        .stderr
        .contains("unknown --write-out variable: 'nonsense'"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["http_code"], 200);
    assert_eq!(v["size_download"], 13);
    assert_eq!(v["url_effective"], server.url("/hello.txt"));
    assert!(v["time_total"].as_f64().unwrap() >= v["time_connect"].as_f64().unwrap());

    // As curl: a failed transfer still reports, with 000 for no response.
    let port = free_port(std::net::Ipv4Addr::LOCALHOST.into());
    let out = httpq_get(&["-w", "[%{http_code}]", &format!("http://127.0.0.1:{port}/")]);
    assert_code(&out, 7);
    assert_eq!(out.stdout_text(), "[000]");
}

#[test]
fn an_idn_url_goes_to_the_proxy_with_a_punycode_host() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let proxy = RawServer::start(move |stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let Some(req) = read_request(&mut r) else {
            return;
        };
        let _ = tx
            .lock()
            .unwrap()
            .send((req.request_line().to_string(), req.header_values("host")));
        let mut w = stream;
        let _ = w.write_all(&response("200 OK", &[], b"via the proxy"));
    });
    let out = httpq_get(&[
        "-x",
        &format!("http://127.0.0.1:{}", proxy.port),
        "-w",
        " %{url_effective}",
        "http://bücher.example/straße",
    ]);
    assert_code(&out, 0);
    assert_eq!(
        out.stdout_text(),
        "via the proxy http://xn--bcher-kva.example/stra%C3%9Fe"
    );
    let (line, host) = rx.recv_timeout(LIMIT).expect("the proxy saw the request");
    assert_eq!(
        line,
        "GET http://xn--bcher-kva.example/stra%C3%9Fe HTTP/1.1"
    );
    assert_eq!(host, ["xn--bcher-kva.example"]);
}

#[test]
fn debug_json_logs_carry_the_handle_context_and_notification_numbers() {
    let (dir, _) = site();
    let server = Server::start(&[dir.path().to_str().unwrap()]);
    let url = server.url("/hello.txt");
    let out = httpq(
        &["get", "--log-level", "debug", "--log-format", "json", &url],
        &[],
    );
    assert_code(&out, 0);
    assert_eq!(out.stdout_text(), "hello, httpq\n");
    let lines = parse_events(&out.stderr);
    // The request handle's notifications: context 1 (the CLI's), in order.
    let numbers: Vec<u64> = lines
        .iter()
        .filter(|l| l["fields"]["context"] == 1 && l["fields"]["n"].is_u64())
        .map(|l| l["fields"]["n"].as_u64().unwrap())
        .collect();
    let expected = [60, 20, 21, 151, 30, 31, 140, 70];
    let mut rest = numbers.iter();
    for n in expected {
        assert!(
            rest.any(|&m| m == n),
            "notification {n} in order in {numbers:?}"
        );
    }
    assert!(
        lines.iter().any(|l| l["fields"]["n"] == 140
            && l["fields"]["handle"].is_u64()
            && l["span"]["url"] == url.as_str()),
        "FIRST_BYTE inside the request's span: {}",
        out.stderr
    );

    // Off: nothing at all on stderr for a transfer that went well.
    let out = httpq(&["get", &url], &[("RUST_LOG", "off")]);
    assert_code(&out, 0);
    assert_eq!(out.stderr, "");
    // RUST_LOG wins over the flag.
    let out = httpq(
        &["get", "--log-level", "trace", &url],
        &[("RUST_LOG", "off")],
    );
    assert_eq!(out.stderr, "");
}
