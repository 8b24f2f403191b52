//! `httpq serve`: a session with two URL groups — the site (static files or
//! echo) and the `/_httpq/` control prefix — each with its own request queue.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use httpq_server::tls::{CertBinding, Certificate};
use httpq_server::{
    Properties, Request, RequestQueue, Response, SendFlags, ServerError, ServerSession, Timeouts,
};

use crate::control::{control, CliCounters};
use crate::static_files::StaticSite;
use crate::ServeArgs;

pub fn run(args: ServeArgs) -> ExitCode {
    // The session's workers serve; this thread only waits for a signal.
    let rt = match crate::build_runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(serve(args))
}

/// The prefix for a listen address. An unspecified address stays an IP
/// literal: `0.0.0.0` is every IPv4 address and no IPv6 (as nginx's
/// `listen 80`), `[::]` every IPv6 address.
fn prefix_for(scheme: &str, addr: std::net::SocketAddr, path: &str) -> String {
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{scheme}://{host}:{}{path}", addr.port())
}

/// Where the TLS certificate comes from.
enum TlsSource {
    /// `--tls-cert`/`--tls-key`: read at start and on every SIGHUP.
    Files(std::path::PathBuf, std::path::PathBuf),
    /// `--tls-self-signed`: made once, at start.
    SelfSigned,
}

impl TlsSource {
    fn of(args: &ServeArgs) -> Option<TlsSource> {
        match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some(TlsSource::Files(c.clone(), k.clone())),
            _ => args.tls_self_signed.then_some(TlsSource::SelfSigned),
        }
    }

    /// The certificate, and its PEM when it was made here.
    fn load(&self) -> Result<(Certificate, Option<String>), String> {
        match self {
            TlsSource::Files(c, k) => Certificate::from_pem_files(c, k)
                .map(|c| (c, None))
                .map_err(|e| e.to_string()),
            TlsSource::SelfSigned => {
                let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
                let made = rcgen::generate_simple_self_signed(names)
                    .map_err(|e| format!("cannot make a certificate: {e}"))?;
                let pem = made.cert.pem();
                let cert = Certificate::from_pem(
                    pem.as_bytes(),
                    made.signing_key.serialize_pem().as_bytes(),
                )
                .map_err(|e| e.to_string())?;
                Ok((cert, Some(pem)))
            }
        }
    }
}

/// `--listen` with port 0: a free port, found by binding one (a prefix
/// names its port, as in the HTTP Server API).
fn resolve_port(listen: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    std::net::TcpListener::bind(listen)?.local_addr()
}

/// Body bytes that travel with a request to the site's queue.
const COPY_BODY: usize = 64 * 1024;

/// Requests that may wait in the site's queue.
const QUEUE_LIMIT: usize = 16 * 1024;

/// A chunked request body up to this size is gathered and echoed with a
/// Content-Length; a longer one is echoed as it streams.
const ECHO_GATHER: usize = 1 << 20;

