//! `httpq serve`: one URL group with its own request queue per site — the
//! directory or echo of the flags, or every `[[site]]` of `--config` —
//! and the `/_httpq/` control prefix with a queue of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use httpq_server::tls::{CertBinding, Certificate};
use httpq_server::url_group::HostSpec;
use httpq_server::{
    AccessLog, Properties, Request, RequestQueue, Response, SendFlags, ServerError, ServerSession,
    Timeouts, UrlGroup, UrlPrefix,
};

use crate::config::{Content, SitesConfig, TlsConfig};
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
fn prefix_for(scheme: &str, addr: SocketAddr, path: &str) -> String {
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{scheme}://{host}:{}{path}", addr.port())
}

/// A site's certificate: made at start (self-signed, for these names) or
/// read from files at start and on every SIGHUP.
fn load_cert(tls: &TlsConfig, names: &[String]) -> Result<(Certificate, Option<String>), String> {
    match tls {
        TlsConfig::Files { cert, key } => Certificate::from_pem_files(cert, key)
            .map(|c| (c, None))
            .map_err(|e| e.to_string()),
        TlsConfig::SelfSigned => {
            let mut all: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
            all.extend(
                names
                    .iter()
                    .filter(|n| !all.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let made = rcgen::generate_simple_self_signed(all)
                .map_err(|e| format!("cannot make a certificate: {e}"))?;
            let pem = made.cert.pem();
            let cert =
                Certificate::from_pem(pem.as_bytes(), made.signing_key.serialize_pem().as_bytes())
                    .map_err(|e| e.to_string())?;
            Ok((cert, Some(pem)))
        }
    }
}

/// Where a certificate for an https prefix is bound, as http.sys binds
/// them: a host name by SNI, an IP literal by address, a wildcard by port.
fn binding_for(prefix: &UrlPrefix) -> CertBinding {
    match &prefix.host {
        HostSpec::Explicit(h) => CertBinding::host(h, prefix.port),
        HostSpec::IpBound(ip) => CertBinding::Addr(SocketAddr::new(*ip, prefix.port)),
        HostSpec::StrongWildcard | HostSpec::WeakWildcard => CertBinding::any(prefix.port),
    }
}

/// `--listen` with port 0: a free port, found by binding one (a prefix
/// names its port, as in the HTTP Server API).
fn resolve_port(listen: SocketAddr) -> std::io::Result<SocketAddr> {
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

/// One site to serve: a URL group with a request queue of its own.
struct SitePlan {
    /// The queue's name.
    name: String,
    /// Parsed prefixes; a request's URL context is its prefix's index.
    prefixes: Vec<UrlPrefix>,
    content: Content,
    timeouts: Option<Timeouts>,
    tls: Option<TlsConfig>,
}

/// The sites of `--config`, or the one site the flags describe (on a free
/// port when `--listen` says port 0).
fn plan(args: &ServeArgs) -> Result<Vec<SitePlan>, String> {
    if let Some(path) = &args.config {
        let c = SitesConfig::load(path).map_err(|e| e.to_string())?;
        return Ok(c
            .sites
            .into_iter()
            .enumerate()
            .map(|(i, s)| SitePlan {
                name: format!("site{}", i + 1),
                prefixes: s.prefixes,
                content: s.content,
                timeouts: s.timeouts,
                tls: s.tls,
            })
            .collect());
    }
    let listen =
        resolve_port(args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => args.tls_self_signed.then_some(TlsConfig::SelfSigned),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let prefix = UrlPrefix::parse(&prefix_for(scheme, listen, "/")).map_err(|e| e.to_string())?;
    Ok(vec![SitePlan {
        name: if args.echo { "echo" } else { "static" }.to_string(),
        prefixes: vec![prefix],
        content: if args.echo {
            Content::Echo
        } else {
            Content::Root(args.dir.clone())
        },
        timeouts: None,
        tls,
    }])
}

/// A certificate in use, for SIGHUP: where it came from, what it is bound to.
struct BoundCert {
    source: TlsConfig,
    names: Vec<String>,
    bindings: Vec<CertBinding>,
}

/// A site's queue, its group (kept: dropping it removes the prefixes),
/// its files (none: echo), and how much of each prefix's path to strip.
type RunningSite = (
    RequestQueue,
    UrlGroup,
    Option<Arc<StaticSite>>,
    Arc<[usize]>,
);

/// The sites, registered and bound.
struct Running {
    sites: Vec<RunningSite>,
    control: (RequestQueue, UrlGroup),
    certs: Vec<BoundCert>,
}

enum StartError {
    /// A prefix's port could not be listened on.
    Listen(ServerError),
    Other(String),
}

/// Makes each site's queue and group (with its timeouts and certificate)
/// and registers its prefixes, then `/_httpq/` on every scheme, host and
/// port the sites use.
fn start(
    session: &ServerSession,
    plans: &[SitePlan],
    args: &ServeArgs,
) -> Result<Running, StartError> {
    let mut sites = Vec::new();
    let mut certs = Vec::new();
    for plan in plans {
        if let Some(tls) = &plan.tls {
            let names: Vec<String> = plan
                .prefixes
                .iter()
                .filter_map(|p| match &p.host {
                    HostSpec::Explicit(h) => Some(h.clone()),
                    _ => None,
                })
                .collect();
            let (cert, pem) = load_cert(tls, &names).map_err(StartError::Other)?;
            let bindings: Vec<CertBinding> = plan
                .prefixes
                .iter()
                .filter(|p| p.scheme == "https")
                .map(binding_for)
                .collect();
            // Bound before the prefixes: the first handshake finds it.
            for b in &bindings {
                session
                    .set_certificate(b.clone(), &cert)
                    .map_err(|e| StartError::Other(e.to_string()))?;
            }
            eprintln!("httpq: certificate SHA-256 {}", cert.fingerprint());
            if let Some(pem) = pem {
                for port in plan.prefixes.iter().map(|p| p.port) {
                    announce_self_signed(&pem, port);
                }
            }
            certs.push(BoundCert {
                source: tls.clone(),
                names,
                bindings,
            });
        }
        let queue = RequestQueue::new(&plan.name);
        queue.set_copy_body(COPY_BODY);
        // http.sys's default of 1000 waiting requests sheds load at 64
        // clients pipelining 16 deep; a static server keeps up with far more.
        queue.set_limit(QUEUE_LIMIT);
        let group = session.create_url_group();
        group.bind(&queue);
        if let Some(t) = plan.timeouts {
            group.set_timeouts(t);
        }
        let files = match &plan.content {
            Content::Root(dir) => {
                Some(Arc::new(StaticSite::new(dir, args.file_cache).map_err(
                    |e| StartError::Other(format!("cannot serve {}: {e}", dir.display())),
                )?))
            }
            Content::Echo => None,
        };
        // A file site serves the path below the prefix that matched.
        let strips: Arc<[usize]> = plan.prefixes.iter().map(|p| p.path.len() - 1).collect();
        for (i, p) in plan.prefixes.iter().enumerate() {
            group
                .add_url(&p.to_string(), i as u64)
                .map_err(|e| match e {
                    ServerError::Listen { .. } => StartError::Listen(e),
                    e => StartError::Other(e.to_string()),
                })?;
        }
        sites.push((queue, group, files, strips));
    }
    let control_queue = RequestQueue::new("control");
    let control_group = session.create_url_group();
    control_group.bind(&control_queue);
    let taken: Vec<&UrlPrefix> = plans.iter().flat_map(|p| &p.prefixes).collect();
    let mut added: Vec<UrlPrefix> = Vec::new();
    for p in &taken {
        let mut c = (*p).clone();
        c.path = "/_httpq/".to_string();
        if taken.contains(&&c) || added.contains(&c) {
            continue;
        }
        control_group
            .add_url(&c.to_string(), 0)
            .map_err(|e| StartError::Other(e.to_string()))?;
        added.push(c);
    }
    Ok(Running {
        sites,
        control: (control_queue, control_group),
        certs,
    })
}

/// Opens `--access-log`: `-` is standard output; a file is appended to.
fn open_access_log(path: &std::path::Path) -> std::io::Result<AccessLog> {
    if path == std::path::Path::new("-") {
        return Ok(AccessLog::new(std::io::stdout()));
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(AccessLog::new(f))
}

async fn serve(args: ServeArgs) -> ExitCode {
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
    let access_log = match args.access_log.as_deref().map(open_access_log).transpose() {
        Ok(log) => log,
        Err(e) => {
            eprintln!("httpq: cannot open the access log: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the prefixes: every connection logs.
    session.set_access_log(access_log.as_ref());
    // Port 0: a free port, found then registered; were it taken in
    // between, another is found.
    let mut attempt = 0;
    let running = loop {
        attempt += 1;
        let plans = match plan(&args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("httpq: {e}");
                return ExitCode::FAILURE;
            }
        };
        match start(&session, &plans, &args) {
            Ok(r) => break r,
            Err(StartError::Listen(_))
                if args.config.is_none() && args.listen.port() == 0 && attempt < 3 => {}
            Err(StartError::Listen(e)) => {
                eprintln!("httpq: {e}");
                return ExitCode::FAILURE;
            }
            Err(StartError::Other(e)) => {
                eprintln!("httpq: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    // Handlers first, so a Ctrl-C right after the announcement still shuts down cleanly.
    let signals = [
        tokio::signal::unix::SignalKind::interrupt(),
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::hangup(),
    ]
    .map(tokio::signal::unix::signal);
    let [Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)] = signals else {
        eprintln!("httpq: cannot handle signals");
        return ExitCode::FAILURE;
    };
    announce(&session, &running);

    // One consumer loop per worker and site. What can be answered in one
    // call is answered inline (a final send never waits); what has to
    // wait for the client or the disk goes to a task of its own.
    for (q, _, files, strips) in &running.sites {
        let (q, files, strips) = (q.clone(), files.clone(), strips.clone());
        session.spawn_on_workers(move |_| {
            let (q, files, strips) = (q.clone(), files.clone(), strips.clone());
            async move {
                let mut cache = files.as_ref().map(|s| s.cache());
                while let Ok(req) = q.receive().await {
                    let _ = match (&files, &mut cache) {
                        (Some(files), Some(cache)) => {
                            let strip =
                                strips.get(req.url_context() as usize).copied().unwrap_or(0);
                            files.handle(&q, req, cache, strip).await
                        }
                        _ => echo(&q, req).await,
                    };
                }
            }
        });
    }
    let mine = Arc::new(CliCounters::new(args.control_remote));
    {
        let q = running.control.0.clone();
        let session_for_stats = session.clone();
        let mine = mine.clone();
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
            _ = hangup.recv() => reload(&running.certs, &session),
        }
    }
    let grace = Duration::from_millis(args.grace_ms);
    eprintln!("httpq: shutting down (in-flight requests have {grace:?})");
    mine.stop();
    session.shutdown(grace).await;
    for (q, ..) in &running.sites {
        q.shutdown();
    }
    running.control.0.shutdown();
    if let Some(log) = &access_log {
        // Every response's line is handed over by now: written before exit.
        log.flush();
    }
    ExitCode::SUCCESS
}

/// `listening on URL …`: a URL for every address listened on (with the
/// scheme its prefixes use), on stdout, where scripts look for it.
fn announce(session: &ServerSession, running: &Running) {
    let mut bound = session.listen_addrs();
    bound.sort();
    bound.dedup();
    let https_ports: Vec<u16> = running
        .certs
        .iter()
        .flat_map(|c| c.bindings.iter())
        .map(|b| match b {
            CertBinding::Addr(a) => a.port(),
            CertBinding::Host(_, port) => *port,
        })
        .collect();
    let urls: Vec<String> = bound
        .iter()
        .map(|a| {
            let scheme = if https_ports.contains(&a.port()) {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{a}/")
        })
        .collect();
    println!("listening on {}", urls.join(" "));
}

/// SIGHUP: the certificate files are read again and rebound. New
/// handshakes use the new certificate; open connections keep theirs. A
/// file that does not load leaves the old certificate in place.
fn reload(certs: &[BoundCert], session: &ServerSession) {
    let mut any = false;
    for c in certs {
        if !matches!(c.source, TlsConfig::Files { .. }) {
            continue;
        }
        any = true;
        let loaded = load_cert(&c.source, &c.names).and_then(|(cert, _)| {
            for b in &c.bindings {
                session
                    .set_certificate(b.clone(), &cert)
                    .map_err(|e| e.to_string())?;
            }
            Ok(cert)
        });
        match loaded {
            Ok(cert) => eprintln!(
                "httpq: certificate reloaded, SHA-256 {}",
                cert.fingerprint()
            ),
            Err(e) => eprintln!("httpq: reload failed, keeping the old certificate: {e}"),
        }
    }
    if !any {
        eprintln!("httpq: SIGHUP: no certificate files to reload");
    }
}

/// Writes a self-signed certificate where a client can be pointed at it.
fn announce_self_signed(pem: &str, port: u16) {
    let path: PathBuf = std::env::temp_dir().join(format!("httpq-{port}.crt"));
    match std::fs::write(&path, pem) {
        Ok(()) => eprintln!(
            "httpq: self-signed for localhost, 127.0.0.1 and ::1; trust it with \
             httpq get --cacert {} https://localhost:{port}/ (or curl --cacert)",
            path.display(),
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
