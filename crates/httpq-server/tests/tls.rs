//! TLS serving: https prefixes with certificate bindings (address and
//! SNI), what a request learns of its TLS session, reloads that keep
//! connections, and handshake failures that cost nothing but a count.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{counters_when, free_port, LIMIT};
use httpq_server::tls::{CertBinding, Certificate};
use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession, Timeouts};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A fresh self-signed certificate for `names`, as httpq takes it and as
/// a client trusts it.
fn cert(names: &[&str]) -> (Certificate, CertificateDer<'static>) {
    let ck =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let c = Certificate::from_pem(
        ck.cert.pem().as_bytes(),
        ck.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    (c, ck.cert.der().clone())
}

struct TlsServer {
    session: ServerSession,
    queue: RequestQueue,
    _group: httpq_server::UrlGroup,
    port: u16,
}

fn start(props: Properties, c: &Certificate) -> TlsServer {
    let session = ServerSession::new(props).unwrap();
    let queue = RequestQueue::new("tls");
    let group = session.create_url_group();
    group.bind(&queue);
    let port = free_port();
    session.set_certificate(CertBinding::any(port), c).unwrap();
    group
        .add_url(&format!("https://127.0.0.1:{port}/"), 7)
        .unwrap();
    TlsServer {
        session,
        queue,
        _group: group,
        port,
    }
}

fn client_config(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(config)
}

async fn connect(
    port: u16,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap()
}

/// One GET on `tls`, answered by the application with `answer`: the
/// status and body the client read.
async fn round_trip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &TlsServer,
    tls: &mut S,
    answer: Response,
) -> (u16, Vec<u8>) {
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    s.queue
        .send_response(req.id(), answer, SendFlags::NONE)
        .await
        .unwrap();
    read_response(tls).await
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0, "closed before the head ended");
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0, "closed mid-body");
        body.extend_from_slice(&byte[..n]);
    }
    (status, body)
}

