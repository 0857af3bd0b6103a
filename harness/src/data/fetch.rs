//! Downloading a dataset's four `.gz` files from public mirrors, verified and atomic.
//!
//! For each file: if a valid copy (`<file>` or `<file>.gz`, right raw checksum) is
//! already there it is kept; otherwise the mirrors are tried in turn. A download goes to
//! a temporary file in the destination directory, is flushed, decompressed and checked
//! (SHA-256 of the raw bytes), and only then renamed into place, so no failure (HTTP
//! error, refused connection, cut transfer, wrong content) leaves anything behind; the
//! next mirror is tried, and the final error lists every mirror's failure.
//!
//! The expected checksums are a parameter ([`fetch_files`], [`fetch_file`]); [`fetch`]
//! uses the known table of the dataset. The `.gz` wrapper's own checksum is not
//! checked: other gzip wrappers of the same data are as good.
//!
//! Length: about 660 lines of documented code and 70 of unit tests: the download, its
//! checks and the fetch plan (what `regulab run` may download) belong together.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ureq::Agent;
use ureq::config::AutoHeaderValue;

use super::checksums::{DEBIAN_FASHION_MNIST_DIR, DatasetName, FileSpec};
use super::idx::raw_digest_within;
use super::locate::find_file;

/// The environment variable overriding the mirror list (whitespace or comma separated).
pub const MIRROR_ENV: &str = "REGULAB_MIRROR";

/// Largest download accepted per file (the largest real one is 26 MB).
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Connection (and name resolution) timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout for the response headers, and for each read of the body (a stalled transfer).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why one mirror did not deliver a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with an HTTP error status.
    Http(u16),
    /// No response: connection refused, name not resolved, timeout, TLS error...
    Connect(String),
    /// The transfer broke off (e.g. fewer bytes than `Content-Length`).
    Transfer(String),
    /// The body exceeds [`MAX_DOWNLOAD_BYTES`].
    TooLarge,
    /// The body is gzip but does not decompress.
    Corrupt(String),
    /// The raw bytes are not the expected file.
    ChecksumMismatch {
        /// Hex SHA-256 of what was received (decompressed).
        found: String,
        /// Hex SHA-256 expected.
        expected: String,
    },
    /// Writing the local file failed.
    Write(String),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Http(s) => write!(f, "HTTP status {s}"),
            FailureKind::Connect(e) => write!(f, "no response: {e}"),
            FailureKind::Transfer(e) => write!(f, "download interrupted: {e}"),
            FailureKind::TooLarge => write!(f, "larger than {MAX_DOWNLOAD_BYTES} bytes"),
            FailureKind::Corrupt(e) => write!(f, "corrupt download: {e}"),
            FailureKind::ChecksumMismatch { found, expected } => write!(
                f,
                "wrong content: SHA-256 of the raw bytes is {found}, expected {expected}"
            ),
            FailureKind::Write(e) => write!(f, "cannot write: {e}"),
        }
    }
}

/// One mirror's failure for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorFailure {
    /// The URL tried.
    pub url: String,
    /// What went wrong.
    pub kind: FailureKind,
}

impl fmt::Display for MirrorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.kind)
    }
}

/// A failed fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `custom` datasets have no mirrors.
    #[error(
        "dataset {0} cannot be downloaded; put its four IDX files in a directory and pass --data-dir"
    )]
    NotFetchable(DatasetName),

    /// No mirror to try.
    #[error("no mirror given for {name}")]
    NoMirrors {
        /// The file.
        name: String,
    },

    /// The destination directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A file of that name is already there but is not the expected one; it is left
    /// alone (it is not ours to delete).
    #[error("{} exists but is not the expected file ({reason}); delete it and run again", path.display())]
    ExistingInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Every mirror failed; nothing was written.
    #[error("{}", all_failed_message(name, dir, failures))]
    AllMirrorsFailed {
        /// The file (base name).
        name: String,
        /// The destination directory.
        dir: PathBuf,
        /// Each mirror's failure, in the order tried.
        failures: Vec<MirrorFailure>,
    },
}

