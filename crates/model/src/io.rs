//! Save and load a network as a safetensors file.
//!
//! # Format (version 1)
//!
//! * Tensors, all `F32` little-endian, for every weight layer `i = 0 .. L-1`:
//!   * `layers.{i}.weight`, shape `[out, in]`: the transpose of the in-memory `W_i`
//!     (`[in, out]`), i.e. laid out as PyTorch's `nn.Linear.weight`;
//!   * `layers.{i}.bias`, shape `[out]`.
//! * Metadata (`__metadata__`, strings):
//!   * `format` = `"pt"` (the convention of PyTorch-oriented safetensors tools);
//!   * `format_version` = `"1"`;
//!   * `architecture` = the [`Architecture`] as JSON, e.g.
//!     `{"sizes":[784,800,10],"hidden":["sigmoid"],"output":"softmax"}`.
//!
//! Predictions from the file elsewhere: with `h_0 = x` (a row vector of inputs),
//! `h_{i+1} = f_i(h_i @ W_i.T + b_i)` in numpy (`W_i` as stored), i.e.
//! `nn.Linear(in, out)` layers with `load_state_dict` in PyTorch; the outputs are the
//! logits of the softmax (or the linear outputs). `f` is `1/(1+exp(-a))` (sigmoid),
//! `tanh`, `max(a, 0)` or the identity, as named in `architecture`.
//!
//! Loading checks everything and never panics: a file shorter than its header says is
//! [`ModelError::Truncated`], an unreadable header or bad offsets [`ModelError::Corrupt`],
//! and tensors that do not match the architecture in the metadata get their own
//! variants naming the tensor, the expected and the found shape/dtype.

use crate::arch::Architecture;
use crate::error::{ModelError, Result};
use crate::network::Mlp;
use crate::tensorfile::{FormatError, ReadFile, TensorFile};
use std::path::Path;

/// Format version written and read.
pub const FORMAT_VERSION: &str = "1";

/// Name of layer `i`'s weight tensor.
pub fn weight_name(i: usize) -> String {
    format!("layers.{i}.weight")
}

/// Name of layer `i`'s bias tensor.
pub fn bias_name(i: usize) -> String {
    format!("layers.{i}.bias")
}

/// The network as safetensors bytes (see the module docs for the layout), written by
/// the one deterministic writer, [`crate::tensorfile`]: the same network gives the same
/// bytes on every run (files are compared bit for bit by `regulab verify`).
pub fn to_bytes(net: &Mlp) -> Result<Vec<u8>> {
    let mut file = TensorFile::new();
    file.metadata("architecture", net.architecture().to_json())
        .metadata("format", "pt")
        .metadata("format_version", FORMAT_VERSION);
    for (i, l) in net.layers().iter().enumerate() {
        // [out, in]: element (j, r) = W[r, j]
        file.transposed(weight_name(i), l.n_in(), l.n_out(), l.weight())
            .tensor(bias_name(i), vec![l.n_out()], l.bias());
    }
    Ok(file.to_bytes())
}

/// Write the network to `path` atomically ([`crate::atomic`]: a crash never leaves a
/// half-written model).
pub fn save(net: &Mlp, path: &Path) -> Result<()> {
    let bytes = to_bytes(net)?;
    crate::atomic::write(path, &bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a network from `path`.
pub fn load(path: &Path) -> Result<Mlp> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes)
}

/// Read a network from `path` and check it has architecture `expected`
/// ([`ModelError::ArchitectureMismatch`] otherwise).
pub fn load_expecting(path: &Path, expected: &Architecture) -> Result<Mlp> {
    let net = load(path)?;
    if net.architecture() != expected {
        return Err(ModelError::ArchitectureMismatch {
            expected: expected.to_json(),
            found: net.architecture().to_json(),
        });
    }
    Ok(net)
}

/// Parse a network from safetensors bytes (see the module docs).
pub fn from_bytes(bytes: &[u8]) -> Result<Mlp> {
    let file = ReadFile::parse(bytes).map_err(|e| match e {
        FormatError::Truncated(detail) => ModelError::Truncated { detail },
        FormatError::Corrupt(detail) => ModelError::Corrupt(detail),
    })?;
    let meta = |key: &'static str| file.metadata(key).ok_or(ModelError::MissingMetadata(key));
    let version = meta("format_version")?;
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion {
            found: version.to_string(),
            expected: FORMAT_VERSION,
        });
    }
    let arch_json = meta("architecture")?;
    let arch: Architecture =
        serde_json::from_str(arch_json).map_err(|e| ModelError::BadMetadata {
            key: "architecture",
            reason: e.to_string(),
        })?;
    arch.validate().map_err(|e| ModelError::BadMetadata {
        key: "architecture",
        reason: e.to_string(),
    })?;

    let l = arch.n_layers();
    let mut expected_names: Vec<String> = Vec::with_capacity(2 * l);
    let mut params = Vec::with_capacity(l);
    for i in 0..l {
        let (n_in, n_out) = arch.layer_shape(i);
        let wt = read_f32(&file, &weight_name(i), &[n_out, n_in])?;
        // back to [in, out]: W[r, j] = stored[j, r]
        let mut w = vec![0.0f32; n_in * n_out];
        for (j, row) in wt.chunks_exact(n_in).enumerate() {
            for (r, &v) in row.iter().enumerate() {
                w[r * n_out + j] = v;
            }
        }
        let b = read_f32(&file, &bias_name(i), &[n_out])?;
        params.push((w, b));
        expected_names.push(weight_name(i));
        expected_names.push(bias_name(i));
    }
    let extra = file
        .names()
        .into_iter()
        .find(|n| !expected_names.iter().any(|e| e == n));
    if let Some(name) = extra {
        return Err(ModelError::UnexpectedTensor {
            name: name.to_string(),
        });
    }
    Mlp::from_params(arch, params)
}

fn read_f32(file: &ReadFile<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = file.tensor(name).ok_or_else(|| ModelError::MissingTensor {
        name: name.to_string(),
        expected: shape.to_vec(),
    })?;
    let Some(values) = t.values else {
        return Err(ModelError::DtypeMismatch {
            name: name.to_string(),
            found: t.dtype,
        });
    };
    if t.shape != shape {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: shape.to_vec(),
            found: t.shape,
        });
    }
    Ok(values)
}
