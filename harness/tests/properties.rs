//! Property tests of the two readers of user input (issue 12): the IDX reader and the
//! config loader, on random and on mutated valid inputs. Whatever the input: no panic
//! (proptest fails on one), an error is a typed error whose message names the file (or
//! `--set`), and the memory held while reading stays bounded by the size of the input,
//! never by what a header or a grid claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use regulab::config::{self, ConfigError};
use regulab::data::idx::{IMAGES_MAGIC, LABELS_MAGIC, raw_digest, read_images, read_labels};
use regulab::data::{DataError, DatasetName, load_pair};

// ---------------------------------------------------------------------------------------
// Peak bytes held by this thread (proptest runs each case on the test's thread).

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn track(delta: i64) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + delta);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
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
        track(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `f`'s result and the peak of the bytes this thread held above its level at the start.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as u64)
}

/// What reading a file of `raw_len` raw bytes may hold: the data itself (a few times,
/// for the digest, the buffers and growth) plus fixed buffers (read buffer, inflate
/// window, probe).
fn bound(raw_len: usize) -> u64 {
    (2 << 20) + 4 * raw_len as u64
}

/// The tracking sees what a closure holds (so the bounds below can fail).
#[test]
fn peak_tracking_sees_allocations() {
    let ((), peak) = peak_bytes(|| {
        let v = vec![1u8; 3 << 20];
        assert_eq!(v.len(), 3 << 20);
    });
    assert!(peak >= 3 << 20, "{peak}");
    let (v, peak) = peak_bytes(|| vec![0u8; 10]);
    assert!(peak < 1024 && v.len() == 10, "{peak}");
}

// ---------------------------------------------------------------------------------------
// IDX files.

fn idx_images(n: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..n * rows * cols).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

