//! Runs a program for a plugin: from an argument vector and never through a shell, with a
//! small environment, capped output and a timeout. The program runs in a process group of
//! its own, so stopping it also stops what it started (a `sleep` behind a shell script, a
//! helper of a backup tool).
//!
//! The child's environment is cleared. It gets PATH, LANG and HOME from Tend's own
//! environment when [`ProgramCall::basic_env`] is set, plus the variables the call lists in
//! [`ProgramCall::env`]. Nothing else passes, so secrets in Tend's environment (database
//! URLs, tokens) never reach a plugin.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Variables that pass from Tend's environment to the child when
/// [`ProgramCall::basic_env`] is set.
pub const BASIC_ENV_VARS: [&str; 3] = ["PATH", "LANG", "HOME"];

/// Bytes kept of each output stream unless the call sets another limit.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// Time between the polite SIGTERM and the SIGKILL, unless the call sets another.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

const READ_CHUNK: usize = 8 * 1024;

/// A program to run, with everything it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramCall {
    /// Path of the executable. Plugins give absolute paths. A bare name is looked up in the
    /// child's PATH.
    pub program: PathBuf,
    /// Arguments after the program name, each passed to the program as it is.
    pub args: Vec<OsString>,
    /// Bytes written to the program's standard input, which is then closed. `None` connects
    /// standard input to /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Working directory of the program; `None` keeps Tend's own.
    pub working_dir: Option<PathBuf>,
    /// Whether PATH, LANG and HOME pass from Tend's environment.
    pub basic_env: bool,
    /// Variables set for the program. They are set after the basic ones, so they override
    /// them.
    pub env: Vec<(OsString, OsString)>,
    /// Time the program may run before it is stopped and reported as timed out.
    pub timeout: Duration,
    /// Bytes kept of standard output, and separately of standard error. The rest is read
    /// and counted but not kept.
    pub output_limit: usize,
    /// Time a stopped program gets between SIGTERM and SIGKILL. It is also the time Tend
    /// waits for the output streams to close after the program ended.
    pub kill_grace: Duration,
}

impl ProgramCall {
    /// Creates a call with no arguments, no input, the basic environment and the default
    /// output limit and grace time.
    pub fn new(program: impl Into<PathBuf>, timeout: Duration) -> Self {
        ProgramCall {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            working_dir: None,
            basic_env: true,
            env: Vec::new(),
            timeout,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Starts the program with only the variables given by [`ProgramCall::env`].
    pub fn without_basic_env(mut self) -> Self {
        self.basic_env = false;
        self
    }

    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }
}

/// The way a program run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramEnd {
    /// The program exited by itself with this code.
    Exited(i32),
    /// The program was ended by this signal, which Tend did not send.
    Signalled(i32),
    /// The program ran longer than its timeout and was stopped.
    TimedOut,
    /// The cancellation token fired and the program was stopped.
    Cancelled,
    /// The program could not be started. The message names the program and the reason.
    NotStarted(String),
}

/// The output of a program on one stream, up to the output limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapturedOutput {
    /// The head of the output, decoded as UTF-8 with invalid bytes replaced by U+FFFD.
    pub text: String,
    /// Bytes read beyond the limit and not kept.
    pub dropped_bytes: u64,
    /// Whether the stream was still open when Tend stopped reading it. That happens when a
    /// process outside the program's group (one that called setsid) keeps it open after
    /// the program ended.
    pub left_open: bool,
}

impl CapturedOutput {
    /// Returns the text, followed by a line that tells how much was cut, if anything was.
    pub fn with_note(&self) -> String {
        let mut text = self.text.clone();
        if self.dropped_bytes > 0 {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[output cut: {} more bytes were not kept]",
                self.dropped_bytes
            ));
        }
        if self.left_open {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("[output not read to the end: the stream stayed open]");
        }
        text
    }
}

