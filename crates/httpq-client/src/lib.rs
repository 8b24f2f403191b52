//! httpq's client: the WinInet full-asynchronous model in async Rust.
//!
//! Every operation may complete later; every phase of a request is
//! reported as a numbered [`Status`] notification (10 RESOLVING_NAME …
//! 100 REQUEST_COMPLETE) carrying the handle's context; reads fill caller
//! buffers; each timeout fires close to its value and names itself; and
//! closing a handle cancels what is pending and leaves nothing behind.
//!
//! | concept | module |
//! |---|---|
//! | the session and what opens handles | [`session`] |
//! | configuration, timeouts, proxy | `config` (re-exported from [`session`]) |
//! | request and connect handles: send, redirects, body | [`request`] |
//! | status notifications and timings | [`status`] |
//! | handle tree, close, delivery order | `handle` |
//! | a request's timings, deadlines and cancellation | `clock` |
//! | keep-alive pool, per-server limit, connections | `pool` |
//! | resolve, connect, tunnel, TLS | `resolve`, `connect`, `transport` |
//! | gzip / deflate / br | `decode` |
//! | blocking facade | [`blocking`] |
//!
//! The client logs through `tracing`: a debug event per notification
//! (handle, context, number, name), one event per failed operation (warn
//! for a protocol violation), debug events for redirects, and a debug
//! span around each send; nothing is formatted when the level is off.
//!
//! ```no_run
//! # async fn f() -> Result<(), httpq_client::ClientError> {
//! use std::sync::Arc;
//! use httpq_client::{Config, Session};
//! let session = Session::new(Config {
//!     callback: Some(Arc::new(|n: &httpq_client::Notification| {
//!         eprintln!("{} {} {:?}", n.status.number(), n.status.name(), n.payload)
//!     })),
//!     ..Config::default()
//! })?;
//! let mut req = session.open_url("http://127.0.0.1:8080/", 1).await?;
//! println!("{}", req.status());
//! let body = req.bytes().await?;
//! # Ok(()) }
//! ```

// Top down: each module imports only modules listed after it.
#[doc(hidden)]
pub mod fuzzing;
pub mod blocking;
pub mod session;
pub mod request;
mod connect;
mod shared;
mod pool;
mod clock;
mod handle;
mod config;
mod resolve;
mod transport;
mod decode;
pub mod status;
mod url;
mod error;

pub use error::{BodyLimit, ClientError, TimeoutKind, Violation};
pub use request::{BodyStream, Closer, ConnectHandle, Query, RequestHandle};
pub use resolve::{Resolver, SystemResolver};
pub use session::{Callback, Config, LowSpeed, Proxy, Session, Timeouts};
pub use status::{Notification, Payload, Status, Timings};
pub use transport::TlsRoots;
pub use url::{Scheme, Url};
