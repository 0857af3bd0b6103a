//! The lab's input-dropout exercise: one real image, and the same image with each
//! input kept with probability p = 0.9, 0.7, 0.5, 0.2, 0.1, as a 2 x 3 grid.
//!
//! The masks come from the project's own kernel, [`regulab_kernels::dropout::forward`],
//! with the key a training run would use for the first example of its first minibatch:
//! `MaskKey { seed, layer: 0, step: 0 }` (layer 0 = the inputs). For every `p` the
//! element `i` is kept iff `u_i < floor(p * 2^32)` with the *same* random words `u_i`,
//! so the masks are nested: a pixel kept at p = 0.2 is also kept at 0.5.
//!
//! The kernel outputs `y = m * x / p` (inverted dropout); a panel shows `m * x` (= `y * p`),
//! the kept pixels at their original intensity, so all panels share one grey scale:
//! white = 0, black = 1, in 16 levels.

use plotters::prelude::*;
use regulab_kernels::dropout::{self, Keep, Mask, MaskKey};

use super::PlotError;
use super::style::{self, INK};
use crate::data::{DatasetName, LabeledImages, PIXEL_SCALE};

/// The keep probabilities of the lab's exercise, after the original image.
pub const KEEPS: [f32; 5] = [0.9, 0.7, 0.5, 0.2, 0.1];

/// Side of one image pixel in the figure, px.
const CELL: i32 = 7;
/// Grey levels drawn (neighbouring pixels of one level are merged into one rectangle).
const LEVELS: f32 = 15.0;

/// Fashion-MNIST's class names.
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// What label `l` means in `dataset`.
pub fn class_name(dataset: DatasetName, l: u8) -> String {
    match dataset {
        DatasetName::FashionMnist => FASHION_CLASSES
            .get(usize::from(l))
            .map_or_else(|| format!("class {l}"), |s| s.to_string()),
        DatasetName::Mnist => format!("digit {l}"),
        DatasetName::Custom => format!("class {l}"),
    }
}

/// One panel: its title and the displayed intensities `m * x` in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// `original` or `keep p = 0.9: 88 % kept`.
    pub title: String,
    /// Keep probability (1 for the original).
    pub keep: f32,
    /// Number of pixels kept.
    pub kept: usize,
    /// Intensities, row-major.
    pub pixels: Vec<f32>,
}

/// The six panels for image `pixels` (bytes) with dropout seed `seed`.
pub fn panels(pixels: &[u8], seed: u64) -> Result<Vec<Panel>, PlotError> {
    let x: Vec<f32> = pixels
        .iter()
        .map(|&p| PIXEL_SCALE[usize::from(p)])
        .collect();
    let mut out = vec![Panel {
        title: "original".into(),
        keep: 1.0,
        kept: x.len(),
        pixels: x.clone(),
    }];
    let key = MaskKey {
        seed,
        layer: 0,
        step: 0,
    };
    let mut y = vec![0f32; x.len()];
    let mut mask = Mask::new();
    for p in KEEPS {
        let keep = Keep::new(p).map_err(|e| PlotError::Draw(e.to_string()))?;
        dropout::forward(key, keep, &x, &mut y, &mut mask);
        let shown: Vec<f32> = (0..x.len())
            .map(|i| if mask.kept(i) { x[i] } else { 0.0 })
            .collect();
        let kept = mask.count_kept();
        out.push(Panel {
            title: format!(
                "p = {p}: {} % kept",
                (100.0 * kept as f64 / x.len().max(1) as f64).round()
            ),
            keep: p,
            kept,
            pixels: shown,
        });
    }
    Ok(out)
}

/// The 2 x 3 grid as SVG. `caption` is the figure title.
pub fn grid_svg(
    images: &LabeledImages,
    index: usize,
    seed: u64,
    caption: &str,
) -> Result<String, PlotError> {
    style::init_fonts();
    let pixels = images.image(index).ok_or(PlotError::NoImage {
        index,
        len: images.len(),
    })?;
    let (rows, cols) = (images.rows() as i32, images.cols() as i32);
    let panels = panels(pixels, seed)?;
    let (pw, ph) = (cols * CELL, rows * CELL);
    let (gap, head, title_h) = (24, 30, 44);
    let width = 3 * pw + 4 * gap;
    let height = title_h + 2 * (head + ph) + 2 * gap;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<std::io::Error>| PlotError::Draw(e.to_string());
        root.fill(&WHITE).map_err(e)?;
        let centre = |size: f64| {
            style::text(size).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ))
        };
        let centre_bold = |size: f64| {
            style::bold(size).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ))
        };
        root.draw(&Text::new(
            caption,
            (width / 2, 10),
            centre_bold(style::TITLE_SIZE - 2.0),
        ))
        .map_err(e)?;
        for (k, panel) in panels.iter().enumerate() {
            let (r, c) = (k as i32 / 3, k as i32 % 3);
            let x0 = gap + c * (pw + gap);
            let y0 = title_h + r * (head + ph + gap);
            root.draw(&Text::new(
                panel.title.as_str(),
                (x0 + pw / 2, y0 + 4),
                centre(style::LEGEND_SIZE + 1.0),
            ))
            .map_err(e)?;
            let top = y0 + head;
            for row in 0..rows {
                // merge runs of equal grey level in a row into one rectangle
                let mut col = 0;
                while col < cols {
                    let level = |c: i32| {
                        (panel.pixels[(row * cols + c) as usize].clamp(0.0, 1.0) * LEVELS).round()
                            as u8
                    };
                    let l = level(col);
                    let mut end = col + 1;
                    while end < cols && level(end) == l {
                        end += 1;
                    }
                    if l > 0 {
                        let g = 255 - (u32::from(l) * 255 / LEVELS as u32) as u8;
                        root.draw(&Rectangle::new(
                            [
                                (x0 + col * CELL, top + row * CELL),
                                (x0 + end * CELL, top + (row + 1) * CELL),
                            ],
                            RGBColor(g, g, g).filled(),
                        ))
                        .map_err(e)?;
                    }
                    col = end;
                }
            }
            root.draw(&Rectangle::new(
                [(x0 - 1, top - 1), (x0 + pw + 1, top + ph + 1)],
                INK.stroke_width(1),
            ))
            .map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_nested_and_near_their_keep_probability() {
        let pixels: Vec<u8> = (0..4096u32).map(|i| (i % 255 + 1) as u8).collect();
        let p = panels(&pixels, 7).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].kept, 4096);
        for w in p.windows(2) {
            assert!(w[1].kept < w[0].kept);
            for i in 0..pixels.len() {
                assert!(
                    w[1].pixels[i] == 0.0 || w[1].pixels[i] == w[0].pixels[i],
                    "a pixel kept at lower p is kept at higher p, unchanged"
                );
            }
        }
        for panel in &p[1..] {
            let frac = panel.kept as f64 / 4096.0;
            assert!(
                (frac - f64::from(panel.keep)).abs() < 0.03,
                "{frac} vs {}",
                panel.keep
            );
        }
        assert_eq!(p, panels(&pixels, 7).unwrap(), "deterministic");
        assert_ne!(p[3], panels(&pixels, 8).unwrap()[3], "the seed matters");
    }
}
