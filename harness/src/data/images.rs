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

use std::ops::Range;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledImages {
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

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
            pixels,
            labels,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
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

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `i`, if it exists.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let d = self.dim();
        self.pixels
            .get(i.checked_mul(d)?..i.checked_add(1)?.checked_mul(d)?)
    }

    /// How many examples carry each label `0..num_classes` (larger labels are not counted).
    pub fn label_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// `max label + 1` (0 when empty).
    pub fn label_bound(&self) -> u32 {
        self.labels.iter().max().map_or(0, |&m| u32::from(m) + 1)
    }

    /// A copy of examples `range` (e.g. the first 1,000 of a test file for a quick run).
    pub fn subset(&self, range: Range<usize>) -> Result<LabeledImages, DataError> {
        if range.start > range.end || range.end > self.len() {
            return Err(DataError::InvalidData(format!(
                "subset {range:?} of {} examples",
                self.len()
            )));
        }
        let d = self.dim();
        Ok(LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[range.start * d..range.end * d].to_vec(),
            labels: self.labels[range].to_vec(),
        })
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
            let (Some(src), Some(&l)) = (self.image(i), self.labels.get(i)) else {
                return Err(DataError::Gather(format!(
                    "index {i} out of range for {} examples",
                    self.len()
                )));
            };
            scale_into(src, row);
            *label = u32::from(l);
        }
        Ok(())
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
        scale_into(&self.pixels[range.start * d..range.end * d], x);
        for (dst, &l) in labels.iter_mut().zip(&self.labels[range]) {
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
    fn constructor_checks_lengths() {
        assert!(LabeledImages::new(2, 2, vec![0; 8], vec![1, 2]).is_ok());
        assert!(LabeledImages::new(2, 2, vec![0; 7], vec![1, 2]).is_err());
        assert!(LabeledImages::new(0, 2, vec![], vec![]).is_err());
    }
}
