//! The content-addressed stage cache.
//!
//! Each stage output lives in `cache/v1/<stage>/<key>/` beside the
//! `manifest.json` it was built from, and counts as present only once its
//! completion marker `complete.json` exists. Entries are built in
//! `cache/v1/tmp/<stage>-<key>/` under a per-key file lock, then renamed
//! into place; unfinished folders are swept at the next start. Fine-tuning
//! keeps its resume state in `cache/v1/work/<stage>-<key>/`, which the sweep
//! keeps so that a killed run resumes.
//!
//! What goes into a key (the SHA-256 of the typed manifest):
//!
//! | field | why |
//! |---|---|
//! | stage name | two stages never share an entry |
//! | stage format version | bumped when a stage's output changes for the same inputs |
//! | premem crate version | a release may change any stage |
//! | libtorch binding version | numerics may change between libtorch releases |
//! | resolved parameters, typed (ints and floats distinct, `-0.0` = `0.0`) | the output depends on them; typed so `1e-5` and `0.00001` agree |
//! | SHA-256 of input files (data, model) | content, not names, decides reuse |
//! | keys of upstream entries | a changed upstream output changes every stage after it |
//!
//! What stays out, and why:
//!
//! | left out | why |
//! |---|---|
//! | modification times | copies, checkouts and containers change them without changing content |
//! | absolute paths | moving the project or the data root must not rerun anything |
//! | git revision | every commit would rerun everything; it goes into the report's provenance instead |
//! | report-only options in upstream keys | only the stages that read an option carry it |

mod digest;
mod manifest;
mod store;
mod value;

use std::path::PathBuf;

pub use digest::{file_sha256, DigestMemo};
pub use manifest::{Difference, DifferenceKind, Manifest, LIBTORCH_BINDING};
pub use store::{dir_size, BuildOutcome, Cache, EntryInfo, EntryRecord, MANIFEST, MARKER};
pub use value::Value;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache: cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
