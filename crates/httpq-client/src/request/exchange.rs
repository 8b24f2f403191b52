//! Sending a request and receiving its head: a connection from the pool
//! or a new one, the head and body on the wire, 1xx and redirects, and
//! the start of the body.

use super::*;
use crate::config::basic;

/// The body of a redirect response is read (to keep the connection) up to this.
const REDIRECT_DRAIN_MAX: u64 = 64 * 1024;

impl RequestHandle {
    pub(super) fn pool_key(&self) -> PoolKey {
        PoolKey {
            https: self.url.scheme() == Scheme::Https,
            host: self.url.host().to_string(),
            port: self.url.port(),
            proxy: self
                .session
                .config
                .proxy
                .as_ref()
                .map(|p| (p.host.clone(), p.port)),
        }
    }

    /// A pooled connection, or a new one (notified phase by phase).
    pub(super) async fn acquire(&mut self) -> Result<Connection, ClientError> {
        let key = self.pool_key();
        let core = self.core.clone();
        let pool = self.session.pool.clone();
        // Waiting for a slot under the per-server limit is part of getting
        // a connection: the connect timeout covers it (it starts afresh
        // for a new connection's own connect).
        let connect = self.timeouts.connect;
        let checkout = self
            .clock
            .run(&core, TimeoutKind::Connect, connect, pool.checkout(&key))
            .await?;
        match checkout {
            Checkout::Reused(c) => {
                self.core.attach_socket(c.shutdown_handle());
                self.reused = true;
                self.remote = Some(c.peer);
                core.emit(Status::ConnectionReused, Payload::Connection(c.id));
                Ok(c)
            }
            Checkout::New(slot) => {
                self.reused = false;
                let c = establish(
                    &self.session,
                    &core,
                    &key,
                    slot,
                    &mut self.clock,
                    &self.timeouts,
                )
                .await?;
                self.core.attach_socket(c.shutdown_handle());
                self.remote = Some(c.peer);
                core.emit(Status::ConnectionNew, Payload::Connection(c.id));
                Ok(c)
            }
        }
    }

    /// The request head for the current URL and method.
    fn encode_head(&self, conn: &Connection, body: Framing) -> Result<Vec<u8>, ClientError> {
        let cfg = &self.session.config;
        let target = if conn.via_proxy {
            self.url.to_string()
        } else {
            self.url.path_and_query().to_string()
        };
        let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(8 + self.headers.len());
        // A field the caller set, or removed, gets no default.
        let has = |n: &HeaderName| self.headers.contains_key(n) || self.removed.contains(n);
        if !has(&header::HOST) {
            fields.push((b"Host", self.url.authority().into_bytes()));
        }
        if !has(&header::USER_AGENT) && !cfg.user_agent.is_empty() {
            fields.push((b"User-Agent", cfg.user_agent.clone().into_bytes()));
        }
        if !has(&header::ACCEPT) {
            fields.push((b"Accept", b"*/*".to_vec()));
        }
        if cfg.decompress && !has(&header::ACCEPT_ENCODING) {
            fields.push((b"Accept-Encoding", b"gzip, deflate, br".to_vec()));
        }
        if let (Some((u, p)), false) = (self.url.credentials(), has(&header::AUTHORIZATION)) {
            fields.push((b"Authorization", basic(u, p).into_bytes()));
        }
        if conn.via_proxy {
            if let Some(auth) = cfg
                .proxy
                .as_ref()
                .and_then(crate::config::Proxy::authorization)
            {
                fields.push((b"Proxy-Authorization", auth.into_bytes()));
            }
        }
        match body {
            Framing::None => {}
            Framing::Length(n) => {
                if n > 0 || !matches!(self.method, Method::GET | Method::HEAD) {
                    fields.push((b"Content-Length", n.to_string().into_bytes()));
                }
            }
            Framing::Chunked => fields.push((b"Transfer-Encoding", b"chunked".to_vec())),
        }
        for (k, v) in &self.headers {
            if body != Framing::None
                && (k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING)
            {
                continue;
            }
            fields.push((k.as_str().as_bytes(), v.as_bytes().to_vec()));
        }
        let mut out = Vec::with_capacity(256);
        httpq_proto::encode_request_head(
            &mut out,
            self.method.as_str(),
            &target,
            Version::Http11,
            fields.iter().map(|(k, v)| (*k, v.as_slice())),
        )
        .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        Ok(out)
    }

