//! The resource limits every rule run is held to.

use std::time::Duration;

/// Resource limits for rule runs. Every value is set explicitly on the engine, so debug and
/// release builds enforce the same numbers (Rhai's own defaults differ between the two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of Rhai operations one run may perform; stops endless loops.
    pub max_operations: u64,
    /// Maximum depth of nested function calls; stops runaway recursion before the native
    /// stack overflows.
    pub max_call_levels: usize,
    /// Maximum nesting depth of expressions and statements at the top level of a script.
    pub max_expr_depth: usize,
    /// Maximum nesting depth of expressions and statements inside a function body.
    pub max_function_expr_depth: usize,
    /// Maximum length of a string, in bytes. It must exceed the longest record text, because
    /// a rule fails as soon as it builds a string longer than this.
    pub max_string_size: usize,
    /// Maximum number of items in an array, counting the items of nested arrays.
    ///
    /// NOTE: this and the run time are the only bounds on how deep a script nests arrays
    /// or maps, and Rhai's size checks and drops recurse once per level. In a debug build,
    /// 10,000 nested arrays overflowed a 2 MiB stack, but building 5,000 took about 1 s,
    /// far beyond the default run time.
    pub max_array_size: usize,
    /// Maximum number of properties in an object map, counting those of nested maps.
    pub max_map_size: usize,
    /// Maximum number of variables alive at once in a run.
    pub max_variables: usize,
    /// Maximum number of functions a script may define.
    pub max_functions: usize,
    /// Maximum number of effects one run may propose.
    pub max_effects: usize,
    /// Wall-clock time one run may take.
    pub max_run_time: Duration,
}

impl Limits {
    /// Default maximum call depth. In a debug build of this workspace (opt-level 1 for
    /// dependencies), plain recursion overflowed a 256 KiB stack between 48 and 56 levels.
    /// Recursion that nests blocks and collections in every level needed up to 512 KiB for
    /// 32 levels. Tokio workers have 2 MiB stacks, so 32 leaves a wide margin, and
    /// `tests/sandbox.rs` checks both shapes. Rules rarely nest calls more than a few levels.
    pub const DEFAULT_MAX_CALL_LEVELS: usize = 32;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 200_000,
            max_call_levels: Limits::DEFAULT_MAX_CALL_LEVELS,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            // Email bodies become record descriptions, so strings may be long.
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_variables: 1_000,
            max_functions: 100,
            max_effects: 100,
            max_run_time: Duration::from_millis(100),
        }
    }
}
