//! `/_httpq/metrics` and `httpq state` against a running `httpq serve`:
//! the counters equal the traffic sent, promtool accepts the page, and the state shows a held request.

mod common;
#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Conn, Server, Site, LIMIT};

/// One sample of the exposition: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text page (the subset httpq writes: no
/// timestamps, no escapes in label values).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = inner
                        .split(',')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').expect("label=value");
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The page's samples, with lookups.
struct Page(Vec<Sample>);

impl Page {
    fn series(&self, name: &str) -> Vec<&Sample> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    /// The value of `name` with exactly `labels`; 0 when the series is absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map_or(0.0, |s| s.value)
    }

    fn sum(&self, name: &str) -> f64 {
        self.series(name).iter().map(|s| s.value).sum()
    }

    /// Every `httpq_requests_total` series, as (method, class) → count.
    fn requests(&self) -> BTreeMap<(String, String), u64> {
        self.series("httpq_requests_total")
            .into_iter()
            .map(|s| {
                (
                    (s.labels["method"].clone(), s.labels["class"].clone()),
                    s.value as u64,
                )
            })
            .collect()
    }
}

/// One scrape over `conn` (kept alive, so each scrape is parsed only
/// after the one before it was answered in full): the page text and its body length.
fn scrape(conn: &mut Conn) -> (String, usize) {
    conn.send(b"GET /_httpq/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = conn.response("GET").expect("a metrics response");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    (r.text(), r.body.len())
}

fn expected(pairs: &[((&str, &str), u64)]) -> BTreeMap<(String, String), u64> {
    pairs
        .iter()
        .map(|&((m, c), n)| ((m.to_string(), c.to_string()), n))
        .collect()
}

#[test]
fn metrics_count_the_traffic_exactly_and_not_the_scrape_itself() {
    let site = Site::new();
    let server = Server::serve(&site.root());
    // Body bytes of every response the test reads: what
    // httpq_response_bytes_total must come to.
    let mut body_bytes = 0usize;
    for _ in 0..7 {
        let r = server.get("/notes.txt");
        assert_eq!(r.status, 200);
        body_bytes += r.body.len();
    }
    for _ in 0..3 {
        let r = server.get("/no-such-file");
        assert_eq!(r.status, 404);
        body_bytes += r.body.len();
    }
    for _ in 0..2 {
        let r = server
            .ask("POST /notes.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(r.status, 405);
        body_bytes += r.body.len();
    }
    for _ in 0..4 {
        let r = server.get("/_httpq/stats");
        assert_eq!(r.status, 200);
        body_bytes += r.body.len();
    }

    // The traffic's connections are closed, but their responses are
    // recorded by the workers as they finish: scrape until all 16 are in.
    // Every earlier scrape on this connection counts as one more GET 2xx.
    let mut conn = server.connect();
    let deadline = Instant::now() + LIMIT;
    let mut scrapes = 0u64;
    let (page, text) = loop {
        let (text, len) = scrape(&mut conn);
        let page = Page(parse(&text));
        let want = expected(&[
            (("GET", "2xx"), 7 + 4 + scrapes),
            (("GET", "4xx"), 3),
            (("POST", "4xx"), 2),
        ]);
        let got = page.requests();
        if got == want {
            break (page, text);
        }
        // Fewer is a response not recorded yet; anything else is wrong.
        for (k, n) in &got {
            assert!(
                want.get(k).is_some_and(|w| n <= w),
                "{k:?} = {n}, more than sent: {got:?} vs {want:?}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "counts never matched: {got:?} vs {want:?}"
        );
        scrapes += 1;
        body_bytes += len;
    };
    let total = page.sum("httpq_requests_total");
    assert_eq!(total as u64, 16 + scrapes);

    // The histogram counts every completed response once, in cumulative buckets.
    let buckets = page.series("httpq_request_duration_seconds_bucket");
    assert!(buckets.len() >= 2, "{buckets:?}");
    let mut last = (f64::NEG_INFINITY, 0.0);
    for b in &buckets {
        let le: f64 = match b.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        assert!(le > last.0, "bounds ascend: {buckets:?}");
        assert!(b.value >= last.1, "buckets are cumulative: {buckets:?}");
        last = (le, b.value);
    }
    assert_eq!(last.0, f64::INFINITY, "the last bucket is +Inf");
    assert_eq!(last.1, total);
    assert_eq!(page.get("httpq_request_duration_seconds_count", &[]), total);
    let sum = page.get("httpq_request_duration_seconds_sum", &[]);
    assert!(sum > 0.0 && sum < total * 5.0, "duration sum {sum}");

    assert_eq!(
        page.get("httpq_response_bytes_total", &[]) as usize,
        body_bytes,
        "response body bytes"
    );
    assert!(page.get("httpq_sent_bytes_total", &[]) as usize > body_bytes);
    assert!(page.get("httpq_received_bytes_total", &[]) > 0.0);
    assert!(page.get("httpq_connections_open", &[]) >= 1.0);
    // This scrape is the one request in flight.
    assert_eq!(page.get("httpq_requests_in_flight", &[]), 1.0);
    for t in [
        "entity_body",
        "drain_entity_body",
        "request_queue",
        "idle_connection",
        "header_wait",
        "min_send_rate",
    ] {
        let s = page
            .series("httpq_timeouts_total")
            .into_iter()
            .find(|s| s.labels["timeout"] == t)
            .unwrap_or_else(|| panic!("no httpq_timeouts_total{{timeout={t:?}}}:\n{text}"));
        assert_eq!(s.value, 0.0);
    }
    for reason in ["client_closed", "reset", "write_failed", "timeout"] {
        assert!(
            page.series("httpq_disconnects_total")
                .iter()
                .any(|s| s.labels["reason"] == reason),
            "no disconnect reason {reason}:\n{text}"
        );
    }
    for q in ["static", "control"] {
        for family in [
            "httpq_request_queue_length",
            "httpq_request_queue_consumers",
            "httpq_request_queue_in_flight",
        ] {
            assert!(
                page.series(family).iter().any(|s| s.labels["queue"] == q),
                "no {family}{{queue={q:?}}}:\n{text}"
            );
        }
    }
    assert_eq!(
        page.get("httpq_request_queue_in_flight", &[("queue", "control")]),
        1.0
    );
    for family in [
        "httpq_tls_handshakes_total",
        "httpq_tls_handshake_failures_total",
        "httpq_h2_streams_total",
        "httpq_h2_resets_total",
        "httpq_protocol_errors_total",
        "httpq_queue_rejections_total",
    ] {
        assert_eq!(page.series(family).len(), 1, "{family}:\n{text}");
    }

    // Two more scrapes: each shows the one before it, never itself.
    let mut before = page;
    for _ in 0..2 {
        let (text, _) = scrape(&mut conn);
        let now = Page(parse(&text));
        let mut want = before.requests();
        *want
            .get_mut(&("GET".to_string(), "2xx".to_string()))
            .unwrap() += 1;
        assert_eq!(now.requests(), want, "the scrape before, and not this one");
        before = now;
    }

    promtool_accepts(&text);
}

/// `promtool check metrics` prints nothing and exits 0 on the page: no
/// errors, no lint warnings.
fn promtool_accepts(text: &str) {
    let Some(promtool) = tools::find_or_install(&["promtool"], "prometheus", "promtool check")
    else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed: {said}\n{text}");
    assert_eq!(said, "", "promtool has something to say:\n{text}");
}

// ------------------------------------------------------------ httpq state

/// Runs `httpq state ARGS`: (exit code, stdout, stderr, how long it took).
fn state(args: &[&str]) -> (i32, String, String, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_httpq"))
        .arg("state")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run httpq state");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn state_json(base: &str) -> serde_json::Value {
    let (code, out, err, _) = state(&["--json", "--url", base]);
    assert_eq!(code, 0, "httpq state failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A request held on `/_httpq/delay` over a raw socket.
fn hold_delay(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /_httpq/delay?ms=5000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    s
}

#[test]
fn state_shows_the_connection_of_a_held_request() {
    let site = Site::new();
    let server = Server::serve(&site.root());
    let base = format!("http://{}", server.addr);
    let held = hold_delay(&server);
    let peer = held.local_addr().unwrap().to_string();

    // The request reaches its handler asynchronously: look until it does.
    let deadline = Instant::now() + LIMIT;
    let (s, conn) = loop {
        let s = state_json(&base);
        let found = s["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["peer"] == peer.as_str() && !c["current_request"].is_null())
            .cloned();
        if let Some(c) = found {
            break (s, c);
        }
        assert!(
            Instant::now() < deadline,
            "no held connection from {peer}: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(conn["state"], "active", "{conn:#}");
    assert_eq!(conn["protocol"], "HTTP/1.1", "{conn:#}");
    assert!(conn["id"].as_u64().is_some(), "{conn:#}");
    let path = conn["current_request"]["path"].as_str().unwrap();
    assert!(path.starts_with("/_httpq/delay"), "{conn:#}");
    assert_eq!(conn["current_request"]["method"], "GET");

    let groups = s["url_groups"].as_array().unwrap();
    let prefixes: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["prefixes"].as_array().unwrap())
        .map(|p| p["url"].as_str().unwrap())
        .collect();
    let root = format!("http://{}/", server.addr);
    let control = format!("http://{}/_httpq/", server.addr);
    assert!(prefixes.contains(&root.as_str()), "{prefixes:?}");
    assert!(prefixes.contains(&control.as_str()), "{prefixes:?}");
    for g in groups {
        let t = &g["timeouts"];
        for key in [
            "entity_body",
            "drain_entity_body",
            "request_queue",
            "idle_connection",
            "header_wait",
        ] {
            let d = t[key].as_str().unwrap_or_else(|| panic!("{key}: {t}"));
            assert!(
                d.ends_with('s') || d.ends_with('m') || d.ends_with('h'),
                "{key}: {d}"
            );
        }
        assert_eq!(t["min_send_rate"], 150);
    }
    // serve's default --header-wait is 120 s.
    assert_eq!(s["session"]["properties"]["timeouts"]["header_wait"], "2m");
    let queues = s["request_queues"].as_array().unwrap();
    let control_q = queues
        .iter()
        .find(|q| q["name"] == "control")
        .expect("control queue");
    assert!(control_q["in_flight"].as_u64().unwrap() >= 1, "{control_q}");
    assert!(queues.iter().any(|q| q["name"] == "static"), "{queues:?}");

    let (code, text, err, _) = state(&["--url", &base]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("Peer: {peer}")), "{text}");
    assert!(text.contains(&control), "{text}");
    assert!(
        text.contains("Current request:") && text.contains("/_httpq/delay"),
        "{text}"
    );
    assert!(text.contains("Request queue: control"), "{text}");
    drop(held);
}

#[test]
fn state_exits_7_when_nothing_listens() {
    let port = common::free_port("127.0.0.1".parse().unwrap());
    let (code, out, err, _) = state(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 7, "stdout {out:?}, stderr {err:?}");
    assert!(out.is_empty());
    assert!(!err.is_empty());
}

#[test]
fn state_answers_within_a_second_under_load() {
    let site = Site::new();
    let server = Server::serve(&site.root());
    let base = format!("http://{}", server.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, addr) = (stop.clone(), done.clone(), server.addr);
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                while !stop.load(Ordering::Relaxed) {
                    c.send(b"GET /notes.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    let r = c.response("GET").expect("a response under load");
                    assert_eq!(r.status, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // The load is running once requests are being answered.
    let deadline = Instant::now() + LIMIT;
    while done.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "the load never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = (Instant::now(), done.load(Ordering::Relaxed));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let (code, out, err, took) = state(&["--json", "--url", &base]);
        assert_eq!(code, 0, "{err}");
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(s["connections"].as_array().unwrap().len() >= 4, "{s:#}");
        slowest = slowest.max(took);
    }
    let rate = (done.load(Ordering::Relaxed) - start.1) as f64 / start.0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    eprintln!("httpq state: slowest {slowest:?} of 5 under {rate:.0} requests/s");
    assert!(
        rate >= 200.0,
        "the load was too light to mean anything: {rate:.0}/s"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "httpq state took {slowest:?}"
    );
}
