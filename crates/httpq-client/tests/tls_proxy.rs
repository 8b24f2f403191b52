//! HTTPS against a test TLS server with a self-signed "localhost"
//! certificate, and HTTP proxies: absolute-form requests, CONNECT tunnels,
//! Basic proxy credentials, and a refused tunnel.

mod support_hostile;

use std::sync::Arc;

use httpq_client::{ClientError, Config, Notification, Payload, Proxy, Session, Status, TlsRoots};
use support_hostile::{
    localhost_cert, recorder, response, within, Action, Loopback, Received, ScriptServer, TestCert,
    TestProxy,
};

/// A TLS server answering every request with its target and a body.
async fn tls_server(cert: &TestCert) -> ScriptServer {
    ScriptServer::start_tls(cert, |r: &Received| {
        vec![Action::Write(response(
            200,
            &[("X-Target", &r.target)],
            b"hello over tls",
        ))]
    })
    .await
}

fn names(log: &[Notification]) -> Vec<&'static str> {
    log.iter().map(|n| n.status.name()).collect()
}

fn position(names: &[&str], name: &str) -> usize {
    names
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("no {name} in {names:?}"))
}

#[tokio::test]
async fn https_with_a_trusted_self_signed_certificate() {
    let cert = localhost_cert();
    let server = tls_server(&cert).await;
    let (cb, log) = recorder();
    let s = Session::new(Config {
        tls_roots: TlsRoots::only(cert.cert_der.clone()),
        resolver: Some(Arc::new(Loopback)),
        callback: Some(cb),
        ..Config::default()
    })
    .unwrap();
    let url = format!("https://localhost:{}/secure?x=1", server.port);
    let mut r = within(s.open_url(&url, 3)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"hello over tls");
    assert_eq!(server.received()[0].target, "/secure?x=1");
    assert_eq!(
        server.received()[0].header("host"),
        Some(format!("localhost:{}", server.port).as_str())
    );
    drop(r);

    let log = log.lock().unwrap().clone();
    let ours: Vec<_> = log.iter().filter(|n| n.context == 3).cloned().collect();
    let n = names(&ours);
    let (connected, start, done, sending) = (
        position(&n, "CONNECTED_TO_SERVER"),
        position(&n, "TLS_HANDSHAKE_START"),
        position(&n, "TLS_HANDSHAKE_COMPLETE"),
        position(&n, "SENDING_REQUEST"),
    );
    assert!(connected < start && start < done && done < sending, "{n:?}");
    for i in [start, done] {
        assert_eq!(ours[i].payload, Payload::Host("localhost".into()));
    }
    assert_eq!(n.iter().filter(|x| **x == "TLS_HANDSHAKE_START").count(), 1);

    // The pooled TLS connection is reused: no second handshake.
    let (cb2, log2) = recorder();
    s.set_callback(Some(cb2));
    let mut r = within(s.open_url(&url, 4)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"hello over tls");
    assert!(r.connection_reused());
    let n2: Vec<_> = log2.lock().unwrap().iter().map(|n| n.status).collect();
    assert!(n2.contains(&Status::ConnectionReused));
    assert!(!n2.contains(&Status::TlsHandshakeStart), "{n2:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn https_with_an_untrusted_or_mismatched_certificate_fails() {
    let cert = localhost_cert();
    let server = tls_server(&cert).await;
    let url = format!("https://localhost:{}/", server.port);

    // The default roots do not know a self-signed certificate.
    let (cb, log) = recorder();
    let s = Session::new(Config {
        resolver: Some(Arc::new(Loopback)),
        callback: Some(cb),
        ..Config::default()
    })
    .unwrap();
    let e = match within(s.open_url(&url, 1)).await {
        Ok(_) => panic!("an untrusted certificate was accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
    let statuses: Vec<_> = log.lock().unwrap().iter().map(|n| n.status).collect();
    assert!(statuses.contains(&Status::TlsHandshakeStart));
    assert!(!statuses.contains(&Status::TlsHandshakeComplete));
    assert!(!statuses.contains(&Status::SendingRequest));

    // Another certificate as the only root.
    let other = localhost_cert();
    let s = Session::new(Config {
        tls_roots: TlsRoots::only(other.cert_der.clone()),
        resolver: Some(Arc::new(Loopback)),
        ..Config::default()
    })
    .unwrap();
    let e = match within(s.open_url(&url, 1)).await {
        Ok(_) => panic!("a certificate from the wrong root was accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");

    // The right root, the wrong name (the certificate is for "localhost").
    let s = Session::new(Config {
        tls_roots: TlsRoots::only(cert.cert_der.clone()),
        ..Config::default()
    })
    .unwrap();
    let e = match within(s.open_url(&format!("https://127.0.0.1:{}/", server.port), 1)).await {
        Ok(_) => panic!("a certificate for another name was accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
    // No request ever reached the server.
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn http_through_a_proxy_goes_in_absolute_form_with_basic_auth() {
    let origin = ScriptServer::start(|r: &Received| {
        vec![Action::Write(response(
            200,
            &[],
            format!("origin saw {}", r.target).as_bytes(),
        ))]
    })
    .await;
    let proxy = TestProxy::start(200).await;
    let s = Session::new(Config {
        proxy: Some(Proxy::parse(&proxy.url_with("u:p")).unwrap()),
        ..Config::default()
    })
    .unwrap();
    let url = origin.url("/via/proxy?q=1");
    let mut r = within(s.open_url(&url, 1)).await.unwrap();
    assert_eq!(
        &within(r.bytes()).await.unwrap()[..],
        b"origin saw /via/proxy?q=1"
    );
    assert_eq!(r.remote_addr().map(|a| a.port()), Some(proxy.port));
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, format!("GET {url} HTTP/1.1"));
    // base64("u:p")
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some("Basic dTpw"));
    assert_eq!(
        seen[0].host.as_deref(),
        Some(format!("127.0.0.1:{}", origin.port).as_str())
    );

    // Without credentials, no Proxy-Authorization.
    let s = Session::new(Config {
        proxy: Some(Proxy::parse(&format!("http://127.0.0.1:{}", proxy.port)).unwrap()),
        ..Config::default()
    })
    .unwrap();
    let mut r = within(s.open_url(&origin.url("/plain"), 1)).await.unwrap();
    within(r.bytes()).await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].proxy_authorization, None);
}

#[tokio::test]
async fn https_through_a_proxy_uses_a_connect_tunnel() {
    let cert = localhost_cert();
    let server = tls_server(&cert).await;
    let proxy = TestProxy::start(200).await;
    let (cb, log) = recorder();
    // No resolver: only the proxy (an IP literal) is connected to directly.
    let s = Session::new(Config {
        proxy: Some(Proxy::parse(&proxy.url_with("user:pa%3Ass")).unwrap()),
        tls_roots: TlsRoots::only(cert.cert_der.clone()),
        callback: Some(cb),
        ..Config::default()
    })
    .unwrap();
    let url = format!("https://localhost:{}/tunnelled", server.port);
    let mut r = within(s.open_url(&url, 9)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"hello over tls");
    assert_eq!(r.remote_addr().map(|a| a.port()), Some(proxy.port));

    let seen = proxy.seen();
    assert_eq!(
        seen.len(),
        1,
        "one CONNECT, nothing else in clear: {seen:?}"
    );
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT localhost:{} HTTP/1.1", server.port)
    );
    assert_eq!(
        seen[0].host.as_deref(),
        Some(format!("localhost:{}", server.port).as_str())
    );
    // base64("user:pa:ss")
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic dXNlcjpwYTpzcw==")
    );

    // Inside the tunnel: an origin-form request, no proxy credentials.
    let inner = &server.received()[0];
    assert_eq!(inner.target, "/tunnelled");
    assert_eq!(inner.header("proxy-authorization"), None);

    let n: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.context == 9)
        .map(|n| n.status.name())
        .collect();
    let start = position(&n, "TLS_HANDSHAKE_START");
    assert!(position(&n, "CONNECTED_TO_SERVER") < start);
    assert!(start < position(&n, "TLS_HANDSHAKE_COMPLETE"));
}

