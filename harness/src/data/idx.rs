//! Reading IDX files (LeCun's MNIST format), gzip-compressed or raw.
//!
//! Layout (all integers big-endian): a magic `0x0000_08dd` (`08` = unsigned bytes,
//! `dd` = number of dimensions), then `dd` u32 dimensions, then the `prod(dims)` data
//! bytes, nothing after. Images are IDX3 (`0x0000_0803`, `n x rows x cols`), labels IDX1
//! (`0x0000_0801`, `n`). A file is gzip when it starts with `1f 8b`, whatever its name.
//!
//! Files are streamed once: decompressed, hashed (SHA-256 of the raw bytes, the file's
//! identity) and checked (magic, dimensions, exact length) without ever trusting the
//! header for an allocation, so no input can make the reader panic or exhaust memory:
//!
//! * the data's declared size is computed with checked arithmetic and refused above
//!   16 GiB or above the memory available ([`crate::limits::available_memory`]);
//! * memory grows with the bytes actually read, never ahead of them by more than a
//!   1 MiB chunk (a tiny file declaring gigabytes costs nothing);
//! * nothing is read past the declared size but a [`PROBE`] of a few KiB that finds
//!   trailing bytes;
//! * gzip data expanding more than [`MAX_GZIP_RATIO`]-fold (past the first
//!   [`RATIO_FREE`] bytes) is refused as a gzip bomb: deflate reaches about 1000-fold on
//!   constant data, real IDX files compress 2- to 5-fold;
//! * [`Opened`] reads a file's header alone, so a pair's counts are compared (in
//!   [`load_pair`](super::load_pair)) before either file's data is read.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::error::DataError;

/// Magic number of an IDX3 file of unsigned bytes (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX1 file of unsigned bytes (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest raw data size accepted (16 GiB): a bigger header is rejected as corrupt.
const MAX_DATA_BYTES: u64 = 1 << 34;
/// Bytes read (and memory grown) at a time.
const CHUNK: usize = 1 << 20;
/// Bytes read past the declared end to find trailing bytes.
pub const PROBE: usize = 4096;
/// Most raw bytes per compressed byte of a gzip file (past [`RATIO_FREE`]).
pub const MAX_GZIP_RATIO: u64 = 100;
/// Raw bytes a gzip file may give before its compression ratio is checked.
pub const RATIO_FREE: u64 = 16 << 20;

/// The identity of a file: length and SHA-256 of its raw (decompressed) bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDigest {
    /// Number of raw bytes.
    pub raw_len: u64,
    /// Lower-case hex SHA-256 of the raw bytes.
    pub sha256: String,
    /// Whether the file on disk is gzip-compressed.
    pub gzip: bool,
}

/// The contents of an IDX3 images file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// An IDX file whose header has been read and checked (magic, dimensions, declared size
/// within bounds), its data not yet.
pub struct Opened {
    src: Source,
    dims: Vec<u32>,
    data_len: u64,
}

impl Opened {
    /// Opens an IDX3 images file and reads its header.
    pub fn images(path: &Path) -> Result<Opened, DataError> {
        let opened = Opened::open(path, IMAGES_MAGIC, "IDX3 u8 images")?;
        if opened.dims[1] == 0 || opened.dims[2] == 0 {
            return Err(DataError::BadDimensions {
                path: path.to_path_buf(),
                dims: opened.dims,
                reason: "images have no pixels",
            });
        }
        Ok(opened)
    }

    /// Opens an IDX1 labels file and reads its header.
    pub fn labels(path: &Path) -> Result<Opened, DataError> {
        Opened::open(path, LABELS_MAGIC, "IDX1 u8 labels")
    }

    fn open(path: &Path, magic: u32, what: &'static str) -> Result<Opened, DataError> {
        let mut src = Source::open(path)?;
        let dims = src.header(magic, what)?;
        let data_len = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .filter(|&n| n <= MAX_DATA_BYTES && usize::try_from(n).is_ok())
            .ok_or_else(|| DataError::BadDimensions {
                path: path.to_path_buf(),
                dims: dims.clone(),
                reason: "data would exceed 16 GiB",
            })?;
        if let Some(available) = crate::limits::available_memory()
            && data_len > available.bytes
        {
            return Err(DataError::TooLarge {
                path: path.to_path_buf(),
                declared: data_len,
                header: len_header(&dims),
                available: available.to_string(),
            });
        }
        Ok(Opened {
            src,
            dims,
            data_len,
        })
    }

    /// The number of examples the header declares (its first dimension).
    pub fn count(&self) -> u64 {
        u64::from(self.dims[0])
    }

    /// The dimensions of the header.
    pub fn dims(&self) -> &[u32] {
        &self.dims
    }

    /// The raw length of the file the header describes (header and data).
    pub fn raw_len(&self) -> u64 {
        4 + 4 * self.dims.len() as u64 + self.data_len
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.src.path
    }

