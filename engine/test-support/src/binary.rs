//! The real `tend` binary: where it is, building it, and running its subcommands.
//!
//! Cargo sets `CARGO_BIN_EXE_tend` only for tests of the package that owns the binary, and
//! it does not build a binary that another package's tests need. So the first call of
//! [`tend_binary`] in a test process runs `cargo build -p tend-server --bin tend` with the
//! profile and target directory of the running test executable (a no-op when the binary is
//! up to date), and later calls reuse the result. `TEND_BIN` names a prebuilt binary instead.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use crate::repo_root;

/// Environment variable naming a prebuilt `tend` binary, which skips the build.
pub const TEND_BIN_VAR: &str = "TEND_BIN";

/// How long one `tend` subcommand may run before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Environment variables of `tend` that would override the options tests pass.
const TEND_ENVIRONMENT: [&str; 8] = [
    "TEND_DATA_DIR",
    "TEND_DATABASE_URL",
    "TEND_DEFINITIONS",
    "TEND_LISTEN",
    "TEND_NO_WATCH",
    "TEND_SECURE_COOKIES",
    "TEND_SERVER",
    "TEND_TOKEN",
];

/// Returns the path of the `tend` binary, building it on the first call of this process.
pub fn tend_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate_or_build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(TEND_BIN_VAR) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "{TEND_BIN_VAR} is {} but no file is there: build tend or unset {TEND_BIN_VAR}",
            path.display()
        );
        return Ok(path);
    }

    let executable =
        std::env::current_exe().context("failed to find the running test executable")?;
    let (target_dir, profile) = build_location(&executable)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(repo_root().join("Cargo.toml"))
        .args(["-p", "tend-server", "--bin", "tend", "--target-dir"])
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let output = command.output().with_context(|| {
        format!(
            "failed to run {} to build the tend binary: install cargo or set {TEND_BIN_VAR}",
            Path::new(&cargo).display()
        )
    })?;
    anyhow::ensure!(
        output.status.success(),
        "building the tend binary failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let binary = target_dir
        .join(&profile)
        .join(format!("tend{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        binary.is_file(),
        "cargo built tend-server, but {} does not exist; set {TEND_BIN_VAR} to the binary",
        binary.display()
    );
    Ok(binary)
}

/// Derives the target directory and profile directory name from a test executable at
/// `TARGET/PROFILE/deps/NAME`.
fn build_location(executable: &Path) -> anyhow::Result<(PathBuf, String)> {
    let deps = executable
        .parent()
        .filter(|dir| dir.file_name() == Some(OsStr::new("deps")));
    let profile_dir = deps.and_then(Path::parent);
    let target_dir = profile_dir.and_then(Path::parent);
    match (profile_dir.and_then(Path::file_name), target_dir) {
        (Some(profile), Some(target_dir)) => Ok((
            target_dir.to_path_buf(),
            profile.to_string_lossy().into_owned(),
        )),
        _ => anyhow::bail!(
            "the test executable {} is not in TARGET/PROFILE/deps/, so the tend binary cannot be \
             found beside it: set {TEND_BIN_VAR} to the binary",
            executable.display()
        ),
    }
}

/// The output and exit status of a finished `tend` subcommand.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Returns the exit code, or `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Returns `self` when the command exited with 0, otherwise an error with its output.
    pub fn expect_success(self) -> anyhow::Result<CliOutput> {
        anyhow::ensure!(self.success(), "`{}` failed:\n{self}", self.command);
        Ok(self)
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `tend ARGS`, writing `stdin` to its standard input when given, and waits for it
/// to exit (at most five minutes).
pub async fn run_tend<I, S>(args: I, stdin: Option<&str>) -> anyhow::Result<CliOutput>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    run_tend_with_bytes(args, stdin.map(str::as_bytes)).await
}

/// Like [`run_tend`], with standard input given as bytes, such as a raw email that is not
/// valid UTF-8.
pub async fn run_tend_with_bytes<I, S>(args: I, stdin: Option<&[u8]>) -> anyhow::Result<CliOutput>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let binary = tend_binary()?;
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command_line = std::iter::once(OsString::from("tend"))
        .chain(args.iter().cloned())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");

    let mut command = tend_command(&binary);
    command
        .args(&args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("failed to start `{command_line}`"))?;
    if let Some(text) = stdin {
        let mut input = child
            .stdin
            .take()
            .context("the child has no standard input")?;
        input.write_all(text).await?;
        // Closing standard input signals the end of the input to the child.
        drop(input);
    }
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("`{command_line}` did not finish within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("failed to wait for `{command_line}`"))?;
    Ok(CliOutput {
        command: command_line,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Creates a command for `binary` without the `TEND_*` variables of the caller's
/// environment, so that only the options a test passes take effect.
pub(crate) fn tend_command(binary: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    for name in TEND_ENVIRONMENT {
        command.env_remove(name);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_location_of_a_debug_test() {
        let (target, profile) =
            build_location(Path::new("/w/target/debug/deps/tend_tests-1a2b")).unwrap();
        assert_eq!(target, PathBuf::from("/w/target"));
        assert_eq!(profile, "debug");
    }

    #[test]
    fn build_location_rejects_other_layouts() {
        let error = build_location(Path::new("/usr/local/bin/tests")).unwrap_err();
        assert!(error.to_string().contains(TEND_BIN_VAR), "{error}");
    }
}
