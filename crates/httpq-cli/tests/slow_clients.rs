//! `httpq serve` against slow and crowding clients: the http.sys timeouts
//! as flags (HeaderWait, EntityBody), the connection limit, and memory
//! given back when a crowd of slow clients leaves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Sends `bytes` one at a time, `gap` apart, until the server ends the
/// connection; returns how long that took and what it answered.
fn trickle_until_closed(c: &mut Conn, bytes: &[u8], gap: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    c.stream.set_read_timeout(Some(gap)).unwrap();
    for b in bytes.iter().cycle() {
        if c.stream.write_all(&[*b]).is_err() {
            break;
        }
        let mut tmp = [0u8; 4096];
        match c.stream.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => c.buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        assert!(started.elapsed() < LIMIT, "still open after {LIMIT:?}");
    }
    (started.elapsed(), c.buf.to_vec())
}

#[test]
fn header_wait_cuts_a_trickled_head() {
    let s = Server::start(&["--echo", "--header-wait", "1"]);
    let mut c = s.connect();
    // A head that never ends: one more header byte every 100 ms.
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\n");
    let (took, answer) = trickle_until_closed(&mut c, b"X-a: b\r\n", Duration::from_millis(100));
    assert!(took >= Duration::from_millis(900), "cut early: {took:?}");
    assert!(took < Duration::from_secs(4), "cut late: {took:?}");
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // Others are served meanwhile and after.
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn entity_body_cuts_a_stalled_body() {
    let s = Server::start(&["--echo", "--entity-body", "1"]);
    let mut c = s.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab");
    let started = Instant::now();
    // The body stops after two bytes: the connection ends about 1 s later.
    let answered = c.response("POST");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "cut early: {took:?}");
    assert!(took < Duration::from_secs(4), "cut late: {took:?}");
    assert!(
        answered.is_none_or(|r| r.status >= 400),
        "a stalled body is not answered 2xx"
    );
}

#[test]
fn max_connections_holds_new_clients_until_one_leaves() {
    let s = Server::start(&["--echo", "--max-connections", "1"]);
    let mut first = s.connect();
    first.send(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(first.response("GET").unwrap().status, 200);
    // The second connects (the kernel's backlog takes it) but waits.
    let mut second = s.connect();
    second.send(b"GET /two HTTP/1.1\r\nHost: h\r\n\r\n");
    second
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut tmp = [0u8; 64];
    let early = second.stream.read(&mut tmp);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "served beyond --max-connections 1: {early:?}"
    );
    second.stream.set_read_timeout(Some(LIMIT)).unwrap();
    drop(first);
    assert_eq!(
        second
            .response("GET")
            .expect("served once the first left")
            .status,
        200
    );
}

#[test]
fn slow_client_flags_reject_zero_and_absurd_timeouts() {
    for flag in [
        "--header-wait",
        "--entity-body",
        "--idle-timeout",
        "--min-send-rate",
        "--max-connections",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_httpq"))
            .args(["serve", "--echo", flag, "0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} 0: {out:?}");
    }
    // A deadline a century away would overflow the clock: refused, not a panic.
    for flag in ["--header-wait", "--entity-body", "--idle-timeout"] {
        let out = Command::new(env!("CARGO_BIN_EXE_httpq"))
            .args(["serve", "--echo", flag, "3153600000"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} a century: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{flag}: {out:?}"
        );
    }
}

/// A thousand clients that each sent half a request head hold memory (a
/// read buffer each); when they leave, the server's descriptors return to
/// what they were and it gives at least half the memory back (measured:
/// about two thirds; the rest is fragments pinned by live allocations).
/// (glibc only: other C libraries return memory their own way.)
#[cfg(target_env = "gnu")]
#[test]
fn memory_goes_back_when_a_crowd_of_slow_clients_leaves() {
    const CROWD: usize = 1000;
    // This process holds the crowd's sockets (the server raises its own
    // limit); a soft limit of 1024 would not be enough.
    let limit = rlimit::increase_nofile_limit(4096).unwrap();
    assert!(limit as usize > CROWD + 64, "open-file limit {limit}");
    let s = Server::start(&["--echo"]);
    assert_eq!(s.get("/warm-up").status, 200);
    let pid = s.pid();
    let (rss0, fds0) = footprint(&pid);
    let crowd: Vec<TcpStream> = (0..CROWD)
        .map(|i| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            let head = format!(
                "GET /slow/{i} HTTP/1.1\r\nHost: h\r\nX-Pad: {}",
                "p".repeat(2000)
            );
            c.write_all(head.as_bytes()).unwrap();
            c
        })
        .collect();
    let held = wait_for(|| {
        let (rss, fds) = footprint(&pid);
        // fds0 may have counted a descriptor of the warm-up's that is gone.
        (fds + 2 >= fds0 + CROWD).then_some(rss)
    })
    .expect("the server took every connection");
    let grew = held.saturating_sub(rss0);
    assert!(
        grew >= 2048,
        "a crowd of {CROWD} grew RSS by only {grew} KiB"
    );
    drop(crowd);
    wait_for(|| (footprint(&pid).1 <= fds0).then_some(()))
        .expect("descriptors back to where they were");
    // Memory is given back within a few seconds (a look once a second).
    let back = wait_for(|| {
        let rss = footprint(&pid).0;
        (rss <= rss0 + grew / 2).then_some(rss)
    });
    assert!(
        back.is_some(),
        "RSS {rss0} KiB before, {held} KiB with the crowd, {} KiB after it left",
        footprint(&pid).0
    );
}

/// Polls `f` every 20 ms until it gives a value, for up to [`LIMIT`].
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
