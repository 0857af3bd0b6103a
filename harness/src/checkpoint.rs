//! Checkpoints: the state a run needs to continue after its last completed epoch, in
//! one file, `<run>/checkpoint.safetensors`, written atomically after every epoch.
//!
//! A resumed run must give the same bits as one that never stopped, so the checkpoint
//! holds everything training reads that is not derived from the config:
//!
//! * the parameters `W_i`, `b_i` after epoch `e` (tensors `params.{i}.weight`, shape
//!   `[in, out]`, the in-memory row-major layout, and `params.{i}.bias`, `[out]`);
//! * with momentum, the velocities `V_W`, `V_b` (`velocity.{i}.weight`, `velocity.{i}.bias`);
//! * the trainer's step counter (the `step` key of the dropout masks) and epoch;
//! * the learning-rate schedule's state, as JSON, for a cross-check: on resume the
//!   schedule is rebuilt by replaying `observe(epoch, valid_error)` over the rows of
//!   `epochs.csv` (whose floats round-trip exactly), and its JSON must equal this one.
//!
//! No random generator state is stored because there is none to store: shuffles are
//! keyed by (seed, epoch) and dropout masks by (seed, layer, step).
//!
//! The file is a valid safetensors file (F32 little-endian tensors; `__metadata__`
//! holds `format = "regulab-checkpoint"`, `format_version`, `state` (JSON of
//! [`CheckpointState`]) and `sha256`), written and read by the workspace's one
//! safetensors writer and reader ([`regulab_model::tensorfile`]): tensors and metadata
//! keys in sorted order, so the same state gives the same bytes.
//!
//! `sha256` covers the whole file, metadata included (a flipped bit of `step` would
//! resume with other dropout masks): it is the SHA-256 of the file's bytes with the
//! 64 hex digits of its own value replaced by `0`s, checked on load. (Version 1 files
//! hashed the tensor bytes only; they are refused: restart such a run.)

use std::path::{Path, PathBuf};

use regulab_model::tensorfile::{Encoded, ReadFile, TensorFile};
use regulab_model::{Mlp, Trainer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// `(W_i, b_i)` (or velocities) per layer.
pub type Layers = Vec<(Vec<f32>, Vec<f32>)>;

/// A tensor read back: shape and values.
type Tensor = (Vec<usize>, Vec<f32>);

/// File name of a run's checkpoint.
pub const FILE_NAME: &str = "checkpoint.safetensors";

/// Value of the `format` metadata key.
pub const FORMAT: &str = "regulab-checkpoint";

/// Version of the layout written and read (2: the SHA-256 covers the whole file).
pub const FORMAT_VERSION: &str = "2";

/// The metadata key of the file's SHA-256.
const HASH_KEY: &str = "sha256";

/// A checkpoint that cannot be read or does not fit the run.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a readable checkpoint.
    #[error("{path}: not a valid regulab checkpoint: {reason}")]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint does not match the network being resumed.
    #[error("{path}: checkpoint does not fit the run: {reason}")]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

/// The scalar state of a checkpoint (the `state` metadata entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// The last completed epoch (`epochs.csv` holds rows `0..=epoch`).
    pub epoch: u32,
    /// The trainer's global step counter after that epoch.
    pub step: u64,
    /// The trainer's epoch after that epoch (the one its dropout was evaluated for).
    pub trainer_epoch: u32,
    /// SHA-256 of the run's resolved config as JSON: a checkpoint resumes only the
    /// config it was made with.
    pub config_sha256: String,
    /// The learning-rate schedule after observing `epoch`, as JSON.
    pub schedule: String,
}

/// A run's state after a completed epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Scalars.
    pub state: CheckpointState,
    /// `(W_i [in, out] row-major, b_i)` per layer.
    pub params: Layers,
    /// `(V_W, V_b)` per layer, with momentum only.
    pub velocity: Option<Layers>,
}

