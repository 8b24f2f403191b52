//! What changed under the served root, as inotify tells it: the file
//! cache trusts an entry without a `stat` while nothing it watches has
//! changed since the entry was last known good.
//!
//! One inotify descriptor per served root, watching the directories of
//! cached files and their parents up to the root, for anything that
//! writes, renames, creates, removes or changes attributes. Any such
//! event moves a generation counter on; an entry stamped with the current
//! generation is fresh. The kernel queues an event before the call that
//! caused it returns, and a request reads the queue's length (one cheap
//! `ioctl`, no path walk) before it trusts an entry, so a change made
//! before a request arrives is always seen by it.

use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// Directories watched at most; past it, entries fall back to a `stat`
/// per request (as with no watch at all).
const MAX_DIRS: usize = 4096;

/// A generation no entry is ever stamped with.
pub const NEVER: u64 = u64::MAX;

pub struct FileWatch {
    fd: OwnedFd,
    dirs: Mutex<HashSet<PathBuf>>,
    generation: AtomicU64,
}

impl FileWatch {
    /// A watch, or `None` where inotify is not available.
    pub fn new() -> Option<FileWatch> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        Some(FileWatch {
            fd,
            dirs: Mutex::new(HashSet::new()),
            generation: AtomicU64::new(0),
        })
    }

    /// The generation now, every change queued so far taken in.
    pub fn generation(&self) -> u64 {
        if rustix::io::ioctl_fionread(&self.fd).map_or(true, |n| n > 0) {
            self.take_events();
        }
        self.generation.load(Ordering::Acquire)
    }

    fn take_events(&self) {
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let (mut any, mut forget) = (false, false);
        while let Ok(event) = reader.next() {
            any = true;
            // A watched directory went (or events were lost): watches are
            // added again as entries are made.
            forget |= event.events().intersects(
                ReadFlags::DELETE_SELF
                    | ReadFlags::MOVE_SELF
                    | ReadFlags::IGNORED
                    | ReadFlags::QUEUE_OVERFLOW,
            );
        }
        if any {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        if forget {
            dirs.clear();
        }
    }

    /// Watches the directories from `file`'s up to `root`. Returns the
    /// generation an entry for `file` made from now on may be stamped
    /// with, or `None` when a watch could not be added.
    pub fn watch(&self, root: &Path, file: &Path) -> Option<u64> {
        {
            let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            let mask = WatchFlags::MODIFY
                | WatchFlags::ATTRIB
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::DELETE_SELF
                | WatchFlags::MOVE_SELF
                | WatchFlags::MOVED_FROM
                | WatchFlags::MOVED_TO
                | WatchFlags::ONLYDIR;
            let mut dir = file.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(root)) {
                if !dirs.contains(d) {
                    if dirs.len() >= MAX_DIRS {
                        return None;
                    }
                    inotify::add_watch(&self.fd, d, mask).ok()?;
                    dirs.insert(d.to_path_buf());
                }
                dir = d.parent();
            }
        }
        // Read after the watches are in place: a change from here on moves
        // the generation past it; one before is in what the caller reads next.
        Some(self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_under_a_watched_directory_move_the_generation_and_reads_do_not() {
        let base = std::env::temp_dir().join(format!("httpq-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let root = base.canonicalize().unwrap();
        let sub = root.join("a");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("f.txt");
        std::fs::write(&file, b"one").unwrap();
        let w = FileWatch::new().expect("inotify on Linux");
        let g = w.watch(&root, &file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"one");
        assert_eq!(w.generation(), g, "a read is no change");
        std::fs::write(&file, b"two").unwrap();
        let g2 = w.generation();
        assert_ne!(g2, g, "a write is seen at once, with no wait");
        // A rename in the root (a parent of the file's directory).
        std::fs::rename(&sub, root.join("b")).unwrap();
        assert_ne!(w.generation(), g2);
        // Outside the root nothing is watched.
        assert_eq!(
            w.watch(&sub, Path::new("/elsewhere/x")),
            Some(w.generation())
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
