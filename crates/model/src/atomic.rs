//! Atomic file output: write to a temporary file in the target's directory, flush,
//! sync, then rename over the target. A reader (or a crash) sees the old file or the
//! new one, never half of one; nothing is left behind on failure.
//!
//! The one writer of whole files in the workspace: [`crate::io::save`] and every file
//! the `regulab` command writes (CSV, manifests, models, checkpoints, figures) go
//! through it, so an interrupted write leaves one kind of temporary file only,
//! `.regulab-<random>.tmp` beside its target ([`TEMP_PREFIX`], [`TEMP_SUFFIX`]), which
//! the command that owns the directory removes.

use std::io::{BufWriter, Write};
use std::path::Path;

/// The start of a temporary file's name.
pub const TEMP_PREFIX: &str = ".regulab-";

/// The end of a temporary file's name.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Whether file name `name` is a temporary file of an interrupted atomic write.
pub fn is_temp_file(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Write `bytes` to `path` atomically (temp file in the same directory + rename).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

/// Write what `fill` writes to `path` atomically, streamed through a buffer (for large
/// files that need not be assembled in memory first). On error nothing is left behind
/// and the old file, if any, is kept.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // an ordinary output file, not tempfile's private 0600
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    // On error the NamedTempFile is dropped and removed.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("a.csv");
        write(&p, b"old contents, longer\n").unwrap();
        write(&p, b"new\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new\n");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.csv"]);
    }

    #[test]
    fn failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // the target is an existing directory: rename fails
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        assert!(write(&target, b"data").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
    }

    #[test]
    fn streamed_write_is_atomic_too() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        write(&p, b"old").unwrap();
        // a failing writer leaves the old file and no temporary file
        let e = write_with(&p, |w| {
            w.write_all(&[1; 100_000])?;
            Err(std::io::Error::other("stop"))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // pieces larger and smaller than the buffer arrive in order
        write_with(&p, |w| {
            w.write_all(&[7; 100_000])?;
            w.write_all(b"end")
        })
        .unwrap();
        let got = std::fs::read(&p).unwrap();
        assert_eq!(got.len(), 100_003);
        assert!(got[..100_000].iter().all(|&b| b == 7) && got.ends_with(b"end"));
    }
}