fn all_failed_message(name: &str, dir: &Path, failures: &[MirrorFailure]) -> String {
    let mut s = format!(
        "could not download {name}.gz into {} (nothing was written); every mirror failed:",
        dir.display()
    );
    for f in failures {
        s.push_str(&format!("\n  {f}"));
    }
    s
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchStatus {
    /// A valid copy was already there.
    AlreadyPresent,
    /// Downloaded from this URL.
    Downloaded {
        /// The URL that delivered it.
        url: String,
    },
    /// Copied from a verified installed copy (Debian's `dataset-fashion-mnist`).
    Copied {
        /// The file copied.
        from: PathBuf,
    },
}

/// One file of a successful fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedFile {
    /// Base name without `.gz`.
    pub name: String,
    /// The verified local file.
    pub path: PathBuf,
    /// Kept or downloaded.
    pub status: FetchStatus,
    /// Mirrors that failed before one succeeded (for the user's information).
    pub failed_mirrors: Vec<MirrorFailure>,
}

/// A successful fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchReport {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The files, in table order.
    pub files: Vec<FetchedFile>,
}

/// Downloads `dataset` into `data_dir` (created if needed), verifying every file.
///
/// `mirrors` are base URLs tried in order (the file URL is `<mirror>/<file>.gz`); when
/// empty, `REGULAB_MIRROR` if set, else the dataset's public mirrors (see
/// [`resolve_mirrors`]). `progress` draws a progress bar per file on stderr.
///
/// A failed fetch leaves nothing behind: no partial file, and none of the directories
/// it created for `data_dir` (those still empty are removed).
pub fn fetch(
    dataset: DatasetName,
    data_dir: &Path,
    mirrors: &[String],
    progress: bool,
) -> Result<FetchReport, FetchError> {
    let files = dataset.files().ok_or(FetchError::NotFetchable(dataset))?;
    let mirrors = resolve_mirrors(dataset, mirrors);
    undo_dirs_on_error(data_dir, || {
        fetch_files(files, data_dir, &mirrors, progress)
    })
}

/// The dataset `name` names, if it can be fetched (`mnist`, `fashion-mnist`); otherwise
/// a message listing those.
pub fn fetchable(name: &str) -> Result<DatasetName, String> {
    match name.parse::<DatasetName>() {
        Ok(d) if d.files().is_some() => Ok(d),
        _ => {
            let names: Vec<&str> = DatasetName::ALL
                .iter()
                .filter(|d| d.files().is_some())
                .map(|d| d.as_str())
                .collect();
            Err(format!(
                "unknown dataset `{name}`: regulab can fetch {}",
                names.join(" or ")
            ))
        }
    }
}

/// What `regulab fetch <dataset>` does, decided before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchPlan {
    /// An installed copy is complete and no other place was asked for: regulab reads it
    /// from there, nothing to do.
    UseInstalled(PathBuf),
    /// Copy the installed copy `from` into `to` (a directory was asked for with
    /// `--data-dir` or `REGULAB_DATA`).
    CopyInstalled {
        /// The installed copy.
        from: PathBuf,
        /// The directory asked for.
        to: PathBuf,
    },
    /// Download into `to` ([`fetch`]).
    Download {
        /// The directory the files go to ([`super::default_fetch_dir`]).
        to: PathBuf,
    },
}

/// What fetching `dataset` into `data_dir` (or the default place) means: an installed
/// copy ([`installed_copy`]) is used, or copied when a directory was asked for
/// explicitly (`data_dir` or `REGULAB_DATA`); with `mirrors` given, or without an
/// installed copy, the files are downloaded.
pub fn plan_fetch(dataset: DatasetName, data_dir: Option<&Path>, mirrors: &[String]) -> FetchPlan {
    let explicit = data_dir.is_some() || std::env::var_os(super::locate::DATA_ENV).is_some();
    let installed = if mirrors.is_empty() {
        installed_copy(dataset)
    } else {
        None
    };
    match installed {
        Some(from) if !explicit => FetchPlan::UseInstalled(from),
        Some(from) => FetchPlan::CopyInstalled {
            from,
            to: super::default_fetch_dir(dataset, data_dir),
        },
        None => FetchPlan::Download {
            to: super::default_fetch_dir(dataset, data_dir),
        },
    }
}

/// The downloads that would make `datasets` (config `data.dataset` values) loadable:
/// each fetchable dataset (MNIST, Fashion-MNIST) named there that is not found
/// ([`super::locate()`] with `data_dir`), once, with the directory it would go to. Names
/// of other datasets and directories are never downloaded.
pub fn missing_downloads<'a>(
    datasets: impl IntoIterator<Item = &'a str>,
    data_dir: Option<&Path>,
) -> Vec<(DatasetName, PathBuf)> {
    let mut out: Vec<(DatasetName, PathBuf)> = Vec::new();
    for d in datasets {
        if let Ok(name @ (DatasetName::Mnist | DatasetName::FashionMnist)) = d.parse()
            && !out.iter().any(|(n, _)| *n == name)
            && super::locate(name, data_dir).is_err()
        {
            out.push((name, super::default_fetch_dir(name, data_dir)));
        }
    }
    out
}

