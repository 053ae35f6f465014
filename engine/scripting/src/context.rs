//! Per-run state of the thread that runs a rule: the effects collected so far, the
//! deadline and the rule name for logs.
//!
//! The engine is shared by every thread, so this state cannot live in it. A run evaluates
//! on one thread from start to end, which makes a thread-local the natural place.

use std::cell::RefCell;
use std::time::Instant;

use rhai::EvalAltResult;
use tend_domain::{Effect, ProposedEffect};

use crate::Limits;

struct RunContext {
    rule: String,
    deadline: Instant,
    max_effects: usize,
    effects: Vec<ProposedEffect>,
}

thread_local! {
    static CURRENT: RefCell<Option<RunContext>> = const { RefCell::new(None) };
}

/// Marks the current thread as running `rule` until the guard is dropped. Dropping the
/// guard discards whatever the run left behind, so a failed run cannot leak effects into
/// the next one.
pub(crate) struct RunGuard {
    outer: Option<RunContext>,
}

impl RunGuard {
    pub(crate) fn enter(rule: &str, limits: &Limits) -> RunGuard {
        let context = RunContext {
            rule: rule.to_owned(),
            deadline: Instant::now() + limits.max_run_time,
            max_effects: limits.max_effects,
            effects: Vec::new(),
        };
        let outer = CURRENT.with(|current| current.borrow_mut().replace(context));
        RunGuard { outer }
    }

    /// Takes the effects proposed so far, in the order the rule proposed them.
    pub(crate) fn take_effects(&self) -> Vec<ProposedEffect> {
        CURRENT.with(|current| {
            current
                .borrow_mut()
                .as_mut()
                .map(|context| std::mem::take(&mut context.effects))
                .unwrap_or_default()
        })
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let outer = self.outer.take();
        CURRENT.with(|current| *current.borrow_mut() = outer);
    }
}

/// Records an effect for the rule running on this thread.
pub(crate) fn propose(reason: &str, effect: Effect) -> Result<(), Box<EvalAltResult>> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let Some(context) = current.as_mut() else {
            return Err("effects can only be proposed while a rule runs".into());
        };
        if context.effects.len() >= context.max_effects {
            return Err(format!(
                "the rule proposed more than the maximum of {} effects",
                context.max_effects
            )
            .into());
        }
        context.effects.push(ProposedEffect {
            rule: context.rule.clone(),
            reason: reason.to_owned(),
            effect,
        });
        Ok(())
    })
}

/// Checks whether the run on this thread is past its deadline; false outside a run.
pub(crate) fn deadline_passed() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|context| Instant::now() >= context.deadline)
    })
}

/// Returns the name of the rule running on this thread, for log lines.
pub(crate) fn current_rule() -> String {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .map(|context| context.rule.clone())
            .unwrap_or_default()
    })
}
