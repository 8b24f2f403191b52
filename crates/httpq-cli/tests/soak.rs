//! Soak, as the HTTP Server API's own stress test ("15 concurrent
//! instances running non-stop"): 15 clients against `httpq serve` (a
//! static site and `--echo`), mixing keep-alive GETs, uploads, pipelining,
//! and abrupt closes mid-request and mid-response, for `HTTPQ_SOAK_SECS`
//! (20 s by default: the CI run; the long run is 600, see
//! bench/RESULTS.md). Every legitimate exchange must succeed with the right
//! bytes; the servers' memory must be flat after warm-up; and once the
//! clients are gone, their descriptors must be back to the idle count.
//! Beside it, 15 `httpq get -o` at a time against `httpq serve` and a
//! misbehaving server: curl's exit code for each ending, no file left by
//! a failed transfer.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::raw::{httpq_get, read_request, RawServer, TempDir};
use common::*;

const CLIENTS: usize = 15;

fn soak_duration() -> Duration {
    let secs = std::env::var("HTTPQ_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    Duration::from_secs(secs.max(5))
}

/// A small deterministic generator (xorshift64*): the run is reproducible
/// from its seed, printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The files of the static site: under the in-memory limit (64 KiB), over
/// it (sent with sendfile), and large enough to be cut mid-response.
const FILES: [(&str, usize); 3] = [
    ("small.bin", 1024),
    ("mid.bin", 200 * 1024),
    ("big.bin", 4 << 20),
];

fn content(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ salt)
        .collect()
}

/// A site with the first `n` of [`FILES`], and their contents.
fn site_with(n: usize) -> (Site, Vec<Vec<u8>>) {
    let site = Site::new();
    let files = FILES[..n]
        .iter()
        .enumerate()
        .map(|(i, (name, len))| {
            let bytes = content(*len, i as u8);
            std::fs::write(site.root().join(name), &bytes).unwrap();
            bytes
        })
        .collect();
    (site, files)
}

/// When a sample was taken, and (RSS KiB, open fds) of the site and echo servers.
type Sample = (Duration, [(u64, usize); 2]);

/// Closes with a reset (SO_LINGER 0) instead of a FIN: the rudest way out.
fn reset(c: Conn) {
    let _ = socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO));
}

#[derive(Default)]
struct Tally {
    ops: [AtomicU64; 6],
    failures: Mutex<Vec<String>>,
}

const OP_NAMES: [&str; 6] = [
    "keep-alive GETs",
    "uploads",
    "pipelined GETs",
    "cut mid-request",
    "cut mid-response",
    "cut mid-head",
];

/// Where the clients go: addresses only (a `Server` stays with the test
/// thread).
struct Target<'a> {
    site: std::net::SocketAddr,
    echo: std::net::SocketAddr,
    files: &'a [Vec<u8>],
}