/// SHA-256 (hex) of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Checkpoint {
    /// The checkpoint of `trainer` after `epoch`, with the schedule's JSON and the
    /// config's hash.
    pub fn capture(
        trainer: &Trainer,
        epoch: u32,
        config_sha256: String,
        schedule: String,
    ) -> Checkpoint {
        let net = trainer.net();
        let params = net
            .layers()
            .iter()
            .map(|l| (l.weight().to_vec(), l.bias().to_vec()))
            .collect();
        let velocity = (0..net.n_layers())
            .map(|i| trainer.velocity(i).map(|(w, b)| (w.to_vec(), b.to_vec())))
            .collect::<Option<Vec<_>>>();
        Checkpoint {
            state: state_of(trainer, epoch, config_sha256, schedule),
            params,
            velocity,
        }
    }

    /// Write the checkpoint of `trainer` after `epoch` atomically to `path`: the bytes
    /// of `capture(..).write(path)`, streamed from the trainer's own buffers (no copy
    /// of the weights is made).
    pub fn write_trainer(
        trainer: &Trainer,
        epoch: u32,
        config_sha256: String,
        schedule: String,
        path: &Path,
    ) -> Result<(), CheckpointError> {
        let net = trainer.net();
        let params: Vec<LayerRef<'_>> = net
            .layers()
            .iter()
            .map(|l| (l.weight(), l.bias()))
            .collect();
        let velocity = (0..net.n_layers())
            .map(|i| trainer.velocity(i))
            .collect::<Option<Vec<_>>>();
        let state = state_of(trainer, epoch, config_sha256, schedule);
        write_encoded(&encode(&state, &params, velocity.as_deref()), path)
    }

    /// Copy the parameters and velocities into `trainer` and restore its step and
    /// epoch. `Err` when the shapes or the presence of momentum differ.
    pub fn restore_into(&self, trainer: &mut Trainer, path: &Path) -> Result<(), CheckpointError> {
        let mismatch = |reason: String| CheckpointError::Mismatch {
            path: path.to_path_buf(),
            reason,
        };
        check_shapes(trainer.net(), &self.params, "parameters").map_err(mismatch)?;
        for (layer, (w, b)) in trainer.net_mut().layers_mut().iter_mut().zip(&self.params) {
            layer.weight_mut().copy_from_slice(w);
            layer.bias_mut().copy_from_slice(b);
        }
        let has_velocity = trainer.velocity(0).is_some();
        match (&self.velocity, has_velocity) {
            (None, false) => {}
            (Some(v), true) => {
                check_shapes(trainer.net(), v, "velocities").map_err(mismatch)?;
                for (i, (vw, vb)) in v.iter().enumerate() {
                    let (w, b) = trainer
                        .velocity_mut(i)
                        .ok_or_else(|| mismatch(format!("no velocity for layer {i}")))?;
                    w.copy_from_slice(vw);
                    b.copy_from_slice(vb);
                }
            }
            (Some(_), false) => {
                return Err(mismatch(
                    "it holds velocities but the run has no momentum".into(),
                ));
            }
            (None, true) => {
                return Err(mismatch(
                    "the run uses momentum but the checkpoint holds no velocities".into(),
                ));
            }
        }
        trainer
            .restore_state(regulab_model::TrainerState {
                step: self.state.step,
                epoch: self.state.trainer_epoch,
            })
            .map_err(|e| mismatch(e.to_string()))
    }

    /// The checkpoint as safetensors bytes (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (params, velocity) = (refs(&self.params), self.velocity.as_deref().map(refs));
        encode(&self.state, &params, velocity.as_deref()).to_bytes()
    }

    /// Parse checkpoint bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file = ReadFile::parse(bytes).map_err(|e| corrupt(e.to_string()))?;
        let meta_str = |key: &str| {
            file.metadata(key)
                .ok_or_else(|| corrupt(format!("metadata `{key}` missing")))
        };
        if meta_str("format")? != FORMAT {
            return Err(corrupt(format!("metadata `format` is not \"{FORMAT}\"")));
        }
        let version = meta_str("format_version")?;
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format_version {version}, this regulab reads {FORMAT_VERSION} (a version 1 \
                 checkpoint's SHA-256 does not cover its metadata: delete it to restart the run)"
            )));
        }
        let recorded = meta_str(HASH_KEY)?;
        if file_sha256(bytes, file.header_len(), recorded).as_deref() != Some(recorded) {
            return Err(corrupt(
                "the file does not match its SHA-256 (damaged or edited)".into(),
            ));
        }
        let state: CheckpointState = serde_json::from_str(meta_str("state")?)
            .map_err(|e| corrupt(format!("metadata `state`: {e}")))?;
        let tensor = |name: &str| -> Result<Option<Tensor>, CheckpointError> {
            let Some(t) = file.tensor(name) else {
                return Ok(None);
            };
            let values = t.values.ok_or_else(|| {
                corrupt(format!("tensor `{name}`: dtype {}, expected F32", t.dtype))
            })?;
            Ok(Some((t.shape, values)))
        };
        let read_layers = |prefix: &str| -> Result<Layers, CheckpointError> {
            let mut layers = Vec::new();
            loop {
                let i = layers.len();
                let (Some((ws, w)), Some((bs, b))) = (
                    tensor(&format!("{prefix}.{i}.weight"))?,
                    tensor(&format!("{prefix}.{i}.bias"))?,
                ) else {
                    return Ok(layers);
                };
                if ws.len() != 2 || bs.len() != 1 || ws[1] != bs[0] {
                    return Err(corrupt(format!(
                        "`{prefix}.{i}`: weight shape {ws:?} does not fit bias shape {bs:?}"
                    )));
                }
                layers.push((w, b));
            }
        };
        let params = read_layers("params")?;
        if params.is_empty() {
            return Err(corrupt("no parameters".into()));
        }
        let velocity = read_layers("velocity")?;
        Ok(Checkpoint {
            state,
            params,
            velocity: (!velocity.is_empty()).then_some(velocity),
        })
    }

    /// Write atomically to `path`.
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let (params, velocity) = (refs(&self.params), self.velocity.as_deref().map(refs));
        write_encoded(&encode(&self.state, &params, velocity.as_deref()), path)
    }

    /// Read from `path`.
    pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }
}

