//! `httpq`: the command-line face of httpq.
//! `httpq serve` runs the request-queue server over a directory (or in echo mode);
//! `httpq get` fetches a URL, curl-style, through the WinInet-model client;
//! `httpq completions` and `httpq man` describe the tool to shells and man.
//! Every subcommand logs through `logging` (`--log-level`, `--log-format`).

mod config;
mod control;
mod get;
mod logging;
mod observe;
mod serve;
mod state_cmd;
mod file_watch;
mod static_files;
mod write_out;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "httpq",
    version,
    about = "HTTP server and client on the http.sys and WinInet models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level: error, warn, info, debug, trace or off [default: warn for
    /// get, info for serve]. RUST_LOG, when set, wins (with its
    /// `target=level` directives).
    #[arg(long, global = true, value_name = "LEVEL", value_parser = logging::LEVELS)]
    log_level: Option<String>,
    /// Log lines on stderr as text or as JSON objects.
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory as static files (or echo requests), with live stats under /_httpq/.
    Serve(ServeArgs),
    /// Fetch a URL (curl-like flags and exit codes), with status notifications on request.
    Get(get::GetArgs),
    /// Show a running httpq's state (session, URL groups, queues, connections), as netsh http show servicestate.
    State(state_cmd::StateArgs),
    /// Print a completion script for a shell, e.g. `httpq completions bash > /etc/bash_completion.d/httpq`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `httpq man | man -l -`.
    Man,
}

/// The longest timeout the serve flags take (a year): beyond, a deadline
/// would not fit in the clock.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// Arguments of `httpq serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Directory to serve.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Answer every request, any method and path, with 200 and its own body.
    #[arg(long)]
    pub echo: bool,
    /// Worker threads, each with its own listening socket and share of the
    /// request queues (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Open files each worker keeps, like nginx's open_file_cache
    /// (checked against size and mtime on every request); 0: none.
    #[arg(long, default_value_t = 1024, value_name = "ENTRIES")]
    pub file_cache: usize,
    /// Open connections at most. At the limit, accepting pauses: new
    /// clients wait in the kernel's listen backlog until one ends (as
    /// nginx at worker_connections).
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Seconds a client may take to send a whole request head, however
    /// slowly it trickles (http.sys HeaderWait; slowloris).
    #[arg(long, default_value_t = 120, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub header_wait: u64,
    /// Longest gap, in seconds, between the body bytes of a request
    /// (http.sys EntityBody; slow POST).
    #[arg(long, default_value_t = 120, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub entity_body: u64,
    /// Seconds a keep-alive connection may sit idle between requests
    /// (http.sys IdleConnection).
    #[arg(long, default_value_t = 120, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub idle_timeout: u64,
    /// Bytes per second a client must take a response at, on average;
    /// a slower one is disconnected (http.sys MinSendRate; slow read).
    #[arg(long, default_value_t = 150, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_send_rate: u32,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this certificate
    /// chain, PEM, leaf first. Reloaded from the files on SIGHUP, without
    /// dropping connections.
    #[arg(
        long,
        value_name = "CERT.pem",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert: PEM, PKCS#8, RSA or EC.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate made at start for localhost,
    /// 127.0.0.1 and ::1 (development). Prints its SHA-256 fingerprint and
    /// writes it to a file for `httpq get --cacert`.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Serve the sites of a TOML file instead: each `[[site]]` is a URL
    /// group with its own request queue, `prefixes`, `root = "DIR"` or
    /// `echo = true`, `[site.timeouts]` and `tls` (see docs/CONFIG.md).
    /// The prefixes say where to listen.
    #[arg(
        long,
        value_name = "sites.toml",
        conflicts_with_all = ["dir", "echo", "listen", "tls_cert", "tls_key", "tls_self_signed"]
    )]
    pub config: Option<PathBuf>,
    /// Answer /_httpq/state and /_httpq/events (which show every client's
    /// address and request path) to any client; without it, only to the
    /// loopback (they answer 403 to others).
    #[arg(long)]
    pub control_remote: bool,
    /// Write a line per response to FILE (appended; `-` for standard
    /// output) in nginx's combined format, with the request id last.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// Milliseconds in-flight requests may run after Ctrl-C. Hidden: it
    /// exists so tests can check shutdown is bounded without waiting 10 s.
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub grace_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server's lifecycle is worth seeing by default; a curl-like client
    // should stay quiet unless something is wrong.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let background = matches!(cli.command, Command::Serve(_));
    let _log = logging::init(
        cli.log_level.as_deref(),
        cli.log_format,
        default_level,
        background,
    );
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Get(args) => get::run(args),
        Command::State(args) => state_cmd::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "httpq", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => match man_page().and_then(|p| std::io::stdout().write_all(&p)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("httpq: cannot write the man page: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The man page in roff, `.TH` first: clap_mangen puts its definition of
/// the `Aq` string before the title, which man(7) tools that look for the
/// title on the first line (whatis, lintian) do not expect. The definition
/// works as well after it.
fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    let text = String::from_utf8_lossy(&page);
    let Some(title) = text.lines().position(|l| l.starts_with(".TH ")) else {
        return Ok(page);
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    for line in std::iter::once(lines[title])
        .chain(lines[..title].iter().copied())
        .chain(lines[title + 1..].iter().copied())
    {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Builds a runtime for a subcommand, or says why it cannot.
fn build_runtime(
    mut builder: tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("httpq: cannot start runtime: {e}");
        std::process::ExitCode::FAILURE
    })
}