/// One legitimate or abusive exchange, picked at random. Returns a
/// description of what went wrong with a legitimate one.
fn one_op(t: &Target, rng: &mut Rng, tally: &Tally) -> Result<(), String> {
    let op = rng.below(6) as usize;
    tally.ops[op].fetch_add(1, Ordering::Relaxed);
    match op {
        0 => {
            let mut c = Conn::open(t.site);
            for _ in 0..1 + rng.below(20) {
                let f = rng.below(2) as usize;
                c.send(format!("GET /{} HTTP/1.1\r\nHost: soak\r\n\r\n", FILES[f].0).as_bytes());
                let r = c.response("GET").ok_or("keep-alive: connection ended")?;
                if r.status != 200 || r.body != t.files[f] {
                    return Err(format!(
                        "keep-alive GET /{}: {} with {} bytes",
                        FILES[f].0,
                        r.status,
                        r.body.len()
                    ));
                }
            }
        }
        1 => {
            let mut c = Conn::open(t.echo);
            for _ in 0..1 + rng.below(4) {
                let len = rng.below(256 * 1024) as usize;
                let body = content(len, rng.next() as u8);
                if rng.below(2) == 0 {
                    c.send(
                        format!("POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: {len}\r\n\r\n")
                            .as_bytes(),
                    );
                    c.send(&body);
                } else {
                    c.send(
                        b"POST /up HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n",
                    );
                    for piece in body.chunks(1 + rng.below(65536) as usize) {
                        c.send(format!("{:x}\r\n", piece.len()).as_bytes());
                        c.send(piece);
                        c.send(b"\r\n");
                    }
                    c.send(b"0\r\n\r\n");
                }
                let r = c.response("POST").ok_or("upload: connection ended")?;
                if r.status != 200 || r.body != body {
                    return Err(format!(
                        "upload of {len}: {} with {} bytes back",
                        r.status,
                        r.body.len()
                    ));
                }
            }
        }
        2 => {
            let mut c = Conn::open(t.site);
            let picks: Vec<usize> = (0..2 + rng.below(15))
                .map(|_| rng.below(2) as usize)
                .collect();
            let mut batch = Vec::new();
            for &f in &picks {
                batch.extend_from_slice(
                    format!("GET /{} HTTP/1.1\r\nHost: soak\r\n\r\n", FILES[f].0).as_bytes(),
                );
            }
            c.send(&batch);
            for (i, &f) in picks.iter().enumerate() {
                let r = c
                    .response("GET")
                    .ok_or_else(|| format!("pipelined {i}: connection ended"))?;
                if r.status != 200 || r.body != t.files[f] {
                    return Err(format!(
                        "pipelined {i} /{}: {} with {} bytes",
                        FILES[f].0,
                        r.status,
                        r.body.len()
                    ));
                }
            }
        }
        3 => {
            // An upload that stops partway, then a FIN or a reset.
            let mut c = Conn::open(t.echo);
            let len = 1 + rng.below(1 << 20);
            c.send(
                format!("POST /cut HTTP/1.1\r\nHost: soak\r\nContent-Length: {len}\r\n\r\n")
                    .as_bytes(),
            );
            // Bounded: were the server to stop reading, this must not hang.
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = c.stream.write_all(&content(rng.below(len) as usize, 7));
            if rng.below(2) == 0 {
                reset(c);
            }
        }
        4 => {
            // A large download read partway, then a FIN or a reset.
            let mut c = Conn::open(t.site);
            c.send(b"GET /big.bin HTTP/1.1\r\nHost: soak\r\n\r\n");
            let mut want = rng.below(1 << 20) as usize;
            let mut tmp = [0u8; 16 * 1024];
            while want > 0 {
                match c.stream.read(&mut tmp) {
                    Ok(0) | Err(_) => return Err("mid-response: the server ended first".into()),
                    Ok(n) => want = want.saturating_sub(n),
                }
            }
            if rng.below(2) == 0 {
                reset(c);
            }
        }
        _ => {
            // Half a head on either server.
            let mut c = Conn::open(if rng.below(2) == 0 { t.site } else { t.echo });
            let head = b"GET /small.bin HTTP/1.1\r\nHost: soak\r\nX-Long: 0123456789\r\n\r\n";
            c.send(&head[..1 + rng.below(head.len() as u64 - 2) as usize]);
            if rng.below(2) == 0 {
                reset(c);
            }
        }
    }
    Ok(())
}

