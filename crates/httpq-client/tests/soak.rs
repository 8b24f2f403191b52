//! Soak: 15 client sessions at once, non-stop for `HTTPQ_SOAK_SECS` (20 s
//! by default: the CI run; the long run is 600, see bench/RESULTS.md),
//! against nginx (when installed) and a misbehaving local server that cuts
//! bodies, stalls, sends garbage and closes early; with random timeouts
//! (each session draws its own, and sessions are replaced as they go),
//! closes from other tasks and dropped reads. Every request ends the way
//! its server made it end, with the right error; and afterwards no socket,
//! task or thread is left.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use httpq_client::{ClientError, Config, Session, Timeouts, Violation};
use support::*;
use tokio::time::Instant;

const SESSIONS: usize = 15;

fn soak_duration() -> Duration {
    let secs = std::env::var("HTTPQ_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    Duration::from_secs(secs.max(5))
}

/// The misbehaving server: `/b/{len}/{seed}` a patterned body (keep-alive);
/// `/cut/{len}` half the body, then a close; `/chunkcut` a chunked body
/// cut inside a chunk; `/stall/{len}` half the body, then silence;
/// `/silent` no answer at all; `/garbage` a head that is not HTTP;
/// `/early` a close before any byte; `/post` the upload's length and checksum.
fn misbehave(req: &Req) -> Vec<Step> {
    let parts: Vec<&str> = req.path.split('/').collect();
    let num = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0)
    };
    match parts[1] {
        "b" => vec![Step::Write(response("200 OK", "", pattern(num(2), num(3) as u64)))],
        "cut" => {
            let mut v = head(num(2));
            v.extend_from_slice(pattern(num(2) / 2, 0));
            vec![Step::Write(v), Step::Close]
        }
        "chunkcut" => vec![
            Step::Write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n10\r\n01234".to_vec()),
            Step::Close,
        ],
        "stall" => {
            let mut v = head(num(2));
            v.extend_from_slice(pattern(num(2) / 2, 0));
            vec![Step::Write(v), Step::Hold]
        }
        "silent" => vec![Step::Hold],
        "garbage" => vec![Step::Write(b"HTTP/1.1 2x0 What\r\n\r\n".to_vec()), Step::Close],
        "early" => vec![Step::Close],
        "post" => {
            let echo = format!("{} {}", req.body.len(), checksum(&req.body));
            vec![Step::Write(response("200 OK", "", echo.as_bytes()))]
        }
        _ => vec![Step::Write(response("404 Not Found", "", b""))],
    }
}

