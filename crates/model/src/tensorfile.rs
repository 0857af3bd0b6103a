//! Safetensors files: one deterministic writer and one checked reader, shared by the
//! model files ([`crate::io`]) and the harness's training checkpoints.
//!
//! Why a writer of our own: `safetensors::serialize` keeps the metadata in a `HashMap`
//! and writes it in random order, and runs are compared bit for bit (`regulab verify`
//! compares model files byte by byte; a checkpoint's SHA-256 covers its own bytes), so
//! the same tensors must always give the same bytes. The layout written:
//!
//! ```text
//! u64 LE   n = length of the header
//! n bytes  JSON header: {"__metadata__":{k:v,...},"<name>":{"data_offsets":[a,b],
//!          "dtype":"F32","shape":[..]},...}, keys in sorted (byte) order, no spaces,
//!          padded with spaces to a multiple of 8 bytes (as the format requires)
//! data     each tensor's f32 values, little-endian, in the order of the header's names
//! ```
//!
//! The tensor bytes are streamed from borrowed slices ([`Encoded::write_to`]), a block
//! at a time: a checkpoint of the lab's network is written without a copy of its weights.
//!
//! Reading goes through the `safetensors` crate (header, offsets, dtypes) after a length
//! check of our own, so that a short file is reported as truncated rather than with the
//! parser's generic message.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write;

use safetensors::SafeTensors;
use serde::Serialize;

/// The values of one tensor to write.
#[derive(Clone, Copy, Debug)]
enum Values<'a> {
    /// Stored as they are.
    Plain(&'a [f32]),
    /// A row-major `rows x cols` matrix stored transposed (`cols x rows`).
    Transposed {
        data: &'a [f32],
        rows: usize,
        cols: usize,
    },
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Plain(v) => v.len(),
            Values::Transposed { data, .. } => data.len(),
        }
    }

    /// Call `f` on the little-endian bytes of the values in storage order, a block at a
    /// time (no copy of the whole tensor).
    fn for_le_bytes(&self, f: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        match *self {
            Values::Plain(v) => le_blocks(v.iter().copied(), f),
            Values::Transposed { data, rows, cols } => le_blocks(
                // element (j, r) of the stored [cols, rows] tensor is data[r, j]
                (0..cols).flat_map(|j| (0..rows).map(move |r| data[r * cols + j])),
                f,
            ),
        }
    }
}

/// Call `f` on the little-endian bytes of `values`, [`BLOCK`] values at a time.
fn le_blocks(
    values: impl Iterator<Item = f32>,
    f: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    const BLOCK: usize = 2048;
    let mut buf = [0u8; 4 * BLOCK];
    let mut n = 0;
    for v in values {
        buf[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
        n += 1;
        if n == BLOCK {
            f(&buf)?;
            n = 0;
        }
    }
    if n > 0 {
        f(&buf[..4 * n])?;
    }
    Ok(())
}

/// One tensor's header entry. Field order is the sorted key order of the format.
#[derive(Serialize)]
struct TensorInfo {
    data_offsets: [usize; 2],
    dtype: &'static str,
    shape: Vec<usize>,
}

/// A header entry: the metadata (key `__metadata__`) or a tensor.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'m> {
    Metadata(&'m BTreeMap<String, String>),
    Tensor(TensorInfo),
}

/// The metadata's key in the header.
const METADATA_KEY: &str = "__metadata__";

/// A safetensors file to write: named F32 tensors (borrowed) and string metadata.
#[derive(Clone, Debug, Default)]
pub struct TensorFile<'a> {
    tensors: BTreeMap<String, (Vec<usize>, Values<'a>)>,
    metadata: BTreeMap<String, String>,
}

impl<'a> TensorFile<'a> {
    /// An empty file.
    pub fn new() -> TensorFile<'a> {
        TensorFile::default()
    }

    /// Set metadata entry `key` (a string, as the format requires).
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Add tensor `name` of `shape` with `values` stored as they are (row-major).
    ///
    /// Panics when `shape` does not hold `values.len()` elements (a programming error).
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &'a [f32],
    ) -> &mut Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "tensor shape {shape:?} does not hold {} values",
            values.len()
        );
        self.tensors
            .insert(name.into(), (shape, Values::Plain(values)));
        self
    }

    /// Add tensor `name` holding the transpose of the row-major `rows x cols` matrix
    /// `values`: shape `[cols, rows]`.
    ///
    /// Panics when `rows * cols != values.len()` (a programming error).
    pub fn transposed(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        values: &'a [f32],
    ) -> &mut Self {
        assert_eq!(rows * cols, values.len(), "a {rows}x{cols} matrix");
        self.tensors.insert(
            name.into(),
            (
                vec![cols, rows],
                Values::Transposed {
                    data: values,
                    rows,
                    cols,
                },
            ),
        );
        self
    }

    /// The header, laid out; the tensors stay borrowed.
    pub fn encode(&self) -> Encoded<'a> {
        let mut entries: BTreeMap<&str, Entry<'_>> = BTreeMap::new();
        if !self.metadata.is_empty() {
            entries.insert(METADATA_KEY, Entry::Metadata(&self.metadata));
        }
        let mut offset = 0usize;
        let mut values = Vec::with_capacity(self.tensors.len());
        for (name, (shape, v)) in &self.tensors {
            let len = 4 * v.len();
            entries.insert(
                name,
                Entry::Tensor(TensorInfo {
                    data_offsets: [offset, offset + len],
                    dtype: "F32",
                    shape: shape.clone(),
                }),
            );
            offset += len;
            values.push(*v);
        }
        let mut header = serde_json::to_vec(&entries).expect("a header of strings and numbers");
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        Encoded {
            header,
            values,
            data_len: offset,
        }
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_bytes()
    }
}