/// `(W_i, b_i)` of one layer, borrowed.
type LayerRef<'a> = (&'a [f32], &'a [f32]);

fn refs(layers: &[(Vec<f32>, Vec<f32>)]) -> Vec<LayerRef<'_>> {
    layers.iter().map(|(w, b)| (&w[..], &b[..])).collect()
}

/// The scalar state of `trainer` after `epoch`.
fn state_of(
    trainer: &Trainer,
    epoch: u32,
    config_sha256: String,
    schedule: String,
) -> CheckpointState {
    let st = trainer.state();
    CheckpointState {
        epoch,
        step: st.step,
        trainer_epoch: st.epoch,
        config_sha256,
        schedule,
    }
}

/// The checkpoint file of `state`, `params` and `velocity` (see the module docs), its
/// `sha256` metadata filled in: the SHA-256 of the whole file with the placeholder in
/// its place. The tensor bytes are hashed and later written straight from the slices.
fn encode<'a>(
    state: &CheckpointState,
    params: &[LayerRef<'a>],
    velocity: Option<&[LayerRef<'a>]>,
) -> Encoded<'a> {
    let mut file = TensorFile::new();
    for (prefix, layers) in [("params", Some(params)), ("velocity", velocity)] {
        for (i, &(w, b)) in layers.into_iter().flatten().enumerate() {
            let n_out = b.len();
            let n_in = w.len().checked_div(n_out).unwrap_or(0);
            file.tensor(format!("{prefix}.{i}.weight"), vec![n_in, n_out], w)
                .tensor(format!("{prefix}.{i}.bias"), vec![n_out], b);
        }
    }
    file.metadata("format", FORMAT)
        .metadata("format_version", FORMAT_VERSION)
        .metadata(HASH_KEY, HASH_PLACEHOLDER)
        .metadata(
            "state",
            serde_json::to_string(state).expect("state serialises"),
        );
    let mut encoded = file.encode();
    let mut hasher = HashWriter(Sha256::new());
    encoded
        .write_to(&mut hasher)
        .expect("hashing does not fail");
    let digest = hex::encode(hasher.0.finalize());
    let at = hash_position(encoded.header(), HASH_PLACEHOLDER)
        .expect("the placeholder is in the header");
    encoded.header_mut()[at..at + 64].copy_from_slice(digest.as_bytes());
    encoded
}