#[tokio::test]
async fn an_https_prefix_serves_http11_over_tls_and_reports_the_session() {
    let (c, der) = cert(&["localhost"]);
    let s = start(Properties::default(), &c);
    let mut tls = connect(s.port, "localhost", client_config(&[der], &[b"http/1.1"])).await;
    tls.write_all(b"GET /a/b?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    let info = req.tls().expect("a TLS request").clone();
    assert_eq!(info.version, "TLSv1_3");
    assert!(info.cipher.starts_with("TLS13_"), "{}", info.cipher);
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(req.url().scheme, "https");
    assert_eq!(req.url().path, "/a/b");
    assert_eq!(req.url_context(), 7);
    // A body larger than rustls' buffer limit goes out whole.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    s.queue
        .send_response(
            req.id(),
            Response::new(200).body(big.clone()),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let (status, body) = read_response(&mut tls).await;
    assert_eq!(status, 200);
    assert!(body == big, "the body arrived changed");
    let n = s.session.counters();
    assert_eq!(n.tls_handshakes, 1);
    assert_eq!(n.tls_handshake_failures, 0);
}

#[tokio::test]
async fn uploads_and_file_ranges_cross_tls_byte_exact() {
    let (c, der) = cert(&["localhost"]);
    let s = start(Properties::default(), &c);
    let tls = connect(s.port, "localhost", client_config(&[der], &[])).await;
    let upload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        upload.len()
    );
    let writer = {
        let sent = upload.clone();
        let (mut r, mut w) = tokio::io::split(tls);
        let t = tokio::spawn(async move {
            w.write_all(head.as_bytes()).await.unwrap();
            w.write_all(&sent).await.unwrap();
            w
        });
        let req = tokio::time::timeout(LIMIT, s.queue.receive())
            .await
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        while let Some(piece) = s.queue.receive_body_chunk(req.id()).await.unwrap() {
            got.extend_from_slice(&piece);
        }
        assert!(got == upload, "the upload arrived changed");
        // Answer with a file range: through TLS it is read, not sendfile'd.
        let path = std::env::temp_dir().join(format!("httpq-tls-{}", std::process::id()));
        std::fs::write(&path, &upload).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let chunk = httpq_server::FileChunk {
            file,
            offset: 1000,
            len: 500_000,
        };
        s.queue
            .send_response(req.id(), Response::new(200), SendFlags::MORE_DATA)
            .await
            .unwrap();
        s.queue
            .send_file(req.id(), chunk, SendFlags::NONE)
            .await
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut raw = Vec::new();
        let mut byte = [0u8; 65536];
        // Chunked (MORE_DATA without a length): read until the last chunk.
        while !raw.ends_with(b"0\r\n\r\n") {
            let n = tokio::time::timeout(LIMIT, r.read(&mut byte))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            raw.extend_from_slice(&byte[..n]);
        }
        let body_at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut body = Vec::new();
        let mut rest = &raw[body_at..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        assert!(
            body == upload[1000..501_000],
            "the file range arrived changed"
        );
        t
    };
    writer.await.unwrap();
}

#[tokio::test]
async fn sni_picks_the_host_binding_and_falls_back_to_the_address() {
    let (by_addr, addr_der) = cert(&["localhost"]);
    let (by_name, name_der) = cert(&["a.test"]);
    let s = start(Properties::default(), &by_addr);
    s.session
        .set_certificate(CertBinding::host("a.test", s.port), &by_name)
        .unwrap();
    let roots = [addr_der.clone(), name_der.clone()];
    for (sni, want) in [("a.test", &name_der), ("localhost", &addr_der)] {
        let tls = connect(s.port, sni, client_config(&roots, &[])).await;
        let peer = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(&peer, want, "SNI {sni} got the wrong certificate");
    }
    // The server counts a handshake when the client's last flight is in,
    // which may be after the client's side has finished.
    counters_when(&s.session, |n| n.tls_handshakes == 2).await;
}

#[tokio::test]
async fn a_reload_serves_new_handshakes_and_keeps_open_connections() {
    let (old, old_der) = cert(&["localhost"]);
    let (new, new_der) = cert(&["localhost"]);
    let s = start(Properties::default(), &old);
    let roots = [old_der.clone(), new_der.clone()];
    let mut before = connect(s.port, "localhost", client_config(&roots, &[])).await;
    s.session
        .set_certificate(CertBinding::any(s.port), &new)
        .unwrap();
    let after = connect(s.port, "localhost", client_config(&roots, &[])).await;
    assert_eq!(after.get_ref().1.peer_certificates().unwrap()[0], new_der);
    assert_eq!(before.get_ref().1.peer_certificates().unwrap()[0], old_der);
    // The connection made before the reload still carries requests.
    let answered = round_trip(&s, &mut before, Response::new(200).body("still here")).await;
    assert_eq!(answered, (200, b"still here".to_vec()));
}

#[tokio::test]
async fn failed_and_silent_handshakes_are_counted_and_cost_nothing_else() {
    let (c, der) = cert(&["localhost"]);
    let props = Properties {
        timeouts: Timeouts {
            header_wait: Duration::from_millis(300),
            ..Timeouts::default()
        },
        workers: 1,
        ..Properties::default()
    };
    let s = start(props, &c);
    // Not TLS at all.
    let mut plain = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(LIMIT, plain.read_to_end(&mut sink))
        .await
        .unwrap();
    // A client that connects and says nothing: HeaderWait ends it.
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(LIMIT, silent.read(&mut [0u8; 16]))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Counted once the handshake task has seen the end (the client may see
    // the close first).
    counters_when(&s.session, |n| {
        n.tls_handshake_failures == 2 && n.connections_open == 0
    })
    .await;
    assert_eq!(s.session.counters().tls_handshakes, 0);
    // The worker serves on.
    let mut tls = connect(s.port, "localhost", client_config(&[der], &[])).await;
    assert_eq!(round_trip(&s, &mut tls, Response::new(204)).await.0, 204);
}

#[tokio::test]
async fn bad_certificates_get_clear_errors() {
    let e = Certificate::from_pem(b"not pem", b"nor this").unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let (a, _) = cert(&["a"]);
    let other = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
    let a_pem = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
    // A key that belongs to another certificate.
    let e = Certificate::from_pem(
        a_pem.cert.pem().as_bytes(),
        other.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    // A fingerprint is 32 bytes in hex pairs.
    assert_eq!(a.fingerprint().split(':').count(), 32);
    let _ = Bytes::new();
}

#[tokio::test]
async fn http_and_https_cannot_share_a_port() {
    let (c, _) = cert(&["localhost"]);
    let s = start(Properties::default(), &c);
    let g = s.session.create_url_group();
    let e = g
        .add_url(&format!("http://127.0.0.1:{}/other/", s.port), 1)
        .unwrap_err();
    assert!(e.to_string().contains("either http"), "{e}");
}

#[tokio::test]
async fn alpn_h2_makes_the_connection_http2_through_the_same_queue() {
    let (c, der) = cert(&["localhost"]);
    let s = start(Properties::default(), &c);
    let tls = connect(
        s.port,
        "localhost",
        client_config(&[der], &[b"h2", b"http/1.1"]),
    )
    .await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(format!("https://localhost:{}/x", s.port))
        .body(())
        .unwrap();
    let pending = send.send_request(req, true).unwrap().0;
    let r = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.version(), httpq_proto::Version::Http2);
    assert_eq!(r.url().scheme, "https");
    let info = r.tls().unwrap();
    assert_eq!(info.alpn.as_deref(), Some("h2"));
    s.queue
        .send_response(r.id(), Response::new(200).body("over h2"), SendFlags::NONE)
        .await
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, pending).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let data = body.data().await.unwrap().unwrap();
    assert_eq!(&data[..], b"over h2");
    assert_eq!(s.session.counters().h2_streams, 1);
}

/// `openssl`, if installed; else the reason the test is skipped, printed.
fn openssl() -> bool {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: openssl is not installed (it makes the RSA and SEC1 keys)");
    }
    ok
}

#[tokio::test]
async fn pkcs1_rsa_and_sec1_ec_keys_serve_as_pkcs8_does() {
    if !openssl() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("httpq-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.key",
    ]);
    for (key, marker) in [
        ("rsa.key", "BEGIN RSA PRIVATE KEY"),
        ("ec.key", "BEGIN EC PRIVATE KEY"),
    ] {
        let text = std::fs::read_to_string(dir.join(key)).unwrap();
        assert!(text.contains(marker), "{key} is not in the form under test");
        let crt = format!("{key}.crt");
        run(&[
            "req",
            "-new",
            "-x509",
            "-key",
            key,
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "1",
            "-out",
            &crt,
        ]);
        let c = Certificate::from_pem_files(&dir.join(&crt), &dir.join(key)).unwrap();
        let der = CertificateDer::from(c.leaf_der().to_vec());
        let s = start(Properties::default(), &c);
        let mut tls = connect(s.port, "localhost", client_config(&[der], &[])).await;
        let answered = round_trip(&s, &mut tls, Response::new(200).body(key)).await;
        assert_eq!(answered, (200, key.as_bytes().to_vec()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_response_that_closes_the_connection_arrives_whole_over_tls() {
    let (c, der) = cert(&["localhost"]);
    let s = start(Properties::default(), &c);
    let mut tls = connect(s.port, "localhost", client_config(&[der], &[])).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    let big = vec![b'z'; 4_000_000];
    s.queue
        .send_response(
            req.id(),
            Response::new(200).body(big.clone()),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    // Read only after the server has ended its side: the sealed records
    // still in rustls then must not be dropped with the connection.
    let mut all = Vec::new();
    let _ = tokio::time::timeout(LIMIT, tls.read_to_end(&mut all))
        .await
        .unwrap();
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(all.len() - at, big.len(), "the body was cut short");
}
