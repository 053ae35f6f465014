//! Runs real programs of this machine through `run_program`. `/bin/sh -c` appears only here,
//! to build children that misbehave (print too much, ignore SIGTERM, start grandchildren).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use tend_plugin_api::CancellationToken;
use tend_plugin_api::process::{ProgramCall, ProgramEnd, run_program};

const SECOND: Duration = Duration::from_secs(1);

fn shell(script: &str) -> ProgramCall {
    ProgramCall::new("/bin/sh", 10 * SECOND).args(["-c", script])
}

/// Returns whether a process is gone or only a zombie. A grandchild whose parent died is
/// reparented to PID 1, which in a container may not reap it.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let after_name = stat.rsplit(')').next().unwrap_or_default();
            after_name.trim_start().starts_with('Z')
        }
    }
}

async fn wait_until_dead(pid: u32) -> bool {
    for _ in 0..50 {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    false
}

async fn read_pid(file: &Path) -> u32 {
    for _ in 0..250 {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never got a pid", file.display());
}

#[tokio::test]
async fn arguments_arrive_unchanged() {
    let call = ProgramCall::new("/usr/bin/printf", 10 * SECOND).args([
        "%s\n",
        "a b",
        "$(id)",
        "; touch x",
        "--help",
    ]);

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text, "a b\n$(id)\n; touch x\n--help\n");
    assert_eq!(result.stdout.dropped_bytes, 0);
    assert!(result.succeeded());
}

#[tokio::test]
async fn exit_code_is_reported() {
    let result = run_program(shell("echo oops >&2; exit 3"), CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(3));
    assert_eq!(result.stderr.text, "oops\n");
    assert_eq!(result.stdout.text, "");
    assert!(!result.succeeded());
    assert!(
        result
            .describe_end()
            .starts_with("exited with code 3 after")
    );
}

#[tokio::test]
async fn signal_death_is_reported() {
    let result = run_program(shell("kill -SEGV $$"), CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Signalled(11));
    assert!(result.describe_end().starts_with("was killed by SIGSEGV"));
}

#[tokio::test]
async fn stdin_reaches_the_program() {
    let call = ProgramCall::new("/bin/cat", 10 * SECOND).stdin("line one\nline two\n");

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text, "line one\nline two\n");
}

#[tokio::test]
async fn no_stdin_reads_as_empty() {
    let result = run_program(shell("wc -c"), CancellationToken::new()).await;

    assert_eq!(result.stdout.text.trim(), "0");
}

#[tokio::test]
async fn large_stdin_and_small_limit_do_not_block() {
    let input = vec![b'x'; 1024 * 1024];
    let call = ProgramCall::new("/bin/cat", 10 * SECOND)
        .stdin(input)
        .output_limit(100);

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text.len(), 100);
    assert_eq!(result.stdout.dropped_bytes, 1024 * 1024 - 100);
}

#[tokio::test]
async fn ten_megabytes_are_capped() {
    let call = shell("head -c 10000000 /dev/zero | tr '\\0' y; echo tail >&2").output_limit(1000);

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text, "y".repeat(1000));
    assert_eq!(result.stdout.dropped_bytes, 10_000_000 - 1000);
    assert_eq!(result.stderr.text, "tail\n");
    assert_eq!(result.stderr.dropped_bytes, 0);
    assert!(
        result
            .stdout
            .with_note()
            .ends_with("[output cut: 9999000 more bytes were not kept]")
    );
}

#[tokio::test]
async fn cut_never_splits_a_character() {
    let call = ProgramCall::new("/usr/bin/printf", 10 * SECOND)
        .arg("aé")
        .output_limit(2);

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.stdout.text, "a");
    assert_eq!(result.stdout.dropped_bytes, 2);
}

#[tokio::test]
async fn invalid_utf8_is_replaced() {
    let call = ProgramCall::new("/usr/bin/printf", 10 * SECOND).arg("a\\377b");

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.stdout.text, "a\u{FFFD}b");
}

#[tokio::test]
async fn timeout_stops_the_program() {
    let call = ProgramCall::new("/bin/sleep", Duration::from_millis(200)).arg("30");
    let started = Instant::now();

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::TimedOut);
    assert!(started.elapsed() < 5 * SECOND, "{:?}", started.elapsed());
    assert!(result.describe_end().starts_with("timed out"));
}

