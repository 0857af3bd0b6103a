//! `fetch` against a tiny HTTP/1.1 server on 127.0.0.1 started by the test: good,
//! corrupt, truncated and missing files, and a port with nothing listening. Never
//! touches the real network.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use regulab::data::checksums::MNIST_FILES;
use regulab::data::fetch::{fetch_file, fetch_files};
use regulab::data::idx::{LABELS_MAGIC, read_labels};
use regulab::data::{DatasetName, FailureKind, FetchError, FetchStatus, FileSpec, fetch};

// ---------------------------------------------------------------------------------------
// The test server.

#[derive(Clone)]
enum Reply {
    /// 200 with these bytes.
    Good(Vec<u8>),
    /// 200 announcing `Content-Length: claimed`, sending these bytes, then closing.
    Truncated(Vec<u8>, usize),
}

struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Serves `routes` (path -> reply; anything else is 404) until the test ends.
    fn start(routes: HashMap<String, Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/files/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // a client that misbehaves only fails its own request
                let _ = handle(stream, &routes, &log);
            }
        });
        Server { base, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn handle(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    log.lock().unwrap().push(path.clone());
    match routes.get(&path) {
        Some(Reply::Good(body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
        Some(Reply::Truncated(body, claimed)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n"
            )?;
            stream.write_all(body)?;
        }
        None => {
            let body = b"not found";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A base URL where nothing listens.
fn down_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/files/")
}

// ---------------------------------------------------------------------------------------
// Fake files with their own checksum table.

fn labels_idx(labels: &[u8]) -> Vec<u8> {
    let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A fake file: its spec (checksum of the raw bytes), its raw and gzip bytes.
fn fake(name: &str, labels: &[u8]) -> (FileSpec, Vec<u8>, Vec<u8>) {
    let raw = labels_idx(labels);
    let spec = FileSpec {
        name: Cow::Owned(name.to_string()),
        raw_len: raw.len() as u64,
        raw_sha256: Cow::Owned(hex::encode(Sha256::digest(&raw))),
        gz_sha256: None,
    };
    let gz = gzip(&raw);
    (spec, raw, gz)
}

fn route(name: &str) -> String {
    format!("/files/{name}.gz")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn failures(err: FetchError) -> Vec<FailureKind> {
    match err {
        FetchError::AllMirrorsFailed { failures, .. } => {
            failures.into_iter().map(|f| f.kind).collect()
        }
        other => panic!("expected AllMirrorsFailed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn success_writes_the_exact_file_then_skips_it() {
    let (spec, _, gz) = fake("fake-labels-idx1-ubyte", &[1, 2, 3, 4]);
    let server = Server::start(HashMap::from([(
        route(&spec.name),
        Reply::Good(gz.clone()),
    )]));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/sub"); // created by fetch
    let report = fetch_files(
        std::slice::from_ref(&spec),
        &dir,
        std::slice::from_ref(&server.base),
        false,
    )
    .unwrap();
    let file = &report.files[0];
    let dest = dir.join("fake-labels-idx1-ubyte.gz");
    assert_eq!(file.path, dest);
    assert_eq!(
        file.status,
        FetchStatus::Downloaded {
            url: format!("{}fake-labels-idx1-ubyte.gz", server.base)
        }
    );
    assert!(file.failed_mirrors.is_empty());
    assert_eq!(std::fs::read(&dest).unwrap(), gz);
    assert_eq!(entries(&dir), vec![dest.clone()]);
    assert_eq!(read_labels(&dest, Some(10)).unwrap().0, vec![1, 2, 3, 4]);
    // again: already present, no request made
    let again = fetch_file(&spec, &dir, std::slice::from_ref(&server.base), false).unwrap();
    assert_eq!(again.status, FetchStatus::AlreadyPresent);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn checksum_mismatch_leaves_nothing() {
    let (spec, _, _) = fake("fake-labels-idx1-ubyte", &[1, 2, 3, 4]);
    let (_, _, other_gz) = fake("x", &[1, 2, 3, 5]);
    let mut damaged = gzip(&labels_idx(&[1, 2, 3, 4]));
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    for (what, body) in [("other content", other_gz), ("damaged gzip", damaged)] {
        let server = Server::start(HashMap::from([(route(&spec.name), Reply::Good(body))]));
        let tmp = tempfile::tempdir().unwrap();
        let err =
            fetch_file(&spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap_err();
        let kinds = failures(err);
        assert_eq!(kinds.len(), 1);
        assert!(
            matches!(
                kinds[0],
                FailureKind::ChecksumMismatch { .. } | FailureKind::Corrupt(_)
            ),
            "{what}: {kinds:?}"
        );
        if what == "other content" {
            assert!(matches!(kinds[0], FailureKind::ChecksumMismatch { .. }));
        }
        assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new(), "{what}");
    }
}

#[test]
fn truncated_download_leaves_nothing() {
    let (spec, _, gz) = fake("fake-labels-idx1-ubyte", &[1, 2, 3, 4, 5, 6, 7, 8]);
    let half = gz[..gz.len() / 2].to_vec();
    let server = Server::start(HashMap::from([(
        route(&spec.name),
        Reply::Truncated(half, gz.len()),
    )]));
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch_file(&spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap_err();
    let kinds = failures(err);
    assert!(matches!(kinds[..], [FailureKind::Transfer(_)]), "{kinds:?}");
    assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn not_found_and_server_down_leave_nothing() {
    let (spec, _, _) = fake("fake-labels-idx1-ubyte", &[1]);
    let server = Server::start(HashMap::new());
    let down = down_mirror();
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = vec![server.base.clone(), down.clone()];
    let err = fetch_file(&spec, tmp.path(), &mirrors, false).unwrap_err();
    let msg = err.to_string();
    let kinds = failures(err);
    assert!(
        matches!(kinds[..], [FailureKind::Http(404), FailureKind::Connect(_)]),
        "{kinds:?}"
    );
    // the message lists every mirror's URL and failure
    assert!(
        msg.contains(&format!(
            "{}fake-labels-idx1-ubyte.gz: HTTP status 404",
            server.base
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{down}fake-labels-idx1-ubyte.gz: no response")),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn later_mirrors_are_tried_after_failures() {
    let (spec, _, gz) = fake("fake-labels-idx1-ubyte", &[4, 3, 2, 1]);
    let (_, _, wrong) = fake("x", &[9, 9]);
    let bad = Server::start(HashMap::from([(route(&spec.name), Reply::Good(wrong))]));
    let good = Server::start(HashMap::from([(
        route(&spec.name),
        Reply::Good(gz.clone()),
    )]));
    let mirrors = vec![down_mirror(), bad.base.clone(), good.base.clone()];
    let tmp = tempfile::tempdir().unwrap();
    let file = fetch_file(&spec, tmp.path(), &mirrors, true).unwrap(); // with a progress bar
    assert_eq!(
        file.status,
        FetchStatus::Downloaded {
            url: format!("{}fake-labels-idx1-ubyte.gz", good.base)
        }
    );
    let kinds: Vec<_> = file.failed_mirrors.iter().map(|f| f.kind.clone()).collect();
    assert!(
        matches!(
            kinds[..],
            [
                FailureKind::Connect(_),
                FailureKind::ChecksumMismatch { .. }
            ]
        ),
        "{kinds:?}"
    );
    assert_eq!(bad.requests(), vec![route(&spec.name)]);
    assert_eq!(good.requests(), vec![route(&spec.name)]);
    assert_eq!(
        entries(tmp.path()),
        vec![tmp.path().join("fake-labels-idx1-ubyte.gz")]
    );
    assert_eq!(std::fs::read(&file.path).unwrap(), gz);
}

#[test]
fn raw_bytes_from_a_server_are_kept_raw() {
    let (spec, raw, _) = fake("fake-labels-idx1-ubyte", &[0, 0, 7]);
    let server = Server::start(HashMap::from([(
        route(&spec.name),
        Reply::Good(raw.clone()),
    )]));
    let tmp = tempfile::tempdir().unwrap();
    let file = fetch_file(&spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap();
    assert_eq!(file.path, tmp.path().join("fake-labels-idx1-ubyte"));
    assert_eq!(std::fs::read(&file.path).unwrap(), raw);
}

#[test]
fn an_invalid_existing_file_is_an_error_and_left_alone() {
    let (spec, _, gz) = fake("fake-labels-idx1-ubyte", &[1, 2]);
    let server = Server::start(HashMap::from([(route(&spec.name), Reply::Good(gz))]));
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("fake-labels-idx1-ubyte.gz");
    std::fs::write(&mine, b"my own file").unwrap();
    let err = fetch_file(&spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap_err();
    assert!(matches!(err, FetchError::ExistingInvalid { .. }), "{err:?}");
    assert!(err.to_string().contains(&mine.display().to_string()));
    assert_eq!(std::fs::read(&mine).unwrap(), b"my own file");
    assert!(server.requests().is_empty());
}

/// A real MNIST file served locally, checked against the real table.
#[test]
fn real_mnist_labels_against_the_real_table() {
    let real =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist/t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&real).unwrap();
    let spec = &MNIST_FILES[3];
    assert_eq!(spec.name, "t10k-labels-idx1-ubyte");
    let server = Server::start(HashMap::from([(
        route(&spec.name),
        Reply::Good(bytes.clone()),
    )]));
    let tmp = tempfile::tempdir().unwrap();
    let file = fetch_file(spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap();
    assert_eq!(std::fs::read(&file.path).unwrap(), bytes);
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        spec.gz_sha256.as_deref().unwrap()
    );
    assert_eq!(read_labels(&file.path, Some(10)).unwrap().0.len(), 10_000);
    // the real table rejects other content under this name
    let (_, _, fake_gz) = fake("t10k-labels-idx1-ubyte", &[1, 2, 3]);
    let server = Server::start(HashMap::from([(route(&spec.name), Reply::Good(fake_gz))]));
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch_file(spec, tmp.path(), std::slice::from_ref(&server.base), false).unwrap_err();
    assert!(matches!(
        failures(err)[..],
        [FailureKind::ChecksumMismatch { .. }]
    ));
    assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new());
}

/// `fetch` of a whole dataset uses the given mirrors and the standard names, and stops
/// at the first file that cannot be had.
#[test]
fn fetch_dataset_uses_given_mirrors() {
    let down = down_mirror();
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch(
        DatasetName::Mnist,
        tmp.path(),
        std::slice::from_ref(&down),
        false,
    )
    .unwrap_err();
    match err {
        FetchError::AllMirrorsFailed { name, failures, .. } => {
            assert_eq!(name, "train-images-idx3-ubyte");
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].url, format!("{down}train-images-idx3-ubyte.gz"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(entries(tmp.path()), Vec::<PathBuf>::new());
    let err = fetch(DatasetName::Custom, tmp.path(), &[], false).unwrap_err();
    assert!(matches!(err, FetchError::NotFetchable(DatasetName::Custom)));
}
