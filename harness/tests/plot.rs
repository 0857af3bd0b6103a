//! Figures and report of a small real study (Fashion-MNIST from Debian's
//! `dataset-fashion-mnist`): the files `regulab run` draws at its end, their SVG
//! structure, byte-for-byte determinism, PNG output, `regulab corrupt`, and the report
//! rendered by a real browser (Debian's `chromium`; set `REGULAB_SKIP_BROWSER=1` to
//! skip that one test explicitly; without chromium it fails).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const STUDY: &str = r#"
name = "tiny"
seed = 5
epochs = 3
batch_size = 10
[data]
dataset = "fashion-mnist"
train_examples = 300
validation = 500
[model]
hidden = [32]
[experiments.base]
[experiments.l1]
reg.l1 = [1e-3, 1e-4]
[experiments.l2]
reg.l2 = [1e-3, 1e-4]
[experiments.dropout]
reg.keep_input = [0.5, 0.8]
reg.keep_hidden = 0.5
"#;

const RUNS: [&str; 7] = [
    "base",
    "l1_l1=1e-3",
    "l1_l1=1e-4",
    "l2_l2=1e-3",
    "l2_l2=1e-4",
    "dropout_keep_input=0.5",
    "dropout_keep_input=0.8",
];

/// The legend label of each run in RUNS order (its hyperparameters).
const LABELS: [&str; 7] = [
    "no regularisation",
    "L1 = 1e-3",
    "L1 = 1e-4",
    "L2 = 1e-3",
    "L2 = 1e-4",
    "keep in = 0.5, keep hid = 0.5",
    "keep in = 0.8, keep hid = 0.5",
];