#[tokio::test]
async fn sigterm_ignored_gets_sigkill() {
    let mut call = shell("trap '' TERM; sleep 30").kill_grace(Duration::from_millis(300));
    call.timeout = Duration::from_millis(200);
    let started = Instant::now();

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(started.elapsed() < 5 * SECOND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn cancel_kills_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let script = "sleep 30 & echo $! > grandchild.pid; wait";
    let call = shell(script).working_dir(dir.path());
    let cancel = CancellationToken::new();
    let run = tokio::spawn(run_program(call, cancel.clone()));

    let grandchild = read_pid(&pid_file).await;
    assert!(
        !is_dead(grandchild),
        "the grandchild should run before the cancel"
    );
    cancel.cancel();
    let result = run.await.unwrap();

    assert_eq!(result.end, ProgramEnd::Cancelled);
    assert!(result.duration < 5 * SECOND, "{:?}", result.duration);
    assert!(
        wait_until_dead(grandchild).await,
        "grandchild {grandchild} still runs"
    );
}

#[tokio::test]
async fn timeout_kills_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 30 & echo $! > grandchild.pid; wait";
    let mut call = shell(script).working_dir(dir.path());
    call.timeout = Duration::from_millis(500);

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::TimedOut);
    assert!(result.duration < 5 * SECOND, "{:?}", result.duration);
    let grandchild = read_pid(&dir.path().join("grandchild.pid")).await;
    assert!(
        wait_until_dead(grandchild).await,
        "grandchild {grandchild} still runs"
    );
}

#[tokio::test]
async fn background_process_does_not_hold_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 30 & echo $! > grandchild.pid; echo done";
    let call = shell(script).working_dir(dir.path());

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text, "done\n");
    assert!(!result.stdout.left_open);
    assert!(result.duration < 5 * SECOND, "{:?}", result.duration);
    let grandchild = read_pid(&dir.path().join("grandchild.pid")).await;
    assert!(
        wait_until_dead(grandchild).await,
        "grandchild {grandchild} still runs"
    );
}

#[tokio::test]
async fn escaped_process_cannot_hold_output() {
    let dir = tempfile::tempdir().unwrap();
    // setsid moves the sleep into a session and group of its own, out of reach of the
    // group kill, and the sleep keeps stdout open after the shell exits. The shell waits
    // for the pid file, so the sleep has left the group before Tend kills the group.
    let script = "setsid sh -c 'echo $$ > escaped.pid; exec sleep 5' & \
                  while [ ! -s escaped.pid ]; do sleep 0.01; done; echo done";
    let call = shell(script)
        .working_dir(dir.path())
        .kill_grace(Duration::from_millis(300));

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.end, ProgramEnd::Exited(0));
    assert_eq!(result.stdout.text, "done\n");
    assert!(result.stdout.left_open);
    assert!(result.duration < 3 * SECOND, "{:?}", result.duration);
    let escaped: i32 = read_pid(&dir.path().join("escaped.pid")).await as i32;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(escaped),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn missing_program_is_not_started() {
    let call = ProgramCall::new("/nonexistent/tool", 10 * SECOND);

    let result = run_program(call, CancellationToken::new()).await;

    let ProgramEnd::NotStarted(reason) = &result.end else {
        panic!("expected NotStarted, got {:?}", result.end);
    };
    assert!(
        reason.starts_with("could not start /nonexistent/tool:"),
        "{reason}"
    );
}

#[tokio::test]
async fn working_dir_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let call = ProgramCall::new("/bin/pwd", 10 * SECOND).working_dir(dir.path());

    let result = run_program(call, CancellationToken::new()).await;

    let expected = dir.path().canonicalize().unwrap();
    assert_eq!(result.stdout.text.trim_end(), expected.to_str().unwrap());
}

fn env_names(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[tokio::test]
async fn environment_has_basic_and_given_variables_only() {
    let call = ProgramCall::new("/usr/bin/env", 10 * SECOND).env("TEND_RUN_ID", "7");

    let result = run_program(call, CancellationToken::new()).await;

    let mut expected: BTreeSet<String> = ["PATH", "LANG", "HOME"]
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some())
        .map(String::from)
        .collect();
    expected.insert(String::from("TEND_RUN_ID"));
    assert_eq!(env_names(&result.stdout.text), expected);
    assert!(result.stdout.text.contains("TEND_RUN_ID=7\n"));
}

#[tokio::test]
async fn environment_can_be_empty() {
    let call = ProgramCall::new("/usr/bin/env", 10 * SECOND)
        .without_basic_env()
        .env("ONLY", "this");

    let result = run_program(call, CancellationToken::new()).await;

    assert_eq!(result.stdout.text, "ONLY=this\n");
}

#[tokio::test]
async fn given_variable_overrides_basic_one() {
    let call = ProgramCall::new("/usr/bin/env", 10 * SECOND).env("PATH", "/opt/tool/bin");

    let result = run_program(call, CancellationToken::new()).await;

    let paths: Vec<&str> = result
        .stdout
        .text
        .lines()
        .filter(|line| line.starts_with("PATH="))
        .collect();
    assert_eq!(paths, ["PATH=/opt/tool/bin"]);
}

#[tokio::test]
async fn dropped_run_kills_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let call = shell("sleep 30 & echo $! > grandchild.pid; wait").working_dir(dir.path());
    let run = tokio::spawn(run_program(call, CancellationToken::new()));

    let grandchild = read_pid(&pid_file).await;
    run.abort();
    let _ = run.await;

    assert!(
        wait_until_dead(grandchild).await,
        "grandchild {grandchild} still runs"
    );
}