/// The result of a program run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramResult {
    pub end: ProgramEnd,
    /// Wall time from the start until the output was collected.
    pub duration: Duration,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
}

impl ProgramResult {
    /// Returns whether the program exited by itself with code 0.
    pub fn succeeded(&self) -> bool {
        self.end == ProgramEnd::Exited(0)
    }

    /// Describes the end for a summary line, such as "exited with code 2 after 1.3 s".
    pub fn describe_end(&self) -> String {
        let seconds = self.duration.as_secs_f64();
        match &self.end {
            ProgramEnd::Exited(code) => format!("exited with code {code} after {seconds:.1} s"),
            ProgramEnd::Signalled(signal) => {
                let name = Signal::try_from(*signal)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                format!("was killed by {name} after {seconds:.1} s")
            }
            ProgramEnd::TimedOut => format!("timed out and was stopped after {seconds:.1} s"),
            ProgramEnd::Cancelled => format!("was cancelled after {seconds:.1} s"),
            ProgramEnd::NotStarted(reason) => reason.clone(),
        }
    }
}

/// Runs a program and waits for it, its timeout or `cancel`, whichever comes first.
///
/// The program is started directly from its argument vector, in a new process group.
/// When the timeout passes or `cancel` fires, the group gets SIGTERM and, after the grace
/// time, SIGKILL. When the program exits by itself, what is left of its group gets
/// SIGKILL, so background processes it started do not outlive the run.
pub async fn run_program(call: ProgramCall, cancel: CancellationToken) -> ProgramResult {
    let started = Instant::now();
    let mut command = build_command(&call);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return ProgramResult {
                end: ProgramEnd::NotStarted(format!(
                    "could not start {}: {error}",
                    call.program.display()
                )),
                duration: started.elapsed(),
                stdout: CapturedOutput::default(),
                stderr: CapturedOutput::default(),
            };
        }
    };
    // The child leads its own group, so the group id is its pid.
    let group = child.id().map(|pid| Pid::from_raw(pid as i32));
    let mut guard = GroupGuard { group };

    if let (Some(bytes), Some(mut stdin)) = (call.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            // A program may exit without reading all of its input, which closes the pipe.
            // That is not an error of the run, so the write error is dropped.
            let _ = stdin.write_all(&bytes).await;
        });
    }

    let stop_reading = CancellationToken::new();
    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(read_capped(out, call.output_limit, stop_reading.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(read_capped(err, call.output_limit, stop_reading.clone())));

    let end = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => end_of(status),
            Err(error) => ProgramEnd::NotStarted(format!(
                "lost track of {}: {error}",
                call.program.display()
            )),
        },
        () = cancel.cancelled() => {
            stop_group(&mut child, group, call.kill_grace).await;
            ProgramEnd::Cancelled
        }
        () = tokio::time::sleep(call.timeout) => {
            stop_group(&mut child, group, call.kill_grace).await;
            ProgramEnd::TimedOut
        }
    };

    // NOTE: the child is reaped at this point, so its pid could in theory be reused as the
    // id of a new group before this kill. A pid is not reused while any member of the old
    // group lives, so that needs the group to be empty and the pid numbers to wrap within
    // these microseconds.
    signal_group(group, Signal::SIGKILL);
    guard.group = None;

    let reading_deadline = stop_reading.clone();
    let grace = call.kill_grace;
    let deadline = tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        reading_deadline.cancel();
    });
    let stdout = collect(stdout).await;
    let stderr = collect(stderr).await;
    deadline.abort();

    ProgramResult {
        end,
        duration: started.elapsed(),
        stdout,
        stderr,
    }
}

