//! Datasets end to end: the real MNIST / Fashion-MNIST files, hand-made corrupt files
//! (each with its own error naming the file), minibatch gathering and the seeded splits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand_core::Rng;
use regulab::data::checksums::{FASHION_MNIST_FILES, MNIST_FILES};
use regulab::data::idx::{IMAGES_MAGIC, LABELS_MAGIC, read_labels};
use regulab::data::locate::locate_in;
use regulab::data::{
    DataError, Dataset, DatasetName, LabeledImages, PIXEL_SCALE, SplitSpec, Splits, load_pair,
};
use regulab_kernels::rng::{Purpose, stream_rng};

// ---------------------------------------------------------------------------------------
// A counting allocator (per thread, so parallel tests do not disturb each other): calls,
// and the peak of the bytes this thread holds (what it allocated minus what it freed).

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static TOTAL: Cell<u64> = const { Cell::new(0) };
}

fn track(delta: i64) {
    if delta > 0 {
        let _ = TOTAL.try_with(|t| t.set(t.get() + delta as u64));
    }
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + delta);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts calls and bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        track(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        track(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the bytes this thread allocated meanwhile
/// (freed or not).
fn allocated_bytes<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = TOTAL.with(Cell::get);
    let out = f();
    (out, TOTAL.with(Cell::get) - base)
}

/// Runs `f` and returns its result with the peak of the bytes this thread held above
/// what it held when `f` started.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as u64)
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// The MNIST test set and training labels shipped in the repository's `data/mnist`.
fn repo_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

const MNIST_TEST_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

fn images_bytes(n: u32, rows: u32, cols: u32, pixel: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..(n * rows * cols) as usize).map(pixel));
    v
}

