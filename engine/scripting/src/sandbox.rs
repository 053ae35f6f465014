//! Construction of the one Rhai engine that runs every rule.

use rhai::module_resolvers::ModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, Module, Position, Shared};

use crate::{Limits, api, context};

/// The token `on_progress` stops a run with when its deadline has passed.
pub(crate) const TIME_LIMIT_TOKEN: &str = "tend: time limit";

/// How many operations pass between two looks at the clock. Reading the clock on every
/// operation would cost more than the operations themselves.
const OPERATIONS_PER_CLOCK_CHECK: u64 = 256;

/// Builds the engine with every limit and sandbox setting in one place.
pub(crate) fn build_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();

    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_variables(limits.max_variables);
    engine.set_max_functions(limits.max_functions);
    engine.set_max_modules(0);

    engine.on_progress(|operations| {
        let check_now = operations % OPERATIONS_PER_CLOCK_CHECK == 0;
        (check_now && context::deadline_passed()).then(|| Dynamic::from(TIME_LIMIT_TOKEN))
    });

    // Rules read only their input: no modules (the default resolver reads files) and no
    // `eval`, which would run code that `check` never compiled. Disabling the keywords
    // makes both compile errors; the refusing resolver backs that up should a later Rhai
    // version reach the resolver some other way.
    engine.set_module_resolver(NoImports);
    engine.disable_symbol("import");
    engine.disable_symbol("eval");

    // An undefined variable is a compile error, so `check` catches typos such as `recrod`.
    engine.set_strict_variables(true);

    engine.on_print(|text| {
        tracing::info!(rule = %context::current_rule(), "rule print: {text}");
    });
    engine.on_debug(|text, _source, position| {
        tracing::debug!(rule = %context::current_rule(), %position, "rule debug: {text}");
    });

    api::register(&mut engine);
    engine
}

/// A module resolver that rejects every `import`.
struct NoImports;

impl ModuleResolver for NoImports {
    fn resolve(
        &self,
        _engine: &Engine,
        _source: Option<&str>,
        path: &str,
        position: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        Err(EvalAltResult::ErrorModuleNotFound(path.to_owned(), position).into())
    }
}