/// Write `encoded` atomically to `path`, streamed.
fn write_encoded(encoded: &Encoded<'_>, path: &Path) -> Result<(), CheckpointError> {
    crate::atomic::write_with(path, |w| encoded.write_to(w)).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A [`std::io::Write`] that hashes what is written.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of the file's hash while it is computed: 64 zeros.
const HASH_PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the 64 hex digits `value` of the metadata entry `"sha256":"<value>"` start in
/// `header`, when it occurs exactly once (as regulab writes it: the key cannot occur
/// inside the other values, which are JSON strings whose quotes are escaped).
fn hash_position(header: &[u8], value: &str) -> Option<usize> {
    let needle = format!("\"{HASH_KEY}\":\"{value}\"");
    let needle = needle.as_bytes();
    let mut found = header
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i + needle.len() - 65);
    match (found.next(), found.next()) {
        (Some(at), None) => Some(at),
        _ => None,
    }
}

/// The SHA-256 (hex) of checkpoint file `bytes` (header of `header_len` bytes) with the
/// recorded hash `recorded` replaced by the placeholder: equal to `recorded` for an
/// intact file. `None` when `recorded` is not 64 hex digits found once in the header.
fn file_sha256(bytes: &[u8], header_len: usize, recorded: &str) -> Option<String> {
    if recorded.len() != 64 || !recorded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let header = &bytes[8..8 + header_len];
    let at = hash_position(header, recorded)?;
    let mut hasher = Sha256::new();
    hasher.update(&bytes[..8]);
    hasher.update(&header[..at]);
    hasher.update(HASH_PLACEHOLDER);
    hasher.update(&header[at + 64..]);
    hasher.update(&bytes[8 + header_len..]);
    Some(hex::encode(hasher.finalize()))
}

