//! Finding a dataset's directory.
//!
//! Order (DESIGN.md): an explicit `--data-dir`, the environment variable `REGULAB_DATA`,
//! `data/<name>/` under the current directory (the workspace), and for Fashion-MNIST
//! Debian's `/usr/share/datasets/fashion-mnist`. An explicit directory is the only
//! place searched (a typo must not silently fall back to other data). For `--data-dir`
//! and `REGULAB_DATA`, the directory itself and its `<name>/` subdirectory are tried.
//! A directory qualifies when it holds all four standard files, each as `<file>` or
//! `<file>.gz` (the raw file is preferred when both exist).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::checksums::{DEBIAN_FASHION_MNIST_DIR, DatasetName, STANDARD_FILES};
use super::error::{DataError, Searched};

/// The environment variable naming a data directory.
pub const DATA_ENV: &str = "REGULAB_DATA";

/// `dir/<base>` if it is a file, else `dir/<base>.gz` if it is a file.
pub fn find_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let raw = dir.join(base);
    if raw.is_file() {
        return Some(raw);
    }
    let gz = dir.join(format!("{base}.gz"));
    gz.is_file().then_some(gz)
}

/// Why `dir` holds no readable `<base>` or `<base>.gz` file: `missing <base>[.gz]`, or
/// what is there instead (a directory, a symbolic link loop, a broken link...).
pub fn file_problem(dir: &Path, base: &str) -> String {
    for name in [base.to_string(), format!("{base}.gz")] {
        let path = dir.join(&name);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => format!("{name} is a directory, not a file"),
            Ok(m) if m.is_file() => continue,
            Ok(_) => format!("{name} is not a regular file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{name} is a broken symbolic link")
            }
            Err(e) => format!("{name} cannot be read: {e}"),
        };
    }
    format!("missing {base}[.gz]")
}

/// The four standard files in `dir` (train images, train labels, test images, test
/// labels), or a description of what is missing (or unreadable) there.
pub fn find_standard_files(dir: &Path) -> Result<[PathBuf; 4], String> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            "not a directory".to_string()
        } else {
            "does not exist".to_string()
        });
    }
    let found = STANDARD_FILES.map(|f| find_file(dir, f));
    let (mut missing, mut other) = (Vec::new(), Vec::new());
    for (f, p) in STANDARD_FILES.iter().zip(&found) {
        if p.is_none() {
            match file_problem(dir, f) {
                m if m.starts_with("missing ") => missing.push(format!("{f}[.gz]")),
                problem => other.push(problem),
            }
        }
    }
    if !missing.is_empty() {
        other.insert(0, format!("missing {}", missing.join(", ")));
    }
    if !other.is_empty() {
        return Err(other.join("; "));
    }
    Ok(found.map(|p| p.unwrap_or_default()))
}

/// The directories searched for `name`, in order, with why each is searched.
pub fn candidate_dirs(
    name: DatasetName,
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    cwd: &Path,
) -> Vec<(PathBuf, &'static str)> {
    if let Some(dir) = explicit {
        return vec![
            (dir.to_path_buf(), "--data-dir"),
            (dir.join(name.as_str()), "--data-dir"),
        ];
    }
    let mut dirs = Vec::new();
    if let Some(env) = env.filter(|e| !e.is_empty()) {
        let dir = PathBuf::from(env);
        dirs.push((dir.clone(), DATA_ENV));
        dirs.push((dir.join(name.as_str()), DATA_ENV));
    }
    dirs.push((cwd.join("data").join(name.as_str()), "workspace"));
    if name == DatasetName::FashionMnist {
        dirs.push((PathBuf::from(DEBIAN_FASHION_MNIST_DIR), "system"));
    }
    dirs
}

/// Finds the directory of `name` from the real environment (`REGULAB_DATA`) and the
/// current directory; see [`locate_in`].
pub fn locate(name: DatasetName, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    let env = std::env::var_os(DATA_ENV);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    locate_in(name, explicit, env.as_deref(), &cwd)
}

/// The first candidate directory holding the four files; otherwise
/// [`DataError::NotFound`] listing every place searched and what to do.
pub fn locate_in(
    name: DatasetName,
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    cwd: &Path,
) -> Result<PathBuf, DataError> {
    let mut searched = Vec::new();
    for (dir, origin) in candidate_dirs(name, explicit, env, cwd) {
        match find_standard_files(&dir) {
            Ok(_) => return Ok(dir),
            Err(problem) => searched.push(Searched {
                dir,
                origin,
                problem,
            }),
        }
    }
    Err(DataError::NotFound {
        dataset: name,
        searched,
        hint: not_found_hint(name, explicit),
    })
}

/// Where `regulab fetch` writes by default: the explicit directory, else
/// `$REGULAB_DATA/<name>`, else `data/<name>` under the current directory.
pub fn default_fetch_dir(name: DatasetName, explicit: Option<&Path>) -> PathBuf {
    let env = std::env::var_os(DATA_ENV);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    fetch_dir_in(name, explicit, env.as_deref(), &cwd)
}

/// [`default_fetch_dir`] with the environment and current directory given.
pub fn fetch_dir_in(
    name: DatasetName,
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    cwd: &Path,
) -> PathBuf {
    match (explicit, env.filter(|e| !e.is_empty())) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(env)) => Path::new(env).join(name.as_str()),
        (None, None) => cwd.join("data").join(name.as_str()),
    }
}

/// The config that runs the lab's study offline on the MNIST test set shipped in the
/// repository's `data/mnist/` (named in the not-found hint).
pub const OFFLINE_MNIST_CONFIG: &str = "experiments/lab4-mnist-t10k.toml";