/// Runs `f`, which may create `dir` and its missing ancestors; when it fails, removes
/// those it created that are still empty (deepest first).
fn undo_dirs_on_error<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    let result = f();
    if result.is_err() {
        for d in &created {
            // fails (and keeps it) unless it is empty
            let _ = std::fs::remove_dir(d);
        }
    }
    result
}

/// The system-installed copy of `dataset` (Debian's `dataset-fashion-mnist` in
/// [`DEBIAN_FASHION_MNIST_DIR`]), if all four files are there with the right raw
/// SHA-256; `None` otherwise (and always for MNIST, which Debian does not package).
pub fn installed_copy(dataset: DatasetName) -> Option<PathBuf> {
    if dataset != DatasetName::FashionMnist {
        return None;
    }
    let dir = PathBuf::from(DEBIAN_FASHION_MNIST_DIR);
    let files = dataset.files()?;
    files
        .iter()
        .all(|spec| {
            find_file(&dir, &spec.name)
                .and_then(|p| raw_digest_within(&p, spec.raw_len).ok())
                .is_some_and(|d| d.sha256 == spec.raw_sha256)
        })
        .then_some(dir)
}

/// Copies `dataset`'s four files from `from` (an installed copy, see
/// [`installed_copy`]) into `data_dir`, each to a temporary file first, verified, then
/// renamed into place; valid files already in `data_dir` are kept, as [`fetch`] does.
pub fn copy_installed(
    dataset: DatasetName,
    from: &Path,
    data_dir: &Path,
) -> Result<FetchReport, FetchError> {
    undo_dirs_on_error(data_dir, || copy_installed_into(dataset, from, data_dir))
}