fn check_shapes(net: &Mlp, layers: &[(Vec<f32>, Vec<f32>)], what: &str) -> Result<(), String> {
    if layers.len() != net.n_layers() {
        return Err(format!(
            "{} layers of {what}, the network has {}",
            layers.len(),
            net.n_layers()
        ));
    }
    for (i, ((w, b), l)) in layers.iter().zip(net.layers()).enumerate() {
        if w.len() != l.weight().len() || b.len() != l.bias().len() {
            return Err(format!(
                "layer {i} {what}: {}x{} values, the network has {}x{}",
                w.len(),
                b.len(),
                l.weight().len(),
                l.bias().len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regulab_model::{Activation, FixedKeep, MlpBuilder, Output, TrainConfig};

    fn trainer(momentum: f32) -> Trainer {
        let net = MlpBuilder::new(6)
            .hidden(5, Activation::Sigmoid)
            .output(3, Output::Softmax)
            .seed(3)
            .build()
            .unwrap();
        let cfg = TrainConfig {
            momentum,
            seed: 3,
            ..TrainConfig::default()
        };
        Trainer::new(net, cfg, 4)
            .unwrap()
            .with_dropout(FixedKeep::new(0.8, 0.5))
            .unwrap()
    }

    fn train_some(t: &mut Trainer, steps: usize) {
        let x: Vec<f32> = (0..24).map(|i| (i % 7) as f32 / 7.0).collect();
        let y = [0u32, 1, 2, 1];
        for _ in 0..steps {
            t.train_batch(&x, &y, 0.3).unwrap();
        }
    }

    #[test]
    fn round_trips_bytes_and_restores_training() {
        let p = Path::new("ck.safetensors");
        let mut a = trainer(0.9);
        train_some(&mut a, 5);
        a.set_epoch(2).unwrap();
        let ck = Checkpoint::capture(&a, 2, "abc".into(), "{\"kind\":\"fixed\"}".into());
        assert_eq!(ck.state.step, 5);
        assert!(ck.velocity.is_some());
        let bytes = ck.to_bytes();
        assert_eq!(bytes, ck.to_bytes(), "deterministic bytes");
        let back = Checkpoint::from_bytes(&bytes, p).unwrap();
        assert_eq!(back, ck);
        // a fresh trainer restored from the checkpoint continues bit for bit
        let mut b = trainer(0.9);
        back.restore_into(&mut b, p).unwrap();
        assert_eq!(b.state(), a.state());
        train_some(&mut a, 3);
        train_some(&mut b, 3);
        for (la, lb) in a.net().layers().iter().zip(b.net().layers()) {
            assert_eq!(la.weight(), lb.weight());
            assert_eq!(la.bias(), lb.bias());
        }
        assert_eq!(a.velocity(1), b.velocity(1));
    }

    #[test]
    fn streamed_files_are_the_captured_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for momentum in [0.0, 0.9] {
            let mut t = trainer(momentum);
            train_some(&mut t, 3);
            let ck = Checkpoint::capture(&t, 4, "abc".into(), "{}".into());
            let bytes = ck.to_bytes();
            let (a, b) = (dir.path().join("a"), dir.path().join("b"));
            Checkpoint::write_trainer(&t, 4, "abc".into(), "{}".into(), &a).unwrap();
            ck.write(&b).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), bytes, "momentum {momentum}");
            assert_eq!(std::fs::read(&b).unwrap(), bytes, "momentum {momentum}");
            // a valid safetensors file: 8-byte length, padded header, tensors
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!(n % 8, 0);
            let tensors: usize = t
                .net()
                .layers()
                .iter()
                .map(|l| 4 * (l.weight().len() + l.bias().len()))
                .sum();
            let copies = if momentum > 0.0 { 2 } else { 1 };
            assert_eq!(bytes.len(), 8 + n + copies * tensors);
        }
    }

    /// The bytes of a checkpoint are those regulab wrote before its writer became the
    /// shared [`regulab_model::tensorfile`] (SHA-256 recorded then): checkpoints left by
    /// an older regulab resume, and verify's byte comparisons stay meaningful.
    #[test]
    fn bytes_are_those_of_the_hand_written_format() {
        let net = regulab_model::MlpBuilder::new(6)
            .hidden(5, Activation::Sigmoid)
            .hidden(4, Activation::Relu)
            .output(3, Output::Softmax)
            .seed(3)
            .build()
            .unwrap();
        for (momentum, expected) in [
            (
                0.0,
                "9e2b63937a6525a51404d12c046e3fbad2c2fb245e8f5c878248f070bad2afe9",
            ),
            (
                0.9,
                "f015a78966cc411ac27d0bd9e7c03be6ae482940afcd1ac2dd83bf24318a7f8b",
            ),
        ] {
            let cfg = TrainConfig {
                momentum,
                seed: 3,
                ..TrainConfig::default()
            };
            let mut t = Trainer::new(net.clone(), cfg, 4)
                .unwrap()
                .with_dropout(FixedKeep::new(0.8, 0.5))
                .unwrap();
            train_some(&mut t, 3);
            let ck = Checkpoint::capture(&t, 2, "abc".into(), "{\"kind\":\"fixed\"}".into());
            assert_eq!(sha256_hex(&ck.to_bytes()), expected, "momentum {momentum}");
        }
    }

    #[test]
    fn damaged_or_mismatched_checkpoints_are_errors() {
        let p = Path::new("ck.safetensors");
        let mut a = trainer(0.0);
        train_some(&mut a, 2);
        let ck = Checkpoint::capture(&a, 1, "abc".into(), "{}".into());
        assert!(ck.velocity.is_none());
        let bytes = ck.to_bytes();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = Checkpoint::from_bytes(&flipped, p).unwrap_err().to_string();
        assert!(e.contains("SHA-256") && e.contains("ck.safetensors"), "{e}");
        // the metadata is covered too: one bit of `step` (2 -> 3), of the epoch, of the
        // hash itself, or a space of the header's padding
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for (what, needle, offset) in [
            ("step", "\\\"step\\\":2", 9),
            ("epoch", "\\\"epoch\\\":1", 10),
            ("hash", "\"sha256\":\"", 10),
        ] {
            let at = text
                .find(needle)
                .unwrap_or_else(|| panic!("{what}: {text}"))
                + offset;
            let mut edited = bytes.clone();
            edited[at] ^= 0x01;
            let e = Checkpoint::from_bytes(&edited, p).unwrap_err().to_string();
            assert!(e.contains("SHA-256"), "{what}: {e}");
        }
        let e = Checkpoint::from_bytes(&bytes[..bytes.len() / 2], p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid regulab checkpoint"), "{e}");
        assert!(Checkpoint::from_bytes(&bytes[..5], p).is_err());
        // momentum present in the run but not in the checkpoint
        let mut m = trainer(0.5);
        let e = ck.restore_into(&mut m, p).unwrap_err().to_string();
        assert!(e.contains("momentum"), "{e}");
    }
}