/// What to do when `name` was not found: one route per line.
fn not_found_hint(name: DatasetName, explicit: Option<&Path>) -> String {
    let files = STANDARD_FILES
        .iter()
        .map(|f| format!("{f}[.gz]"))
        .collect::<Vec<_>>()
        .join(", ");
    let dir_arg = explicit
        .map(|d| format!(" --data-dir {}", d.display()))
        .unwrap_or_default();
    let put = format!(
        "  * put the four IDX files ({files}) in one of the directories above, or in any \
         directory and pass --data-dir DIR (or set {DATA_ENV}=DIR)"
    );
    match name {
        DatasetName::Mnist => format!(
            "What you can do:\n  * download it (needs network): `regulab fetch mnist{dir_arg}`\n{put}\n  \
             * offline: the MNIST test set ships in regulab's repository (data/mnist/); from a \
             clone, `regulab run {OFFLINE_MNIST_CONFIG}` runs the lab's study on it\n  \
             * run the same study on Fashion-MNIST (Debian/Ubuntu: `sudo apt-get install \
             dataset-fashion-mnist`): add --set data.dataset=fashion-mnist"
        ),
        DatasetName::FashionMnist => format!(
            "What you can do:\n  * on Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` \
             (installs into {DEBIAN_FASHION_MNIST_DIR}, where regulab finds it)\n  \
             * download it (needs network): `regulab fetch fashion-mnist{dir_arg}`\n{put}"
        ),
        DatasetName::Custom => format!(
            "A custom dataset cannot be downloaded: put the four IDX files ({files}) in a \
             directory and pass --data-dir DIR (or set {DATA_ENV}=DIR)."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_all(dir: &Path, gz: bool) {
        std::fs::create_dir_all(dir).unwrap();
        for f in STANDARD_FILES {
            let name = if gz { format!("{f}.gz") } else { f.to_string() };
            std::fs::write(dir.join(name), b"x").unwrap();
        }
    }

    #[test]
    fn order_is_explicit_env_workspace_system() {
        let cwd = Path::new("/w");
        let c = candidate_dirs(DatasetName::FashionMnist, None, Some(OsStr::new("/e")), cwd);
        let dirs: Vec<_> = c.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/e"),
                PathBuf::from("/e/fashion-mnist"),
                PathBuf::from("/w/data/fashion-mnist"),
                PathBuf::from(DEBIAN_FASHION_MNIST_DIR),
            ]
        );
        let c = candidate_dirs(DatasetName::Mnist, None, None, cwd);
        assert_eq!(c, vec![(PathBuf::from("/w/data/mnist"), "workspace")]);
        let c = candidate_dirs(
            DatasetName::Mnist,
            Some(Path::new("/x")),
            Some(OsStr::new("/e")),
            cwd,
        );
        assert!(c.iter().all(|(_, o)| *o == "--data-dir"));
        assert_eq!(c[0].0, PathBuf::from("/x"));
    }

    #[test]
    fn finds_first_complete_dir_and_accepts_gz_or_raw() {
        let tmp = tempfile::tempdir().unwrap();
        let env = tmp.path().join("env");
        let cwd = tmp.path().join("cwd");
        // incomplete env dir: skipped
        std::fs::create_dir_all(&env).unwrap();
        std::fs::write(env.join("train-images-idx3-ubyte"), b"x").unwrap();
        touch_all(&cwd.join("data/mnist"), true);
        let found = locate_in(DatasetName::Mnist, None, Some(env.as_os_str()), &cwd).unwrap();
        assert_eq!(found, cwd.join("data/mnist"));
        touch_all(&env.join("mnist"), false);
        let found = locate_in(DatasetName::Mnist, None, Some(env.as_os_str()), &cwd).unwrap();
        assert_eq!(found, env.join("mnist"));
        let files = find_standard_files(&found).unwrap();
        assert_eq!(files[2], env.join("mnist/t10k-images-idx3-ubyte"));
    }

    #[test]
    fn not_found_lists_places_and_says_what_to_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("data/mnist")).unwrap();
        std::fs::write(
            tmp.path().join("data/mnist/t10k-labels-idx1-ubyte.gz"),
            b"x",
        )
        .unwrap();
        let err = locate_in(DatasetName::Mnist, None, None, tmp.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("regulab fetch mnist`"), "{msg}");
        assert!(
            msg.contains(&tmp.path().join("data/mnist").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains("missing train-images-idx3-ubyte[.gz]"),
            "{msg}"
        );
        assert!(!msg.contains("missing t10k-labels"), "{msg}");
        assert!(
            msg.contains(OFFLINE_MNIST_CONFIG),
            "the offline route: {msg}"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(OFFLINE_MNIST_CONFIG)
                .is_file()
        );
        match err {
            DataError::NotFound { searched, .. } => assert_eq!(searched.len(), 1),
            other => panic!("{other:?}"),
        }
        let explicit = tmp.path().join("nowhere");
        let msg = locate_in(DatasetName::FashionMnist, Some(&explicit), None, tmp.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("does not exist"), "{msg}");
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "regulab fetch fashion-mnist --data-dir {}",
                explicit.display()
            )),
            "{msg}"
        );
    }

    #[test]
    fn fetch_dir_defaults() {
        let cwd = Path::new("/w");
        assert_eq!(
            fetch_dir_in(DatasetName::Mnist, None, None, cwd),
            PathBuf::from("/w/data/mnist")
        );
        assert_eq!(
            fetch_dir_in(DatasetName::Mnist, None, Some(OsStr::new("/e")), cwd),
            PathBuf::from("/e/mnist")
        );
        assert_eq!(
            fetch_dir_in(
                DatasetName::Mnist,
                Some(Path::new("/x")),
                Some(OsStr::new("/e")),
                cwd
            ),
            PathBuf::from("/x")
        );
    }
}