/// nginx on a free port serving `files`, if it is installed.
struct Nginx {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Nginx {
    fn start(files: &[(String, &[u8])]) -> Result<Nginx, String> {
        let which = Command::new("sh").args(["-c", "command -v nginx"]).output();
        if !which.is_ok_and(|o| o.status.success()) {
            return Err("nginx is not installed (apt-get install nginx-light)".into());
        }
        let dir = std::env::temp_dir().join(format!("httpq-soak-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).map_err(|e| e.to_string())?;
        for (name, bytes) in files {
            std::fs::write(dir.join("www").join(name), bytes).map_err(|e| e.to_string())?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; keepalive_requests 1000000;\n\
               server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        // Readable by nginx's unprivileged worker when run as root.
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&dir)
            .status();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let nginx = Nginx { child, dir, port };
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err("nginx did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sockets this process holds.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("socket:"))
        .count()
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[derive(Default)]
struct Tally {
    ops: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<String>>,
    sessions: AtomicU64,
}

impl Tally {
    fn count(&self, what: &'static str) {
        *self.ops.lock().unwrap().entry(what).or_default() += 1;
    }

    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// Whether `r` is how a request must end when it is closed from elsewhere:
/// finished before the close landed, cancelled, or refused as closed.
fn cancel_ok<T>(r: &Result<T, ClientError>) -> bool {
    matches!(
        r,
        Ok(_) | Err(ClientError::Cancelled | ClientError::InvalidState(_))
    )
}

/// A session with a random receive timeout (300-900 ms: short enough for
/// many stalls a run, long enough that a loaded machine does not trip it).
fn new_session(rng: &mut Rng, tally: &Tally) -> (Session, Duration) {
    let receive = Duration::from_millis(300 + rng.below(600));
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let s = Session::new(Config {
        timeouts: Timeouts {
            receive: Some(receive),
            ..Timeouts::default()
        },
        ..Config::default()
    })
    .unwrap();
    (s, receive)
}

async fn read_all(r: &mut httpq_client::RequestHandle) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// One request, picked at random, checked against how it must end.
async fn one_op(s: &Session, rng: &mut Rng, bad: &str, nginx: Option<&str>, tally: &Tally) {
    let seed = rng.below(250);
    let len = rng.below(300_000) as usize;
    let op = rng.below(11);
    let label = |what: &str, e: &dyn std::fmt::Debug| format!("{what}: {e:?}");
    match op {
        0 | 1 => {
            // A whole body, from nginx when there is one, else the bad server.
            let (base, path, expect): (&str, String, &[u8]) = match nginx {
                Some(n) if op == 0 => (
                    n,
                    format!("/f{}", seed % 8),
                    &NGINX_FILES[seed as usize % 8],
                ),
                _ => (bad, format!("/b/{len}/{seed}"), pattern(len, seed)),
            };
            tally.count(if op == 0 && nginx.is_some() {
                "nginx GET"
            } else {
                "GET"
            });
            match async {
                s.open_url(&format!("{base}{path}"), op)
                    .await?
                    .bytes()
                    .await
            }
            .await
            {
                Ok(b) if b[..] == *expect => {}
                other => tally.fail(label(&format!("GET {base}{path}"), &other.map(|b| b.len()))),
            }
        }
        2 => {
            tally.count("upload");
            let body = pattern(len, seed);
            let want = format!("{} {}", body.len(), checksum(body));
            let got = async {
                let mut r = s.request("POST", &format!("{bad}/post"), op)?;
                r.send(Some(Bytes::from_static(body))).await?;
                r.bytes().await
            }
            .await;
            if got.as_deref() != Ok(want.as_bytes()) {
                tally.fail(label("upload", &got));
            }
        }
        3 | 4 => {
            tally.count("cut short");
            let path = if op == 3 {
                format!("/cut/{}", len + 2)
            } else {
                "/chunkcut".into()
            };
            let got = async { s.open_url(&format!("{bad}{path}"), op).await?.bytes().await }.await;
            if !matches!(got, Err(ClientError::Protocol(Violation::ShortBody { .. }))) {
                tally.fail(label(&path, &got.map(|b| b.len())));
            }
        }
        5 | 6 => {
            tally.count("stall -> receive timeout");
            let path = if op == 5 {
                format!("/stall/{}", len + 2)
            } else {
                "/silent".into()
            };
            let got = async { s.open_url(&format!("{bad}{path}"), op).await?.bytes().await }.await;
            if !matches!(
                got,
                Err(ClientError::Timeout(httpq_client::TimeoutKind::Receive))
            ) {
                tally.fail(label(&path, &got.map(|b| b.len())));
            }
        }
        7 => {
            tally.count("garbage / early close");
            let (path, ok): (&str, fn(&ClientError) -> bool) = if rng.below(2) == 0 {
                ("/garbage", |e| {
                    matches!(e, ClientError::Protocol(Violation::Parse(_)))
                })
            } else {
                ("/early", |e| {
                    matches!(e, ClientError::Protocol(Violation::ClosedBeforeResponse))
                })
            };
            match s.open_url(&format!("{bad}{path}"), op).await {
                Err(e) if ok(&e) => {}
                other => tally.fail(label(path, &other.map(|r| r.status()))),
            }
        }
        8 => {
            // Closed from another task at a random moment (on a stall, so
            // that the close, not the server, ends it).
            tally.count("closed from elsewhere");
            let mut r = match s.request("GET", &format!("{bad}/stall/{}", len + 2), op) {
                Ok(r) => r,
                Err(e) => return tally.fail(label("request", &e)),
            };
            let closer = r.closer();
            let wait = Duration::from_micros(rng.below(20_000));
            let task = tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                closer.close();
            });
            let got = async {
                r.send(None).await?;
                read_all(&mut r).await
            }
            .await;
            // The receive timeout may fire first on a long wait.
            if !cancel_ok(&got) && !matches!(got, Err(ClientError::Timeout(_))) {
                tally.fail(label("closed from elsewhere", &got.map(|b| b.len())));
            }
            let _ = task.await;
        }
        9 => {
            // A read future dropped at a random point, then the handle.
            tally.count("read dropped");
            let url = format!("{bad}/b/{len}/{seed}");
            let yields = rng.below(50);
            let got = async {
                let mut r = s.open_url(&url, op).await?;
                tokio::select! {
                    b = read_all(&mut r) => b.map(|b| b.len() == len),
                    _ = async { for _ in 0..yields { tokio::task::yield_now().await } } => Ok(true),
                }
            }
            .await;
            if got != Ok(true) {
                tally.fail(label("read dropped", &got));
            }
        }
        _ => {
            // A total timeout shorter than the stall: Timeout(Total).
            tally.count("total timeout");
            let total = Duration::from_millis(20 + rng.below(80));
            let short = Session::new(Config {
                timeouts: Timeouts {
                    total: Some(total),
                    ..Timeouts::default()
                },
                ..Config::default()
            })
            .unwrap();
            let got = async {
                short
                    .open_url(&format!("{bad}/silent"), op)
                    .await?
                    .bytes()
                    .await
            }
            .await;
            if !matches!(
                got,
                Err(ClientError::Timeout(httpq_client::TimeoutKind::Total))
            ) {
                tally.fail(label("total timeout", &got.map(|b| b.len())));
            }
            short.close();
            if short.open_connections() != 0 {
                tally.fail("a closed session kept connections".into());
            }
        }
    }
}

static NGINX_FILES: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(|| {
    (0..8u64)
        .map(|i| pattern(1000 + 37_000 * i as usize, i * 31).to_vec())
        .collect()
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_sessions_non_stop() {
    let duration = soak_duration();
    let metrics = tokio::runtime::Handle::current().metrics();
    let (sockets_before, tasks_before, threads_before) =
        (open_sockets(), metrics.num_alive_tasks(), threads());

    let bad = Server::script(misbehave).await;
    let files: Vec<(String, &[u8])> = NGINX_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("f{i}"), f.as_slice()))
        .collect();
    let nginx = match Nginx::start(&files) {
        Ok(n) => Some(n),
        Err(why) => {
            eprintln!("skipping the nginx half of the client soak: {why}");
            None
        }
    };
    let nginx_url = nginx
        .as_ref()
        .map(|n| format!("http://127.0.0.1:{}", n.port));
    let bad_url = bad.url("");
    let tally = Arc::new(Tally::default());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..SESSIONS {
        let (tally, bad_url, nginx_url) = (tally.clone(), bad_url.clone(), nginx_url.clone());
        tasks.spawn(async move {
            let mut rng = Rng::new(seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            while Instant::now() < deadline {
                // A fresh session every few dozen requests: closing one is
                // part of the soak.
                let (s, _receive) = new_session(&mut rng, &tally);
                for _ in 0..10 + rng.below(40) {
                    one_op(&s, &mut rng, &bad_url, nginx_url.as_deref(), &tally).await;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                s.close();
                if s.open_connections() != 0 {
                    tally.fail(format!(
                        "{} connections left after close",
                        s.open_connections()
                    ));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a soak task panicked");
    }
    let ops = tally.ops.lock().unwrap().clone();
    println!(
        "client soak: {duration:?}, {SESSIONS} at once, {} sessions in all, seed {seed:#x}",
        tally.sessions.load(Ordering::Relaxed)
    );
    for (what, n) in &ops {
        println!("  {what:>26}: {n}");
    }
    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} requests ended wrongly (seed {seed:#x}); first: {:?}",
        failures.len(),
        &failures[..failures.len().min(8)]
    );
    assert!(ops.len() >= 8, "every kind of request ran: {ops:?}");

    drop(nginx);
    bad.stop().await;
    // Nothing is left: sockets, tasks, threads. Polled: a socket closes
    // and a task's slot is freed just after the events the test sees.
    let settled = tokio::time::timeout(PATIENCE, async {
        loop {
            if open_sockets() == sockets_before
                && metrics.num_alive_tasks() == tasks_before
                && threads() <= threads_before
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let now = (open_sockets(), metrics.num_alive_tasks(), threads());
    println!(
        "  sockets, tasks, threads: before {:?}, after {now:?}",
        (sockets_before, tasks_before, threads_before)
    );
    assert!(
        settled.is_ok(),
        "left behind: sockets, tasks, threads {now:?}, before {:?}",
        (sockets_before, tasks_before, threads_before)
    );
}