fn idx_labels(n: u32, seed: u8) -> Vec<u8> {
    let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&n.to_be_bytes());
    v.extend((0..n).map(|i| (i as u8).wrapping_add(seed) % 10));
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One change to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR the byte at (position modulo length) with a nonzero value.
    Flip(usize, u8),
    /// Cut the bytes at (position modulo length + 1).
    Truncate(usize),
    /// Insert bytes at (position modulo length + 1).
    Insert(usize, Vec<u8>),
    /// Overwrite the big-endian u32 at byte 4 * (1 + k % 3) (a header dimension).
    Dimension(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(p, x)| Mutation::Flip(p, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (
            any::<usize>(),
            prop_oneof![any::<u32>(), 0u32..64, Just(u32::MAX), Just(1 << 31)]
        )
            .prop_map(|(k, d)| Mutation::Dimension(k, d)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(p, x) if !bytes.is_empty() => {
            let n = bytes.len();
            bytes[p % n] ^= x;
        }
        Mutation::Truncate(p) => bytes.truncate(p % (bytes.len() + 1)),
        Mutation::Insert(p, b) => {
            let at = p % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Dimension(k, d) => {
            let at = 4 * (1 + k % 3);
            if bytes.len() >= at + 4 {
                bytes[at..at + 4].copy_from_slice(&d.to_be_bytes());
            }
        }
        Mutation::Flip(..) => {}
    }
}

/// Reads `path` every way (images, labels with and without a class bound, digest) and
/// checks each outcome: an error names the file; memory stays within `bound(raw_len)`.
fn read_every_way(path: &Path, raw_len: usize) -> Result<(), TestCaseError> {
    let name = path.display().to_string();
    let check = |what: &str, r: Result<(), DataError>, peak: u64| -> Result<(), TestCaseError> {
        if let Err(e) = r {
            prop_assert!(e.to_string().contains(&name), "{what}: {e}");
        }
        prop_assert!(
            peak <= bound(raw_len),
            "{what}: held {peak} bytes for {raw_len} raw bytes"
        );
        Ok(())
    };
    let (r, peak) = peak_bytes(|| read_images(path).map(|(i, d)| (i.pixels.len(), d)));
    if let Ok((pixels, d)) = &r {
        // a file that reads is exactly as long as its header says
        prop_assert_eq!(d.raw_len, 16 + *pixels as u64);
    }
    check("images", r.map(|_| ()), peak)?;
    let (r, peak) = peak_bytes(|| read_labels(path, Some(10)).map(|_| ()));
    check("labels", r, peak)?;
    let (r, peak) = peak_bytes(|| read_labels(path, None).map(|_| ()));
    check("labels (any class)", r, peak)?;
    let (r, peak) = peak_bytes(|| raw_digest(path).map(|_| ()));
    check("digest", r, peak)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random bytes, some behind a valid magic, raw and gzip-compressed.
    #[test]
    fn idx_reader_on_random_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 0..3000),
        magic in prop_oneof![Just(None), Just(Some(IMAGES_MAGIC)), Just(Some(LABELS_MAGIC))],
        compress in any::<bool>(),
    ) {
        if let Some(m) = magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&m.to_be_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if compress { "random.gz" } else { "random" });
        std::fs::write(&path, if compress { gzip(&bytes) } else { bytes.clone() }).unwrap();
        read_every_way(&path, bytes.len())?;
    }

    /// Valid image and label files, mutated (header dimensions included), read raw, and
    /// gzip-compressed before or after the mutation; and as a pair.
    #[test]
    fn idx_reader_on_mutated_files(
        n in 0u32..40,
        rows in 1u32..8,
        cols in 1u32..8,
        seed in any::<u8>(),
        mutations in prop::collection::vec(mutation(), 0..4),
        compress_mutated in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (kind, clean) in [
            ("images", idx_images(n, rows, cols, seed)),
            ("labels", idx_labels(n, seed)),
        ] {
            let mut raw = clean.clone();
            for m in &mutations {
                apply(&mut raw, m);
            }
            let raw_path = dir.path().join(format!("{kind}-raw"));
            std::fs::write(&raw_path, &raw).unwrap();
            read_every_way(&raw_path, raw.len())?;
            let gz_path = dir.path().join(format!("{kind}.gz"));
            // the raw mutation compressed, or the mutation applied to the gzip bytes
            let gz = if compress_mutated {
                gzip(&raw)
            } else {
                let mut gz = gzip(&clean);
                for m in &mutations {
                    apply(&mut gz, m);
                }
                gz
            };
            std::fs::write(&gz_path, &gz).unwrap();
            read_every_way(&gz_path, raw.len().max(clean.len()))?;
        }
        if mutations.is_empty() {
            // the unmutated files read (the checks above ran on good files too)
            let images = read_images(&dir.path().join("images-raw"));
            prop_assert!(images.is_ok(), "{images:?}");
        }
        let (images, labels) = (dir.path().join("images.gz"), dir.path().join("labels.gz"));
        let raw_len = idx_images(n, rows, cols, seed).len() + 64 * mutations.len();
        for kind in [DatasetName::Custom, DatasetName::Mnist] {
            let (r, peak) = peak_bytes(|| load_pair(&images, &labels, kind).map(|_| ()));
            if mutations.is_empty() && kind == DatasetName::Custom {
                prop_assert!(r.is_ok(), "{r:?}");
            }
            if let Err(e) = r {
                let msg = e.to_string();
                prop_assert!(
                    msg.contains(&images.display().to_string())
                        || msg.contains(&labels.display().to_string()),
                    "{msg}"
                );
            }
            prop_assert!(peak <= 2 * bound(raw_len), "pair: held {peak} bytes");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configs.

/// The lab's study config, a realistic text to mutate.
const LAB4: &str = include_str!("../../experiments/lab4.toml");

/// Memory a config may take to load: its runs are bounded (10,000), each a few KB.
const CONFIG_BOUND: u64 = 96 << 20;

/// Checks the outcome of loading a config from origin `prop.toml`.
fn check_config(
    r: Result<config::Plan, ConfigError>,
    peak: u64,
    sets: bool,
) -> Result<(), TestCaseError> {
    match r {
        Ok(plan) => {
            prop_assert!(!plan.runs.is_empty());
            prop_assert!(plan.runs.len() <= regulab::limits::MAX_RUNS_PER_PLAN);
            for run in &plan.runs {
                prop_assert!(config::validate(&run.config).is_ok(), "{}", run.name);
                prop_assert!(!run.name.contains('/') && !run.name.starts_with('.'));
            }
            prop_assert!(!plan.name.is_empty() && !plan.name.contains('/'));
            prop_assert!(plan.name != "." && plan.name != "..");
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.starts_with("prop.toml") || (sets && msg.starts_with("--set")),
                "{msg}"
            );
        }
    }
    prop_assert!(peak <= CONFIG_BOUND, "held {peak} bytes");
    Ok(())
}

/// A TOML value that may stand in any field: numbers (huge, negative, fractional),
/// strings, booleans, and lists (empty, of values, of lists) that make grids.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0i64..5000).prop_map(|v| v.to_string()),
        prop_oneof![
            Just(0.0f64),
            Just(1e-4),
            Just(0.5),
            Just(1.0),
            Just(-1.0),
            Just(1e30)
        ]
        .prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("inf".to_string()),
        "[a-z0-9./-]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
    ];
    scalar.prop_recursive(2, 40, 12, |inner| {
        prop::collection::vec(inner, 0..12).prop_map(|v| format!("[{}]", v.join(", ")))
    })
}