fn copy_installed_into(
    dataset: DatasetName,
    from: &Path,
    data_dir: &Path,
) -> Result<FetchReport, FetchError> {
    let files = dataset.files().ok_or(FetchError::NotFetchable(dataset))?;
    std::fs::create_dir_all(data_dir).map_err(|source| FetchError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for spec in files {
        match fetch_file(spec, data_dir, &[], false) {
            Err(FetchError::NoMirrors { .. }) => {}
            other => {
                out.push(other?);
                continue;
            }
        }
        let failed = |kind: FailureKind, url: String| FetchError::AllMirrorsFailed {
            name: spec.name.to_string(),
            dir: data_dir.to_path_buf(),
            failures: vec![MirrorFailure { url, kind }],
        };
        let src = find_file(from, &spec.name).ok_or_else(|| {
            failed(
                FailureKind::Transfer("no such file".into()),
                from.join(spec.name.as_ref()).display().to_string(),
            )
        })?;
        let write_err =
            |e: io::Error| failed(FailureKind::Write(e.to_string()), src.display().to_string());
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", spec.name))
            .suffix(".part")
            .tempfile_in(data_dir)
            .map_err(write_err)?;
        let mut reader = std::fs::File::open(&src).map_err(write_err)?;
        io::copy(&mut reader, tmp.as_file_mut()).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        let digest = raw_digest_within(tmp.path(), spec.raw_len).map_err(|e| {
            failed(
                FailureKind::Corrupt(e.to_string()),
                src.display().to_string(),
            )
        })?;
        if digest.sha256 != spec.raw_sha256 {
            return Err(failed(
                FailureKind::ChecksumMismatch {
                    found: digest.sha256,
                    expected: spec.raw_sha256.to_string(),
                },
                src.display().to_string(),
            ));
        }
        let name = src.file_name().map(PathBuf::from).unwrap_or_default();
        let dest = data_dir.join(name);
        tmp.persist(&dest).map_err(|e| {
            failed(
                FailureKind::Write(e.error.to_string()),
                src.display().to_string(),
            )
        })?;
        out.push(FetchedFile {
            name: spec.name.to_string(),
            path: dest,
            status: FetchStatus::Copied { from: src },
            failed_mirrors: Vec::new(),
        });
    }
    Ok(FetchReport {
        dir: data_dir.to_path_buf(),
        files: out,
    })
}

/// The mirrors to use: `cli` if not empty, else `$REGULAB_MIRROR`, else the defaults.
pub fn resolve_mirrors(dataset: DatasetName, cli: &[String]) -> Vec<String> {
    let env = std::env::var(MIRROR_ENV).ok();
    mirrors_from(dataset, cli, env.as_deref())
}

/// [`resolve_mirrors`] with the environment value given.
pub fn mirrors_from(dataset: DatasetName, cli: &[String], env: Option<&str>) -> Vec<String> {
    if !cli.is_empty() {
        return cli.to_vec();
    }
    let from_env: Vec<String> = env
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !from_env.is_empty() {
        return from_env;
    }
    dataset
        .default_mirrors()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Fetches each file of `files` (see [`fetch_file`]); stops at the first failure
/// (files already fetched stay, each complete and verified).
pub fn fetch_files(
    files: &[FileSpec],
    data_dir: &Path,
    mirrors: &[String],
    progress: bool,
) -> Result<FetchReport, FetchError> {
    std::fs::create_dir_all(data_dir).map_err(|source| FetchError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let files = files
        .iter()
        .map(|spec| fetch_file(spec, data_dir, mirrors, progress))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FetchReport {
        dir: data_dir.to_path_buf(),
        files,
    })
}

/// Makes sure `data_dir` holds a valid copy of the file `spec`: keeps a valid one,
/// else downloads `<mirror>/<name>.gz` from each mirror in turn until one verifies.
/// The result is `<name>.gz` (or `<name>` if a server sent the raw bytes).
pub fn fetch_file(
    spec: &FileSpec,
    data_dir: &Path,
    mirrors: &[String],
    progress: bool,
) -> Result<FetchedFile, FetchError> {
    let name = spec.name.to_string();
    if let Some(path) = find_file(data_dir, &name) {
        return match raw_digest_within(&path, spec.raw_len) {
            Ok(d) if d.sha256 == spec.raw_sha256 => Ok(FetchedFile {
                name,
                path,
                status: FetchStatus::AlreadyPresent,
                failed_mirrors: Vec::new(),
            }),
            Ok(d) => Err(FetchError::ExistingInvalid {
                path,
                reason: format!(
                    "SHA-256 of the raw bytes is {}, expected {}",
                    d.sha256, spec.raw_sha256
                ),
            }),
            Err(e) => Err(FetchError::ExistingInvalid {
                path,
                reason: e.to_string(),
            }),
        };
    }
    if mirrors.is_empty() {
        return Err(FetchError::NoMirrors { name });
    }
    std::fs::create_dir_all(data_dir).map_err(|source| FetchError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = format!("{}/{name}.gz", mirror.trim_end_matches('/'));
        match download(&url, spec, data_dir, progress) {
            Ok(path) => {
                return Ok(FetchedFile {
                    name,
                    path,
                    status: FetchStatus::Downloaded { url },
                    failed_mirrors: failures,
                });
            }
            Err(kind) => failures.push(MirrorFailure { url, kind }),
        }
    }
    Err(FetchError::AllMirrorsFailed {
        name,
        dir: data_dir.to_path_buf(),
        failures,
    })
}

/// Whether `url`'s host is the loopback interface (never sent through a proxy).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))
    } else {
        authority.split(':').next().map(str::to_string)
    }
    .unwrap_or_default();
    matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]")
}

fn agent_for(url: &str) -> Agent {
    let mut config = Agent::config_builder()
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(STALL_TIMEOUT))
        .timeout_per_read(Some(STALL_TIMEOUT))
        .user_agent(format!("regulab/{}", env!("CARGO_PKG_VERSION")))
        // the .gz files must arrive as they are, not transparently decoded
        .accept_encoding(AutoHeaderValue::None);
    if is_loopback(url) {
        config = config.proxy(None);
    }
    config.build().into()
}

fn progress_bar(len: Option<u64>, name: &str, progress: bool) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let template = if len.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {msg} {bytes} {bytes_per_sec}"
    };
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr()).with_style(style);
    bar.set_message(format!("{name}.gz"));
    bar
}