#[tokio::test]
async fn a_proxy_refusing_the_tunnel_is_a_proxy_error() {
    let cert = localhost_cert();
    let server = tls_server(&cert).await;
    let proxy = TestProxy::start(407).await;
    let s = Session::new(Config {
        proxy: Some(Proxy::parse(&proxy.url_with("u:wrong")).unwrap()),
        tls_roots: TlsRoots::only(cert.cert_der.clone()),
        ..Config::default()
    })
    .unwrap();
    let e = match within(s.open_url(&format!("https://localhost:{}/", server.port), 1)).await {
        Ok(_) => panic!("a refused tunnel gave a response"),
        Err(e) => e,
    };
    match &e {
        ClientError::Proxy(msg) => assert!(msg.contains("407"), "{msg}"),
        other => panic!("expected a proxy error, got {other:?}"),
    }
    assert_eq!(proxy.seen().len(), 1);
    assert!(proxy.seen()[0].request_line.starts_with("CONNECT "));
    assert_eq!(server.connections(), 0, "the origin was never reached");
}

/// The system's roots (rustls-native-certs) load, and combine with an
/// extra root: with both, the test server is trusted; with the system's
/// alone, its self-signed certificate is not.
#[tokio::test]
async fn system_roots_load_and_combine_with_extra_ones() {
    let cert = localhost_cert();
    let server = tls_server(&cert).await;
    let url = format!("https://localhost:{}/", server.port);
    let both = Session::new(Config {
        tls_roots: TlsRoots {
            system: true,
            extra: vec![cert.cert_der.clone()],
            ..TlsRoots::default()
        },
        resolver: Some(Arc::new(Loopback)),
        ..Config::default()
    })
    .unwrap();
    let mut r = within(both.open_url(&url, 1)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"hello over tls");

    let system_only = Session::new(Config {
        tls_roots: TlsRoots {
            system: true,
            ..TlsRoots::default()
        },
        resolver: Some(Arc::new(Loopback)),
        ..Config::default()
    })
    .unwrap();
    let e = within(system_only.open_url(&url, 2)).await.err().unwrap();
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
}
