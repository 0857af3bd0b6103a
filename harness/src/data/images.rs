//! Labelled images kept as bytes, scaled to `[0, 1]` per minibatch.
//!
//! The pixels stay `u8` in memory (MNIST's 60,000 training images are 47 MB as bytes,
//! 188 MB as `f32`); [`LabeledImages::gather`] converts the rows of one minibatch into a
//! caller-owned `f32` buffer, without allocating:
//!
//! `x[b, j] = p[idx[b], j] / 255`, computed as `p as f32 / 255.0`: IEEE division is
//! correctly rounded, so each value is the `f32` nearest to the exact quotient
//! (multiplying by a rounded `1/255` would round twice and differ in the last bit for
//! some bytes). The 256 possible values are precomputed in [`PIXEL_SCALE`].
//!
//! A command that reads only some examples of a file (the lab's study: a pool of 1,000
//! training images and the last 10,000 for validation, of 60,000) can release the
//! others with [`LabeledImages::keep_only`]: the copy holds the pixels of those
//! examples only, with every label and the original indices, so splits, shuffles and
//! gathers give the same values as with the whole file.
//!
//! The bytes are shared: a clone, or a [`subset`](LabeledImages::subset) of a range of
//! examples, is a view of the same storage (no copy), so the runs of a grid over
//! `data.range` all read the one decoded file.

use std::ops::Range;
use std::sync::Arc;

use super::error::DataError;

/// `PIXEL_SCALE[p] = p as f32 / 255.0`, the value a pixel byte `p` becomes.
pub const PIXEL_SCALE: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut p = 0;
    while p < 256 {
        t[p] = p as f32 / 255.0;
        p += 1;
    }
    t
};

/// A set of equally sized `u8` images with one `u8` label each.
///
/// Normally every image's pixels are held; after [`keep_only`](Self::keep_only) only
/// those of some examples are (the others keep their index and label, but
/// [`image`](Self::image) and [`gather`](Self::gather) refuse them).
#[derive(Clone, Debug)]
pub struct LabeledImages {
    rows: usize,
    cols: usize,
    /// Storage of the pixels (shared by clones and subsets): the held images, image
    /// after image, are `pixels[pix]`.
    pixels: Arc<Vec<u8>>,
    /// The range of `pixels` this value holds.
    pix: Range<usize>,
    /// Storage of the labels: the label of every example, held or not, is `labels[lab]`.
    labels: Arc<Vec<u8>>,
    /// The range of `labels` this value covers.
    lab: Range<usize>,
    /// `None`: every image is held (image `i` is at row `i` of the pixels); `Some(h)`:
    /// only examples `h` (strictly increasing), image `h[r]` at row `r`.
    held: Option<Vec<u32>>,
}

impl PartialEq for LabeledImages {
    /// Equal shapes, pixels, labels and held examples (wherever they are stored).
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols) == (other.rows, other.cols)
            && self.pixels() == other.pixels()
            && self.labels() == other.labels()
            && self.held == other.held
    }
}

impl Eq for LabeledImages {}

impl LabeledImages {
    /// Builds from `labels.len()` images of `rows x cols` pixels stored image after image.
    ///
    /// Errors when `pixels.len() != labels.len() * rows * cols` or an image is empty.
    pub fn new(
        rows: usize,
        cols: usize,
        pixels: Vec<u8>,
        labels: Vec<u8>,
    ) -> Result<LabeledImages, DataError> {
        let dim = rows.checked_mul(cols).unwrap_or(0);
        if dim == 0 {
            return Err(DataError::InvalidData(format!(
                "images of {rows}x{cols} pixels"
            )));
        }
        if labels.len().checked_mul(dim) != Some(pixels.len()) {
            return Err(DataError::InvalidData(format!(
                "{} pixels for {} labels of {rows}x{cols} images",
                pixels.len(),
                labels.len()
            )));
        }
        Ok(LabeledImages {
            rows,
            cols,
            pix: 0..pixels.len(),
            pixels: Arc::new(pixels),
            lab: 0..labels.len(),
            labels: Arc::new(labels),
            held: None,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.lab.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.lab.is_empty()
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image (`rows * cols`), the network's input size.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels held, image after image: those of every example, unless
    /// [`keep_only`](Self::keep_only) released some.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels[self.pix.clone()]
    }

    /// Number of examples whose pixels are held (`len()` unless
    /// [`keep_only`](Self::keep_only) released some).
    pub fn held_len(&self) -> usize {
        self.held.as_ref().map_or(self.len(), Vec::len)
    }

    /// Row of `pixels` holding image `i`, if it is held.
    fn row_of(&self, i: usize) -> Option<usize> {
        match &self.held {
            None => (i < self.len()).then_some(i),
            Some(h) => h.binary_search(&u32::try_from(i).ok()?).ok(),
        }
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels[self.lab.clone()]
    }

    /// The pixels of image `i`, if it exists (and is held, see
    /// [`keep_only`](Self::keep_only)).
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let d = self.dim();
        let r = self.row_of(i)?;
        self.pixels()
            .get(r.checked_mul(d)?..r.checked_add(1)?.checked_mul(d)?)
    }

    /// A copy holding the pixels of examples `keep` only (any order, repeats allowed;
    /// indices `>= len()` are ignored), with every label and the same indices:
    /// `len()`, [`labels`](Self::labels) and, for a kept `i`, [`image`](Self::image)`(i)`
    /// and [`gather`](Self::gather) are unchanged; other images are no longer available.
    /// Keeping every example gives an ordinary copy.
    pub fn keep_only(&self, keep: &[u32]) -> LabeledImages {
        let mut held: Vec<u32> = keep
            .iter()
            .copied()
            .filter(|&i| self.image(i as usize).is_some())
            .collect();
        held.sort_unstable();
        held.dedup();
        let d = self.dim();
        let mut pixels = Vec::with_capacity(held.len() * d);
        for &i in &held {
            pixels.extend_from_slice(self.image(i as usize).unwrap_or_default());
        }
        let held = (held.len() < self.len()).then_some(held);
        LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pix: 0..pixels.len(),
            pixels: Arc::new(pixels),
            labels: Arc::clone(&self.labels),
            lab: self.lab.clone(),
            held,
        }
    }

