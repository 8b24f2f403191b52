//! Where the libraries' `tracing` events go for every subcommand: one
//! subscriber on stderr, as text or JSON lines, filtered by `RUST_LOG` or `--log-level`.

use std::io::IsTerminal;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (fields, target, level, spans).
    Json,
}

/// The levels `--log-level` takes.
pub const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// Installs the subscriber: `RUST_LOG` when it is set (the usual
/// `target=level` directives), else `level`, else `default`.
///
/// With `background` (the server), lines go to stderr from a thread of
/// their own: a worker never waits for a slow terminal or pipe, and when
/// that thread falls far behind, lines are dropped rather than queued
/// without end. Keep the returned guard until exit: dropping it writes
/// what is still queued.
///
/// ```ignore
/// let _guard = logging::init(Some("debug"), LogFormat::Json, "warn", false);
/// tracing::debug!(handle = 2, "shows as a JSON line on stderr");
/// ```
pub fn init(
    level: Option<&str>,
    format: LogFormat,
    default: &str,
    background: bool,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|e| {
                eprintln!("httpq: ignoring RUST_LOG={directives:?}: {e}");
                EnvFilter::new(level.unwrap_or(default))
            }),
        _ => EnvFilter::new(level.unwrap_or(default)),
    };
    let (writer, guard) = if background {
        let (w, g) = tracing_appender::non_blocking(std::io::stderr());
        (BoxMakeWriter::new(w), Some(g))
    } else {
        (BoxMakeWriter::new(std::io::stderr), None)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // A second subscriber (a test that set one) is not an error worth a panic.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    guard
}
