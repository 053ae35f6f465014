//! [`RuleHost`]: the Rhai implementation of the rule runner, with its compiled-script cache.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use rhai::{AST, Engine, LexError, ParseErrorType};
use tend_domain::ProposedEffect;
use tend_workflow::{CompileError, RuleCheckError, RuleFailure, RuleInput, RuleRunner};

use crate::context::RunGuard;
use crate::errors::describe_run_error;
use crate::{Limits, api, sandbox};

/// Runs the Rhai rules of one definitions directory. Share it through an `Arc`: it is
/// `Send + Sync`, and runs on different threads do not block each other.
pub struct RuleHost {
    root: PathBuf,
    limits: Limits,
    engine: Engine,
    cache: RwLock<HashMap<String, CachedScript>>,
}

/// A compiled script (or its compile error) together with the file state it came from.
struct CachedScript {
    stamp: FileStamp,
    compiled: Result<Arc<AST>, CompileError>,
}

/// Modification time and length of a script file, which identify its version without
/// reading it.
///
/// NOTE: an edit that keeps the length and lands within the file system's timestamp
/// granularity goes unnoticed until the next change to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Reason a script could not be loaded.
enum LoadError {
    Missing(PathBuf),
    Compile(CompileError),
}

impl RuleHost {
    /// Creates a host for the definitions directory `root`, which contains `rules/`, with the
    /// default limits.
    pub fn new(root: impl Into<PathBuf>) -> RuleHost {
        RuleHost::with_limits(root, Limits::default())
    }

    /// Creates a host with the given limits.
    pub fn with_limits(root: impl Into<PathBuf>, limits: Limits) -> RuleHost {
        RuleHost {
            root: root.into(),
            engine: sandbox::build_engine(&limits),
            limits,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Returns the path of the script of `rule`: `rules/<rule>.rhai` under the root.
    pub fn script_path(&self, rule: &str) -> PathBuf {
        self.root.join("rules").join(format!("{rule}.rhai"))
    }

    /// Returns the compiled script of `rule`, compiling it when the file is new or changed.
    fn load(&self, rule: &str) -> Result<Arc<AST>, LoadError> {
        let path = self.script_path(rule);
        if let Some(problem) = invalid_name(rule) {
            return Err(LoadError::Compile(CompileError {
                path,
                line: 0,
                column: 0,
                message: format!(
                    "invalid rule name `{rule}`: {problem}; write it as lower-case words \
                     separated by `/`, such as incident/categorize"
                ),
            }));
        }

        let stamp = match fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => FileStamp {
                modified: metadata.modified().ok(),
                len: metadata.len(),
            },
            Ok(_) => return Err(LoadError::Missing(path)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(LoadError::Missing(path));
            }
            Err(error) => return Err(LoadError::Compile(unreadable(path, &error))),
        };

        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.get(rule).filter(|cached| cached.stamp == stamp) {
            return cached.compiled.clone().map_err(LoadError::Compile);
        }
        drop(cache);

        let compiled = self.compile(&path);
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            rule.to_owned(),
            CachedScript {
                stamp,
                compiled: compiled.clone(),
            },
        );
        compiled.map_err(LoadError::Compile)
    }

    fn compile(&self, path: &Path) -> Result<Arc<AST>, CompileError> {
        let source =
            fs::read_to_string(path).map_err(|error| unreadable(path.to_owned(), &error))?;
        let mut ast = self
            .engine
            .compile_with_scope(&api::compile_scope(), &source)
            .map_err(|error| CompileError {
                path: path.to_owned(),
                line: error.1.line().unwrap_or(0),
                column: error.1.position().unwrap_or(0),
                message: compile_message(&error.0),
            })?;
        ast.set_source(path.display().to_string());
        Ok(Arc::new(ast))
    }

    fn failure(rule: &str, message: String) -> RuleFailure {
        RuleFailure {
            rule: rule.to_owned(),
            message,
        }
    }
}