/// One download attempt: to a temp file in `dir`, verified, renamed into place.
/// On failure the temp file is removed (dropped) and nothing else was touched.
fn download(
    url: &str,
    spec: &FileSpec,
    dir: &Path,
    progress: bool,
) -> Result<PathBuf, FailureKind> {
    let response = agent_for(url).get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(status) => FailureKind::Http(status),
        other => FailureKind::Connect(other.to_string()),
    })?;
    let body = response.into_body();
    let len = body.content_length();
    if len.is_some_and(|n| n > MAX_DOWNLOAD_BYTES) {
        return Err(FailureKind::TooLarge);
    }
    let write_err = |e: io::Error| FailureKind::Write(e.to_string());
    let prefix = format!(".{}.", spec.name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let bar = progress_bar(len, &spec.name, progress);
    let copied = copy_body(
        &mut body.into_reader().take(MAX_DOWNLOAD_BYTES + 1),
        tmp.as_file_mut(),
        &bar,
    );
    bar.finish_and_clear();
    if copied? > MAX_DOWNLOAD_BYTES {
        return Err(FailureKind::TooLarge);
    }
    tmp.as_file_mut().flush().map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    let digest = raw_digest_within(tmp.path(), spec.raw_len)
        .map_err(|e| FailureKind::Corrupt(e.to_string()))?;
    if digest.sha256 != spec.raw_sha256 {
        return Err(FailureKind::ChecksumMismatch {
            found: digest.sha256,
            expected: spec.raw_sha256.to_string(),
        });
    }
    let dest = if digest.gzip {
        dir.join(format!("{}.gz", spec.name))
    } else {
        dir.join(spec.name.as_ref())
    };
    tmp.persist(&dest)
        .map_err(|e| FailureKind::Write(e.error.to_string()))?;
    // Make the rename durable; a failure here does not undo a complete, verified file.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(dest)
}

/// Copies the body to the file; read errors are transfer failures, write errors local.
fn copy_body(
    body: &mut impl Read,
    file: &mut std::fs::File,
    bar: &ProgressBar,
) -> Result<u64, FailureKind> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FailureKind::Transfer(e.to_string())),
        };
        file.write_all(&buf[..n])
            .map_err(|e| FailureKind::Write(e.to_string()))?;
        total += n as u64;
        bar.inc(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `regulab fetch` and `regulab run`'s download fallback decide to do.
    #[test]
    fn fetch_plans_and_missing_downloads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let download = FetchPlan::Download { to: dir.clone() };
        assert_eq!(plan_fetch(DatasetName::Mnist, Some(&dir), &[]), download);
        // mirrors given: a download, even where an installed copy exists
        let mirror = ["http://127.0.0.1:9/".to_string()];
        assert_eq!(
            plan_fetch(DatasetName::FashionMnist, Some(&dir), &mirror),
            download
        );
        // an installed copy and a directory asked for: a copy
        let expected = match installed_copy(DatasetName::FashionMnist) {
            Some(from) => FetchPlan::CopyInstalled {
                from,
                to: dir.clone(),
            },
            None => download.clone(),
        };
        assert_eq!(
            plan_fetch(DatasetName::FashionMnist, Some(&dir), &[]),
            expected
        );
        // fetchable names only (never a directory), each once, when not found
        let found = |name| super::super::locate(name, Some(&dir)).is_ok();
        let names = ["mnist", "some/dir", "mnist", "/abs/dir", "fashion-mnist"];
        let want: Vec<(DatasetName, PathBuf)> = [DatasetName::Mnist, DatasetName::FashionMnist]
            .into_iter()
            .filter(|&n| !found(n))
            .map(|n| (n, dir.clone()))
            .collect();
        assert_eq!(missing_downloads(names, Some(&dir)), want);
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:8080/x/"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:99/"));
        assert!(!is_loopback(
            "https://ossci-datasets.s3.amazonaws.com/mnist/"
        ));
        assert!(!is_loopback("http://127.0.0.1.example.com/"));
    }

    #[test]
    fn mirror_resolution_order() {
        let cli = vec!["http://a/".to_string()];
        assert_eq!(
            mirrors_from(DatasetName::Mnist, &cli, Some("http://e/")),
            cli
        );
        assert_eq!(
            mirrors_from(DatasetName::Mnist, &[], Some("http://e/, http://f/")),
            vec!["http://e/".to_string(), "http://f/".to_string()]
        );
        assert_eq!(
            mirrors_from(DatasetName::FashionMnist, &[], Some("  ")),
            vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".to_string()]
        );
        assert_eq!(mirrors_from(DatasetName::Mnist, &[], None).len(), 2);
    }
}