/// A [`TensorFile`] with its header laid out: what is written.
#[derive(Clone, Debug)]
pub struct Encoded<'a> {
    header: Vec<u8>,
    values: Vec<Values<'a>>,
    data_len: usize,
}

impl Encoded<'_> {
    /// The JSON header (padded).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The JSON header, to patch in place (e.g. a checksum of placeholder length); its
    /// length cannot change.
    pub fn header_mut(&mut self) -> &mut [u8] {
        &mut self.header
    }

    /// Length of the file in bytes.
    pub fn len(&self) -> usize {
        8 + self.header.len() + self.data_len
    }

    /// Never empty: a file has at least its length prefix.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Write the file: length, header, tensor bytes (streamed).
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(&(self.header.len() as u64).to_le_bytes())?;
        w.write_all(&self.header)?;
        for v in &self.values {
            v.for_le_bytes(&mut |bytes| w.write_all(bytes))?;
        }
        Ok(())
    }

    /// The file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(&mut out)
            .expect("writing into a Vec does not fail");
        out
    }
}

/// Why bytes are not a readable safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Shorter than its header says.
    Truncated(String),
    /// Unreadable header, bad offsets or dtypes.
    Corrupt(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Truncated(d) => write!(f, "truncated: {d}"),
            FormatError::Corrupt(d) => write!(f, "{d}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Headers longer than this are refused as corrupt before being parsed.
const MAX_HEADER: u64 = 100_000_000;

/// Checks the declared sizes against the buffer's length; returns the header length.
fn check_length(bytes: &[u8]) -> Result<usize, FormatError> {
    let n = bytes.len() as u64;
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(FormatError::Truncated(format!(
            "{n} bytes, less than the 8-byte header length"
        )));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER {
        return Err(FormatError::Corrupt(format!(
            "header length {header_len} is implausible (over 100 MB)"
        )));
    }
    if 8 + header_len > n {
        return Err(FormatError::Truncated(format!(
            "header of {header_len} bytes declared, only {} bytes follow",
            n - 8
        )));
    }
    let header = &bytes[8..8 + header_len as usize];
    // The largest end offset of the tensors; an unreadable header is the parser's to
    // report.
    if let Ok(entries) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(header) {
        let end = entries
            .iter()
            .filter(|(k, _)| k.as_str() != METADATA_KEY)
            .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
            .max()
            .unwrap_or(0);
        let have = n - 8 - header_len;
        if end > have {
            return Err(FormatError::Truncated(format!(
                "tensor data needs {end} bytes, only {have} present"
            )));
        }
    }
    Ok(header_len as usize)
}

/// A safetensors file read from bytes, checked.
pub struct ReadFile<'b> {
    header_len: usize,
    metadata: HashMap<String, String>,
    tensors: SafeTensors<'b>,
}

/// One tensor of a [`ReadFile`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReadTensor {
    /// Its dtype as the format names it (`F32`, `F64`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values when the dtype is `F32` (`None` otherwise).
    pub values: Option<Vec<f32>>,
}

