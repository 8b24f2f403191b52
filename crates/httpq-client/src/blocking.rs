//! A small blocking facade for callers without an async runtime: the same
//! session and handles, each call run to completion on a private runtime.

use std::sync::Arc;

use bytes::Bytes;

use crate::{ClientError, Config, Query};

/// A blocking session.
///
/// ```no_run
/// let s = httpq_client::blocking::Session::new(Default::default()).unwrap();
/// let mut r = s.get("http://127.0.0.1:8080/").unwrap();
/// let mut buf = [0u8; 4096];
/// while r.read(&mut buf).unwrap() > 0 {}
/// ```
pub struct Session {
    rt: Arc<tokio::runtime::Runtime>,
    inner: crate::Session,
}

impl Session {
    /// A session with `config` and its own current-thread runtime.
    pub fn new(config: Config) -> Result<Session, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|_| ClientError::InvalidState("cannot start a runtime"))?;
        let inner = {
            let _g = rt.enter();
            crate::Session::new(config)?
        };
        Ok(Session {
            rt: Arc::new(rt),
            inner,
        })
    }

    /// GET `url` and wait for the response head.
    pub fn get(&self, url: &str) -> Result<Request, ClientError> {
        let h = self.rt.block_on(self.inner.open_url(url, 0))?;
        Ok(Request {
            rt: self.rt.clone(),
            inner: h,
        })
    }

    /// The async session underneath.
    pub fn session(&self) -> &crate::Session {
        &self.inner
    }
}

/// A blocking request handle.
pub struct Request {
    rt: Arc<tokio::runtime::Runtime>,
    inner: crate::RequestHandle,
}

impl Request {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.inner.status()
    }

    /// One fact about the response.
    pub fn query_info(&self, q: Query) -> Option<String> {
        self.inner.query_info(q)
    }

    /// Reads body bytes into `buf`; 0 at the end.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        self.rt.block_on(self.inner.read(buf))
    }

    /// The rest of the body.
    pub fn bytes(&mut self) -> Result<Bytes, ClientError> {
        self.rt.block_on(self.inner.bytes())
    }
}
