//! Sandbox tests built from failures reported against other rule engines: runaway
//! recursion, hostile nesting, arithmetic overflow, state leaking between runs, endless
//! loops, and attempts to load code.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{TestRules, plain_record, record, run_on};
use serde_json::json;
use tend_domain::Effect;
use tend_scripting::{Limits, RuleHost};
use tend_workflow::{RuleCheckError, RuleRunner};

const GOOD_RULE: &str = r#"set_field("priority", "P4", "good rule");"#;

/// Runs `work` on a new thread with a stack of `kib` KiB and returns its result. A stack
/// overflow aborts the whole test binary, so passing means the limit fired first.
fn on_small_stack<T: Send + 'static>(kib: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(work)
        .expect("spawn a thread")
        .join()
        .expect("the thread finished without panicking")
}

fn assert_good_rule_runs(rules: &TestRules) {
    let effects = rules
        .run("test/good", &plain_record())
        .expect("the good rule runs");
    assert_eq!(effects.len(), 1);
}

#[test]
fn runaway_recursion_is_stack_overflow_error() {
    let rules = TestRules::new(&[
        (
            "test/escalate",
            "fn escalate(t, n) { escalate(t, n + 1) } escalate(record, 0)",
        ),
        ("test/good", GOOD_RULE),
    ]);
    let failure = rules.run("test/escalate", &plain_record()).unwrap_err();
    assert_eq!(failure.rule, "test/escalate");
    assert!(
        failure.message.contains("stack overflow"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("32 call levels"),
        "{}",
        failure.message
    );
    assert_good_rule_runs(&rules);
}

#[test]
fn runaway_recursion_fits_small_stack() {
    assert_eq!(Limits::default().max_call_levels, 32);
    let rules = TestRules::new(&[(
        "test/escalate",
        "fn escalate(t, n) { escalate(t, n + 1) } escalate(record, 0)",
    )]);
    let failure = on_small_stack(256, move || {
        rules.run("test/escalate", &plain_record()).unwrap_err()
    });
    assert!(
        failure.message.contains("stack overflow"),
        "{}",
        failure.message
    );
}

/// Recursion whose every level also nests blocks, loops and collections uses several times
/// the stack of plain recursion. With 32 call levels these shapes needed up to 512 KiB in
/// a debug build, so 1 MiB (half the 2 MiB of a tokio worker) must hold each of them.
#[test]
fn deep_recursion_shapes_fit_one_mib() {
    let scripts = [
        "fn f(n) { if n >= 0 { if n >= 0 { if n >= 0 { if n >= 0 { if n >= 0 { [[abs(f(n + 1))]] } } } } } } f(0)",
        "fn f(n) { switch n { _ => { for i in [1] { while true { return [f(n + 1)]; } } } } } f(0)",
        "fn f(n) { let p = Fn(\"f\"); if n >= 0 { [#{ a: [p.call(n + 1)] }] } } f(0)",
        "fn f(n) { [1].map(|v| f(n + 1)) } f(0)",
    ];
    for script in scripts {
        let rules = TestRules::new(&[("test/deep", script)]);
        let failure = on_small_stack(1024, move || {
            rules.run("test/deep", &plain_record()).unwrap_err()
        });
        assert!(
            failure.message.contains("stack overflow"),
            "script {script}: {}",
            failure.message
        );
    }
}

fn hostile_nesting() -> String {
    format!("let x = {}1{};", "(".repeat(5000), ")".repeat(5000))
}

#[test]
fn hostile_nesting_is_compile_error() {
    let rules = TestRules::new(&[
        ("test/hostile", &hostile_nesting()),
        ("test/good", GOOD_RULE),
    ]);
    match rules.host.check("test/hostile") {
        Err(RuleCheckError::Compile(error)) => {
            assert!(
                error
                    .message
                    .contains("Expression exceeds maximum complexity"),
                "{error}"
            );
            assert!(error.path.ends_with("rules/test/hostile.rhai"), "{error}");
            assert_eq!(error.line, 1);
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    let failure = rules.run("test/hostile", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("does not compile"),
        "{}",
        failure.message
    );
    assert_good_rule_runs(&rules);
}

#[test]
fn hostile_nesting_fits_small_stack() {
    let rules = TestRules::new(&[("test/hostile", &hostile_nesting())]);
    let result = on_small_stack(256, move || rules.host.check("test/hostile"));
    assert!(
        matches!(result, Err(RuleCheckError::Compile(_))),
        "{result:?}"
    );
}

/// A routing function of ordinary depth, with a map holding a closure as the `env` object.
const ROUTE_RULE: &str = r#"
fn route(env, input) {
    if input.kind == "HARDWARE" {
        let target = #{ group: env.lookup("hw_group"), prio: 2 };
        for step in input.steps {
            switch step {
                "swap" => { target.prio = 1; },
                _ => ()
            }
        }
        return target;
    }
    #{ group: "servicedesk", prio: 3 }
}

let env = #{
    groups: #{ hw_group: "hardware-support" },
    lookup: |key| this.groups[key],
};
let target = route(env, #{ kind: "HARDWARE", steps: ["check", "swap"] });
set_field("assignment_group", target.group, "routed");
set_field("prio", target.prio, "routed");
let other = route(env, #{ kind: "SOFTWARE", steps: [] });
set_field("other_prio", other.prio, "routed");
"#;

#[test]
fn legitimate_nesting_compiles_and_runs() {
    let rules = TestRules::new(&[("test/route", ROUTE_RULE)]);
    assert_eq!(rules.host.check("test/route"), Ok(()));
    let effects = rules
        .run("test/route", &plain_record())
        .expect("the route rule runs");
    let values: Vec<(String, serde_json::Value)> = effects
        .into_iter()
        .map(|proposed| match proposed.effect {
            Effect::SetField { field, value } => (field, value),
            other => panic!("unexpected effect {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("assignment_group".to_owned(), json!("hardware-support")),
            ("prio".to_owned(), json!(1)),
            ("other_prio".to_owned(), json!(3)),
        ]
    );
}

#[test]
fn arithmetic_errors_fail_the_rule() {
    let expressions = [
        "9223372036854775807 + 1",
        "-9223372036854775807 - 2",
        "(-9223372036854775807 - 1) / -1",
        "(-9223372036854775807 - 1) % -1",
        "10 / 0",
        "10 % 0",
        "abs(-9223372036854775807 - 1)",
        "2 ** 64",
    ];
    let rules = TestRules::new(&[("test/good", GOOD_RULE)]);
    for expression in expressions {
        rules.write(
            "test/arithmetic",
            &format!(r#"let x = {expression}; set_field("x", x, "r");"#),
        );
        let failure = rules.run("test/arithmetic", &plain_record()).unwrap_err();
        assert!(
            failure.message.starts_with("arithmetic error"),
            "{expression}: {}",
            failure.message
        );
        assert_good_rule_runs(&rules);
    }
}

#[test]
fn extreme_numbers_reach_host_functions() {
    let rules = TestRules::new(&[(
        "test/extremes",
        r#"
        set_field("max", 9223372036854775807, "r");
        set_field("min", -9223372036854775807 - 1, "r");
        set_field("text", lower("ÄBC"), "r");
        set_field("hit", text_has_any("9223372036854775807", ["9223372036854775807"]), "r");
        "#,
    )]);
    let effects = rules
        .run("test/extremes", &plain_record())
        .expect("the rule runs");
    let values: Vec<serde_json::Value> = effects
        .into_iter()
        .map(|proposed| match proposed.effect {
            Effect::SetField { value, .. } => value,
            other => panic!("unexpected effect {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        vec![json!(i64::MAX), json!(i64::MIN), json!("äbc"), json!(true)]
    );
}

#[test]
fn non_finite_float_fails_set_field() {
    let rules = TestRules::new(&[("test/float", r#"set_field("x", 1e308 * 10.0, "r");"#)]);
    let failure = rules.run("test/float", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("not finite"),
        "{}",
        failure.message
    );
}

/// Assigns a variable, changes a copy of the record, adds a property to the record itself
/// and shadows `record`. None of it may reach the next run. Rhai 1.27 rejects changing an
/// existing property of a constant map but allows adding one, so that line succeeds.
const LEAKING_RULE: &str = r#"
let leaked = 42;
let copy = record;
copy.priority = "P1";
record.injected = "from R1";
let record = #{ priority: "P1" };
set_field("priority", "P1", "R1");
"#;

const OBSERVING_RULE: &str = r#"
if is_def_var("leaked") {
    note("saw the variable of another run", "R2");
}
if record.injected != () {
    note("saw the property added by another run", "R2");
}
note(`priority is ${record.priority}`, "R2");
"#;

#[test]
fn no_state_leaks_between_runs() {
    let rules = TestRules::new(&[("test/r1", LEAKING_RULE), ("test/r2", OBSERVING_RULE)]);
    let incident = record("disk full", json!({ "priority": "P4" }));
    let expect_r1 = vec![Effect::SetField {
        field: "priority".to_owned(),
        value: json!("P1"),
    }];
    let expect_r2 = vec![Effect::Note {
        text: "priority is P4".to_owned(),
    }];

    for order in [["test/r1", "test/r2"], ["test/r2", "test/r1"]] {
        for rule in order {
            let effects: Vec<Effect> = rules
                .run(rule, &incident)
                .expect("the rule runs")
                .into_iter()
                .map(|proposed| proposed.effect)
                .collect();
            let expected = if rule == "test/r1" {
                &expect_r1
            } else {
                &expect_r2
            };
            assert_eq!(&effects, expected, "rule {rule} in order {order:?}");
        }
    }
}

#[test]
fn record_field_is_constant() {
    let rules = TestRules::new(&[
        ("test/mutate", r#"record.priority = "P1";"#),
        ("test/r2", OBSERVING_RULE),
    ]);
    let incident = record("disk full", json!({ "priority": "P4" }));
    let failure = rules.run("test/mutate", &incident).unwrap_err();
    assert!(failure.message.contains("constant"), "{}", failure.message);
    let effects = rules
        .run("test/r2", &incident)
        .expect("the observing rule runs");
    assert_eq!(effects.len(), 1);
    assert_eq!(
        effects[0].effect,
        Effect::Note {
            text: "priority is P4".to_owned()
        }
    );
}

#[test]
fn failed_run_leaves_no_effects() {
    let rules = TestRules::new(&[
        (
            "test/fails",
            r#"set_field("priority", "P1", "first"); throw "stop here";"#,
        ),
        ("test/r2", OBSERVING_RULE),
    ]);
    let failure = rules.run("test/fails", &plain_record()).unwrap_err();
    assert!(failure.message.contains("stop here"), "{}", failure.message);
    let effects = rules
        .run("test/r2", &plain_record())
        .expect("the observing rule runs");
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(effects[0].rule, "test/r2");
}

#[test]
fn endless_loop_stops_at_operation_limit() {
    // A generous clock, so that on a slow machine the operation limit still fires first.
    let limits = Limits {
        max_run_time: Duration::from_secs(5),
        ..Limits::default()
    };
    let rules = TestRules::with_limits(
        &[
            ("test/loop", "let n = 0; loop { n += 1; }"),
            ("test/good", GOOD_RULE),
        ],
        limits,
    );
    let started = Instant::now();
    let failure = rules.run("test/loop", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("maximum of 200000 operations"),
        "{}",
        failure.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_good_rule_runs(&rules);
}

#[test]
fn endless_loop_stops_at_time_limit() {
    let limits = Limits {
        max_operations: u64::MAX,
        max_run_time: Duration::from_millis(50),
        ..Limits::default()
    };
    let rules = TestRules::with_limits(
        &[
            ("test/loop", "let n = 0; loop { n += 1; }"),
            ("test/good", GOOD_RULE),
        ],
        limits,
    );
    let started = Instant::now();
    let failure = rules.run("test/loop", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("time limit of 50 ms"),
        "{}",
        failure.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_good_rule_runs(&rules);
}

/// Nesting an array in itself grows Rhai's recursive size checks and drops with every
/// level. The default limits must stop it before that overflows a 2 MiB thread stack.
#[test]
fn nested_collections_stop_cleanly() {
    let scripts = [
        "let a = []; loop { a = [a]; }",
        "let m = #{}; loop { m = #{ inner: m }; }",
    ];
    for script in scripts {
        let rules = TestRules::new(&[("test/nest", script)]);
        let failure = on_small_stack(2048, move || {
            rules.run("test/nest", &plain_record()).unwrap_err()
        });
        let message = &failure.message;
        assert!(
            message.contains("time limit")
                || message.contains("over the limit")
                || message.contains("operations"),
            "script {script}: {message}"
        );
    }
}

#[test]
fn import_is_rejected() {
    let rules = TestRules::new(&[("test/import", r#"import "x" as x; note("loaded", "r");"#)]);
    match rules.host.check("test/import") {
        Err(RuleCheckError::Compile(error)) => {
            assert!(error.message.contains("`import` is not allowed"), "{error}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    let failure = rules.run("test/import", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("`import` is not allowed"),
        "{}",
        failure.message
    );
}

#[test]
fn eval_is_rejected() {
    let rules = TestRules::new(&[("test/eval", r#"eval("note(\"evaluated\", \"r\")");"#)]);
    match rules.host.check("test/eval") {
        Err(RuleCheckError::Compile(error)) => {
            assert!(error.message.contains("`eval` is not allowed"), "{error}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert!(rules.run("test/eval", &plain_record()).is_err());
}

#[test]
fn oversized_string_fails() {
    let limits = Limits {
        max_string_size: 1000,
        ..Limits::default()
    };
    let rules = TestRules::with_limits(&[("test/big", r#"let s = "x"; loop { s += s; }"#)], limits);
    let failure = rules.run("test/big", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("over the limit"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("1000 bytes"),
        "{}",
        failure.message
    );
}

#[test]
fn too_many_effects_fail() {
    let rules = TestRules::new(&[(
        "test/spam",
        r#"for i in 0..1000 { note(`note ${i}`, "spam"); }"#,
    )]);
    let failure = rules.run("test/spam", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("maximum of 100 effects"),
        "{}",
        failure.message
    );
}

#[test]
fn host_shared_across_threads() {
    let rules = TestRules::new(&[
        ("test/r1", LEAKING_RULE),
        ("test/r2", OBSERVING_RULE),
        ("test/loop", "loop { }"),
    ]);
    let host: Arc<RuleHost> = Arc::new(rules.host);
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let host = Arc::clone(&host);
            thread::spawn(move || {
                let incident = record("disk full", json!({ "priority": "P4" }));
                for round in 0..10 {
                    let rule = if (worker + round) % 2 == 0 {
                        "test/r1"
                    } else {
                        "test/r2"
                    };
                    let effects = run_on(&host, rule, &incident).expect("the rule runs");
                    assert_eq!(effects.len(), 1, "{rule}: {effects:?}");
                    assert!(
                        effects.iter().all(|effect| effect.rule == rule),
                        "{effects:?}"
                    );
                    assert!(run_on(&host, "test/loop", &incident).is_err());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("the worker finished");
    }
}
