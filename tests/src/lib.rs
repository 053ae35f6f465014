//! Integration tests of Tend; they live in `tests/tests/integration/` and run with
//! `cargo test -p tend-tests` (or `cargo test --workspace`), against SQLite and PostgreSQL.
//!
//! This library only locates the hand-written fixtures under `tests/fixtures/`.

use std::path::PathBuf;

/// Returns the path of the fixture file `name` under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).join(name)
}