fn labels_bytes(labels: &[u8]) -> Vec<u8> {
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

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A valid little pair: 6 images of 4x3, labels 0..6.
fn good_pair(dir: &Path, images: &str, labels: &str) -> (PathBuf, PathBuf) {
    (
        write(dir, images, &images_bytes(6, 4, 3, |i| (i * 7) as u8)),
        write(dir, labels, &labels_bytes(&[0, 1, 2, 3, 4, 5])),
    )
}

fn assert_names_file(err: &DataError, path: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

// ---------------------------------------------------------------------------------------
// Real files.

#[test]
fn mnist_test_set_from_repo_data() {
    let dir = repo_mnist();
    let pair = load_pair(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        DatasetName::Mnist,
    )
    .unwrap();
    let data = &pair.data;
    assert_eq!(data.len(), 10_000);
    assert_eq!((data.rows(), data.cols(), data.dim()), (28, 28, 784));
    assert_eq!(data.pixels().len(), 10_000 * 784);
    assert_eq!(data.label_counts(10), MNIST_TEST_COUNTS);
    assert_eq!(data.labels()[0], 7, "the first MNIST test digit is a 7");
    assert!(pair.warnings.is_empty(), "{:?}", pair.warnings);
    assert!(pair.images.verified && pair.labels.verified);
    assert_eq!(pair.images.raw_sha256, MNIST_FILES[2].raw_sha256);
    assert_eq!(pair.labels.raw_sha256, MNIST_FILES[3].raw_sha256);
    assert_eq!(pair.images.raw_len, 7_840_016);
    assert_eq!(pair.images.name, "t10k-images-idx3-ubyte");
}

#[test]
fn mnist_train_labels_from_repo_data() {
    let path = repo_mnist().join("train-labels-idx1-ubyte.gz");
    let (labels, digest) = read_labels(&path, Some(10)).unwrap();
    assert_eq!(labels.len(), 60_000);
    assert_eq!(digest.sha256, MNIST_FILES[1].raw_sha256);
    assert_eq!(digest.raw_len, 60_008);
    assert!(digest.gzip);
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[usize::from(l)] += 1;
    }
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

/// The partial MNIST of `data/mnist`: train on the first 1,000 test images, validate on
/// the next 1,000.
#[test]
fn partial_mnist_train_and_validate_on_the_test_file() {
    let dir = repo_mnist();
    let pair = load_pair(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        DatasetName::Mnist,
    )
    .unwrap();
    let two_k = pair.data.subset(0..2000).unwrap();
    assert_eq!(two_k.len(), 2000);
    assert_eq!(two_k.image(1999), pair.data.image(1999));
    let splits = Splits::new(
        two_k.len(),
        &SplitSpec {
            valid_size: 1000,
            train_examples: None,
        },
        1,
    )
    .unwrap();
    assert_eq!(splits.pool(), (0..1000).collect::<Vec<u32>>());
    assert_eq!(splits.valid(), (1000..2000).collect::<Vec<u32>>());
    // the full training directory is incomplete: a clear "missing" error
    let err = Dataset::load_dir(DatasetName::Mnist, &dir).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing train-images-idx3-ubyte[.gz]"),
        "{err}"
    );
}

#[test]
fn fashion_mnist_from_the_debian_package() {
    // found by the lookup (no --data-dir, no REGULAB_DATA, empty workspace)
    let empty = tempfile::tempdir().unwrap();
    let dir = locate_in(DatasetName::FashionMnist, None, None, empty.path()).unwrap();
    assert_eq!(dir, Path::new(FASHION_DIR));
    let ds = Dataset::load_dir(DatasetName::FashionMnist, &dir).unwrap();
    assert_eq!(ds.train.len(), 60_000);
    assert_eq!(ds.test.len(), 10_000);
    assert_eq!(ds.input_dim(), 784);
    assert_eq!(ds.num_classes, 10);
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(ds.files.len(), 4);
    for (record, spec) in ds.files.iter().zip(FASHION_MNIST_FILES.iter()) {
        assert_eq!(record.name, spec.name);
        assert!(record.verified);
        assert_eq!(record.raw_sha256, spec.raw_sha256);
        assert_eq!(record.raw_len, spec.raw_len);
    }
    // Fashion-MNIST is balanced: 6,000 / 1,000 per class
    assert_eq!(ds.train.label_counts(10), vec![6000; 10]);
    assert_eq!(ds.test.label_counts(10), vec![1000; 10]);
    // default split of the lab
    let splits = ds.splits(&SplitSpec::default(), 0).unwrap();
    assert_eq!(
        (splits.pool().len(), splits.valid().len()),
        (50_000, 10_000)
    );
    // the Fashion files are not MNIST: checked as MNIST they fail by checksum
    let err = load_pair(&ds.files[2].path, &ds.files[3].path, DatasetName::Mnist).unwrap_err();
    assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Hand-made corrupt files: each its own variant, each message naming the file.

#[test]
fn bad_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = images_bytes(2, 2, 2, |_| 0);
    bytes[3] = 0x04;
    let images = write(tmp.path(), "img", &bytes);
    let labels = write(tmp.path(), "lab", &labels_bytes(&[1, 2]));
    let err = load_pair(&images, &labels, DatasetName::Custom).unwrap_err();
    match &err {
        DataError::BadMagic {
            path,
            found,
            expected,
            ..
        } => {
            assert_eq!(path, &images);
            assert_eq!((*found, *expected), (0x0804, 0x0803));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("0x00000804"), "{err}");
    assert_names_file(&err, &images);
    // images and labels swapped: the labels file is not IDX3
    let err = load_pair(&labels, &images, DatasetName::Custom).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                expected: 0x0803,
                ..
            }
        ),
        "{err}"
    );
    assert_names_file(&err, &labels);
}

#[test]
fn truncated_images() {
    let tmp = tempfile::tempdir().unwrap();
    let full = images_bytes(3, 2, 2, |i| i as u8);
    let images = write(tmp.path(), "img.gz", &gzip(&full[..full.len() - 3]));
    let labels = write(tmp.path(), "lab", &labels_bytes(&[1, 2, 3]));
    let err = load_pair(&images, &labels, DatasetName::Custom).unwrap_err();
    match &err {
        DataError::Truncated {
            found, expected, ..
        } => {
            assert_eq!(*expected, full.len() as u64);
            assert_eq!(*found, full.len() as u64 - 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("3 x 2 x 2"), "{err}");
    assert_names_file(&err, &images);
}

#[test]
fn trailing_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, _) = good_pair(tmp.path(), "img", "lab");
    let mut bytes = labels_bytes(&[0, 1, 2, 3, 4, 5]);
    bytes.extend_from_slice(b"junk!");
    let labels = write(tmp.path(), "lab2", &bytes);
    let err = load_pair(&images, &labels, DatasetName::Custom).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TrailingBytes {
                extra: 5,
                expected: 14,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names_file(&err, &labels);
}

#[test]
fn count_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, _) = good_pair(tmp.path(), "img", "lab");
    let labels = write(tmp.path(), "lab5", &labels_bytes(&[0, 1, 2, 3, 4]));
    let err = load_pair(&images, &labels, DatasetName::Custom).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 6,
                labels: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names_file(&err, &images);
    assert_names_file(&err, &labels);
}

