//! PNG output: the SVG of a figure rasterised with resvg, text set in the embedded
//! DejaVu Sans (no system fonts are consulted, so every machine gives the same pixels).

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use super::PlotError;

/// PNG pixels per SVG unit: figures are drawn at 2x for print.
pub const SCALE: f32 = 2.0;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

/// Rasterise `svg` at [`SCALE`]: `(png bytes, (width, height))`.
pub fn png(svg: &str) -> Result<(Vec<u8>, (u32, u32)), PlotError> {
    let opts = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opts).map_err(|e| PlotError::Render(e.to_string()))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * SCALE).round() as u32,
        (size.height() * SCALE).round() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| PlotError::Render(format!("cannot allocate a {w} x {h} image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    let bytes = pixmap
        .encode_png()
        .map_err(|e| PlotError::Render(e.to_string()))?;
    Ok((bytes, (w, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_rendered_with_the_embedded_font() {
        let svg = r##"<svg width="120" height="40" viewBox="0 0 120 40" xmlns="http://www.w3.org/2000/svg"><text x="4" y="28" font-family="sans-serif" font-size="24" fill="#000000">Weights</text></svg>"##;
        let (bytes, (w, h)) = png(svg).unwrap();
        assert_eq!((w, h), (240, 80));
        let blank = r##"<svg width="120" height="40" viewBox="0 0 120 40" xmlns="http://www.w3.org/2000/svg"></svg>"##;
        let (blank_bytes, _) = png(blank).unwrap();
        assert!(
            bytes.len() > blank_bytes.len() + 200,
            "the text drew pixels"
        );
    }
}
