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
use safetensors::tensor::Dtype;
use safetensors::{SafeTensorError, SafeTensors};
use std::collections::{BTreeMap, HashMap};
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

fn le_bytes(x: impl Iterator<Item = f32>) -> Vec<u8> {
    x.flat_map(|v| v.to_le_bytes()).collect()
}

/// The network as safetensors bytes (see the module docs for the layout).
///
/// The header is written here rather than by `safetensors::serialize`, whose metadata
/// is a `HashMap` serialised in random order: the same network must give the same
/// bytes on every run (files are compared bit for bit by `regulab verify`). Keys are
/// in sorted order, tensors stored in that order, the header padded with spaces to a
/// multiple of 8 bytes as the format requires; the result is read back by the
/// `safetensors` crate in [`from_bytes`].
pub fn to_bytes(net: &Mlp) -> Result<Vec<u8>> {
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (i, l) in net.layers().iter().enumerate() {
        let (n_in, n_out) = (l.n_in(), l.n_out());
        let w = l.weight();
        // [out, in]: element (j, r) = W[r, j]
        let wt = le_bytes((0..n_out).flat_map(|j| (0..n_in).map(move |r| w[r * n_out + j])));
        tensors.insert(weight_name(i), (vec![n_out, n_in], wt));
        tensors.insert(
            bias_name(i),
            (vec![n_out], le_bytes(l.bias().iter().copied())),
        );
    }
    let mut header = serde_json::Map::new();
    let meta: BTreeMap<&str, String> = BTreeMap::from([
        ("architecture", net.architecture().to_json()),
        ("format", "pt".to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
    ]);
    header.insert("__metadata__".into(), serde_json::json!(meta));
    let mut offset = 0usize;
    for (name, (shape, bytes)) in &tensors {
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": "F32",
                "shape": shape,
                "data_offsets": [offset, offset + bytes.len()],
            }),
        );
        offset += bytes.len();
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| ModelError::Corrupt(format!("serialising the header: {e}")))?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, bytes) in tensors.values() {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// Write the network to `path` (written to a temporary file beside it, then renamed,
/// so a crash never leaves a half-written model).
pub fn save(net: &Mlp, path: &Path) -> Result<()> {
    let bytes = to_bytes(net)?;
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
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

/// Checks the header's declared sizes against the buffer length, so a short file is
/// reported as truncated (rather than as the parser's generic error).
fn check_length(bytes: &[u8]) -> Result<()> {
    let n = bytes.len() as u64;
    if n < 8 {
        return Err(ModelError::Truncated {
            detail: format!("{n} bytes, less than the 8-byte header length"),
        });
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    if header_len > 100_000_000 {
        return Err(ModelError::Corrupt(format!(
            "header length {header_len} is implausible (over 100 MB)"
        )));
    }
    if 8 + header_len > n {
        return Err(ModelError::Truncated {
            detail: format!(
                "header of {header_len} bytes declared, only {} bytes follow",
                n - 8
            ),
        });
    }
    let header = &bytes[8..8 + header_len as usize];
    // Largest end offset of the tensors; if the header is unreadable, the parser below
    // reports the corruption.
    let Ok(entries) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(header) else {
        return Ok(());
    };
    let end = entries
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let have = n - 8 - header_len;
    if end > have {
        return Err(ModelError::Truncated {
            detail: format!("tensor data needs {end} bytes, only {have} present"),
        });
    }
    Ok(())
}

fn corrupt(e: SafeTensorError) -> ModelError {
    ModelError::Corrupt(e.to_string())
}

/// Parse a network from safetensors bytes (see the module docs).
pub fn from_bytes(bytes: &[u8]) -> Result<Mlp> {
    check_length(bytes)?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
    let st = SafeTensors::deserialize(bytes).map_err(corrupt)?;
    let meta = metadata
        .metadata()
        .as_ref()
        .ok_or(ModelError::MissingMetadata("format_version"))?;
    let version = meta
        .get("format_version")
        .ok_or(ModelError::MissingMetadata("format_version"))?;
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion {
            found: version.clone(),
            expected: FORMAT_VERSION,
        });
    }
    let arch_json = meta
        .get("architecture")
        .ok_or(ModelError::MissingMetadata("architecture"))?;
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
        let wt = read_f32(&st, &weight_name(i), &[n_out, n_in])?;
        // back to [in, out]: W[r, j] = stored[j, r]
        let mut w = vec![0.0f32; n_in * n_out];
        for (j, row) in wt.chunks_exact(n_in).enumerate() {
            for (r, &v) in row.iter().enumerate() {
                w[r * n_out + j] = v;
            }
        }
        let b = read_f32(&st, &bias_name(i), &[n_out])?;
        params.push((w, b));
        expected_names.push(weight_name(i));
        expected_names.push(bias_name(i));
    }
    let mut extra: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !expected_names.iter().any(|e| e == n))
        .collect();
    extra.sort_unstable();
    if let Some(name) = extra.first() {
        return Err(ModelError::UnexpectedTensor {
            name: name.to_string(),
        });
    }
    Mlp::from_params(arch, params)
}

fn read_f32(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st.tensor(name).map_err(|_| ModelError::MissingTensor {
        name: name.to_string(),
        expected: shape.to_vec(),
    })?;
    if t.dtype() != Dtype::F32 {
        return Err(ModelError::DtypeMismatch {
            name: name.to_string(),
            found: t.dtype().to_string(),
        });
    }
    if t.shape() != shape {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: shape.to_vec(),
            found: t.shape().to_vec(),
        });
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