async fn serve(args: ServeArgs) -> ExitCode {
    let tls = TlsSource::of(&args);
    let cert = match tls.as_ref().map(TlsSource::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("httpq: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let site = if args.echo {
        None
    } else {
        match StaticSite::new(&args.dir, args.file_cache) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                eprintln!("httpq: cannot serve {}: {e}", args.dir.display());
                return ExitCode::FAILURE;
            }
        }
    };
    // A connection is a descriptor: without this, the usual soft limit of
    // 1024 would refuse clients long before --max-connections (as Go's
    // runtime and nginx's worker_rlimit_nofile do, up to the hard limit).
    let _ = rlimit::increase_nofile_limit(args.max_connections.saturating_add(64));
    let secs = Duration::from_secs;
    let props = Properties {
        workers: args.threads.unwrap_or(0),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        timeouts: Timeouts {
            header_wait: secs(args.header_wait),
            entity_body: secs(args.entity_body),
            idle_connection: secs(args.idle_timeout),
            min_send_rate: args.min_send_rate,
            ..Timeouts::default()
        },
        ..Properties::default()
    };
    let session = match ServerSession::new(props) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("httpq: {e}");
            return ExitCode::FAILURE;
        }
    };
    let site_queue = RequestQueue::new(if args.echo { "echo" } else { "static" });
    site_queue.set_copy_body(COPY_BODY);
    // http.sys's default of 1000 waiting requests sheds load at 64
    // clients pipelining 16 deep; a static server keeps up with far more.
    site_queue.set_limit(QUEUE_LIMIT);
    let control_queue = RequestQueue::new("control");
    let site_group = session.create_url_group();
    site_group.bind(&site_queue);
    let control_group = session.create_url_group();
    control_group.bind(&control_queue);
    // Port 0: a free port, found then registered; were it taken in
    // between, another is found.
    let mut listen = args.listen;
    for attempt in 1..=3 {
        listen = match resolve_port(args.listen) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("httpq: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Some((c, _)) = &cert {
            // Bound before the prefixes: the first handshake finds it.
            if let Err(e) = session.set_certificate(CertBinding::Addr(listen), c) {
                eprintln!("httpq: {e}");
                return ExitCode::FAILURE;
            }
        }
        let registered = site_group
            .add_url(&prefix_for(scheme, listen, "/"), 1)
            .and_then(|()| control_group.add_url(&prefix_for(scheme, listen, "/_httpq/"), 2));
        match registered {
            Ok(()) => break,
            Err(httpq_server::ServerError::Listen { .. })
                if args.listen.port() == 0 && attempt < 3 =>
            {
                let _ = site_group.remove_url(&prefix_for(scheme, listen, "/"));
            }
            Err(e) => {
                eprintln!("httpq: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Handlers first, so a Ctrl-C right after the announcement still shuts down cleanly.
    let (mut interrupt, mut terminate) = match (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("httpq: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut bound = session.listen_addrs();
    bound.sort();
    bound.dedup();
    let urls: Vec<String> = bound.iter().map(|a| format!("{scheme}://{a}/")).collect();
    println!("listening on {}", urls.join(" "));
    if let Some((c, pem)) = &cert {
        eprintln!("httpq: certificate SHA-256 {}", c.fingerprint());
        if let Some(pem) = pem {
            announce_self_signed(pem, listen);
        }
    }
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("httpq: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let extra: Vec<String> = bound
        .iter()
        .filter(|a| **a != listen)
        .map(|a| a.to_string())
        .collect();
    if !extra.is_empty() {
        eprintln!(
            "httpq: note: also listening on {} (the server binds a wildcard for both IPv4 and IPv6)",
            extra.join(" ")
        );
    }

    // One consumer loop per worker. What can be answered in one call is
    // answered inline (a final send never waits); what has to wait for
    // the client or the disk goes to a task of its own.
    {
        let q = site_queue.clone();
        session.spawn_on_workers(move |_| {
            let (q, site) = (q.clone(), site.clone());
            async move {
                let mut cache = site.as_ref().map(|s| s.cache());
                while let Ok(req) = q.receive().await {
                    let _ = match (&site, &mut cache) {
                        (Some(site), Some(cache)) => site.handle(&q, req, cache).await,
                        _ => echo(&q, req).await,
                    };
                }
            }
        });
    }
    {
        let q = control_queue.clone();
        let session_for_stats = session.clone();
        let mine = Arc::new(CliCounters::default());
        session.spawn_on_workers(move |_| {
            let (q, session, mine) = (q.clone(), session_for_stats.clone(), mine.clone());
            async move {
                while let Ok(req) = q.receive().await {
                    let (q, session, mine) = (q.clone(), session.clone(), mine.clone());
                    tokio::spawn(async move {
                        let _ = control(&q, &session, &mine, req).await;
                    });
                }
            }
        });
    }

    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload(tls.as_ref(), &session, listen),
        }
    }
    let grace = Duration::from_millis(args.grace_ms);
    eprintln!("httpq: shutting down (in-flight requests have {grace:?})");
    session.shutdown(grace).await;
    site_queue.shutdown();
    control_queue.shutdown();
    ExitCode::SUCCESS
}

/// SIGHUP: the certificate files are read again and rebound. New
/// handshakes use the new certificate; open connections keep theirs. A
/// file that does not load leaves the old certificate in place.
fn reload(tls: Option<&TlsSource>, session: &ServerSession, listen: std::net::SocketAddr) {
    let Some(source @ TlsSource::Files(..)) = tls else {
        eprintln!("httpq: SIGHUP: no certificate files to reload");
        return;
    };
    match source.load() {
        Ok((c, _)) => match session.set_certificate(CertBinding::Addr(listen), &c) {
            Ok(()) => eprintln!("httpq: certificate reloaded, SHA-256 {}", c.fingerprint()),
            Err(e) => eprintln!("httpq: reload failed, keeping the old certificate: {e}"),
        },
        Err(e) => eprintln!("httpq: reload failed, keeping the old certificate: {e}"),
    }
}

/// Writes a self-signed certificate where a client can be pointed at it.
fn announce_self_signed(pem: &str, listen: std::net::SocketAddr) {
    let path = std::env::temp_dir().join(format!("httpq-{}.crt", listen.port()));
    match std::fs::write(&path, pem) {
        Ok(()) => eprintln!(
            "httpq: self-signed for localhost, 127.0.0.1 and ::1; trust it with \
             httpq get --cacert {} https://localhost:{}/ (or curl --cacert)",
            path.display(),
            listen.port()
        ),
        Err(e) => eprintln!("httpq: cannot write {}: {e}", path.display()),
    }
}

/// `--echo`: 200 with the request's own body and Content-Type. A body that
/// came whole with its request is answered at once with a Content-Length;
/// one still arriving is echoed from a task.
async fn echo(q: &RequestQueue, req: Request) -> Result<(), ServerError> {
    let mut resp = Response::new(200);
    if let Some(ct) = req.head().header_value("content-type") {
        resp.headers.insert(http::header::CONTENT_TYPE, ct);
    }
    if !req.more_body() {
        resp.body = req.body().clone();
        return q.send_response(req.id(), resp, SendFlags::NONE).await;
    }
    let q = q.clone();
    tokio::spawn(async move {
        let _ = echo_stream(&q, req, resp).await;
    });
    Ok(())
}

/// The echo of a body still arriving. With a Content-Length it streams
/// under that length; a chunked body is gathered (up to [`ECHO_GATHER`])
/// to be answered with a Content-Length, and streams chunked beyond.
async fn echo_stream(
    q: &RequestQueue,
    req: Request,
    mut resp: Response,
) -> Result<(), ServerError> {
    let id = req.id();
    let length = req.head().header_value("content-length");
    // The first read comes before the response: the server sends
    // `100 Continue` only while no response has begun, and a client that
    // waits for it would otherwise wait until the body timeout.
    let mut gathered = BytesMut::from(&req.body()[..]);
    let mut ended = false;
    loop {
        match q.receive_body_chunk(id).await? {
            Some(chunk) => gathered.extend_from_slice(&chunk),
            None => {
                ended = true;
                break;
            }
        }
        if length.is_some() || gathered.len() >= ECHO_GATHER {
            break;
        }
    }
    if ended {
        resp.body = gathered.freeze();
        return q.send_response(id, resp, SendFlags::NONE).await;
    }
    if let Some(len) = length {
        resp.headers.insert(http::header::CONTENT_LENGTH, len);
    }
    resp.body = gathered.freeze();
    q.send_response(id, resp, SendFlags::MORE_DATA).await?;
    loop {
        match q.receive_body_chunk(id).await {
            Ok(Some(chunk)) => q.send_body(id, chunk, SendFlags::MORE_DATA).await?,
            Ok(None) => return q.send_body(id, Bytes::new(), SendFlags::NONE).await,
            Err(e) => {
                // The echo has begun and can no longer be finished as
                // promised: cut the connection rather than leave it open
                // with a response that never ends.
                let _ = q.cancel_request(id);
                return Err(e);
            }
        }
    }
}
