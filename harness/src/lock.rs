//! Ownership of output directories: one command writes a directory at a time.
//!
//! A command that writes directory `D` holds an *exclusive* lock on `D/.regulab.lock`
//! for as long as it runs; a command that only reads `D` holds a *shared* one (any
//! number of readers, no writer). The locks are the operating system's advisory file
//! locks (`flock(2)` on Unix, through [`std::fs::File::try_lock`]): the kernel releases
//! them when the process ends however it ends (SIGKILL, power loss of a node), so a
//! lock is never stale. Taking a lock never waits: a busy directory is an error at
//! once, [`LockError::Busy`], naming the directory and its holder, which the holder
//! writes into the lock file (pid, host, start, command) after taking it.
//!
//! Run directories have locks of their own, [`lock_run`]: `D/.regulab.locks/<run>.lock`
//! (beside the run directory, so that a run directory holds only its results). A
//! command that owns all of `D` (`regulab run`) needs none of them; the intended use is
//! a sweep split into shards (one per Slurm array task) writing into one `D`
//! concurrently: each shard holds `D` *shared* and the run directories it trains
//! *exclusively*, while `regulab run` (exclusive on `D`) excludes all of them.
//! A reader of one run directory (`verify D/run`) holds `D` shared and the run's lock
//! shared ([`lock_path`]).
//!
//! The lock files are never deleted: deleting a lock file while another process has
//! it open would let two processes "hold" two different files of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Name of a directory's lock file.
pub const LOCK_FILE: &str = ".regulab.lock";

/// The directory of the run locks of an output directory.
pub const RUN_LOCKS_DIR: &str = ".regulab.locks";

/// How a command holds a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Readers: any number at once, no writer.
    Shared,
    /// The one writer.
    Exclusive,
}

/// A directory that cannot be locked.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another command holds the directory.
    #[error(
        "{dir} is in use by another regulab command ({holder}); wait for it to finish, \
         or use another directory"
    )]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// Who holds it, as recorded in its lock file.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("{path}: cannot lock: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Who holds a lock: written into the lock file by its holder, one JSON line each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock, UTC.
    pub started_utc: String,
    /// The command, e.g. `regulab run`.
    pub command: String,
}

impl Holder {
    /// This process, running `command`.
    pub fn this_process(command: &str) -> Holder {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Holder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            started_utc: crate::run::utc_string(now),
            command: command.to_string(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "pid {} on host {}, `{}` since {}",
            self.pid, self.host, self.command, self.started_utc
        )
    }
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    /// The lock file (`None`: a shared lock on a directory that cannot be written,
    /// where no writer can be either).
    file: Option<File>,
    dir: PathBuf,
    access: Access,
}

impl DirLock {
    /// The directory held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How it is held.
    pub fn access(&self) -> Access {
        self.access
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The sole holder clears its record (best effort) before the OS releases the
        // lock when the file is closed.
        if let (Some(f), Access::Exclusive) = (&self.file, self.access) {
            let _ = f.set_len(0);
        }
    }
}

/// The holders recorded in a lock file, for the error message.
fn recorded_holders(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let holders: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Holder>(l).ok())
        .map(|h| h.describe())
        .collect();
    if holders.is_empty() {
        "holder not recorded yet".to_string()
    } else {
        holders.join("; ")
    }
}

