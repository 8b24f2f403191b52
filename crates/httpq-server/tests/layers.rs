//! Each crate reads top down: `lib.rs` lists its modules from the top,
//! and a module may import only modules listed after it. A `crate::m`
//! path to a module listed earlier is an import circle in the making.
//! (Paths through the crate root's re-exports, `crate::Config`, name no
//! module and are not followed.)

use std::path::{Path, PathBuf};

/// The modules of the crate at `src`, in the order `lib.rs` declares them.
fn modules(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("pub ");
            let l = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(l.to_string())
        })
        .collect()
}

/// The source files of module `m`: `m.rs`, or everything under `m/`.
fn files(src: &Path, m: &str) -> Vec<PathBuf> {
    let single = src.join(format!("{m}.rs"));
    if single.exists() {
        return vec![single];
    }
    let mut out = Vec::new();
    let mut dirs = vec![src.join(m)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// `module -> module` imports that go up the list.
fn upward(crate_dir: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let order = modules(&src);
    assert!(order.len() > 3, "modules of {crate_dir}: {order:?}");
    let mut bad = Vec::new();
    for (i, m) in order.iter().enumerate() {
        for f in files(&src, m) {
            let text = std::fs::read_to_string(&f).unwrap();
            for (j, other) in order.iter().enumerate().take(i) {
                let uses = text.contains(&format!("crate::{other}::"))
                    || text.contains(&format!("crate::{other};"))
                    || text.contains(&format!("crate::{other}}}"))
                    || text.contains(&format!("crate::{{{other}"));
                if uses && j < i {
                    bad.push(format!(
                        "{crate_dir}: {} uses {other}, listed above it",
                        f.display()
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn the_server_reads_top_down() {
    let bad = upward("httpq-server");
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_client_reads_top_down() {
    let bad = upward("httpq-client");
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_protocol_core_reads_top_down() {
    let bad = upward("httpq-proto");
    assert!(bad.is_empty(), "{bad:#?}");
}