fn regulab(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(args)
        .env_remove("REGULAB_DATA")
        .env("REGULAB_KERNEL_CACHE", "off")
        .output()
        .expect("regulab runs");
    assert!(
        out.status.success(),
        "regulab {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The study, trained once per test binary (figures drawn by `regulab run` itself).
fn study() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("plot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let cfg = root.join("tiny.toml");
        std::fs::write(&cfg, STUDY).unwrap();
        let out = root.join("tiny");
        regulab(&[
            "run",
            s(&cfg),
            "--out",
            s(&out),
            "--jobs",
            "2",
            "--threads",
            "1",
            "--quiet",
        ]);
        out
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".regulab-") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn fresh_copy(tag: &str) -> PathBuf {
    let dst = study().parent().unwrap().join(tag).join("tiny");
    let _ = std::fs::remove_dir_all(dst.parent().unwrap());
    copy_dir(study(), &dst);
    dst
}

fn expected_stems() -> BTreeSet<String> {
    let mut v: BTreeSet<String> = [
        "valid_acc",
        "valid_acc_base",
        "valid_acc_l1",
        "valid_acc_l2",
        "valid_acc_dropout",
        "test_acc_vs_l1",
        "test_acc_vs_l2",
        "test_acc_vs_keep_input",
        "input_dropout",
    ]
    .map(String::from)
    .into();
    for r in RUNS {
        v.insert(format!("cost_{r}"));
        v.insert(format!("weights_{r}"));
    }
    v
}

fn files_in(dir: &Path, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// What a figure's SVG holds, counted by the structure the plot module documents.
struct SvgSummary {
    /// `<polyline stroke-width="2">`: one per data series, one per legend sample.
    thick_lines: Vec<usize>,
    /// Trimmed contents of every `<text>`.
    texts: Vec<String>,
    rects: usize,
    width: f64,
    height: f64,
}

fn parse_svg(path: &Path) -> SvgSummary {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let mut sum = SvgSummary {
        thick_lines: Vec::new(),
        texts: Vec::new(),
        rects: 0,
        width: root.attribute("width").unwrap().parse().unwrap(),
        height: root.attribute("height").unwrap().parse().unwrap(),
    };
    for n in root.descendants().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "polyline" if n.attribute("stroke-width") == Some("2") => sum
                .thick_lines
                .push(n.attribute("points").unwrap().split_whitespace().count()),
            "text" => sum.texts.push(n.text().unwrap_or("").trim().to_string()),
            "rect" => sum.rects += 1,
            _ => {}
        }
    }
    sum
}

fn count(texts: &[String], t: &str) -> usize {
    texts.iter().filter(|x| *x == t).count()
}

#[test]
fn run_draws_every_expected_figure_and_the_report() {
    let dir = study();
    assert_eq!(files_in(&dir.join("plots"), "svg"), expected_stems());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for r in RUNS {
        assert!(html.contains(&format!("<td>{r}</td>")), "table row of {r}");
    }
    // self-contained: every figure inline, nothing fetched
    assert_eq!(html.matches("<svg ").count(), expected_stems().len());
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    for needle in ["http://", "https://", "<script", "src=", "href="] {
        assert!(!without_ns.contains(needle), "report contains {needle}");
    }
}

#[test]
fn accuracy_figures_have_one_series_and_one_legend_entry_per_run() {
    let plots = study().join("plots");
    let all = parse_svg(&plots.join("valid_acc.svg"));
    assert_eq!(
        all.thick_lines.len(),
        2 * RUNS.len(),
        "a line and a legend sample per run"
    );
    // each data line has one point per trained epoch (epoch 0 left out)
    assert_eq!(
        all.thick_lines.iter().filter(|&&n| n == 3).count(),
        RUNS.len()
    );
    for l in LABELS {
        assert_eq!(
            count(&all.texts, l),
            1,
            "legend entry {l:?} in {:?}",
            all.texts
        );
    }
    assert!(all.texts.iter().any(|t| t == "validation accuracy (%)"));
    assert!(all.texts.iter().any(|t| t == "epoch"));
    for (exp, labels) in [
        ("base", &LABELS[..1]),
        ("l1", &LABELS[1..3]),
        ("l2", &LABELS[3..5]),
        ("dropout", &LABELS[5..]),
    ] {
        let f = parse_svg(&plots.join(format!("valid_acc_{exp}.svg")));
        assert_eq!(f.thick_lines.len(), 2 * labels.len(), "{exp}");
        for l in labels {
            assert_eq!(count(&f.texts, l), 1, "{exp}: {l}");
        }
    }
    for r in RUNS {
        let f = parse_svg(&plots.join(format!("cost_{r}.svg")));
        assert_eq!(f.thick_lines.len(), 4, "{r}: training and validation cost");
        assert_eq!(count(&f.texts, "training cost"), 1);
        assert_eq!(count(&f.texts, "validation cost"), 1);
    }
}

#[test]
fn sweep_histogram_and_input_dropout_figures() {
    let plots = study().join("plots");
    for (file, series, axis) in [
        (
            "test_acc_vs_l1",
            "l1",
            "L1 coefficient (per weight, log scale)",
        ),
        (
            "test_acc_vs_l2",
            "l2",
            "L2 coefficient (per weight, log scale)",
        ),
        (
            "test_acc_vs_keep_input",
            "dropout",
            "input keep probability p",
        ),
    ] {
        let f = parse_svg(&plots.join(format!("{file}.svg")));
        assert_eq!(f.thick_lines.len(), 2, "{file}: one series");
        assert!(
            f.thick_lines.contains(&2),
            "{file}: a line through the two grid values"
        );
        assert_eq!(count(&f.texts, series), 1, "{file}: {:?}", f.texts);
        assert_eq!(
            count(&f.texts, "no regularisation (base)"),
            1,
            "{file}: reference"
        );
        assert_eq!(count(&f.texts, axis), 1);
        assert_eq!(count(&f.texts, "test accuracy (%)"), 1);
    }
    for r in RUNS {
        let f = parse_svg(&plots.join(format!("weights_{r}.svg")));
        assert!(f.rects > 5, "{r}: bars");
        assert!(
            f.texts
                .iter()
                .any(|t| t.contains("% with |w| &lt; 1e-3") || t.contains("% with |w| < 1e-3"))
        );
        assert_eq!(count(&f.texts, "weight value"), 1);
    }
    let grid = parse_svg(&plots.join("input_dropout.svg"));
    assert_eq!(count(&grid.texts, "original"), 1);
    for p in ["0.9", "0.7", "0.5", "0.2", "0.1"] {
        assert_eq!(
            grid.texts
                .iter()
                .filter(|t| t.starts_with(&format!("p = {p}: ")))
                .count(),
            1,
            "panel p = {p}: {:?}",
            grid.texts
        );
    }
    assert!(grid.texts[0].contains("training image 0") && grid.texts[0].contains("seed 5"));
}

#[test]
fn figures_are_byte_identical_when_redrawn_anywhere() {
    let copy = fresh_copy("redraw");
    std::fs::remove_dir_all(copy.join("plots")).unwrap();
    std::fs::remove_file(copy.join("report.html")).unwrap();
    regulab(&["plot", s(&copy)]);
    let orig = study();
    let stems = expected_stems();
    assert_eq!(files_in(&copy.join("plots"), "svg"), stems);
    for stem in &stems {
        let a = std::fs::read(orig.join("plots").join(format!("{stem}.svg"))).unwrap();
        let b = std::fs::read(copy.join("plots").join(format!("{stem}.svg"))).unwrap();
        assert!(a == b, "{stem}.svg differs when redrawn");
    }
    assert!(
        std::fs::read(orig.join("report.html")).unwrap()
            == std::fs::read(copy.join("report.html")).unwrap(),
        "report.html differs when redrawn"
    );
}

fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    // grey levels of the pixels (first channel), enough for blank checks
    let grey = buf.chunks(channels).map(|px| px[0]).collect();
    (info.width, info.height, grey)
}

