//! `httpq serve --config sites.toml` and `--access-log`: several sites,
//! each a URL group with its own queue and timeouts, routed by longest
//! prefix; and one combined-format line per response, none lost at exit.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, raw::TempDir, sigint, Server, LIMIT};

/// The issue's example file, on a free port, with a static root beside it.
fn example(dir: &TempDir, port: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.0.join("www/a")).unwrap();
    std::fs::write(dir.0.join("www/a/x.txt"), "file x").unwrap();
    std::fs::write(dir.0.join("www/a/api"), "a file the api site hides").unwrap();
    let text = format!(
        r#"
[[site]]
prefixes = ["http://127.0.0.1:{port}/a/"]
root = "www/a"                    # relative to this file

[[site]]
prefixes = ["http://127.0.0.1:{port}/b/", "http://127.0.0.1:{port}/a/api/"]
echo = true

[site.timeouts]
entity_body = "1s"

[[site]]
prefixes = ["http://127.0.0.1:{port}/c/"]
echo = true
"#
    );
    let path = dir.0.join("sites.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &std::path::Path, port: u16, extra: &[&str]) -> Server {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    Server::spawn(&args, addr, &format!("http://{addr}/"))
}

fn post(s: &Server, path: &str, body: &str) -> common::Resp {
    s.ask(&format!(
        "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

#[test]
fn sites_route_by_longest_prefix_each_with_its_own_queue_and_timeouts() {
    let dir = TempDir::new();
    let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let s = start(&example(&dir, port), port, &[]);
    // The file site serves the path below its prefix.
    let r = s.get("/a/x.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "file x"));
    assert_eq!(
        post(&s, "/a/x.txt", "hi").status,
        405,
        "a POST to a file site"
    );
    // /a/api/ is longer than /a/: the echo site answers.
    let r = post(&s, "/a/api/thing", "to the api");
    assert_eq!((r.status, r.text().as_str()), (200, "to the api"));
    let r = post(&s, "/b/", "b");
    assert_eq!((r.status, r.text().as_str()), (200, "b"));
    let r = post(&s, "/c/x", "c");
    assert_eq!((r.status, r.text().as_str()), (200, "c"));
    assert_eq!(s.get("/nowhere").status, 400, "under no prefix");
    assert_eq!(s.get("/_httpq/stats").status, 200, "/_httpq/ stays");

    // Each site is its own group and queue, with its own timeouts.
    let state: serde_json::Value = serde_json::from_slice(&s.get("/_httpq/state").body).unwrap();
    let queues: Vec<&str> = state["request_queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    for q in ["site1", "site2", "site3", "control"] {
        assert!(queues.contains(&q), "{queues:?}");
    }
    let group_of = |queue: &str| {
        state["url_groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["queue"] == queue)
            .unwrap()
            .clone()
    };
    let g2 = group_of("site2");
    assert_eq!(g2["prefixes"].as_array().unwrap().len(), 2);
    assert_eq!(g2["timeouts"]["entity_body"], "1s");
    assert_eq!(
        group_of("site3")["timeouts"]["entity_body"],
        "2m",
        "the server's"
    );

    // site2's EntityBody: a stalled body ends the connection after 1 s
    // (the server's is 120 s).
    let mut c = s.connect();
    c.send(b"POST /b/slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
    let sent = Instant::now();
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    let metrics = String::from_utf8(s.get("/_httpq/metrics").body).unwrap();
    assert!(
        metrics.contains("httpq_timeouts_total{timeout=\"entity_body\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_bad_config_is_refused_naming_the_file_line_and_key() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    std::fs::write(
        &path,
        "[[site]]\nprefixes = [\"http://127.0.0.1:1/a/\"]\necho = true\n\n[site.timeouts]\nentity_body = \"soon\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_httpq"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:6: site[1].timeouts.entity_body:",
            path.display()
        )),
        "{err}"
    );
    // --config with a flag that names a site of its own is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_httpq"))
        .args(["serve", "--config", path.to_str().unwrap(), "--echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The lines of the access log once there are `n` (they are written as
/// they happen, without waiting for the server to stop).
fn lines_when(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines: {text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_access_log_shows_each_response_as_it_happens_and_loses_none_at_exit() {
    let site = common::Site::new();
    let dir = TempDir::new();
    let log = dir.0.join("access.log");
    let mut s = Server::start(&[
        site.root().to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    let mut c = s.connect();
    c.send(b"GET /notes.txt HTTP/1.1\r\nHost: h\r\nReferer: http://ref/\r\nUser-Agent: tester \"1\"\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().status, 200);
    let lines = lines_when(&log, 1);
    let line = &lines[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains(
            "] \"GET /notes.txt HTTP/1.1\" 200 16 \"http://ref/\" \"tester \\x221\\x22\" "
        ),
        "{line}"
    );
    let id = line.rsplit(' ').next().unwrap();
    assert!(id.parse::<u64>().unwrap() > 0, "{line}");
    assert_eq!(s.get("/missing").status, 404);
    lines_when(&log, 2);

    // A burst, then Ctrl-C at once: every response the client got has its line.
    let n = 300;
    let mut c = s.connect();
    let burst = "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n".repeat(n);
    c.send(burst.as_bytes());
    for _ in 0..n {
        assert_eq!(c.response("GET").unwrap().status, 200);
    }
    sigint(&s.pid());
    assert_eq!(s.exit_status().code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + n, "one line per response");
    let ids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(ids.len(), lines.len(), "request ids are unique");
    assert!(lines[2..]
        .iter()
        .all(|l| l.contains("\"GET /style.css HTTP/1.1\" 200 16 \"-\" \"-\" ")));
}

/// The next stderr line of `s` for which `pick` holds, as JSON.
fn log_event(s: &Server, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = s.stderr.recv_timeout(left).expect("the event in time");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if pick(&v) {
                return v;
            }
        }
    }
}

#[test]
fn serve_logs_protocol_errors_and_disconnects_with_their_ids() {
    let s = Server::start(&["--echo", "--log-format", "json"]);
    let mut bad = s.connect();
    bad.send(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: nope\r\n\r\n");
    assert_eq!(bad.response("GET").unwrap().status, 400);
    let e = log_event(&s, |v| v["fields"]["message"] == "protocol error");
    assert_eq!(e["level"], "INFO");
    assert_eq!(e["fields"]["status"], 400);
    assert!(e["fields"]["conn"].as_u64().unwrap() > 0, "{e}");

    let mut c = s.connect();
    let peer = c.stream.local_addr().unwrap();
    c.send(b"GET /_httpq/delay?ms=10000 HTTP/1.1\r\nHost: h\r\n\r\n");
    s.wait_stats("the delay to start", LIMIT, |now| {
        now["delays_in_flight"].as_u64() == Some(1)
    });
    drop(c);
    let e = log_event(&s, |v| v["fields"]["message"] == "client disconnected");
    assert_eq!(e["fields"]["peer"], peer.to_string());
    assert_eq!(e["fields"]["reason"], "client closed the connection");
    assert_eq!(e["fields"]["abandoned"], 1);
}

#[test]
fn an_open_dashboard_stream_does_not_hold_up_ctrl_c() {
    // The default grace (10 s) would be spent waiting for the stream.
    let mut s = Server::start(&["--echo"]);
    let mut c = s.connect();
    c.send(b"GET /_httpq/events HTTP/1.1\r\nHost: h\r\n\r\n");
    while !String::from_utf8_lossy(&c.buf).contains("data: ") {
        assert!(c.fill(), "the stream's first event");
    }
    let signalled = Instant::now();
    sigint(&s.pid());
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    c.buf.extend_from_slice(&rest);
    assert!(
        String::from_utf8_lossy(&c.buf).ends_with("0\r\n\r\n"),
        "the stream ends with its last chunk, not cut"
    );
    assert_eq!(s.exit_status().code(), Some(0));
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
}

/// An address of this machine that is not the loopback, if it has one
/// (connecting a UDP socket sends nothing; it only picks the route).
fn non_loopback_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn pages_that_show_other_clients_answer_only_the_loopback_unless_asked() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no address but the loopback");
        return;
    };
    let ask = |s: &Server, from: IpAddr, path: &str| {
        let mut c = common::Conn::open(SocketAddr::new(from, s.port));
        c.send(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        c.response("GET").unwrap().status
    };
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let s = Server::start_on(any, &["--echo"]);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(ask(&s, lo, "/_httpq/state"), 200);
    assert_eq!(ask(&s, ip, "/_httpq/state"), 403);
    assert_eq!(ask(&s, ip, "/_httpq/events"), 403);
    assert_eq!(
        ask(&s, ip, "/_httpq/metrics"),
        200,
        "no client details there"
    );
    assert_eq!(ask(&s, ip, "/_httpq/stats"), 200);
    drop(s);
    let s = Server::start_on(any, &["--echo", "--control-remote"]);
    assert_eq!(ask(&s, ip, "/_httpq/state"), 200);
}

#[test]
fn a_site_with_https_prefixes_serves_tls_with_its_own_certificate() {
    let dir = TempDir::new();
    let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    std::fs::create_dir_all(dir.0.join("www")).unwrap();
    std::fs::write(dir.0.join("www/t.txt"), "over tls").unwrap();
    let config = dir.0.join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "[[site]]\nprefixes = [\"https://localhost:{port}/s/\"]\nroot = \"www\"\ntls = {{ self_signed = true }}\n"
        ),
    )
    .unwrap();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    // A named host listens on every address (as http.sys does).
    let s = start_tls(&config, addr, &format!("https://0.0.0.0:{port}/"));
    let ca = std::env::temp_dir().join(format!("httpq-{port}.crt"));
    let url = format!("https://localhost:{port}/s/t.txt");
    let out = common::raw::httpq(&["get", "--cacert", ca.to_str().unwrap(), &url], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, b"over tls");
    // Without trusting it: curl's 60.
    let out = common::raw::httpq(&["get", &url], &[]);
    assert_eq!(out.code, Some(60));
    drop(s);
}

fn start_tls(config: &std::path::Path, addr: SocketAddr, listening: &str) -> Server {
    Server::spawn(&["--config", config.to_str().unwrap()], addr, listening)
}

#[test]
fn at_debug_a_connections_events_carry_its_span() {
    let s = Server::start(&["--echo", "--log-level", "debug", "--log-format", "json"]);
    let mut bad = s.connect();
    let peer = bad.stream.local_addr().unwrap();
    bad.send(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: nope\r\n\r\n");
    assert_eq!(bad.response("GET").unwrap().status, 400);
    let e = log_event(&s, |v| v["fields"]["message"] == "protocol error");
    assert_eq!(e["span"]["name"], "conn", "{e}");
    assert_eq!(e["span"]["id"], e["fields"]["conn"], "{e}");
    assert_eq!(e["span"]["peer"], peer.to_string(), "{e}");
}
