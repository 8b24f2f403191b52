//! Name resolution: the [`Resolver`] a session looks host names up with,
//! and the system's (getaddrinfo on tokio's blocking pool).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

/// Resolves host names. The default asks the system (getaddrinfo on a
/// blocking thread); tests and embedders may supply their own.
pub trait Resolver: Send + Sync {
    /// The addresses of `host` with `port` filled in.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;
}

/// The system resolver.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}