/// Lock the file `path` (created if needed) on behalf of directory `dir`.
fn lock_file(path: &Path, dir: &Path, access: Access, command: &str) -> Result<DirLock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(f) => f,
        // A directory this user cannot write: a reader may still lock an existing lock
        // file read-only, or, without one, proceed unlocked (no writer can be there).
        Err(e)
            if access == Access::Shared
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
        {
            match File::open(path) {
                Ok(f) => f,
                Err(_) => {
                    return Ok(DirLock {
                        file: None,
                        dir: dir.to_path_buf(),
                        access,
                    });
                }
            }
        }
        Err(e) => return Err(io(e)),
    };
    let locked = match access {
        Access::Exclusive => file.try_lock(),
        Access::Shared => file.try_lock_shared(),
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Busy {
                dir: dir.to_path_buf(),
                holder: recorded_holders(path),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // Record the holder: best effort (a full disk must not stop a command that only
    // reads, nor hide the real error of one that writes).
    let mut line = serde_json::to_string(&Holder::this_process(command)).unwrap_or_default();
    line.push('\n');
    let mut f = &file;
    let _ = match access {
        // the only holder: replace whatever an earlier one left
        Access::Exclusive => f
            .set_len(0)
            .and_then(|()| f.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| f.write_all(line.as_bytes())),
        // one line per reader, appended (lines of readers that have ended remain until
        // the next exclusive holder)
        Access::Shared => f
            .seek(SeekFrom::End(0))
            .map(drop)
            .and_then(|()| f.write_all(line.as_bytes())),
    };
    Ok(DirLock {
        file: Some(file),
        dir: dir.to_path_buf(),
        access,
    })
}

/// Lock directory `dir` (which must exist) for `command`.
pub fn lock_dir(dir: &Path, access: Access, command: &str) -> Result<DirLock, LockError> {
    lock_file(&dir.join(LOCK_FILE), dir, access, command)
}

/// Lock run `run` of output directory `out`: `out/.regulab.locks/<run>.lock`. `run` must
/// be a plain name (no separator), as run names are.
pub fn lock_run(
    out: &Path,
    run: &str,
    access: Access,
    command: &str,
) -> Result<DirLock, LockError> {
    let locks = out.join(RUN_LOCKS_DIR);
    if let Err(source) = std::fs::create_dir_all(&locks) {
        // a reader of a directory it cannot write: nobody can write there either
        if access == Access::Shared && !locks.is_dir() {
            return Ok(DirLock {
                file: None,
                dir: out.join(run),
                access,
            });
        }
        return Err(LockError::Io {
            path: locks,
            source,
        });
    }
    lock_file(
        &locks.join(format!("{run}.lock")),
        &out.join(run),
        access,
        command,
    )
}

/// Whether `dir` is an output directory of regulab: one that has a lock file.
pub fn is_output_dir(dir: &Path) -> bool {
    dir.join(LOCK_FILE).is_file()
}

/// The locks of a command that reads ([`Access::Shared`]) or writes `path`, a sweep
/// or a run directory: a run directory inside an output directory is held through its
/// output directory (shared) and its run lock (`access`); any other directory through
/// its own lock file.
pub fn lock_path(path: &Path, access: Access, command: &str) -> Result<Vec<DirLock>, LockError> {
    let is_run = path.join("manifest.json").is_file() || path.join("epochs.csv").is_file();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str());
    match name {
        Some(name) if is_run && is_output_dir(parent) => Ok(vec![
            lock_dir(parent, Access::Shared, command)?,
            lock_run(parent, name, access, command)?,
        ]),
        _ => Ok(vec![lock_dir(path, access, command)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_everyone_and_names_its_holder() {
        let d = tempfile::tempdir().unwrap();
        let a = lock_dir(d.path(), Access::Exclusive, "regulab run").unwrap();
        for access in [Access::Exclusive, Access::Shared] {
            let e = lock_dir(d.path(), access, "regulab verify").unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, LockError::Busy { .. }), "{msg}");
            assert!(
                msg.contains(&format!("pid {}", std::process::id()))
                    && msg.contains("`regulab run`")
                    && msg.contains(&d.path().display().to_string()),
                "{msg}"
            );
        }
        drop(a);
        // released: anyone may take it again, and the old record is gone
        let b = lock_dir(d.path(), Access::Shared, "regulab verify").unwrap();
        let c = lock_dir(d.path(), Access::Shared, "regulab verify").unwrap();
        let e = lock_dir(d.path(), Access::Exclusive, "regulab run").unwrap_err();
        assert!(e.to_string().contains("`regulab verify`"), "{e}");
        assert!(!e.to_string().contains("`regulab run`"), "{e}");
        drop((b, c));
        lock_dir(d.path(), Access::Exclusive, "regulab run").unwrap();
    }

    #[test]
    fn run_locks_are_per_run_under_a_shared_directory_lock() {
        let d = tempfile::tempdir().unwrap();
        // two shards: both hold the directory shared, each its own runs
        let _s1 = lock_dir(d.path(), Access::Shared, "regulab run --shard 0/2").unwrap();
        let _s2 = lock_dir(d.path(), Access::Shared, "regulab run --shard 1/2").unwrap();
        let _a = lock_run(d.path(), "a", Access::Exclusive, "shard 0").unwrap();
        let _b = lock_run(d.path(), "b", Access::Exclusive, "shard 1").unwrap();
        let e = lock_run(d.path(), "a", Access::Exclusive, "shard 1").unwrap_err();
        assert!(e.to_string().contains("`shard 0`"), "{e}");
        assert!(lock_run(d.path(), "a", Access::Shared, "verify").is_err());
        // a command that wants the whole directory waits for all of them
        assert!(lock_dir(d.path(), Access::Exclusive, "regulab run").is_err());
        // the run directories themselves hold no lock file
        assert!(!d.path().join("a").exists());
    }

    #[test]
    fn a_run_directory_is_locked_through_its_output_directory() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("base");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("manifest.json"), b"{}").unwrap();
        // a standalone run directory: its own lock
        let l = lock_path(&run, Access::Shared, "regulab verify").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].dir(), run);
        drop(l);
        // inside an output directory held by `regulab run`: busy
        let owner = lock_dir(d.path(), Access::Exclusive, "regulab run").unwrap();
        let e = lock_path(&run, Access::Shared, "regulab verify").unwrap_err();
        assert!(e.to_string().contains("`regulab run`"), "{e}");
        drop(owner);
        let l = lock_path(&run, Access::Exclusive, "regulab plot").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].access(), Access::Shared);
        assert_eq!(l[1].access(), Access::Exclusive);
    }
}