#[test]
fn label_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, _) = good_pair(tmp.path(), "t10k-images-idx3-ubyte", "unused");
    let labels = write(
        tmp.path(),
        "t10k-labels-idx1-ubyte.gz",
        &gzip(&labels_bytes(&[0, 1, 2, 3, 4, 11])),
    );
    let err = load_pair(&images, &labels, DatasetName::Mnist).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                label: 11,
                index: 5,
                max: 9,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("t10k-labels-idx1-ubyte.gz: label 11 at index 5 is out of range 0..=9"),
        "{err}"
    );
    assert_names_file(&err, &labels);
    // a custom dataset has no fixed class count: accepted, 12 classes
    let pair = load_pair(&images, &labels, DatasetName::Custom).unwrap();
    assert_eq!(pair.data.label_bound(), 12);
}

#[test]
fn wrong_checksum_under_a_known_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = good_pair(tmp.path(), "t10k-images-idx3-ubyte.gz", "my-labels");
    let err = load_pair(&images, &labels, DatasetName::Mnist).unwrap_err();
    match &err {
        DataError::ChecksumMismatch {
            dataset,
            name,
            expected,
            ..
        } => {
            assert_eq!(*dataset, DatasetName::Mnist);
            assert_eq!(name, "t10k-images-idx3-ubyte");
            assert_eq!(expected, &MNIST_FILES[2].raw_sha256);
        }
        other => panic!("{other:?}"),
    }
    assert_names_file(&err, &images);
}

#[test]
fn unknown_files_are_accepted_with_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = good_pair(tmp.path(), "t10k-images-idx3-ubyte", "my-labels");
    // as custom: both unverified, one warning each naming the file
    let pair = load_pair(&images, &labels, DatasetName::Custom).unwrap();
    assert_eq!(pair.warnings.len(), 2);
    assert_eq!(pair.warnings[0].path, images);
    assert_eq!(pair.warnings[1].path, labels);
    assert!(pair.warnings[0].to_string().contains("not verified"));
    assert!(!pair.images.verified && !pair.labels.verified);
    // a real MNIST file under a custom dataset is recognised in the warning
    let real = repo_mnist();
    let pair = load_pair(
        &real.join("t10k-images-idx3-ubyte.gz"),
        &real.join("t10k-labels-idx1-ubyte.gz"),
        DatasetName::Custom,
    )
    .unwrap();
    assert!(
        pair.warnings[1]
            .message
            .contains("identical to mnist t10k-labels-idx1-ubyte"),
        "{:?}",
        pair.warnings
    );
}

#[test]
fn corrupt_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, labels) = good_pair(tmp.path(), "img", "lab");
    let good = gzip(&images_bytes(6, 4, 3, |i| i as u8));
    // damaged CRC in the trailer
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 6;
    bad_crc[at] ^= 0xff;
    // garbage instead of the deflate stream
    let mut garbage = good[..10].to_vec();
    garbage.extend_from_slice(&[0xff; 40]);
    for (name, bytes) in [("crc.gz", bad_crc), ("garbage.gz", garbage)] {
        let images = write(tmp.path(), name, &bytes);
        let err = load_pair(&images, &labels, DatasetName::Custom).unwrap_err();
        assert!(
            matches!(err, DataError::CorruptGzip { .. }),
            "{name}: {err:?}"
        );
        assert_names_file(&err, &images);
    }
}

/// The gzip file of an IDX header followed by `zeros` zero bytes, compressed as it is
/// made (never held raw): a "gzip bomb" of about 1/1000 of its raw size.
fn gzip_zeros(header: &[u8], zeros: u64) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(header).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        e.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    e.finish().unwrap()
}

