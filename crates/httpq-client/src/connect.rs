//! Opening a connection: name resolution (replaceable), TCP connect to each
//! address in turn, a CONNECT tunnel through a proxy, the TLS handshake —
//! each phase notified and timed, all under the connect timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clock::Clock;
use crate::handle::HandleCore;
use crate::pool::{Connection, PoolKey, Slot};
use crate::shared::SessionInner;
use crate::status::{Payload, Status};
use crate::transport::Stream;
use crate::{ClientError, TimeoutKind};

/// Opens a connection for `key` in `slot`, notifying each phase on `core`.
pub(crate) async fn establish(
    session: &SessionInner,
    core: &Arc<HandleCore>,
    key: &PoolKey,
    slot: Slot,
    clock: &mut Clock,
    timeouts: &crate::Timeouts,
) -> Result<Connection, ClientError> {
    let cfg = &session.config;
    let (host, port) = match &key.proxy {
        Some((h, p)) => (h.clone(), *p),
        None => (key.host.clone(), key.port),
    };
    // Resolve (an IP literal needs no lookup, so it gets no lookup notifications).
    let addrs = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            core.emit(Status::ResolvingName, Payload::Host(host.clone()));
            let lookup = session.resolver.resolve(&host, port);
            let addrs = clock
                .run(core, TimeoutKind::Resolve, timeouts.resolve, lookup)
                .await?
                .map_err(|e| ClientError::CannotResolve {
                    host: host.clone(),
                    reason: e.to_string(),
                })?;
            if addrs.is_empty() {
                return Err(ClientError::CannotResolve {
                    host,
                    reason: "no addresses".into(),
                });
            }
            core.emit(Status::NameResolved, Payload::Address(addrs[0]));
            addrs
        }
    };
    clock.mark_lookup();
    // Connect, to each address in turn; the connect timeout covers them all
    // plus the tunnel and the TLS handshake, as curl's does.
    let connect_deadline = timeouts.connect.map(|d| tokio::time::Instant::now() + d);
    let mut last_err = String::from("no address");
    let mut tcp = None;
    for addr in &addrs {
        core.emit(Status::ConnectingToServer, Payload::Address(*addr));
        let attempt = clock
            .run_until(
                core,
                TimeoutKind::Connect,
                connect_deadline,
                TcpStream::connect(*addr),
            )
            .await?;
        match attempt {
            Ok(s) => {
                tcp = Some((s, *addr));
                break;
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    let Some((tcp, peer)) = tcp else {
        return Err(ClientError::CannotConnect {
            host: format!("{host}:{port}"),
            reason: last_err,
        });
    };
    let _ = tcp.set_nodelay(true);
    clock.mark_connect();
    core.emit(Status::ConnectedToServer, Payload::Address(peer));
    let mut stream = Stream::Plain(tcp);
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    if key.https {
        if key.proxy.is_some() {
            let t = tunnel(&mut stream, &mut rbuf, key, cfg);
            clock
                .run_until(core, TimeoutKind::Connect, connect_deadline, t)
                .await??;
        }
        core.emit(Status::TlsHandshakeStart, Payload::Host(key.host.clone()));
        let Stream::Plain(tcp) = stream else {
            unreachable!("a new connection is plain TCP until the handshake");
        };
        let tls = session.tls.handshake(&key.host, tcp);
        stream = clock
            .run_until(core, TimeoutKind::Connect, connect_deadline, tls)
            .await??;
        clock.mark_tls();
        core.emit(
            Status::TlsHandshakeComplete,
            Payload::Host(key.host.clone()),
        );
    }
    let via_proxy = key.proxy.is_some() && !key.https;
    Ok(Connection::new(
        stream,
        rbuf,
        via_proxy,
        peer,
        slot,
        key.clone(),
    ))
}

/// `CONNECT host:port` through the proxy; anything but 2xx is an error.
async fn tunnel(
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    key: &PoolKey,
    cfg: &crate::Config,
) -> Result<(), ClientError> {
    let authority = if key.host.contains(':') {
        format!("[{}]:{}", key.host, key.port)
    } else {
        format!("{}:{}", key.host, key.port)
    };
    let mut fields = vec![
        ("Host".to_string(), authority.clone()),
        ("User-Agent".to_string(), cfg.user_agent.clone()),
    ];
    if let Some(auth) = cfg
        .proxy
        .as_ref()
        .and_then(crate::config::Proxy::authorization)
    {
        fields.push(("Proxy-Authorization".to_string(), auth));
    }
    let mut head = Vec::new();
    httpq_proto::encode_request_head(
        &mut head,
        "CONNECT",
        &authority,
        httpq_proto::Version::Http11,
        fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
    )?;
    stream
        .write_all(&head)
        .await
        .map_err(|e| ClientError::Proxy(format!("sending CONNECT: {e}")))?;
    let mut parser = httpq_proto::ResponseParser::new(cfg.limits);
    loop {
        if let Some(resp) = parser.parse(rbuf, &http::Method::CONNECT)? {
            if resp.is_informational() {
                continue;
            }
            if !(200..300).contains(&resp.status()) {
                return Err(ClientError::Proxy(format!(
                    "CONNECT refused: {} {}",
                    resp.status(),
                    String::from_utf8_lossy(resp.reason())
                )));
            }
            if !rbuf.is_empty() {
                return Err(ClientError::Proxy("data after the CONNECT response".into()));
            }
            return Ok(());
        }
        rbuf.reserve(4096);
        let n = stream
            .read_buf(rbuf)
            .await
            .map_err(|e| ClientError::Proxy(format!("reading CONNECT response: {e}")))?;
        if n == 0 {
            return Err(ClientError::Proxy("proxy closed the tunnel".into()));
        }
    }
}
