//! `httpq serve` over TLS and HTTP/2, as users reach it: HTTPS in one
//! flag, `httpq get --cacert`/`-k` against it, curl over h2 (TLS and
//! prior knowledge) and HTTP/1.1 over TLS, a certificate reloaded on
//! SIGHUP, and `/_httpq/delay` abandoned when its h2 stream is reset.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{raw::TempDir, Server, LIMIT};

fn httpq_get(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_httpq"))
        .arg("get")
        .args(args)
        .output()
        .expect("run httpq get")
}

/// curl, if this machine has it (installed by `.ci/run`); else the reason
/// the test is skipped, printed.
fn curl() -> Option<&'static str> {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("nghttp2")
        });
    if !ok {
        eprintln!("SKIP: curl with HTTP/2 (nghttp2) is not installed");
    }
    ok.then_some("curl")
}

/// A site with a 1 MiB file and a small one.
fn site() -> (TempDir, Vec<u8>) {
    let dir = TempDir::new();
    let big: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("small.txt"), b"small\n").unwrap();
    (dir, big)
}

/// The stderr line of `serve` that contains `what` (waits for it).
fn stderr_line(s: &Server, what: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = s
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no stderr line with {what:?}"));
        if line.contains(what) {
            return line;
        }
    }
}

/// The path of the self-signed certificate `serve` announced.
fn announced_cert(s: &Server) -> PathBuf {
    let line = stderr_line(s, "--cacert");
    let at = line.find("--cacert ").unwrap() + "--cacert ".len();
    PathBuf::from(line[at..].split_whitespace().next().unwrap())
}

