//! The Rhai rule host. A rule is a script at `rules/<process>/<name>.rhai` under a
//! definitions directory; it reads the record and returns effects, and never writes.
//!
//! - [`host`]: [`RuleHost`], the [`tend_workflow::RuleRunner`] implementation, with the
//!   compiled-script cache.
//! - `sandbox`: the one function that builds the engine, with every limit set explicitly,
//!   no imports, no `eval`, and `print`/`debug` sent to `tracing`.
//! - [`limits`]: [`Limits`], the resource limits of a run.
//! - `api`: the variables and host functions rules see (`record`, `set_field`, ...).
//! - `convert`: JSON field values to Rhai values and back.
//! - `context`: per-thread state of the running rule (effects, deadline).
//! - `errors`: messages for failed runs.
//! - [`tests_file`] and [`report`]: the test cases beside each rule and their report.

mod api;
mod context;
mod convert;
mod errors;
mod fields;
pub mod host;
pub mod limits;
pub mod report;
mod sandbox;
pub mod tests_file;

pub use host::RuleHost;
pub use limits::Limits;
pub use report::{CaseResult, RuleTestReport};
pub use tests_file::run_rule_tests;
