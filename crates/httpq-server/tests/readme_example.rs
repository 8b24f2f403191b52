//! The README's example application is `examples/echo.rs`, word for word,
//! and it works: started on a free port, it echoes bodies that came whole
//! with their request and bodies that did not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const EXAMPLE: &str = include_str!("../examples/echo.rs");
const README: &str = include_str!("../../../README.md");

#[test]
fn the_readme_shows_the_example_verbatim() {
    let code = &EXAMPLE[EXAMPLE
        .find("use httpq_server")
        .expect("the example's first line")..];
    assert!(
        README.contains(code),
        "README.md must show examples/echo.rs from its `use` line on, unchanged"
    );
}

fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    // One response: the head, then Content-Length bytes.
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("a Content-Length")
                .parse()
                .unwrap();
            if out.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[test]
fn the_example_echoes() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/echo");
    if !example.exists() {
        println!(
            "skipped: {} is not built (cargo test builds it)",
            example.display()
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&example)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"listening on htt");
    let small = exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\nHello, World!",
    );
    assert!(small.starts_with("HTTP/1.1 200 OK\r\n"), "{small}");
    assert!(small.ends_with("\r\n\r\nHello, World!"), "{small}");
    // Larger than what travels with the request: read in a task.
    let body = "x".repeat(200_000);
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    let big = exchange(port, &req);
    assert!(big.ends_with(&body), "the whole body echoed");
    let _ = child.kill();
    let _ = child.wait();
}