/// `/_httpq/stats` over TLS, through `httpq get -k`.
fn tls_stats(port: u16) -> serde_json::Value {
    let out = httpq_get(&[
        "-s",
        "-k",
        &format!("https://127.0.0.1:{port}/_httpq/stats"),
    ]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn https_in_one_flag_and_httpq_get_trusts_it_with_cacert_or_k() {
    let (dir, big) = site();
    let s = Server::start(&["--tls-self-signed", dir.path().to_str().unwrap()]);
    assert_eq!(
        s.listening,
        format!("listening on https://127.0.0.1:{}/", s.port)
    );
    let fingerprint = stderr_line(&s, "SHA-256");
    assert_eq!(
        fingerprint.rsplit(' ').next().unwrap().split(':').count(),
        32
    );
    let ca = announced_cert(&s);
    let out_file = dir.path().join("got.bin");
    let url = format!("https://localhost:{}/big.bin", s.port);
    let out = httpq_get(&[
        "-s",
        "--cacert",
        ca.to_str().unwrap(),
        &url,
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read(&out_file).unwrap() == big,
        "the download differs"
    );
    // Not trusted: curl's 60.
    let out = httpq_get(&["-s", &url, "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(60), "{out:?}");
    // -k: encrypted, not authenticated.
    let out = httpq_get(&[
        "-s",
        "-k",
        &format!("https://127.0.0.1:{}/small.txt", s.port),
    ]);
    assert_eq!(out.stdout, b"small\n");
    let stats = tls_stats(s.port);
    assert!(stats["tls_handshakes"].as_u64().unwrap() >= 2, "{stats}");
    assert!(
        stats["tls_handshake_failures"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

fn run_curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().expect("run curl")
}

#[test]
fn curl_speaks_h2_over_tls_and_http11_over_tls() {
    let Some(curl) = curl() else { return };
    let (dir, big) = site();
    let s = Server::start(&["--tls-self-signed", dir.path().to_str().unwrap()]);
    let ca = announced_cert(&s);
    let got = dir.path().join("curl.bin");
    let url = format!("https://localhost:{}/big.bin", s.port);
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new(curl)
            .args(["-s", flag, "--cacert", ca.to_str().unwrap(), "-o"])
            .arg(&got)
            .args(["-w", "%{http_version} %{http_code}", &url])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{version} 200"),
            "{out:?}"
        );
        assert!(
            std::fs::read(&got).unwrap() == big,
            "{flag}: the body differs"
        );
    }
    let stats = tls_stats(s.port);
    assert!(stats["h2_streams"].as_u64().unwrap() >= 1, "{stats}");
}

#[test]
fn curl_h2_prior_knowledge_echoes_a_mebibyte_post_byte_exact() {
    if curl().is_none() {
        return;
    }
    let (dir, big) = site();
    let s = Server::start(&["--echo"]);
    let upload = dir.path().join("big.bin");
    let echoed = dir.path().join("echoed.bin");
    let out = run_curl(&[
        "-s",
        "--http2-prior-knowledge",
        "--data-binary",
        &format!("@{}", upload.display()),
        "-o",
        echoed.to_str().unwrap(),
        "-w",
        "%{http_version} %{http_code}",
        &s.url("/echo"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");
    assert!(std::fs::read(&echoed).unwrap() == big, "the echo differs");
    // HTTP/1.1 on the same port still works.
    assert_eq!(s.get("/_httpq/stats").status, 200);
    assert_eq!(s.stat("h2_streams"), 1);
}

/// Makes a certificate for localhost into `dir/NAME.{crt,key}`.
fn cert_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&crt, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (crt, key)
}

#[test]
fn sighup_reloads_the_certificate_files_and_a_bad_file_keeps_the_old() {
    let (dir, _) = site();
    let (old_crt, old_key) = cert_files(dir.path(), "old");
    let (live_crt, live_key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&old_crt, &live_crt).unwrap();
    std::fs::copy(&old_key, &live_key).unwrap();
    let s = Server::start(&[
        "--tls-cert",
        live_crt.to_str().unwrap(),
        "--tls-key",
        live_key.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    stderr_line(&s, "SHA-256");
    let url = format!("https://localhost:{}/small.txt", s.port);
    let with_ca = |ca: &Path| {
        httpq_get(&["-s", "--cacert", ca.to_str().unwrap(), &url])
            .status
            .code()
    };
    assert_eq!(with_ca(&old_crt), Some(0));
    // New files, then SIGHUP.
    let (new_crt, new_key) = cert_files(dir.path(), "new");
    std::fs::copy(&new_crt, &live_crt).unwrap();
    std::fs::copy(&new_key, &live_key).unwrap();
    let hup = |pid: &str| {
        assert!(Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .unwrap()
            .success());
    };
    hup(&s.pid());
    stderr_line(&s, "certificate reloaded");
    assert_eq!(with_ca(&new_crt), Some(0));
    assert_eq!(with_ca(&old_crt), Some(60));
    // A key that does not load: the running certificate stays.
    std::fs::write(&live_key, "not a key").unwrap();
    hup(&s.pid());
    stderr_line(&s, "keeping the old certificate");
    assert_eq!(with_ca(&new_crt), Some(0));
}

#[test]
fn a_reset_h2_stream_abandons_its_delay_and_the_connection_serves_on() {
    let s = Server::start(&["--echo"]);
    // The client's connection runs on a worker while this thread polls
    // the stats (blocking).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let get = |path: &str| {
            http::Request::get(format!("http://{}{path}", s.addr))
                .body(())
                .unwrap()
        };
        let (resp, mut stream) = send
            .send_request(get("/_httpq/delay?ms=30000"), true)
            .unwrap();
        let wait = |done: fn(&serde_json::Map<String, serde_json::Value>) -> bool, what| {
            s.wait_stats(what, LIMIT, done)
        };
        wait(|m| m["delays_in_flight"] == 1, "the delay to start");
        let reset_at = Instant::now();
        stream.send_reset(h2::Reason::CANCEL);
        drop(resp);
        let stats = wait(|m| m["delays_abandoned"] == 1, "the delay to be abandoned");
        let seen = reset_at.elapsed();
        assert!(seen < Duration::from_secs(5), "seen after {seen:?}");
        assert_eq!(stats["delays_in_flight"], 0);
        assert_eq!(stats["h2_resets"], 1);
        assert_eq!(
            stats["disconnects"], 0,
            "a stream reset is not a disconnect"
        );
        // The same connection serves a new stream.
        let (resp, _) = send.send_request(get("/again"), true).unwrap();
        let resp = tokio::time::timeout(LIMIT, resp).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
    });
}