/// A dotted key: mostly real fields, sometimes a misspelt one.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "name", "seed", "epochs", "batch_size", "data.dataset", "data.train_examples",
            "data.validation", "data.eval_batch", "data.train_file", "data.test_file",
            "data.range", "model.hidden", "model.activation", "model.output", "model.init",
            "model.init_hidden", "model.init_output", "optim.lr", "optim.momentum",
            "optim.schedule", "optim.lr_list", "optim.decay", "optim.newbob_threshold",
            "reg.l1", "reg.l2", "reg.penalize_biases", "reg.keep_input", "reg.keep_hidden",
            "reg.keep_layers", "reg.max_norm",
        ]).prop_map(str::to_string),
        1 => "[a-z_]{1,8}(\\.[a-z_]{1,8})?",
    ]
}

fn assignment() -> impl Strategy<Value = String> {
    (key(), value()).prop_map(|(k, v)| format!("{k} = {v}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any text at all.
    #[test]
    fn config_loader_on_random_text(text in "\\PC{0,400}") {
        let (r, peak) = peak_bytes(|| config::parse(&text, "prop.toml", "prop", &[]));
        check_config(r, peak, false)?;
    }

    /// Configs of real and misspelt keys with values of every kind, in top-level keys
    /// and experiments, with `--set` overrides: grids of any size, empty lists, numbers
    /// that do not fit.
    #[test]
    fn config_loader_on_generated_configs(
        top in prop::collection::vec(assignment(), 0..8),
        experiments in prop::collection::vec(prop::collection::vec(assignment(), 0..5), 0..4),
        sets in prop::collection::vec((key(), value()), 0..3),
    ) {
        let mut text = top.join("\n");
        for (i, e) in experiments.iter().enumerate() {
            text.push_str(&format!("\n[experiments.e{i}]\n{}", e.join("\n")));
        }
        let sets: Vec<_> = sets
            .iter()
            .filter_map(|(k, v)| config::parse_set(&format!("{k}={v}")).ok())
            .collect();
        let empty = text.trim().is_empty() && sets.is_empty();
        let (r, peak) = peak_bytes(|| config::parse(&text, "prop.toml", "prop", &sets));
        if empty {
            prop_assert!(r.is_ok(), "an empty config is the lab's protocol: {r:?}");
        }
        check_config(r, peak, !sets.is_empty())?;
    }

    /// The lab's config with characters replaced, inserted or removed.
    #[test]
    fn config_loader_on_mutated_lab_config(
        edits in prop::collection::vec((any::<usize>(), 0u8..3, "[\\[\\]=\".,0-9a-z\\n -]"), 1..6),
    ) {
        let mut text: Vec<char> = LAB4.chars().collect();
        for (at, op, s) in &edits {
            let at = at % (text.len() + 1);
            match op {
                0 => { text.splice(at..at, s.chars()); }
                1 if at < text.len() => { text.remove(at); }
                _ if at < text.len() => { text[at] = s.chars().next().unwrap_or(' '); }
                _ => {}
            }
        }
        let text: String = text.into_iter().collect();
        let (r, peak) = peak_bytes(|| config::parse(&text, "prop.toml", "prop", &[]));
        check_config(r, peak, false)?;
    }

    /// `--set` arguments: anything parses to a key and a value or is refused.
    #[test]
    fn set_arguments_never_panic(arg in "\\PC{0,80}") {
        if let Err(e) = config::parse_set(&arg) {
            prop_assert!(e.to_string().starts_with("--set"), "{e}");
        }
    }
}