/// Standard deviation of the grey levels.
fn spread(grey: &[u8]) -> f64 {
    let n = grey.len() as f64;
    let mean = grey.iter().map(|&g| f64::from(g)).sum::<f64>() / n;
    (grey
        .iter()
        .map(|&g| (f64::from(g) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

#[test]
fn png_figures_decode_at_twice_the_svg_size() {
    let copy = fresh_copy("png");
    regulab(&["plot", s(&copy), "--format", "png"]);
    assert_eq!(files_in(&copy.join("plots"), "png"), expected_stems());
    for stem in ["valid_acc", "input_dropout", "weights_l1_l1=1e-3"] {
        let svg = parse_svg(&copy.join("plots").join(format!("{stem}.svg")));
        let (w, h, grey) = decode_png(&copy.join("plots").join(format!("{stem}.png")));
        assert_eq!(
            (w, h),
            ((2.0 * svg.width) as u32, (2.0 * svg.height) as u32),
            "{stem}"
        );
        assert!(spread(&grey) > 10.0, "{stem}.png is blank");
    }
}

#[test]
fn corrupt_command_writes_the_grid_deterministically() {
    let dir = study().parent().unwrap().join("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, p) = (dir.join("a.svg"), dir.join("b.svg"), dir.join("c.png"));
    for out in [&a, &b, &p] {
        regulab(&[
            "corrupt",
            "--dataset",
            "fashion-mnist",
            "--index",
            "3",
            "--seed",
            "9",
            "--out",
            s(out),
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let f = parse_svg(&a);
    assert!(
        f.texts[0].contains("training image 3") && f.texts[0].contains("seed 9"),
        "{:?}",
        f.texts[0]
    );
    assert_eq!(f.texts.iter().filter(|t| t.starts_with("p = ")).count(), 5);
    let (w, h, grey) = decode_png(&p);
    assert_eq!((w, h), ((2.0 * f.width) as u32, (2.0 * f.height) as u32));
    assert!(spread(&grey) > 10.0);
    // another seed gives other masks
    let other = dir.join("d.svg");
    regulab(&[
        "corrupt",
        "--dataset",
        "fashion-mnist",
        "--index",
        "3",
        "--seed",
        "10",
        "--out",
        s(&other),
    ]);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&other).unwrap());
}

#[test]
fn plot_of_a_single_run_directory() {
    let copy = fresh_copy("single");
    let run = copy.join("l2_l2=1e-3");
    regulab(&["plot", s(&run)]);
    let want: BTreeSet<String> = [
        "valid_acc_l2",
        "cost_l2_l2=1e-3",
        "weights_l2_l2=1e-3",
        "input_dropout",
    ]
    .map(String::from)
    .into();
    assert_eq!(files_in(&run.join("plots"), "svg"), want);
    let f = parse_svg(&run.join("plots/valid_acc_l2.svg"));
    assert_eq!(f.thick_lines.len(), 2);
    assert_eq!(count(&f.texts, "L2 = 1e-3"), 1);
}

#[test]
fn plot_of_a_directory_without_runs_fails_clearly() {
    let dir = study().parent().unwrap().join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regulab"))
        .args(["plot", s(&dir)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a run directory") && err.contains("regulab run"),
        "{err}"
    );
}

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        }) {
            return Some(p);
        }
    }
    None
}

/// Run headless chromium with `args` and the report's URL (output into files under
/// `profile`, so a full pipe never blocks it); kill it after 120 s.
fn run_chromium(bin: &Path, profile: &Path, args: &[String], url: &str) -> (bool, String, String) {
    std::fs::create_dir_all(profile).unwrap();
    let (out_path, err_path) = (profile.join("stdout.txt"), profile.join("stderr.txt"));
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.success(),
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
    )
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("REGULAB_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("REGULAB_SKIP_BROWSER=1: skipping the browser check");
            return;
        }
        panic!(
            "chromium not found: install it (apt-get install chromium), or set REGULAB_SKIP_BROWSER=1 to skip this test explicitly"
        );
    };
    let report = study().join("report.html").canonicalize().unwrap();
    let url = format!("file://{}", report.display());
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("shot.png");
    let (ok, _, stderr) = run_chromium(
        &bin,
        &profile.path().join("p1"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600".into(),
        ],
        &url,
    );
    assert!(ok && shot.is_file(), "chromium failed: {stderr}");
    let (w, h, grey) = decode_png(&shot);
    assert_eq!((w, h), (1200, 1600));
    let dark = grey.iter().filter(|&&g| g < 128).count() as f64 / grey.len() as f64;
    assert!(
        spread(&grey) > 10.0 && dark > 0.005,
        "screenshot looks blank (spread {}, dark {dark})",
        spread(&grey)
    );
    // the browser parsed the whole page: its DOM holds the table and every figure
    let (ok, dom, stderr) = run_chromium(
        &bin,
        &profile.path().join("p2"),
        &["--dump-dom".into()],
        &url,
    );
    assert!(ok, "chromium --dump-dom failed: {stderr}");
    assert_eq!(
        dom.matches("<svg ").count(),
        expected_stems().len(),
        "figures in the DOM"
    );
    assert_eq!(
        dom.matches("<tr>").count() + dom.matches("<tr class").count(),
        1 + RUNS.len()
    );
    assert!(dom.contains("</html>"));
}