    /// Reads the images (after [`Opened::images`]) and checks nothing follows them.
    pub fn read_images(mut self) -> Result<(IdxImages, RawDigest), DataError> {
        let pixels = self.src.data(&self.dims, self.data_len)?;
        let path = self.src.path.clone();
        let digest = self.src.finish(&self.dims)?;
        let too_big = || DataError::BadDimensions {
            path: path.clone(),
            dims: self.dims.clone(),
            reason: "dimensions do not fit this machine's integers",
        };
        let dim = |i: usize| usize::try_from(self.dims[i]).map_err(|_| too_big());
        Ok((
            IdxImages {
                count: dim(0)?,
                rows: dim(1)?,
                cols: dim(2)?,
                pixels,
            },
            digest,
        ))
    }

    /// Reads the labels (after [`Opened::labels`]) and checks nothing follows them; with
    /// `num_classes`, every label must be below it.
    pub fn read_labels(
        mut self,
        num_classes: Option<u32>,
    ) -> Result<(Vec<u8>, RawDigest), DataError> {
        let labels = self.src.data(&self.dims, self.data_len)?;
        let path = self.src.path.clone();
        let digest = self.src.finish(&self.dims)?;
        if let Some(k) = num_classes
            && let Some((index, &label)) =
                labels.iter().enumerate().find(|&(_, &l)| u32::from(l) >= k)
        {
            return Err(DataError::LabelOutOfRange {
                path,
                label,
                index,
                max: k.saturating_sub(1),
            });
        }
        Ok((labels, digest))
    }
}

/// Reads and checks an IDX3 images file; returns the images and the raw digest.
pub fn read_images(path: &Path) -> Result<(IdxImages, RawDigest), DataError> {
    Opened::images(path)?.read_images()
}

/// Reads and checks an IDX1 labels file; with `num_classes`, every label must be below it.
pub fn read_labels(
    path: &Path,
    num_classes: Option<u32>,
) -> Result<(Vec<u8>, RawDigest), DataError> {
    Opened::labels(path)?.read_labels(num_classes)
}

/// The raw digest of any file (decompressed when gzip), without parsing it; at most
/// 16 GiB of raw bytes are read.
pub fn raw_digest(path: &Path) -> Result<RawDigest, DataError> {
    raw_digest_within(path, MAX_DATA_BYTES + 64)
}

