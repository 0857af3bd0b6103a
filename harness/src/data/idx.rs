//! Reading IDX files (LeCun's MNIST format), gzip-compressed or raw.
//!
//! Layout (all integers big-endian): a magic `0x0000_08dd` (`08` = unsigned bytes,
//! `dd` = number of dimensions), then `dd` u32 dimensions, then the `prod(dims)` data
//! bytes, nothing after. Images are IDX3 (`0x0000_0803`, `n x rows x cols`), labels IDX1
//! (`0x0000_0801`, `n`). A file is gzip when it starts with `1f 8b`, whatever its name.
//!
//! Files are streamed once: decompressed, hashed (SHA-256 of the raw bytes, the file's
//! identity) and checked (magic, dimensions, exact length) without ever trusting the
//! header for an allocation, so no input can make the reader panic or exhaust memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::error::DataError;

/// Magic number of an IDX3 file of unsigned bytes (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX1 file of unsigned bytes (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest raw data size accepted (16 GiB): a bigger header is rejected as corrupt.
const MAX_DATA_BYTES: u64 = 1 << 34;
/// Largest up-front allocation for data whose final size is not known (gzip).
const MAX_PREALLOC: u64 = 64 << 20;

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

/// Reads and checks an IDX3 images file; returns the images and the raw digest.
pub fn read_images(path: &Path) -> Result<(IdxImages, RawDigest), DataError> {
    let mut src = Source::open(path)?;
    let dims = src.header(IMAGES_MAGIC, "IDX3 u8 images")?;
    let (count, rows, cols) = (dims[0] as usize, dims[1] as usize, dims[2] as usize);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            dims,
            reason: "images have no pixels",
        });
    }
    let pixels = src.data(&dims)?;
    let digest = src.finish(&dims)?;
    Ok((
        IdxImages {
            count,
            rows,
            cols,
            pixels,
        },
        digest,
    ))
}

/// Reads and checks an IDX1 labels file; with `num_classes`, every label must be below it.
pub fn read_labels(
    path: &Path,
    num_classes: Option<u32>,
) -> Result<(Vec<u8>, RawDigest), DataError> {
    let mut src = Source::open(path)?;
    let dims = src.header(LABELS_MAGIC, "IDX1 u8 labels")?;
    let labels = src.data(&dims)?;
    let digest = src.finish(&dims)?;
    if let Some(k) = num_classes
        && let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| u32::from(l) >= k)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            label,
            index,
            max: k.saturating_sub(1),
        });
    }
    Ok((labels, digest))
}

/// The raw digest of any file (decompressed when gzip), without parsing it.
pub fn raw_digest(path: &Path) -> Result<RawDigest, DataError> {
    let mut src = Source::open(path)?;
    let raw_len = io::copy(&mut src.reader, &mut io::sink()).map_err(|e| src.read_error(e))?;
    debug_assert_eq!(raw_len, src.reader.count);
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

/// An open IDX file being streamed.
struct Source {
    path: PathBuf,
    gzip: bool,
    /// Length on disk, to bound allocations for raw files.
    disk_len: Option<u64>,
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
        let mut buffered = BufReader::with_capacity(1 << 16, file);
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

    /// Reads up to `buf.len()` bytes, stopping only at the end of the stream.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
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

    /// Reads exactly the `prod(dims)` data bytes.
    fn data(&mut self, dims: &[u32]) -> Result<Vec<u8>, DataError> {
        let len = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .filter(|&n| n <= MAX_DATA_BYTES && usize::try_from(n).is_ok())
            .ok_or_else(|| DataError::BadDimensions {
                path: self.path.clone(),
                dims: dims.to_vec(),
                reason: "data would exceed 16 GiB",
            })?;
        let bound = if self.gzip {
            MAX_PREALLOC
        } else {
            self.disk_len.unwrap_or(0)
        };
        let mut data = Vec::with_capacity(len.min(bound) as usize);
        (&mut self.reader)
            .take(len)
            .read_to_end(&mut data)
            .map_err(|e| self.read_error(e))?;
        if (data.len() as u64) < len {
            let header = len_header(dims);
            return Err(DataError::Truncated {
                path: self.path.clone(),
                found: self.reader.count,
                expected: 4 + 4 * dims.len() as u64 + len,
                header,
            });
        }
        Ok(data)
    }

    /// Checks nothing follows the data and returns the digest.
    fn finish(mut self, dims: &[u32]) -> Result<RawDigest, DataError> {
        let expected = self.reader.count;
        let extra = io::copy(&mut self.reader, &mut io::sink()).map_err(|e| self.read_error(e))?;
        if extra > 0 {
            return Err(DataError::TrailingBytes {
                path: self.path,
                extra,
                expected,
                header: len_header(dims),
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

    #[test]
    fn random_bytes_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 12345u64;
        for len in 0..200usize {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| regulab_kernels::rng::splitmix64(&mut state) as u8)
                .collect();
            // give some of them a valid magic so the deeper paths are exercised
            if len >= 8 && len % 2 == 0 {
                bytes[..4].copy_from_slice(&LABELS_MAGIC.to_be_bytes());
            }
            let p = write(dir.path(), "rnd", &bytes);
            let _ = read_labels(&p, Some(10));
            let _ = read_images(&p);
            let gz = write(dir.path(), "rnd.gz", &gzip(&bytes));
            let _ = read_labels(&gz, Some(10));
            let mut broken = gzip(&bytes);
            let mid = broken.len() / 2;
            broken[mid] ^= 0x5a;
            let p = write(dir.path(), "broken.gz", &broken);
            let _ = read_images(&p);
            let _ = raw_digest(&p);
        }
    }
}