impl RuleRunner for RuleHost {
    fn check(&self, rule: &str) -> Result<(), RuleCheckError> {
        match self.load(rule) {
            Ok(_) => Ok(()),
            Err(LoadError::Missing(expected)) => Err(RuleCheckError::Missing {
                rule: rule.to_owned(),
                expected,
            }),
            Err(LoadError::Compile(error)) => Err(RuleCheckError::Compile(error)),
        }
    }

    fn fields_used(&self, rule: &str) -> Vec<tend_workflow::FieldUse> {
        match self.load(rule) {
            Ok(ast) => crate::fields::fields_used(&ast, &self.script_path(rule)),
            Err(_) => Vec::new(),
        }
    }

    fn run(&self, rule: &str, input: &RuleInput<'_>) -> Result<Vec<ProposedEffect>, RuleFailure> {
        let ast = match self.load(rule) {
            Ok(ast) => ast,
            Err(LoadError::Missing(expected)) => {
                let message = format!("no script found: create {}", expected.display());
                return Err(RuleHost::failure(rule, message));
            }
            Err(LoadError::Compile(error)) => {
                return Err(RuleHost::failure(
                    rule,
                    format!("the script does not compile: {error}"),
                ));
            }
        };
        let mut scope = api::input_scope(input).map_err(|error| {
            RuleHost::failure(
                rule,
                format!("the record cannot be passed to the rule: {error}"),
            )
        })?;

        let guard = RunGuard::enter(rule, &self.limits);
        // A panic inside Rhai or a host function must not take the caller down with it.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            self.engine.run_ast_with_scope(&mut scope, &ast)
        }));
        let effects = guard.take_effects();
        drop(guard);

        let path = self.script_path(rule);
        match outcome {
            Ok(Ok(())) => Ok(effects),
            Ok(Err(error)) => {
                let message = describe_run_error(&error, &path, &self.limits);
                tracing::warn!(rule, error = %message, "rule failed");
                Err(RuleHost::failure(rule, message))
            }
            Err(_) => {
                tracing::error!(rule, "rule run panicked");
                let message = format!(
                    "the rule host panicked while running {}; this is a bug in Tend, not in the rule",
                    path.display()
                );
                Err(RuleHost::failure(rule, message))
            }
        }
    }
}

/// Explains why `rule` is not a valid rule name, or returns `None` when it is. Names map
/// to paths, so anything that could leave the rules directory is rejected.
fn invalid_name(rule: &str) -> Option<&'static str> {
    if rule.is_empty() {
        return Some("the name is empty");
    }
    if rule.split('/').any(str::is_empty) {
        return Some("it has an empty part between slashes");
    }
    let allowed = |character: char| {
        character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || matches!(character, '_' | '-' | '/')
    };
    if !rule.chars().all(allowed) {
        return Some("it may contain only a-z, 0-9, `_`, `-` and `/`");
    }
    None
}

/// Words the sandbox disables, with the reason a rule author needs.
const FORBIDDEN: [(&str, &str); 2] = [
    (
        "import",
        "rules cannot load modules or files, so copy the function into the rule",
    ),
    ("eval", "rules cannot run code built at run time"),
];

fn compile_message(error: &ParseErrorType) -> String {
    // Rhai reports a disabled keyword as reserved or as an improper symbol, by keyword.
    let word = match error {
        ParseErrorType::Reserved(word) => Some(word),
        ParseErrorType::BadInput(LexError::ImproperSymbol(word, _)) => Some(word),
        _ => None,
    };
    if let Some(word) = word
        && let Some((_, reason)) = FORBIDDEN.iter().find(|(forbidden, _)| forbidden == word)
    {
        return format!("`{word}` is not allowed in rules: {reason}");
    }
    error.to_string()
}

fn unreadable(path: PathBuf, error: &io::Error) -> CompileError {
    CompileError {
        path,
        line: 0,
        column: 0,
        message: format!("the script cannot be read: {error}"),
    }
}

impl std::fmt::Debug for RuleHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleHost")
            .field("root", &self.root)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