/// [`raw_digest`] of a file expected to hold at most `max_raw` raw bytes (e.g. a known
/// file's length): reading stops after `max_raw + 1` bytes, with an error.
pub fn raw_digest_within(path: &Path, max_raw: u64) -> Result<RawDigest, DataError> {
    let mut src = Source::open(path)?;
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(max_raw).unwrap_or(CHUNK) + 1)];
    loop {
        let n = src.read_some(&mut buf)?;
        if n == 0 {
            break;
        }
        if src.reader.count > max_raw {
            return Err(DataError::LongerThanExpected {
                path: src.path,
                expected: max_raw,
            });
        }
    }
    Ok(src.digest())
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that counts the bytes read from the file (the compressed bytes of a gzip
/// file) into a shared cell.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// An open IDX file being streamed.
struct Source {
    path: PathBuf,
    gzip: bool,
    /// Length on disk, to bound allocations for raw files.
    disk_len: Option<u64>,
    /// Bytes read from the file so far (compressed, for gzip).
    disk_read: Rc<Cell<u64>>,
    reader: Hashing<Box<dyn Read>>,
}

impl Source {
    fn open(path: &Path) -> Result<Source, DataError> {
        let io_err = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let disk_len = file.metadata().ok().map(|m| m.len());
        let disk_read = Rc::new(Cell::new(0));
        let counted = Counting {
            inner: file,
            count: Rc::clone(&disk_read),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, counted);
        let head = buffered.fill_buf().map_err(io_err)?;
        let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        let inner: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Source {
            path: path.to_path_buf(),
            gzip,
            disk_len,
            disk_read,
            reader: Hashing {
                inner,
                hasher: Sha256::new(),
                count: 0,
            },
        })
    }

    /// Maps an error of the read chain: inside gzip it means corrupt compressed data.
    fn read_error(&self, e: io::Error) -> DataError {
        if self.gzip {
            DataError::CorruptGzip {
                path: self.path.clone(),
                reason: e.to_string(),
            }
        } else {
            DataError::Io {
                path: self.path.clone(),
                source: e,
            }
        }
    }

    /// One read of up to `buf.len()` bytes (0 at the end of the stream), then the
    /// gzip ratio check.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => {
                    self.check_ratio()?;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
    }

    /// Refuses a gzip stream that has expanded more than [`MAX_GZIP_RATIO`]-fold past
    /// its first [`RATIO_FREE`] raw bytes.
    fn check_ratio(&self) -> Result<(), DataError> {
        let (raw, compressed) = (self.reader.count, self.disk_read.get().max(1));
        if self.gzip && raw > RATIO_FREE && raw / compressed > MAX_GZIP_RATIO {
            return Err(DataError::GzipBomb {
                path: self.path.clone(),
                raw,
                compressed,
                ratio: MAX_GZIP_RATIO,
            });
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes, stopping only at the end of the stream.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_some(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    }

    /// Reads the magic and dimensions.
    fn header(&mut self, magic: u32, what: &'static str) -> Result<Vec<u32>, DataError> {
        let mut word = [0u8; 4];
        let got = self.read_full(&mut word)?;
        if got < 4 && word[..got] == magic.to_be_bytes()[..got] {
            // A prefix of the right magic (or nothing): cut short, not of the wrong kind.
            return Err(self.short_header(got as u64, magic));
        }
        let found = u32::from_be_bytes(word);
        if found != magic {
            return Err(DataError::BadMagic {
                path: self.path.clone(),
                found,
                expected: magic,
                what,
            });
        }
        let ndims = (magic & 0xff) as usize;
        let mut raw = vec![0u8; 4 * ndims];
        let got = self.read_full(&mut raw)?;
        if got < raw.len() {
            return Err(self.short_header(4 + got as u64, magic));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn short_header(&self, found: u64, magic: u32) -> DataError {
        DataError::Truncated {
            path: self.path.clone(),
            found,
            expected: header_len(magic),
            header: "incomplete header".to_string(),
        }
    }

    /// Reads exactly the `len` data bytes (`len` = prod(dims), already bounded), growing
    /// the buffer only as bytes arrive.
    fn data(&mut self, dims: &[u32], len: u64) -> Result<Vec<u8>, DataError> {
        let len = usize::try_from(len).map_err(|_| DataError::BadDimensions {
            path: self.path.clone(),
            dims: dims.to_vec(),
            reason: "data would exceed the address space",
        })?;
        let first = if self.gzip {
            CHUNK
        } else {
            // a raw file holds at most its length on disk
            usize::try_from(self.disk_len.unwrap_or(0)).unwrap_or(usize::MAX)
        };
        let mut data: Vec<u8> = Vec::with_capacity(len.min(first).min(CHUNK.max(first)));
        while data.len() < len {
            let want = (len - data.len()).min(CHUNK);
            if data.capacity() - data.len() < want {
                // double, but never beyond the declared length
                let grow = data.capacity().max(want).min(len - data.len());
                data.reserve_exact(grow);
            }
            let at = data.len();
            data.resize(at + want, 0);
            let n = self.read_full(&mut data[at..])?;
            data.truncate(at + n);
            if n < want {
                return Err(DataError::Truncated {
                    path: self.path.clone(),
                    found: self.reader.count,
                    expected: 4 + 4 * dims.len() as u64 + len as u64,
                    header: len_header(dims),
                });
            }
        }
        Ok(data)
    }

    /// Checks nothing follows the data (reading at most [`PROBE`] more bytes) and
    /// returns the digest.
    fn finish(mut self, dims: &[u32]) -> Result<RawDigest, DataError> {
        let expected = self.reader.count;
        let mut probe = [0u8; PROBE];
        let extra = self.read_full(&mut probe)?;
        if extra > 0 {
            return Err(DataError::TrailingBytes {
                path: self.path,
                extra: extra as u64,
                expected,
                header: len_header(dims),
                at_least: extra == PROBE,
            });
        }
        Ok(self.digest())
    }

    fn digest(self) -> RawDigest {
        RawDigest {
            raw_len: self.reader.count,
            sha256: hex::encode(self.reader.hasher.finalize()),
            gzip: self.gzip,
        }
    }
}

fn header_len(magic: u32) -> u64 {
    4 + 4 * u64::from(magic & 0xff)
}

fn len_header(dims: &[u32]) -> String {
    let dims: Vec<String> = dims.iter().map(u32::to_string).collect();
    format!("header: {}", dims.join(" x "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_and_gzip_give_same_labels_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let raw = labels_file(&[3, 1, 4, 1, 5]);
        let a = write(dir.path(), "l", &raw);
        let b = write(dir.path(), "l.gz", &gzip(&raw));
        let (la, da) = read_labels(&a, Some(10)).unwrap();
        let (lb, db) = read_labels(&b, Some(10)).unwrap();
        assert_eq!(la, vec![3, 1, 4, 1, 5]);
        assert_eq!(la, lb);
        assert!(!da.gzip && db.gzip);
        assert_eq!(da.sha256, db.sha256);
        assert_eq!(da.raw_len, raw.len() as u64);
        assert_eq!(da.sha256, hex::encode(Sha256::digest(&raw)));
        assert_eq!(raw_digest(&b).unwrap(), db);
    }

    #[test]
    fn short_files_are_truncated_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let full = labels_file(&[1, 2, 3]);
        for cut in 0..full.len() {
            let p = write(dir.path(), "cut", &full[..cut]);
            match read_labels(&p, Some(10)) {
                Err(DataError::Truncated {
                    found, expected, ..
                }) => {
                    assert_eq!(found, cut as u64);
                    assert!(expected > found);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_header_is_rejected_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        let p = write(dir.path(), "big", &v);
        assert!(matches!(
            read_images(&p),
            Err(DataError::BadDimensions { .. })
        ));
        // large but allowed header, tiny file: truncated
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [1_000_000u32, 28, 28] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        let p = write(dir.path(), "big2", &gzip(&v));
        assert!(matches!(read_images(&p), Err(DataError::Truncated { .. })));
    }
}