#[test]
fn fifteen_clients_non_stop() {
    let duration = soak_duration();
    let warm_up = duration * 2 / 5;
    let (site_dir, files) = site_with(FILES.len());
    let site = Server::serve(&site_dir.root());
    let echo = Server::start(&["--echo"]);
    // Descriptors before any client: listeners, the runtime's, logs.
    let idle_fds = [footprint(&site.pid()).1, footprint(&echo.pid()).1];

    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let samples: Mutex<Vec<Sample>> = Mutex::new(Vec::new());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let started = Instant::now();
    let target = Target {
        site: site.addr,
        echo: echo.addr,
        files: &files,
    };
    std::thread::scope(|scope| {
        for n in 0..CLIENTS {
            let (target, tally, stop) = (&target, &tally, &stop);
            scope.spawn(move || {
                let mut rng = Rng(seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = one_op(target, &mut rng, tally) {
                        tally.failures.lock().unwrap().push(e);
                    }
                }
            });
        }
        let (site_pid, echo_pid) = (site.pid(), echo.pid());
        while started.elapsed() < duration {
            std::thread::sleep(Duration::from_millis(250));
            let now = [footprint(&site_pid), footprint(&echo_pid)];
            samples.lock().unwrap().push((started.elapsed(), now));
        }
        stop.store(true, Ordering::Relaxed);
    });

    let samples = samples.into_inner().unwrap();
    let ops: Vec<u64> = tally
        .ops
        .iter()
        .map(|o| o.load(Ordering::Relaxed))
        .collect();
    let failures = tally.failures.into_inner().unwrap();
    println!("soak: {:?}, 15 clients, seed {seed:#x}", duration);
    for (name, n) in OP_NAMES.iter().zip(&ops) {
        println!("  {name:>17}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} legitimate exchanges failed (seed {seed:#x}); first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        ops.iter().all(|&n| n > 0),
        "every kind of exchange ran: {ops:?}"
    );

    // Memory: the peak after warm-up's first half against its second half.
    for (i, name) in ["static", "echo"].iter().enumerate() {
        let after: Vec<(Duration, u64)> = samples
            .iter()
            .filter(|(t, _)| *t >= warm_up)
            .map(|(t, s)| (*t, s[i].0))
            .collect();
        let half = after.len() / 2;
        let first = after[..half].iter().map(|s| s.1).max().unwrap_or(0);
        let second = after[half..].iter().map(|s| s.1).max().unwrap_or(0);
        let start = samples.first().map_or(0, |s| s.1[i].0);
        println!(
            "  {name}: RSS {start} KiB at start, peak {first} KiB then {second} KiB after warm-up"
        );
        // Flat: the later half may not grow past the earlier by more than
        // 10 % plus 2 MiB (allocator arenas settle in steps).
        assert!(
            second <= first + first / 10 + 2048,
            "{name}: RSS grew after warm-up: {first} KiB -> {second} KiB (seed {seed:#x})"
        );
    }
    // Descriptors: back to the idle count once the clients are gone.
    for (i, s) in [&site, &echo].into_iter().enumerate() {
        let peak = samples.iter().map(|x| x.1[i].1).max().unwrap_or(0);
        wait_for_fds(s, idle_fds[i]);
        println!(
            "  fds: {} idle, {peak} at the peak, back to {}",
            idle_fds[i], idle_fds[i]
        );
    }
}

/// Polls (bounded by [`LIMIT`]) until the server holds `idle` descriptors
/// again: every client connection seen closed.
fn wait_for_fds(s: &Server, idle: usize) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (_, fds) = footprint(&s.pid());
        if fds == idle {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors stayed open: {fds}, idle {idle}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The misbehaving server of the download soak, on one connection:
/// `/cut` and `/chunkcut` end the body early, `/garbage` is not HTTP,
/// `/early` closes before a byte, `/stall` sends half and goes silent.
fn misbehave(stream: std::net::TcpStream) {
    let mut r = std::io::BufReader::new(stream.try_clone().unwrap());
    let Some(req) = read_request(&mut r) else {
        return;
    };
    let mut w = stream;
    let _ = match req.path() {
        "/cut" => w
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            .and_then(|()| w.write_all(&content(50_000, 3))),
        "/chunkcut" => w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n10\r\n0123"),
        "/garbage" => w.write_all(b"HTTP/1.1 2x0 What\r\n\r\n"),
        "/stall" => {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            // Silent until the client gives up (its --max-time).
            let mut sink = [0u8; 64];
            while matches!(r.get_mut().read(&mut sink), Ok(n) if n > 0) {}
            Ok(())
        }
        _ => Ok(()), // "/early": closed at once
    };
}

/// `httpq get -o` from 15 threads at once, non-stop: whole files from
/// `httpq serve`, and every way the misbehaving server ends a transfer.
/// Each run must exit with curl's code for what happened, and a failed
/// one must leave no file, not even a temporary one.
#[test]
fn fifteen_downloads_non_stop() {
    let duration = soak_duration() / 2;
    let (site_dir, files) = site_with(2);
    let site = Server::serve(&site_dir.root());
    let bad = RawServer::start(misbehave);
    // (path on the bad server, curl's exit code for it)
    let cases: [(&str, i32); 5] = [
        ("/cut", 18),
        ("/chunkcut", 18),
        ("/garbage", 8),
        ("/early", 52),
        ("/stall", 28),
    ];
    let runs = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let site_url = site.url("");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for n in 0..CLIENTS {
            let (site, bad, files, runs, failures) = (&site_url, &bad, &files, &runs, &failures);
            scope.spawn(move || {
                let dest = TempDir::new();
                let mut rng = Rng(0x5eed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                while started.elapsed() < duration {
                    runs.fetch_add(1, Ordering::Relaxed);
                    let file = dest.path().join("out.bin");
                    let pick = rng.below(cases.len() as u64 + 2) as usize;
                    let (url, want) = match cases.get(pick) {
                        Some((path, code)) => (bad.url(path), *code),
                        None => (format!("{site}/{}", FILES[pick - cases.len()].0), 0),
                    };
                    // Only the stall waits for --max-time; elsewhere a
                    // loaded machine must not turn an answer into exit 28.
                    let max_time = if url.ends_with("/stall") { "0.5" } else { "20" };
                    let out = httpq_get(&[
                        "-s",
                        "--max-time",
                        max_time,
                        "-o",
                        file.to_str().unwrap(),
                        &url,
                    ]);
                    let left = dest.names();
                    let wrong = if out.code != Some(want) {
                        Some(format!(
                            "{url}: exit {:?}, want {want}: {}",
                            out.code,
                            out.stderr.trim()
                        ))
                    } else if want != 0 && !left.is_empty() {
                        Some(format!("{url}: exit {want} left {left:?}"))
                    } else if want == 0
                        && (left != ["out.bin"]
                            || std::fs::read(&file).ok().as_ref()
                                != Some(&files[pick - cases.len()]))
                    {
                        Some(format!("{url}: the file is not the served one: {left:?}"))
                    } else {
                        None
                    };
                    if let Some(w) = wrong {
                        failures.lock().unwrap().push(w);
                    }
                    let _ = std::fs::remove_file(&file);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "download soak: {:?}, {CLIENTS} at once, {} runs of httpq get",
        duration,
        runs.load(Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "{} runs ended wrongly; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
