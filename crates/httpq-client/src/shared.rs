//! What every handle of a session shares: the configuration, where
//! notifications go, the keep-alive pool, TLS and name resolution.

use std::sync::Arc;

use crate::config::Config;
use crate::handle::Notifier;
use crate::pool::Pool;
use crate::resolve::Resolver;
use crate::transport::TlsConfig;

pub(crate) struct SessionInner {
    pub config: Config,
    pub notifier: Arc<Notifier>,
    pub pool: Arc<Pool>,
    pub tls: TlsConfig,
    pub resolver: Arc<dyn Resolver>,
}