fn build_command(call: &ProgramCall) -> Command {
    let mut command = Command::new(&call.program);
    command.args(&call.args);
    command.env_clear();
    if call.basic_env {
        for name in BASIC_ENV_VARS {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
    }
    command.envs(call.env.iter().map(|(name, value)| (name, value)));
    if let Some(dir) = &call.working_dir {
        command.current_dir(dir);
    }
    command.stdin(if call.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped());
    command.stderr(Stdio::piped());
    command.process_group(0);
    command.kill_on_drop(true);
    command
}

fn end_of(status: ExitStatus) -> ProgramEnd {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProgramEnd::Exited(code),
        (None, Some(signal)) => ProgramEnd::Signalled(signal),
        (None, None) => ProgramEnd::NotStarted(format!("ended with unknown status {status}")),
    }
}

/// Sends SIGTERM to the group, gives the program the grace time to exit, then sends
/// SIGKILL and reaps the program.
async fn stop_group(child: &mut Child, group: Option<Pid>, grace: Duration) {
    signal_group(group, Signal::SIGTERM);
    let exited = tokio::time::timeout(grace, child.wait()).await;
    if exited.is_err() {
        signal_group(group, Signal::SIGKILL);
        // The child is in the group, but killing it directly as well keeps the wait below
        // finite even if the group kill failed.
        let _ = child.start_kill();
        // SIGKILL cannot be caught, so the wait ends. Its error could only mean the child
        // was already reaped.
        let _ = child.wait().await;
    }
}

fn signal_group(group: Option<Pid>, signal: Signal) {
    if let Some(group) = group {
        // ESRCH means the group is already gone, which is the goal.
        let _ = killpg(group, signal);
    }
}

/// Kills the program's group when a run is dropped before it finished, such as when the
/// task that awaits [`run_program`] is aborted. `kill_on_drop` alone would kill only the
/// direct child.
struct GroupGuard {
    group: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.group, Signal::SIGKILL);
    }
}

async fn collect(reader: Option<tokio::task::JoinHandle<CapturedOutput>>) -> CapturedOutput {
    match reader {
        Some(handle) => handle.await.unwrap_or_default(),
        None => CapturedOutput::default(),
    }
}

/// Reads a stream to its end and keeps its first `limit` bytes. The rest is counted in
/// chunks and dropped, so a program that prints gigabytes costs no memory.
async fn read_capped(
    mut stream: impl AsyncRead + Unpin,
    limit: usize,
    stop: CancellationToken,
) -> CapturedOutput {
    let mut head = Vec::with_capacity(limit.min(READ_CHUNK));
    let mut dropped_bytes: u64 = 0;
    let mut left_open = false;
    let mut chunk = vec![0_u8; READ_CHUNK];

    loop {
        let read = tokio::select! {
            biased;
            () = stop.cancelled() => {
                left_open = true;
                break;
            }
            read = stream.read(&mut chunk) => read,
        };
        let count = match read {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let room = limit - head.len();
        let take = count.min(room);
        head.extend_from_slice(&chunk[..take]);
        dropped_bytes += (count - take) as u64;
    }

    if dropped_bytes > 0 || left_open {
        // The cut may split a character. Its first bytes then count as dropped, so the text
        // does not end in U+FFFD.
        let partial = incomplete_tail(&head);
        head.truncate(head.len() - partial);
        dropped_bytes += partial as u64;
    }
    CapturedOutput {
        text: String::from_utf8_lossy(&head).into_owned(),
        dropped_bytes,
        left_open,
    }
}

/// Counts the bytes at the end of `bytes` that start a UTF-8 character but do not finish
/// it.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_tail_finds_cut_characters() {
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail("aé".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_tail(&"a€".as_bytes()[..3]), 2);
        assert_eq!(incomplete_tail(&"a😀".as_bytes()[..4]), 3);
        assert_eq!(incomplete_tail("a😀".as_bytes()), 0);
        assert_eq!(incomplete_tail(b""), 0);
    }

    #[test]
    fn note_tells_what_was_cut() {
        let output = CapturedOutput {
            text: String::from("head"),
            dropped_bytes: 12,
            left_open: false,
        };

        assert_eq!(
            output.with_note(),
            "head\n[output cut: 12 more bytes were not kept]"
        );
    }
}
