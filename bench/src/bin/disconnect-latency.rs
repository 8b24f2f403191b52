//! How fast does wait_for_disconnect report a client leaving, with many
//! connections open? Opens N connections (default 10,000) from a child
//! process, each with a request the application holds without reading or
//! writing, arms one wait_for_disconnect future per connection, then has the
//! child close M of them one at a time — alternately with FIN and with RST —
//! and measures from the client's close() to the server-side waiter
//! completing. Two processes, because each may hold only `ulimit -n` files.
//! Usage: disconnect-latency [N] [M]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use httpq_server::{DisconnectReason, Properties, RequestQueue, ServerSession};

/// Wall-clock nanoseconds: comparable between the two processes.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The client side: connect, send, then close on command.
fn client(port: u16, n: usize) {
    let mut conns: Vec<Option<TcpStream>> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET /held HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        conns.push(Some(s));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut w = line.split(' ');
        let i: usize = w.next().unwrap().parse().unwrap();
        let reset = w.next() == Some("rst");
        let s = conns[i].take().unwrap();
        let port = s.local_addr().unwrap().port();
        if reset {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        let t0 = now_ns();
        drop(s);
        writeln!(out, "{port} {t0}").unwrap();
        out.flush().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--client") {
        return client(args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let m: usize = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
        .min(n);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let (listening_tx, listening_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<(u16, u64)>(); // (client port, connection id)
    let (gone_tx, gone_rx) = mpsc::channel::<(u64, u128, DisconnectReason)>();
    // The application the obvious way: a consumer on every worker, one
    // wait_for_disconnect future per held request, on that worker.
    let props = Properties {
        max_connections: n + 100,
        ..Properties::default()
    };
    let session = ServerSession::new(props).unwrap();
    let queue = RequestQueue::new("held");
    queue.set_limit(n + 100);
    let group = session.create_url_group();
    group.bind(&queue);
    group
        .add_url(&format!("http://127.0.0.1:{port}/"), 1)
        .unwrap();
    session.spawn_on_workers(move |_| {
        let (queue, held_tx, gone_tx) = (queue.clone(), held_tx.clone(), gone_tx.clone());
        async move {
            let mut held = Vec::new();
            while let Ok(req) = queue.receive().await {
                let conn = req.connection_id();
                let q = queue.clone();
                let tx = gone_tx.clone();
                tokio::spawn(async move {
                    if let Ok(reason) = q.wait_for_disconnect(conn).await {
                        let _ = tx.send((conn, now_ns(), reason));
                    }
                });
                let _ = held_tx.send((req.remote_addr().port(), conn));
                held.push(req); // held: never read, never answered
            }
        }
    });
    listening_tx.send(()).unwrap();
    listening_rx.recv().unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--client", &port.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(from_child.next().unwrap().unwrap(), "ready");
    let mut conn_of: HashMap<u16, u64> = HashMap::new();
    while conn_of.len() < n {
        let (p, c) = held_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("all requests held");
        conn_of.insert(p, c);
    }
    eprintln!("{n} connections open, each holding a request");

    let mut fin = Vec::new();
    let mut rst = Vec::new();
    for i in 0..m {
        let reset = i % 2 == 1;
        writeln!(to_child, "{i} {}", if reset { "rst" } else { "fin" }).unwrap();
        to_child.flush().unwrap();
        let reply = from_child.next().unwrap().unwrap();
        let (p, t0) = reply.split_once(' ').unwrap();
        let conn = conn_of[&p.parse::<u16>().unwrap()];
        let (c, t1, reason) = gone_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("disconnect reported");
        assert_eq!(c, conn, "the closed connection is the one reported");
        let expected = if reset {
            DisconnectReason::Reset
        } else {
            DisconnectReason::ClientClosed
        };
        assert_eq!(reason, expected);
        let us = (t1 as f64 - t0.parse::<f64>().unwrap()) / 1e3;
        if reset {
            rst.push(us)
        } else {
            fin.push(us)
        }
    }
    drop(to_child);
    let _ = child.wait();
    for (name, mut v) in [("FIN", fin), ("RST", rst)] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "{name}: samples={} p50={:.0}us p99={:.0}us max={:.0}us ({} connections open)",
            v.len(),
            pct(0.50),
            pct(0.99),
            v[v.len() - 1],
            n
        );
    }
}