    /// How many examples carry each label `0..num_classes` (larger labels are not counted).
    pub fn label_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in self.labels() {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// `max label + 1` (0 when empty).
    pub fn label_bound(&self) -> u32 {
        self.labels().iter().max().map_or(0, |&m| u32::from(m) + 1)
    }

    /// Examples `range` (e.g. the first 1,000 of a test file for a quick run): a view of
    /// the same storage (after [`keep_only`](Self::keep_only), a copy of the held images
    /// of the range).
    pub fn subset(&self, range: Range<usize>) -> Result<LabeledImages, DataError> {
        if range.start > range.end || range.end > self.len() {
            return Err(DataError::InvalidData(format!(
                "subset {range:?} of {} examples",
                self.len()
            )));
        }
        let d = self.dim();
        let lab = self.lab.start + range.start..self.lab.start + range.end;
        let (pixels, pix, held) = match &self.held {
            None => {
                let pix = self.pix.start + range.start * d..self.pix.start + range.end * d;
                (Arc::clone(&self.pixels), pix, None)
            }
            Some(h) => {
                // held rows of the range, re-indexed from its start
                let (a, b) = (
                    h.partition_point(|&i| (i as usize) < range.start),
                    h.partition_point(|&i| (i as usize) < range.end),
                );
                let start = u32::try_from(range.start).map_err(|_| {
                    DataError::InvalidData(format!("subset {range:?}: beyond u32 indices"))
                })?;
                let shifted = h[a..b].iter().map(|&i| i - start).collect();
                let pixels = self.pixels()[a * d..b * d].to_vec();
                (Arc::new(pixels), 0..(b - a) * d, Some(shifted))
            }
        };
        Ok(LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pixels,
            pix,
            labels: Arc::clone(&self.labels),
            lab,
            held,
        })
    }

    /// Whether `self` and `other` read the same pixel storage (a clone, or subsets of
    /// one loaded file).
    pub fn shares_pixels_with(&self, other: &LabeledImages) -> bool {
        Arc::ptr_eq(&self.pixels, &other.pixels)
    }

    /// Writes the scaled pixels and the labels of examples `indices` into the caller's
    /// buffers, row `b` for `indices[b]`: `x[b*dim + j] = PIXEL_SCALE[p[indices[b], j]]`,
    /// `labels[b] = label[indices[b]]`. Does not allocate.
    ///
    /// `x.len()` must be exactly `indices.len() * dim()` and `labels.len()` exactly
    /// `indices.len()` (slice the buffers for a short last batch); every index must be
    /// `< len()`. Otherwise an error, and the buffers' contents are unspecified.
    pub fn gather(
        &self,
        indices: &[u32],
        x: &mut [f32],
        labels: &mut [u32],
    ) -> Result<(), DataError> {
        self.check_buffers(indices.len(), x.len(), labels.len())?;
        let d = self.dim();
        for ((&i, row), label) in indices
            .iter()
            .zip(x.chunks_exact_mut(d))
            .zip(labels.iter_mut())
        {
            let i = i as usize;
            let (Some(src), Some(&l)) = (self.image(i), self.labels().get(i)) else {
                return Err(self.missing(i));
            };
            scale_into(src, row);
            *label = u32::from(l);
        }
        Ok(())
    }

    /// The error for an example `i` whose image is not available.
    fn missing(&self, i: usize) -> DataError {
        if i < self.len() {
            DataError::Gather(format!(
                "example {i} is not held in memory (only {} of the {} examples were kept)",
                self.held_len(),
                self.len()
            ))
        } else {
            DataError::Gather(format!(
                "index {i} out of range for {} examples",
                self.len()
            ))
        }
    }

