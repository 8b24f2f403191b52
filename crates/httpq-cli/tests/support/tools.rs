//! External tools the observability tests drive (promtool, Chromium):
//! found on PATH, else installed with apt-get, else the test is skipped with a printed reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One of `names`, installing Debian's `package` if none is on PATH.
/// `None` after printing why the test that asked is skipped.
pub fn find_or_install(names: &[&str], package: &str, test: &str) -> Option<PathBuf> {
    if let Some(p) = on_path(names) {
        return Some(p);
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match on_path(names) {
        Some(p) => Some(p),
        None => {
            eprintln!(
                "skipped: {test}: none of {names:?} on PATH and `apt-get install {package}` {}",
                if installed {
                    "did not provide it"
                } else {
                    "failed (run `apt-get update` first, as root)"
                }
            );
            None
        }
    }
}
