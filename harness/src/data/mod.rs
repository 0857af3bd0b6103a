//! Datasets: reading and checking IDX files, finding and downloading MNIST and
//! Fashion-MNIST, splits, seeded training pools and minibatch gathering.
//!
//! * [`idx`]: the IDX file format (gzip or raw), strictly validated, hashed while read.
//! * [`checksums`]: the known datasets, their file names, SHA-256 table and mirrors.
//! * [`images`]: [`LabeledImages`], pixels kept as `u8`, scaled into `f32` per batch.
//! * [`dataset`]: [`Dataset`] (train file + test file + file identities), [`load_pair`].
//! * [`load`](mod@load): the data a config names, found and loaded once per plan ([`DataSets`]).
//! * [`split`]: train/validation split, the `train_examples` pool, per-epoch shuffles.
//! * [`locate`](mod@locate): where a dataset is looked for, and what to tell the user when it is not.
//! * [`fetch`](mod@fetch): verified, atomic downloads from mirrors.
//!
//! The library never prints: warnings are returned ([`DataWarning`]), errors are typed
//! ([`DataError`], [`FetchError`]) and name the file, what was found and what was expected.

pub mod checksums;
pub mod dataset;
pub mod error;
pub mod fetch;
pub mod idx;
pub mod images;
pub mod load;
pub mod locate;
pub mod split;

pub use checksums::{DatasetName, FileSpec, STANDARD_FILES};
pub use dataset::{Dataset, FileRecord, LoadedPair, load_pair};
pub use error::{DataError, DataWarning, Searched};
pub use fetch::{
    FailureKind, FetchError, FetchPlan, FetchReport, FetchStatus, FetchedFile, MirrorFailure, fetch,
};
pub use images::{LabeledImages, PIXEL_SCALE};
pub use load::DataSets;
pub use locate::{default_fetch_dir, locate};
pub use split::{DEFAULT_VALID_SIZE, SplitSpec, Splits};