fn images_header(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// Issue 12, defect 12: a small gzip file expanding to hundreds of megabytes is refused
/// without being decompressed into memory: a count that disagrees with the labels file
/// is found from the two headers, a consistent one by the compression ratio, and data
/// after the declared size is not read beyond a small probe.
#[test]
fn gzip_bombs_are_refused_without_decompressing_them() {
    let tmp = tempfile::tempdir().unwrap();
    // 300,000 blank 28x28 images declared and present: 235 MB raw, about 230 KB gzip
    let n = 300_000u32;
    let bomb = gzip_zeros(&images_header(n, 28, 28), u64::from(n) * 784);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let images = write(tmp.path(), "bomb-images.gz", &bomb);
    // (a) against a labels file of 10 examples: the headers disagree
    let few = write(tmp.path(), "few-labels", &labels_bytes(&[1; 10]));
    let (r, peak) = peak_bytes(|| load_pair(&images, &few, DatasetName::Custom));
    let err = r.unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { .. }), "{err:?}");
    assert!(peak < 4 << 20, "held {peak} bytes to find a count mismatch");
    // (b) against as many labels: refused as a bomb from the compression ratio
    let mut labels_head = LABELS_MAGIC.to_be_bytes().to_vec();
    labels_head.extend_from_slice(&n.to_be_bytes());
    let many = write(
        tmp.path(),
        "many-labels.gz",
        &gzip_zeros(&labels_head, u64::from(n)),
    );
    let (r, peak) = peak_bytes(|| load_pair(&images, &many, DatasetName::Custom));
    let err = r.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gzip bomb"), "{msg}");
    assert_names_file(&err, &images);
    assert!(peak < 64 << 20, "held {peak} bytes to refuse a bomb");
    // (c) 10 images declared, then 100 MB of zeros: read no further than a probe
    let tail = write(
        tmp.path(),
        "tail.gz",
        &gzip_zeros(&images_header(10, 28, 28), 10 * 784 + (100 << 20)),
    );
    let (r, peak) = peak_bytes(|| regulab::data::idx::read_images(&tail));
    match r.unwrap_err() {
        DataError::TrailingBytes { extra, .. } => {
            assert!(extra > 0 && extra <= 1 << 16, "read {extra} trailing bytes")
        }
        other => panic!("{other:?}"),
    }
    assert!(peak < 4 << 20, "{peak}");
}

/// Issue 12, defect 14: a grid over `data.range` loads (decompresses, hashes) each file
/// once per command, and its datasets share the decoded pixels.
#[test]
fn a_grid_over_data_range_loads_each_file_once() {
    let text = format!(
        "epochs = 1\n[data]\ndataset = {:?}\ntrain_file = \"t10k\"\ntest_file = \"none\"\n\
         validation = 100\ntrain_examples = 100\n\
         range = [[0, 1000], [1000, 2000], [2000, 3000], [3000, 4000], [4000, 5000]]\n",
        repo_mnist().display().to_string()
    );
    let plan = regulab::config::parse(&text, "ranges.toml", "ranges", &[]).unwrap();
    assert_eq!(plan.runs.len(), 5);
    let (data, bytes) = allocated_bytes(|| regulab::run::load_datasets(&plan, None).unwrap());
    assert_eq!(data.len(), 5);
    // the t10k images are 7.84 MB raw: decoded once, not five times
    assert!(bytes < 12_000_000, "loading allocated {bytes} bytes");
    let whole = load_pair(
        &repo_mnist().join("t10k-images-idx3-ubyte.gz"),
        &repo_mnist().join("t10k-labels-idx1-ubyte.gz"),
        DatasetName::Mnist,
    )
    .unwrap();
    let first = &data[&regulab::run::data_key(&plan.runs[0].config.data)];
    for run in &plan.runs {
        let d = &data[&regulab::run::data_key(&run.config.data)];
        assert!(d.train.shares_pixels_with(&first.train), "{}", run.name);
        let start = run.config.data.range[0];
        assert_eq!(d.train.len(), 1000);
        for i in [0, 1, 999] {
            assert_eq!(
                d.train.image(i),
                whole.data.image(start + i),
                "{}",
                run.name
            );
            assert_eq!(d.train.labels()[i], whole.data.labels()[start + i]);
        }
    }
}