    /// Like [`gather`](Self::gather) for the consecutive examples `range` (evaluation
    /// batches over a whole split, in order).
    pub fn gather_range(
        &self,
        range: Range<usize>,
        x: &mut [f32],
        labels: &mut [u32],
    ) -> Result<(), DataError> {
        let n = range.end.saturating_sub(range.start);
        self.check_buffers(n, x.len(), labels.len())?;
        if range.start > range.end || range.end > self.len() {
            return Err(DataError::Gather(format!(
                "range {range:?} out of range for {} examples",
                self.len()
            )));
        }
        let d = self.dim();
        match &self.held {
            None => scale_into(&self.pixels()[range.start * d..range.end * d], x),
            Some(_) => {
                for (i, row) in range.clone().zip(x.chunks_exact_mut(d)) {
                    scale_into(self.image(i).ok_or_else(|| self.missing(i))?, row);
                }
            }
        }
        for (dst, &l) in labels.iter_mut().zip(&self.labels()[range]) {
            *dst = u32::from(l);
        }
        Ok(())
    }

    fn check_buffers(&self, n: usize, x_len: usize, labels_len: usize) -> Result<(), DataError> {
        if n.checked_mul(self.dim()) != Some(x_len) || labels_len != n {
            return Err(DataError::Gather(format!(
                "{n} examples of {} pixels need buffers of {} and {n}, got {x_len} and {labels_len}",
                self.dim(),
                n.saturating_mul(self.dim())
            )));
        }
        Ok(())
    }
}

/// `dst[j] = PIXEL_SCALE[src[j]]` (equal lengths).
#[inline]
fn scale_into(src: &[u8], dst: &mut [f32]) {
    for (d, &p) in dst.iter_mut().zip(src) {
        *d = PIXEL_SCALE[usize::from(p)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_table_is_the_division() {
        for p in 0..=255u8 {
            assert_eq!(PIXEL_SCALE[usize::from(p)], f32::from(p) / 255.0);
            // the nearest f32 to the exact quotient: no neighbour is closer
            let exact = f64::from(p) / 255.0;
            let v = PIXEL_SCALE[usize::from(p)];
            let err = |y: f32| (f64::from(y) - exact).abs();
            assert!(
                err(v) <= err(v.next_up()) && err(v) <= err(v.next_down()),
                "p = {p}"
            );
        }
        assert_eq!(PIXEL_SCALE[0], 0.0);
        assert_eq!(PIXEL_SCALE[255], 1.0);
    }

    #[test]
    fn keep_only_holds_some_images_under_their_own_indices() {
        // 6 images of 2x3: pixel j of image i is 10*i + j
        let pixels: Vec<u8> = (0..6u8)
            .flat_map(|i| (0..6u8).map(move |j| 10 * i + j))
            .collect();
        let all = LabeledImages::new(2, 3, pixels, vec![5, 4, 3, 2, 1, 0]).unwrap();
        let some = all.keep_only(&[4, 1, 4, 99, 2]);
        assert_eq!((some.len(), some.held_len(), some.dim()), (6, 3, 6));
        assert_eq!(some.labels(), all.labels());
        assert_eq!(some.pixels().len(), 3 * 6);
        for i in 0..6 {
            let held = [1, 2, 4].contains(&i);
            assert_eq!(some.image(i), if held { all.image(i) } else { None }, "{i}");
        }
        // gathers of held examples are those of the whole set; others are errors
        let (mut x, mut y) = (vec![0.0; 18], vec![0; 3]);
        let (mut xa, mut ya) = (vec![0.0; 18], vec![0; 3]);
        some.gather(&[4, 1, 2], &mut x, &mut y).unwrap();
        all.gather(&[4, 1, 2], &mut xa, &mut ya).unwrap();
        assert_eq!((&x, &y), (&xa, &ya));
        some.gather_range(1..3, &mut x[..12], &mut y[..2]).unwrap();
        all.gather_range(1..3, &mut xa[..12], &mut ya[..2]).unwrap();
        assert_eq!((&x, &y), (&xa, &ya));
        let e = some.gather(&[1, 3], &mut x[..12], &mut y[..2]).unwrap_err();
        assert!(e.to_string().contains("not held"), "{e}");
        assert!(some.gather_range(2..4, &mut x[..12], &mut y[..2]).is_err());
        assert!(some.gather(&[6], &mut x[..6], &mut y[..1]).is_err());
        // a subset keeps the held images of its range, re-indexed
        let sub = some.subset(2..5).unwrap();
        assert_eq!((sub.len(), sub.held_len()), (3, 2));
        assert_eq!(sub.image(0), all.image(2));
        assert_eq!(sub.image(1), None);
        assert_eq!(sub.image(2), all.image(4));
        // keeping everything is a plain copy; keeping nothing keeps the labels only
        assert_eq!(all.keep_only(&[5, 4, 3, 2, 1, 0]), all);
        let none = all.keep_only(&[]);
        assert_eq!(
            (none.len(), none.held_len(), none.pixels().len()),
            (6, 0, 0)
        );
    }

    #[test]
    fn constructor_checks_lengths() {
        assert!(LabeledImages::new(2, 2, vec![0; 8], vec![1, 2]).is_ok());
        assert!(LabeledImages::new(2, 2, vec![0; 7], vec![1, 2]).is_err());
        assert!(LabeledImages::new(0, 2, vec![], vec![]).is_err());
    }
}