impl<'b> ReadFile<'b> {
    /// Parse `bytes`: lengths, header, offsets.
    pub fn parse(bytes: &'b [u8]) -> Result<ReadFile<'b>, FormatError> {
        let header_len = check_length(bytes)?;
        let corrupt = |e: safetensors::SafeTensorError| FormatError::Corrupt(e.to_string());
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(corrupt)?;
        Ok(ReadFile {
            header_len,
            metadata: meta.metadata().clone().unwrap_or_default(),
            tensors,
        })
    }

    /// Length of the JSON header (the file's first 8 bytes).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Metadata entry `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.names();
        names.sort_unstable();
        names
    }

    /// Tensor `name`, if the file has it.
    pub fn tensor(&self, name: &str) -> Option<ReadTensor> {
        let t = self.tensors.tensor(name).ok()?;
        let values = (t.dtype() == safetensors::Dtype::F32).then(|| {
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        });
        Some(ReadTensor {
            dtype: t.dtype().to_string(),
            shape: t.shape().to_vec(),
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_sorted_padded_and_read_back() {
        let (a, b) = ([1.0f32, -0.0, 3.5], [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut f = TensorFile::new();
        f.metadata("z", "last")
            .metadata("a", "first")
            .tensor("x.bias", vec![3], &a)
            .transposed("x.weight", 2, 3, &b);
        let bytes = f.to_bytes();
        assert_eq!(bytes, f.to_bytes());
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end();
        assert_eq!(
            header,
            r#"{"__metadata__":{"a":"first","z":"last"},"x.bias":{"data_offsets":[0,12],"dtype":"F32","shape":[3]},"x.weight":{"data_offsets":[12,36],"dtype":"F32","shape":[3,2]}}"#
        );
        let r = ReadFile::parse(&bytes).unwrap();
        assert_eq!(r.header_len(), n);
        assert_eq!(r.metadata("a"), Some("first"));
        assert_eq!(r.names(), ["x.bias", "x.weight"]);
        let bias = r.tensor("x.bias").unwrap().values.unwrap();
        assert_eq!(bias[1].to_bits(), (-0.0f32).to_bits());
        // the transpose: stored [3, 2], element (j, r) = b[r * 3 + j]
        let w = r.tensor("x.weight").unwrap();
        assert_eq!(w.shape, [3, 2]);
        assert_eq!(w.values.unwrap(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert!(r.tensor("nope").is_none());
    }

    #[test]
    fn streamed_blocks_cover_large_tensors() {
        let v: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        let mut f = TensorFile::new();
        f.transposed("t", 50, 100, &v);
        let e = f.encode();
        let bytes = e.to_bytes();
        assert_eq!(bytes.len(), e.len());
        let back = ReadFile::parse(&bytes).unwrap().tensor("t").unwrap();
        let back = back.values.unwrap();
        assert_eq!(back[1], v[100]);
        assert_eq!(back[50], v[1]);
    }

    #[test]
    fn short_or_garbled_bytes_are_errors() {
        let v = [1.0f32; 4];
        let mut f = TensorFile::new();
        f.metadata("k", "v").tensor("t", vec![4], &v);
        let bytes = f.to_bytes();
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            assert!(
                matches!(
                    ReadFile::parse(&bytes[..cut]),
                    Err(FormatError::Truncated(_))
                ),
                "{cut}"
            );
        }
        let mut bad = bytes.clone();
        bad[8] = b'[';
        assert!(matches!(
            ReadFile::parse(&bad),
            Err(FormatError::Corrupt(_))
        ));
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            ReadFile::parse(&huge),
            Err(FormatError::Corrupt(_))
        ));
    }
}