    pub(super) async fn write_all(
        &self,
        conn: &mut Connection,
        parts: &[&[u8]],
    ) -> Result<u64, ClientError> {
        let limit = self.timeouts.send;
        let mut n = 0u64;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            // The send timeout is for progress: one write call's wait.
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let w = self
                    .clock
                    .run(
                        &self.core,
                        TimeoutKind::Send,
                        limit,
                        conn.stream.write(rest),
                    )
                    .await?
                    .map_err(|e| ClientError::Send(e.to_string()))?;
                if w == 0 {
                    return Err(ClientError::Send("connection closed".into()));
                }
                rest = &rest[w..];
                n += w as u64;
            }
        }
        Ok(n)
    }

    pub(super) async fn send_inner(&mut self, body: Option<Bytes>) -> Result<(), ClientError> {
        // Sent again (as HttpSendRequest may be): the previous response's
        // or upload's connection goes first, or under the per-server limit
        // this request could wait for its own slot.
        match std::mem::replace(&mut self.state, State::Created) {
            State::Receiving(mut r) => {
                if let Some(c) = r.conn.take() {
                    self.close_connection(c);
                }
            }
            State::Uploading(up) => self.close_connection(up.conn),
            State::Created | State::Failed => {}
        }
        let mut body = body;
        let redirect_started = Instant::now();
        loop {
            self.clock.timings = Timings {
                redirect: self.clock.timings.redirect,
                ..Timings::default()
            };
            let mut attempt = 0;
            let (conn, head) = loop {
                attempt += 1;
                let mut conn = self.acquire().await?;
                let framing = match &body {
                    Some(b) => Framing::Length(b.len() as u64),
                    None if matches!(self.method, Method::POST | Method::PUT | Method::PATCH) => {
                        Framing::Length(0)
                    }
                    None => Framing::None,
                };
                let head = self.encode_head(&conn, framing)?;
                self.clock.timings.pretransfer = self.clock.since();
                self.core.emit(Status::SendingRequest, Payload::None);
                let parts: [&[u8]; 2] = [&head, body.as_deref().unwrap_or_default()];
                let sent = self.write_all(&mut conn, &parts).await;
                let result = match sent {
                    Ok(n) => {
                        self.core.emit(Status::RequestSent, Payload::Bytes(n));
                        self.read_head(&mut conn).await.map(|h| (conn, h))
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(ok) => break ok,
                    // A pooled connection the server closed just as we took
                    // it: try once more on a new one (the body is in memory).
                    // A failed write sent nothing usable; a close after a
                    // complete request may mean it was processed, so only
                    // idempotent methods go again then (RFC 9110 §9.2.2).
                    Err(ClientError::Send(_)) if self.reused && attempt == 1 => {}
                    Err(ClientError::Protocol(Violation::ClosedBeforeResponse))
                        if self.reused && attempt == 1 && self.method.is_idempotent() => {}
                    Err(e) => return Err(e),
                }
            };
            match self.redirect_target(&head)? {
                Some((next, method, keep_body)) => {
                    self.redirects += 1;
                    if self.redirects > self.session.config.max_redirects {
                        return Err(ClientError::TooManyRedirects(
                            self.session.config.max_redirects,
                        ));
                    }
                    self.redirect_heads.push(head.as_bytes().clone());
                    self.discard_body(conn, &head).await?;
                    if !next.same_origin(&self.url) {
                        // Credentials are for the origin they were given to.
                        self.headers.remove(header::AUTHORIZATION);
                        self.headers.remove(header::COOKIE);
                    }
                    if !keep_body {
                        body = None;
                        self.drop_body_headers();
                    }
                    self.method = method;
                    self.trace_redirect(&next, head.status());
                    self.core
                        .emit(Status::Redirect, Payload::Url(next.to_string()));
                    self.url = carry_credentials(&self.url, next);
                    self.clock.timings.redirect = Some(redirect_started.elapsed());
                    continue;
                }
                None => {
                    self.start_receiving(conn, head)?;
                    return Ok(());
                }
            }
        }
    }

    /// A redirect followed (URLs as shown: never with credentials).
    fn trace_redirect(&self, next: &Url, status: u16) {
        tracing::debug!(
            handle = self.core.id,
            context = self.core.context,
            status,
            from = %self.url,
            to = %next,
            redirects = self.redirects,
            "redirect"
        );
    }

    /// Where a 3xx leads, with the method and whether the body goes too;
    /// `None` when it is not followed.
    pub(super) fn redirect_target(
        &self,
        head: &ResponseHead,
    ) -> Result<Option<(Url, Method, bool)>, ClientError> {
        let status = head.status();
        if !self.session.config.follow_redirects || !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let Some(loc) = head.header("location") else {
            return Ok(None);
        };
        let loc =
            std::str::from_utf8(loc).map_err(|_| ClientError::Protocol(Violation::BadRedirect))?;
        let next = self
            .url
            .join(loc)
            .map_err(|_| ClientError::Protocol(Violation::BadRedirect))?;
        let (method, keep_body) = match status {
            // By convention (browsers, curl): POST becomes GET on 301/302,
            // and everything but HEAD becomes GET on 303.
            301 | 302 if self.method == Method::POST => (Method::GET, false),
            303 if self.method != Method::HEAD => (Method::GET, false),
            _ => (self.method.clone(), true),
        };
        Ok(Some((next, method, keep_body)))
    }

    /// A redirect turned the request into one without a body: the caller's
    /// fields describing the body go with it (a Content-Length or
    /// Transfer-Encoding left on a bodyless GET would make the server wait
    /// for a body that never comes).
    pub(super) fn drop_body_headers(&mut self) {
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ] {
            self.headers.remove(name);
        }
    }

    /// Reads a redirect's body so the connection can be reused; a large or
    /// slow one just closes the connection.
    /// Close and the total deadline still end the request here.
    pub(super) async fn discard_body(
        &mut self,
        mut conn: Connection,
        head: &ResponseHead,
    ) -> Result<(), ClientError> {
        let mut dec = BodyDecoder::new(head.body(), &self.session.config.limits);
        let small = matches!(head.body(), BodyLength::Length(n) if n <= REDIRECT_DRAIN_MAX)
            || head.body().is_empty();
        if !small || !head.keep_alive() {
            self.close_connection(conn);
            return Ok(());
        }
        loop {
            match dec.decode(&conn.rbuf) {
                Ok(d) => {
                    conn.rbuf.advance(d.consumed);
                    if d.done {
                        break;
                    }
                }
                Err(_) => {
                    self.close_connection(conn);
                    return Ok(());
                }
            }
            conn.rbuf.reserve(4096);
            let limit = self.timeouts.receive;
            match self
                .clock
                .run(
                    &self.core,
                    TimeoutKind::Receive,
                    limit,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                Err(e @ (ClientError::Cancelled | ClientError::Timeout(TimeoutKind::Total))) => {
                    self.close_connection(conn);
                    return Err(e);
                }
                // A redirect body that does not arrive costs only its connection.
                _ => {
                    self.close_connection(conn);
                    return Ok(());
                }
            }
        }
        // A closed handle (or session, whose pool is already cleared) pools nothing.
        if conn.rbuf.is_empty() && !self.core.is_closed() {
            self.core.detach_socket();
            self.session.pool.checkin(conn);
        } else {
            self.close_connection(conn);
        }
        Ok(())
    }

    pub(super) fn close_connection(&self, conn: Connection) {
        let id = conn.id;
        self.core
            .emit(Status::ClosingConnection, Payload::Connection(id));
        drop(conn);
        self.core
            .emit(Status::ConnectionClosed, Payload::Connection(id));
    }

    /// Reads the response head, passing over (and notifying) 1xx responses.
    /// The receive timeout runs from when the request was sent.
    pub(super) async fn read_head(
        &mut self,
        conn: &mut Connection,
    ) -> Result<ResponseHead, ClientError> {
        let cfg = &self.session.config;
        let deadline = self.timeouts.receive.map(|d| Instant::now() + d);
        let mut parser = ResponseParser::new(cfg.limits);
        let mut first = true;
        loop {
            if let Some(head) = parser.parse(&mut conn.rbuf, &self.method)? {
                if head.is_informational() {
                    self.core
                        .emit(Status::IntermediateResponse, Payload::Status(head.status()));
                    if head.status() == 101 {
                        return Err(ClientError::Protocol(Violation::Parse(
                            httpq_proto::Error::UnsupportedTransferCoding,
                        )));
                    }
                    continue;
                }
                return Ok(head);
            }
            conn.rbuf.reserve(8192);
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let n = self
                .clock
                .run_until(
                    &self.core,
                    TimeoutKind::Receive,
                    deadline,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await?
                .map_err(|e| ClientError::Receive(e.to_string()))?;
            if n == 0 {
                parser.eof(&conn.rbuf)?;
                return Err(ClientError::Protocol(Violation::ClosedBeforeResponse));
            }
            if first {
                first = false;
                self.clock.timings.first_byte = self.clock.since();
                self.core.emit(Status::FirstByte, Payload::None);
            }
            self.core
                .emit(Status::ResponseReceived, Payload::Bytes(n as u64));
        }
    }

    pub(super) fn start_receiving(
        &mut self,
        conn: Connection,
        head: ResponseHead,
    ) -> Result<(), ClientError> {
        let cfg = &self.session.config;
        if matches!(head.body(), BodyLength::Tunnel) {
            return Err(ClientError::InvalidState(
                "CONNECT tunnels are not requests",
            ));
        }
        let encoding = head.header("content-encoding");
        // A response without a body (HEAD, 204, 304, length 0) has nothing
        // to decode, whatever Content-Encoding the representation has.
        let content = if cfg.decompress && !head.body().is_empty() {
            let limits = DecodeLimits::new(cfg.max_decoded_bytes, cfg.max_compression_ratio);
            ContentDecoder::for_encoding(encoding, limits).unwrap_or_else(ContentDecoder::identity)
        } else {
            ContentDecoder::identity()
        };
        let body = BodyDecoder::new(head.body(), &cfg.limits);
        let keep_alive = head.keep_alive() && head.body() != BodyLength::CloseDelimited;
        let mut r = Box::new(Receiving {
            body,
            content,
            ready: BytesMut::new(),
            scratch: Vec::new(),
            done: false,
            keep_alive,
            conn: Some(conn),
            head,
            low_speed_start: Instant::now(),
            low_speed_bytes: 0,
            last_read: Instant::now(),
        });
        if r.body.is_done() {
            self.finish_body(&mut r)?;
        }
        self.state = State::Receiving(r);
        Ok(())
    }

    pub(super) async fn send_headers_inner(
        &mut self,
        length: Option<u64>,
    ) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("already sent"));
        }
        let mut conn = self.acquire().await?;
        let framing = match length {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        };
        let head = self.encode_head(&conn, framing)?;
        self.clock.timings.pretransfer = self.clock.since();
        self.core.emit(Status::SendingRequest, Payload::None);
        let n = self.write_all(&mut conn, &[&head]).await?;
        self.core.emit(Status::RequestSent, Payload::Bytes(n));
        self.state = State::Uploading(Box::new(Upload {
            conn,
            chunked: length.is_none(),
            remaining: length,
        }));
        Ok(())
    }

    pub(super) async fn write_inner(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let State::Uploading(mut up) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("write before send_headers"));
        };
        if let Some(rest) = up.remaining {
            if data.len() as u64 > rest {
                return Err(ClientError::InvalidRequest(
                    "more body than the announced Content-Length".into(),
                ));
            }
            up.remaining = Some(rest - data.len() as u64);
        }
        if !data.is_empty() {
            let n = if up.chunked {
                let size = httpq_proto::ChunkHeader::new(data.len() as u64);
                self.write_all(&mut up.conn, &[size.as_bytes(), data, b"\r\n"])
                    .await?
            } else {
                self.write_all(&mut up.conn, &[data]).await?
            };
            self.core.emit(Status::RequestSent, Payload::Bytes(n));
        }
        self.state = State::Uploading(up);
        Ok(())
    }

    pub(super) async fn end_request_inner(&mut self) -> Result<(), ClientError> {
        let State::Uploading(mut up) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("end_request before send_headers"));
        };
        if up.remaining.is_some_and(|r| r > 0) {
            return Err(ClientError::InvalidRequest(
                "less body than the announced Content-Length".into(),
            ));
        }
        if up.chunked {
            let n = self.write_all(&mut up.conn, &[b"0\r\n\r\n"]).await?;
            self.core.emit(Status::RequestSent, Payload::Bytes(n));
        }
        let mut conn = up.conn;
        let head = self.read_head(&mut conn).await?;
        // A streamed body cannot be sent again, so only redirects that drop
        // it are followed.
        if let Some((next, method, false)) = self.redirect_target(&head)? {
            self.redirect_heads.push(head.as_bytes().clone());
            self.discard_body(conn, &head).await?;
            self.redirects += 1;
            if self.redirects > self.session.config.max_redirects {
                return Err(ClientError::TooManyRedirects(
                    self.session.config.max_redirects,
                ));
            }
            if !next.same_origin(&self.url) {
                self.headers.remove(header::AUTHORIZATION);
                self.headers.remove(header::COOKIE);
            }
            self.drop_body_headers();
            self.method = method;
            self.trace_redirect(&next, head.status());
            self.core
                .emit(Status::Redirect, Payload::Url(next.to_string()));
            self.url = carry_credentials(&self.url, next);
            return self.send_inner(None).await;
        }
        self.start_receiving(conn, head)
    }
}

/// A redirect on the same origin keeps the URL's credentials (a relative
/// Location has none of its own); one to another origin gets only what its
/// Location spells out.
fn carry_credentials(from: &Url, next: Url) -> Url {
    match from.credentials() {
        Some((u, p)) if from.same_origin(&next) && next.credentials().is_none() => {
            next.with_credentials(u, p)
        }
        _ => next,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}
