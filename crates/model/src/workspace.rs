//! Preallocated buffers of the forward and backward passes, so that a minibatch costs
//! no heap allocation once the workspace has seen its largest batch.

use crate::arch::Architecture;
use crate::error::{ModelError, Result};
use regulab_kernels::dropout::{Keep, Mask};

/// Activations, deltas, dropout masks and per-example results for batches of up to
/// [`Workspace::capacity`] rows of one architecture.
///
/// Buffers are sized `capacity x width` and grow once (to the new batch size) when a
/// larger batch arrives; smaller batches use a prefix. One workspace serves any number
/// of networks of the same layer sizes (training keeps its own; an evaluator can use
/// another, so a large evaluation batch does not grow the training buffers).
#[derive(Clone, Debug)]
pub struct Workspace {
    pub(crate) sizes: Vec<usize>,
    pub(crate) cap: usize,
    /// Input after dropout (`B x sizes[0]`), used when input dropout is on.
    pub(crate) inp: Vec<f32>,
    /// Per layer `i`: `h_i = f_i(x_i W_i + b_i)` (`B x sizes[i+1]`); for the output
    /// layer the pre-softmax `z`.
    pub(crate) h: Vec<Vec<f32>>,
    /// Per hidden layer `i`: `h_i` after dropout (input of layer `i + 1`).
    pub(crate) hd: Vec<Vec<f32>>,
    /// Per layer `i`: `delta_i = d loss_n / d a_i` (not divided by B).
    pub(crate) delta: Vec<Vec<f32>>,
    /// Per dropout layer (0 = inputs, i = output of hidden layer i).
    pub(crate) masks: Vec<Mask>,
    /// Keep probability applied per dropout layer in the last pass (`None`: no dropout).
    pub(crate) keeps: Vec<Option<Keep>>,
    /// Per-example data cost of the last pass.
    pub(crate) loss: Vec<f32>,
    /// Per-example prediction (argmax of the outputs) of the last pass.
    pub(crate) pred: Vec<u32>,
    /// Zeros, one per output (bias argument of the fused softmax kernel: `z` already has it).
    pub(crate) zeros: Vec<f32>,
    /// Rows of the last pass.
    pub(crate) rows: usize,
}

impl Workspace {
    /// Buffers for batches of up to `max_batch` rows (at least 1) of `arch`.
    pub fn new(arch: &Architecture, max_batch: usize) -> Workspace {
        let l = arch.sizes.len() - 1;
        let mut ws = Workspace {
            sizes: arch.sizes.clone(),
            cap: 0,
            inp: Vec::new(),
            h: vec![Vec::new(); l],
            hd: vec![Vec::new(); l.saturating_sub(1)],
            delta: vec![Vec::new(); l],
            masks: vec![Mask::new(); l],
            keeps: vec![None; l],
            loss: Vec::new(),
            pred: Vec::new(),
            zeros: vec![0.0; arch.n_outputs()],
            rows: 0,
        };
        ws.grow(max_batch.max(1));
        ws
    }

    /// Largest batch the buffers currently hold without growing.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Layer sizes this workspace was built for.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    fn grow(&mut self, rows: usize) {
        let s = &self.sizes;
        self.inp.resize(rows * s[0], 0.0);
        for (i, b) in self.h.iter_mut().enumerate() {
            b.resize(rows * s[i + 1], 0.0);
        }
        for (i, b) in self.hd.iter_mut().enumerate() {
            b.resize(rows * s[i + 1], 0.0);
        }
        for (i, b) in self.delta.iter_mut().enumerate() {
            b.resize(rows * s[i + 1], 0.0);
        }
        self.loss.resize(rows, 0.0);
        self.pred.resize(rows, 0);
        self.cap = rows;
    }

    /// Checks that a batch of `rows` fits the layer sizes (and the 2^32-element limit
    /// of dropout masks), growing the buffers if needed.
    pub(crate) fn prepare(&mut self, sizes: &[usize], rows: usize) -> Result<()> {
        if sizes != self.sizes.as_slice() {
            return Err(ModelError::WorkspaceMismatch {
                expected: sizes.to_vec(),
                found: self.sizes.clone(),
            });
        }
        if rows == 0 {
            return Err(ModelError::EmptyBatch);
        }
        let width = self.sizes.iter().copied().max().unwrap_or(1);
        if rows
            .checked_mul(width)
            .is_none_or(|n| n as u64 >= u32::MAX as u64)
        {
            return Err(ModelError::BatchTooLarge { rows, width });
        }
        if rows > self.cap {
            self.grow(rows);
        }
        Ok(())
    }

    /// The dropout mask applied to dropout layer `layer` (0 = inputs, i = output of
    /// hidden layer i) in the last pass, with its keep probability; `None` if that
    /// layer had no dropout (keep 1, evaluation, or out of range). Element
    /// `r * width + j` is unit `j` of example `r`.
    pub fn mask(&self, layer: usize) -> Option<(&Mask, f32)> {
        match self.keeps.get(layer) {
            Some(Some(k)) => Some((&self.masks[layer], k.get())),
            _ => None,
        }
    }

    /// The input of weight layer `i` in the last pass, after dropout (`rows x sizes[i]`
    /// values): for `i > 0` the output of layer `i - 1` (after its dropout, if any);
    /// for `i = 0` the batch after input dropout, or `None` without input dropout (the
    /// input is then the batch itself, which the workspace does not copy). `None` also
    /// for `i` out of range.
    pub fn layer_input(&self, i: usize) -> Option<&[f32]> {
        if i + 1 >= self.sizes.len() {
            return None;
        }
        let len = self.rows * self.sizes[i];
        let dropped = matches!(self.keeps.get(i), Some(Some(_)));
        match (i, dropped) {
            (0, true) => Some(&self.inp[..len]),
            (0, false) => None,
            (_, true) => Some(&self.hd.get(i - 1)?[..len]),
            (_, false) => Some(&self.h.get(i - 1)?[..len]),
        }
    }

    /// Per-example data cost of the last pass (`rows` values, example order).
    pub fn losses(&self) -> &[f32] {
        &self.loss[..self.rows]
    }

    /// Per-example predicted class (argmax of the output, first on ties) of the last pass.
    pub fn predictions(&self) -> &[u32] {
        &self.pred[..self.rows]
    }

    /// Output-layer values `z = h W + b` of the last pass (`rows x outputs`, before the
    /// softmax for a softmax output).
    pub fn outputs(&self) -> &[f32] {
        let n = self.sizes[self.sizes.len() - 1];
        &self.h[self.h.len() - 1][..self.rows * n]
    }
}