#[test]
fn train_and_test_images_must_have_the_same_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "train-images-idx3-ubyte",
        &images_bytes(2, 4, 4, |_| 1),
    );
    write(dir, "train-labels-idx1-ubyte", &labels_bytes(&[0, 1]));
    write(
        dir,
        "t10k-images-idx3-ubyte.gz",
        &gzip(&images_bytes(2, 5, 5, |_| 1)),
    );
    write(dir, "t10k-labels-idx1-ubyte", &labels_bytes(&[1, 0]));
    let err = Dataset::load_dir(DatasetName::Custom, dir).unwrap_err();
    assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("4x4") && err.to_string().contains("5x5"));
    // fixed: a custom dataset loads, with a warning per file
    write(
        dir,
        "t10k-images-idx3-ubyte.gz",
        &gzip(&images_bytes(2, 4, 4, |_| 1)),
    );
    let ds = Dataset::load_dir(DatasetName::Custom, dir).unwrap();
    assert_eq!((ds.train.len(), ds.test.len(), ds.num_classes), (2, 2, 2));
    assert_eq!(ds.warnings.len(), 4);
    assert_eq!(ds.dir.as_deref(), Some(dir));
    // the same directory read as MNIST: known names, wrong content
    let err = Dataset::load_dir(DatasetName::Mnist, dir).unwrap_err();
    assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Batches.

fn ramp_images() -> LabeledImages {
    // 4 images of 2x2: pixel j of image i is 60*i + j (covers 0 and 255)
    let mut pixels: Vec<u8> = (0..4u8)
        .flat_map(|i| (0..4u8).map(move |j| 60 * i + j))
        .collect();
    pixels[15] = 255;
    LabeledImages::new(2, 2, pixels, vec![9, 8, 7, 6]).unwrap()
}

#[test]
fn gather_scales_exactly_and_does_not_allocate() {
    let data = ramp_images();
    let indices = [2u32, 0, 3, 2];
    let mut x = vec![f32::NAN; 4 * 4];
    let mut y = vec![u32::MAX; 4];
    let before = allocations();
    data.gather(&indices, &mut x, &mut y).unwrap();
    assert_eq!(allocations(), before, "gather allocated");
    for (b, &i) in indices.iter().enumerate() {
        let src = data.image(i as usize).unwrap();
        for j in 0..4 {
            assert_eq!(x[b * 4 + j], f32::from(src[j]) / 255.0);
            assert_eq!(x[b * 4 + j], PIXEL_SCALE[usize::from(src[j])]);
        }
    }
    assert_eq!(y, vec![7, 9, 6, 7]);
    assert_eq!(x[0], 120.0 / 255.0);
    assert_eq!(x[4], 0.0);
    assert_eq!(x[11], 1.0);
    // a range gives the same as the corresponding indices
    let mut xr = vec![0.0; 8];
    let mut yr = vec![0; 2];
    data.gather_range(1..3, &mut xr, &mut yr).unwrap();
    let mut xi = vec![0.0; 8];
    let mut yi = vec![0; 2];
    data.gather(&[1, 2], &mut xi, &mut yi).unwrap();
    assert_eq!((xr, yr), (xi, yi));
}

#[test]
fn gather_rejects_bad_requests() {
    let data = ramp_images();
    let mut x = vec![0.0; 8];
    let mut y = vec![0; 2];
    assert!(matches!(
        data.gather(&[0, 4], &mut x, &mut y),
        Err(DataError::Gather(_))
    ));
    assert!(matches!(
        data.gather(&[0, 1], &mut x[..7], &mut y),
        Err(DataError::Gather(_))
    ));
    assert!(matches!(
        data.gather(&[0], &mut x, &mut y[..1]),
        Err(DataError::Gather(_))
    ));
    assert!(matches!(
        data.gather_range(3..5, &mut x, &mut y),
        Err(DataError::Gather(_))
    ));
    assert_eq!(data.image(4), None);
    assert_eq!(data.image(usize::MAX), None);
}

// ---------------------------------------------------------------------------------------
// Splits and the training pool.

fn spec(valid_size: usize, train_examples: Option<usize>) -> SplitSpec {
    SplitSpec {
        valid_size,
        train_examples,
    }
}

