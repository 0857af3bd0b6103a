//! `DIR/report.html`: one self-contained page (inline CSS, inline SVG, no scripts, no
//! network) with the summary table and every figure, to open in a browser or print to
//! PDF. Its bytes depend only on the run directory's contents (no dates, no absolute
//! paths), like the figures'.

use std::fmt::Write;

use super::labels;
use super::rundir::Study;
use super::{Figure, Section};
use crate::aggregate::{self, Aggregate};
use crate::plot::style::pct;

/// Per-run weight statistics for the table (`None` when the model could not be read).
pub use crate::run::digest::WeightStats;

const CSS: &str = r#"
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1a1a1a;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #bbb; margin-top: 2em; }
p.meta { color: #444; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.diverged td { color: #a00; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 1em; }
figure { margin: 0; min-width: 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #333; margin-top: 0.3em; }
ul.notes { color: #555; font-size: 0.9em; }
@media print {
  body { margin: 0; max-width: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .figures { grid-template-columns: 1fr 1fr; }
}
"#;

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The seeds of the study's runs in words: `seed 7`, or `3 seeds (7, 8, 9)`, or
/// `12 seeds (1 to 12)`.
fn seeds_words(study: &Study) -> String {
    let mut seeds: Vec<u64> = study.runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    match seeds.as_slice() {
        [one] => format!("seed {one}"),
        s if s.len() <= 5 => format!(
            "{} seeds ({})",
            s.len(),
            s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
        s => format!("{} seeds ({} to {})", s.len(), s[0], s[s.len() - 1]),
    }
}

/// The section on the configurations over their seeds: the aggregate's table
/// ([`aggregate::display_rows`]) and its verdicts in words. Empty when no
/// configuration has more than one seed.
fn seeds_section(agg: &Aggregate) -> String {
    if !agg.rows.iter().any(|r| r.seeds.len() > 1) {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Over seeds: does a regulariser help?</h2>\n<p>Each configuration over its seeds \
         (<code>aggregate.csv</code>): the mean and sample standard deviation, the 95 % \
         Student t interval of the mean, and the difference from the reference paired by \
         seed (same initial weights, training pool, shuffles and masks) with its 95 % \
         interval; <em>better</em> or <em>worse</em> when that interval excludes 0.</p>\n\
         <table>\n<thead><tr>",
    );
    for c in aggregate::display_header(agg) {
        let _ = write!(h, "<th>{}</th>", escape(&c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in aggregate::display_rows(agg) {
        h.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if i == 0 || i == 6 { "" } else { " class=\"n\"" };
            let _ = write!(h, "<td{class}>{}</td>", escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    let words = aggregate::verdict_sentence(agg);
    if !words.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", escape(&words));
    }
    h
}

/// The page. `name` titles it; `stats[i]` belongs to `study.runs[i]`; `aggregate`, when
/// the study is a whole plan, adds the section over seeds ([`seeds_section`]).
pub fn html(
    name: &str,
    study: &Study,
    stats: &[Option<WeightStats>],
    figures: &[Figure],
    notes: &[String],
    aggregate: Option<&Aggregate>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>regulab report: {0}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>regulab report: {0}</h1>\n",
        escape(name)
    );
    let experiments = study.experiments();
    let first = &study.runs[0];
    let dataset = first
        .config
        .get("data.dataset")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} run(s) in {} experiment(s) ({}); dataset {}; {}.</p>",
        study.runs.len(),
        experiments.len(),
        escape(&experiments.join(", ")),
        escape(dataset),
        seeds_words(study)
    );
    h.push_str("<h2>Summary</h2>\n<table>\n<thead><tr><th>run</th><th>hyperparameters</th><th>epochs</th><th>train acc (%)</th><th>valid acc (%)</th><th>best valid acc (%) [epoch]</th><th>test acc (%)</th><th>|w| &lt; 1e-3 (%)</th><th>weight L2 norm</th><th>status</th></tr></thead>\n<tbody>\n");
    for (r, st) in study.runs.iter().zip(stats) {
        let last = r.epochs.last();
        let best = r
            .best_valid()
            .map_or_else(|| "-".to_string(), |(a, e)| format!("{} [{e}]", pct(a, 2)));
        let class = if r.status == "completed" {
            String::new()
        } else {
            format!(" class=\"{}\"", escape(&r.status))
        };
        let _ = writeln!(
            h,
            "<tr{class}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&r.name),
            escape(&labels::describe(r)),
            last.map_or(0, |e| e.epoch),
            last.map_or_else(|| "-".into(), |e| pct(e.train_acc, 2)),
            last.and_then(|e| e.valid_acc)
                .map_or_else(|| "-".into(), |a| pct(a, 2)),
            best,
            r.test_acc.map_or_else(|| "-".into(), |a| pct(a, 2)),
            st.map_or_else(|| "-".into(), |s| pct(s.frac_small, 1)),
            st.map_or_else(|| "-".into(), |s| format!("{:.2}", s.l2_norm)),
            escape(&r.status),
        );
    }
    h.push_str("</tbody>\n</table>\n");
    if let Some(agg) = aggregate {
        h.push_str(&seeds_section(agg));
    }
    for section in Section::ALL {
        let figs: Vec<&Figure> = figures.iter().filter(|f| f.section == section).collect();
        if figs.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h2>{}</h2>\n<p>{}</p>\n<div class=\"figures\">",
            section.heading(),
            section.blurb()
        );
        for f in figs {
            let _ = writeln!(
                h,
                "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                escape(&f.stem),
                strip_prolog(&f.svg).trim_end(),
                escape(&f.caption)
            );
        }
        h.push_str("</div>\n");
    }
    if !notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul class=\"notes\">\n");
        for n in notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// The SVG without an XML declaration (not allowed inside HTML).
fn strip_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(strip_prolog("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
    }
}
