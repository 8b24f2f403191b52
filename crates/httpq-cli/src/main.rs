//! `httpq`: the command-line face of httpq.
//! `httpq serve` runs the request-queue server over a directory (or in echo mode);
//! `httpq get` fetches a URL, curl-style, through the WinInet-model client.

mod get;
mod serve;
mod static_files;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "httpq",
    version,
    about = "HTTP server and client on the http.sys and WinInet models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory as static files (or echo requests), with live stats under /_httpq/.
    Serve(ServeArgs),
    /// Fetch a URL (curl-like flags and exit codes), with status notifications on request.
    Get(get::GetArgs),
}

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
    /// Milliseconds in-flight requests may run after Ctrl-C. Hidden: it
    /// exists so tests can check shutdown is bounded without waiting 10 s.
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub grace_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Get(args) => get::run(args),
    }
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