#[test]
fn pool_is_deterministic_per_seed() {
    let a = Splits::new(60_000, &spec(10_000, Some(1000)), 42).unwrap();
    let b = Splits::new(60_000, &spec(10_000, Some(1000)), 42).unwrap();
    let c = Splits::new(60_000, &spec(10_000, Some(1000)), 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.pool(), c.pool());
    let mut sorted = a.pool().to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "pool has duplicates");
    assert!(
        sorted.iter().all(|&i| i < 50_000),
        "pool reaches validation"
    );
    // spread over the whole training part, not a prefix
    assert!(sorted[999] > 45_000 && sorted[0] < 5_000);
    assert_eq!(a.valid(), (50_000..60_000).collect::<Vec<u32>>());
    // pinned values: the pool must never change with a crate version
    assert_eq!(&a.pool()[..5], &GOLDEN_POOL_SEED_42);
    // and the first one is, by definition, Lemire's map of the first word of stream 0
    let mut rng = stream_rng(42, Purpose::Shuffle, 0);
    let first = (u128::from(rng.next_u64()) * 50_000) >> 64;
    assert_eq!(u128::from(a.pool()[0]), first);
}

/// First five pool indices for seed 42, 1,000 of 50,000 (computed once, pinned).
const GOLDEN_POOL_SEED_42: [u32; 5] = [32506, 32873, 44979, 7470, 24680];

/// The visiting order of epoch `epoch`, computed here from the algorithm the split
/// module documents (the forward Fisher–Yates shuffle of the pool by the words of
/// stream `1 + epoch`), independently of `Splits::shuffle_into`.
fn epoch_order(s: &Splits, epoch: u64) -> Vec<u32> {
    let mut order = s.pool().to_vec();
    let mut rng = stream_rng(s.seed(), Purpose::Shuffle, epoch + 1);
    let n = order.len();
    for i in 0..n.saturating_sub(1) {
        let j = i + regulab::data::split::uniform_below(&mut rng, (n - i) as u64) as usize;
        order.swap(i, j);
    }
    order
}

#[test]
fn epoch_orders_are_reproducible_permutations() {
    let s = Splits::new(60_000, &spec(10_000, Some(500)), 7).unwrap();
    let e1 = epoch_order(&s, 1);
    let e2 = epoch_order(&s, 2);
    assert_eq!(e1, epoch_order(&s, 1));
    assert_ne!(e1, e2);
    assert_ne!(e1, s.pool());
    for order in [&e1, &e2] {
        let mut a = order.clone();
        let mut b = s.pool().to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "not a permutation of the pool");
    }
    let mut buf = vec![0u32; 500];
    let before = allocations();
    s.shuffle_into(2, &mut buf).unwrap();
    assert_eq!(allocations(), before, "shuffle_into allocated");
    assert_eq!(buf, e2);
    assert!(s.shuffle_into(2, &mut buf[..499]).is_err());
    // without train_examples the pool is every training example, shuffled per epoch
    let all = Splits::new(100, &spec(0, None), 7).unwrap();
    assert_eq!(all.pool(), (0..100).collect::<Vec<u32>>());
    assert!(all.valid().is_empty());
    let mut o = epoch_order(&all, 0);
    assert_ne!(o, all.pool());
    o.sort_unstable();
    assert_eq!(o, all.pool());
}

#[test]
fn invalid_splits_name_the_field() {
    let err = Splits::new(60_000, &spec(10_000, Some(50_001)), 1).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::InvalidSplit {
                field: "train_examples",
                value: 50_001,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("train_examples = 50001"), "{msg}");
    assert!(msg.contains("50000"), "{msg}");
    assert!(Splits::new(60_000, &spec(10_000, Some(50_000)), 1).is_ok());
    assert!(Splits::new(60_000, &spec(0, Some(60_000)), 1).is_ok());
    let err = Splits::new(60_000, &spec(10_000, Some(0)), 1).unwrap_err();
    assert!(err.to_string().starts_with("train_examples = 0"), "{err}");
    let err = Splits::new(1000, &spec(1000, None), 1).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::InvalidSplit {
                field: "valid_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("valid_size = 1000"), "{err}");
}
