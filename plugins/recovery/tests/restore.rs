//! Restores through the `Plugin` trait with the real restic: a repository in a temporary
//! directory, a backup of a folder, then deletions and restores.
//!
//! The tests need restic at /usr/bin/restic; `scripts/ensure-plugin-tools.sh` installs it.
//! Without it they print why and pass, unless `TEND_REQUIRE_PLUGIN_TOOLS=1` is set, which
//! makes them fail instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError,
};
use tend_plugin_recovery::RecoveryPlugin;

const RESTIC: &str = "/usr/bin/restic";
const PASSWORD: &str = "correct horse battery staple";

/// Returns whether restic is there; prints why the test is skipped when it is not.
fn restic_installed() -> bool {
    if Path::new(RESTIC).is_file() {
        return true;
    }
    if std::env::var("TEND_REQUIRE_PLUGIN_TOOLS").as_deref() == Ok("1") {
        panic!(
            "{RESTIC} is missing and TEND_REQUIRE_PLUGIN_TOOLS=1: run scripts/ensure-plugin-tools.sh"
        );
    }
    eprintln!(
        "skipped: restic is not installed at {RESTIC}. Run scripts/ensure-plugin-tools.sh to install it"
    );
    false
}

/// A restic repository with one backup of `data/`.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture { dir };
        let data = fixture.data();
        std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
        std::fs::write(data.join("report.bin"), report_bytes()).unwrap();
        std::fs::write(data.join("sub/notes.md"), "# Notes\nline two\n").unwrap();
        std::fs::write(data.join("sub/deeper/plan.txt"), "plan").unwrap();
        std::fs::write(data.join("-rf"), "a file named like an option").unwrap();
        std::fs::write(data.join("$(id)"), "a file named like a command").unwrap();
        std::fs::write(data.join("b [1].txt"), "brackets").unwrap();
        std::fs::write(data.join("b 1.txt"), "what an unescaped [1] matches").unwrap();
        std::fs::write(fixture.password_file(), PASSWORD).unwrap();

        fixture.restic(&["init"]);
        fixture.backup();
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    fn repo(&self) -> PathBuf {
        self.root().join("repo")
    }

    fn password_file(&self) -> PathBuf {
        self.root().join("password")
    }

    fn restores(&self) -> PathBuf {
        self.root().join("restores")
    }

    /// Runs restic on the repository outside the plugin, and returns its stdout.
    fn restic(&self, args: &[&str]) -> String {
        let output = Command::new(RESTIC)
            .arg(format!("--repo={}", self.repo().display()))
            .arg(format!(
                "--password-file={}",
                self.password_file().display()
            ))
            .arg("--no-cache")
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "restic {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Backs up `data/` and returns the new snapshot's id.
    fn backup(&self) -> String {
        self.restic(&["backup", "--quiet", &self.data().display().to_string()]);
        let snapshots: Vec<Value> =
            serde_json::from_str(&self.restic(&["snapshots", "--json"])).unwrap();
        snapshots.last().unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn config(&self) -> String {
        format!(
            r#"
restic: {RESTIC}
timeout_seconds: 60
roles: [technician]
allowed_targets: ["{data}", "{restores}"]
cache_dir: "{cache}"
repositories:
  files:
    repository: "{repo}"
    password_file: "{password}"
    description: Test backups
"#,
            data = self.data().display(),
            restores = self.restores().display(),
            cache = self.root().join("cache").display(),
            repo = self.repo().display(),
            password = self.password_file().display(),
        )
    }

    fn plugin(&self) -> RecoveryPlugin {
        RecoveryPlugin::from_yaml("recovery.yaml", &self.config()).unwrap()
    }
}

/// Bytes that are not text, so a restore that changed any byte is noticed.
fn report_bytes() -> Vec<u8> {
    (0..70_000_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn request(action: &str, params: Value) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 1,
        plugin: String::from("recovery"),
        action: action.to_owned(),
        params,
        record: None,
        actor: String::from("alice"),
    }
}

async fn run(plugin: &RecoveryPlugin, action: &str, params: Value) -> ActionOutcome {
    plugin
        .run(request(action, params), CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn deleted_file_comes_back_in_place() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let snapshots: Vec<Value> =
        serde_json::from_str(&fixture.restic(&["snapshots", "--json"])).unwrap();
    let snapshot_id = snapshots[0]["id"].as_str().unwrap();
    let file = fixture.data().join("report.bin");
    std::fs::remove_file(&file).unwrap();

    let outcome = run(
        &fixture.plugin(),
        "restore_file",
        json!({"path": file, "target": "original"}),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(std::fs::read(&file).unwrap(), report_bytes());
    let expected = format!(
        "Restored {} in place from snapshot {} of ",
        file.display(),
        &snapshot_id[..8]
    );
    assert!(
        outcome.summary.starts_with(&expected),
        "{}",
        outcome.summary
    );
    assert!(
        outcome
            .summary
            .ends_with("in repository `files`: 1 file, 68.4 KiB (70000 bytes)"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.data["snapshot_id"], snapshot_id);
    assert_eq!(outcome.data["bytes"], 70_000);
    assert_eq!(outcome.data["files"], 1);
    assert_eq!(outcome.data["restored_paths"], json!([file]));
    assert_eq!(outcome.data["target"], "original");
    // The password file is named, the password never.
    assert!(!outcome.data.to_string().contains(PASSWORD));
    assert!(!outcome.output.contains(PASSWORD));
}

#[tokio::test]
async fn in_place_restore_touches_only_the_path() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let data = fixture.data();
    std::fs::write(data.join("sub/notes.md"), "edited after the backup").unwrap();
    std::fs::write(data.join("sub/new.txt"), "created after the backup").unwrap();
    std::fs::remove_file(data.join("report.bin")).unwrap();

    let outcome = run(
        &fixture.plugin(),
        "restore_file",
        json!({"path": data.join("sub"), "target": "original", "snapshot": "latest"}),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(
        std::fs::read_to_string(data.join("sub/notes.md")).unwrap(),
        "# Notes\nline two\n"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("sub/deeper/plan.txt")).unwrap(),
        "plan"
    );
    // Files outside the path stay as they are, and newer files inside it are kept.
    assert!(!data.join("report.bin").exists());
    assert!(data.join("sub/new.txt").exists());
    assert_eq!(outcome.data["files"], 2);
    assert_eq!(outcome.data["directories"], 2);
    assert_eq!(outcome.data["bytes"], 17 + 4);
    assert!(
        outcome.summary.contains(": 2 files, 21 bytes"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn directory_target_recreates_the_path_below_it() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let source = fixture.data().join("report.bin");

    let outcome = run(
        &fixture.plugin(),
        "restore_file",
        json!({"path": source, "target": fixture.restores()}),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    let copy = fixture.restores().join(source.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(&copy).unwrap(), report_bytes());
    assert!(
        outcome.summary.starts_with(&format!(
            "Restored {} to {} from snapshot",
            source.display(),
            copy.display()
        )),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.data["restored_paths"], json!([copy]));
    // Nothing else of the snapshot came along.
    let restored_dir = copy.parent().unwrap();
    let names: Vec<_> = std::fs::read_dir(restored_dir).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[tokio::test]
async fn older_snapshot_is_restored_by_id() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let first: Vec<Value> =
        serde_json::from_str(&fixture.restic(&["snapshots", "--json"])).unwrap();
    let first_id = first[0]["id"].as_str().unwrap().to_owned();
    let file = fixture.data().join("sub/notes.md");
    std::fs::write(&file, "second version").unwrap();
    let second_id = fixture.backup();
    std::fs::write(&file, "third version, never backed up").unwrap();
    let plugin = fixture.plugin();

    let outcome = run(
        &plugin,
        "restore_file",
        json!({"path": file, "target": "original", "snapshot": &first_id[..8]}),
    )
    .await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# Notes\nline two\n"
    );
    assert_eq!(outcome.data["snapshot_id"], first_id);

    let outcome = run(
        &plugin,
        "restore_file",
        json!({"path": file, "target": "original"}),
    )
    .await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "second version");
    assert_eq!(outcome.data["snapshot_id"], second_id);
}

#[tokio::test]
async fn path_missing_from_the_snapshot_fails_clearly() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let absent = fixture.data().join("never-existed.txt");

    let outcome = run(
        &fixture.plugin(),
        "restore_file",
        json!({"path": absent, "target": "original"}),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    let expected = format!(
        "{} is not in snapshot {} of ",
        absent.display(),
        outcome.data["snapshot"]["short_id"].as_str().unwrap()
    );
    assert!(
        outcome.summary.starts_with(&expected),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.contains(&format!(
            "in repository `files`, which backed up {}. Check the path",
            fixture.data().display()
        )),
        "{}",
        outcome.summary
    );
    assert!(!absent.exists());
}

#[tokio::test]
async fn unknown_snapshot_fails_with_restics_reason() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();

    let outcome = run(
        &fixture.plugin(),
        "restore_file",
        json!({"path": fixture.data().join("report.bin"), "target": "original", "snapshot": "deadbeef"}),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    // restic 0.14 reports the unknown id on stderr and exits with 0; newer versions exit
    // with an error. Both name the snapshot and the repository.
    assert!(
        outcome
            .summary
            .starts_with("Snapshot deadbeef is not in repository `files` (restic: ")
            || outcome.summary.contains(
                "in snapshot deadbeef of repository `files`: /usr/bin/restic exited with code"
            ),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.contains("no matching ID"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn hostile_paths_are_rejected_before_restic_runs() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    let escape = format!("{}/../../etc/passwd", fixture.data().display());

    for (path, problem) in [
        ("-rf", "is not an absolute path"),
        ("--help", "is not an absolute path"),
        ("../etc/passwd", "is not an absolute path"),
        ("$(id)", "is not an absolute path"),
        ("`id`", "is not an absolute path"),
        (escape.as_str(), "contains `..`"),
    ] {
        let result = plugin
            .run(
                request("restore_file", json!({"path": path, "target": "original"})),
                CancellationToken::new(),
            )
            .await;

        let Err(PluginError::Failed(message)) = result else {
            panic!("{path:?} was not rejected: {result:?}");
        };
        assert!(
            message.starts_with("1 invalid parameter for action `restore_file`:"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "parameter `path` (value {}): {problem}. Give the full path",
                Value::from(path)
            )),
            "{message}"
        );
    }
    assert!(!Path::new("-rf").exists());
}

#[tokio::test]
async fn option_and_glob_names_restore_alone() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let data = fixture.data();
    for name in ["-rf", "$(id)", "b [1].txt", "b 1.txt"] {
        std::fs::remove_file(data.join(name)).unwrap();
    }
    let plugin = fixture.plugin();

    for name in ["-rf", "$(id)", "b [1].txt"] {
        let outcome = run(
            &plugin,
            "restore_file",
            json!({"path": data.join(name), "target": "original"}),
        )
        .await;
        assert_eq!(
            outcome.status,
            OutcomeStatus::Succeeded,
            "{name}: {outcome:#?}"
        );
        assert_eq!(outcome.data["files"], 1, "{name}");
        assert!(data.join(name).is_file(), "{name}");
    }
    // An unescaped `[1]` would have matched `b 1.txt` as well.
    assert!(!data.join("b 1.txt").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("b [1].txt")).unwrap(),
        "brackets"
    );
}

#[tokio::test]
async fn targets_outside_allowed_are_rejected() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    let outside = fixture.root().join("elsewhere");

    let result = plugin
        .run(
            request(
                "restore_file",
                json!({"path": fixture.data().join("report.bin"), "target": outside}),
            ),
            CancellationToken::new(),
        )
        .await;
    let Err(PluginError::Failed(message)) = result else {
        panic!("an outside target was accepted: {result:?}");
    };
    assert!(
        message.contains("parameter `target`")
            && message.contains("lies outside the allowed targets"),
        "{message}"
    );
    assert!(!outside.exists());

    // A restore in place is rejected too for a path outside the allowed targets.
    let result = plugin
        .run(
            request(
                "restore_file",
                json!({"path": "/etc/hostname", "target": "original"}),
            ),
            CancellationToken::new(),
        )
        .await;
    let Err(PluginError::Failed(message)) = result else {
        panic!("an in-place restore outside the targets was accepted: {result:?}");
    };
    assert!(message.contains("cannot be restored in place"), "{message}");
}

#[tokio::test]
async fn link_out_of_target_is_rejected() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let data = fixture.data();
    let sub = data.join("sub");
    let decoy = fixture.root().join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    std::os::unix::fs::symlink(&decoy, &sub).unwrap();
    let plugin = fixture.plugin();

    // The path itself leads out through the link: a parameter error.
    let result = plugin
        .run(
            request(
                "restore_file",
                json!({"path": sub.join("notes.md"), "target": "original"}),
            ),
            CancellationToken::new(),
        )
        .await;
    let Err(PluginError::Failed(message)) = result else {
        panic!("a path through a link was accepted: {result:?}");
    };
    assert!(message.contains("cannot be restored in place"), "{message}");

    // A directory inside the target whose files would pass through the link is rejected
    // after the listing, before restic writes anything.
    let outcome = run(
        &plugin,
        "restore_file",
        json!({"path": data, "target": "original"}),
    )
    .await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:#?}");
    assert!(
        outcome.summary.starts_with(&format!(
            "Did not restore {}, because 4 of its 10 paths would be written outside the allowed targets through a symbolic link, the first at {}",
            data.display(),
            sub.display()
        )),
        "{}",
        outcome.summary
    );
    assert_eq!(std::fs::read_dir(&decoy).unwrap().count(), 0);
}

#[tokio::test]
async fn wrong_password_fails_with_restics_reason() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    std::fs::write(fixture.password_file(), "not the password").unwrap();

    let outcome = run(&plugin, "list_snapshots", json!({})).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.starts_with(
            "Could not list the snapshots of repository `files`: /usr/bin/restic exited with code 1"
        ),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.contains("wrong password"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn missing_password_file_is_named() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let plugin = fixture.plugin();
    std::fs::remove_file(fixture.password_file()).unwrap();

    let outcome = run(&plugin, "list_snapshots", json!({})).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        format!(
            "The password file {} of repository `files` does not exist. Create it, readable only by Tend, or fix `password_file` of `files` in recovery.yaml",
            fixture.password_file().display()
        )
    );
    assert_eq!(plugin.missing_setup(), [outcome.summary]);
}

#[tokio::test]
async fn password_from_the_environment_is_used() {
    if !restic_installed() {
        return;
    }
    // Tests may not change their own environment (the workspace forbids unsafe code), so
    // the repository's password is the value of a variable every test process has.
    let Ok(password) = std::env::var("PATH") else {
        eprintln!("skipped: PATH is not set");
        return;
    };
    let fixture = Fixture::new();
    std::fs::write(fixture.password_file(), &password).unwrap();
    let repo = fixture.root().join("env-repo");
    fixture.restic(&["init", &format!("--repo={}", repo.display())]);
    let yaml = format!(
        "allowed_targets: [\"{}\"]\nrepositories:\n  env:\n    repository: \"{}\"\n    password_env: PATH\n",
        fixture.restores().display(),
        repo.display()
    );
    let plugin = RecoveryPlugin::from_yaml("recovery.yaml", &yaml).unwrap();

    let outcome = run(&plugin, "list_snapshots", json!({"repository": "env"})).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert_eq!(outcome.summary, "Repository `env` has no snapshots");
    assert!(!outcome.data.to_string().contains(&password));
}

#[tokio::test]
async fn snapshots_are_listed_newest_first() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    let second = fixture.backup();
    let plugin = fixture.plugin();

    let outcome = run(&plugin, "list_snapshots", json!({})).await;

    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:#?}");
    assert!(
        outcome.summary.starts_with(&format!(
            "Repository `files` has 2 snapshots; the newest is {} of ",
            &second[..8]
        )),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.data["count"], 2);
    assert_eq!(outcome.data["snapshots"][0]["id"], second);
    assert_eq!(outcome.output.lines().count(), 2);
    assert!(
        outcome.output.starts_with(&second[..8]),
        "{}",
        outcome.output
    );

    let covered = run(
        &plugin,
        "list_snapshots",
        json!({"path": fixture.data().join("report.bin")}),
    )
    .await;
    assert_eq!(covered.data["count"], 2, "{covered:#?}");
    assert!(
        covered.summary.contains(" that cover "),
        "{}",
        covered.summary
    );

    let other = run(&plugin, "list_snapshots", json!({"path": "/var/elsewhere"})).await;
    assert_eq!(other.status, OutcomeStatus::Succeeded);
    assert_eq!(
        other.summary,
        "Repository `files` has no snapshots that cover /var/elsewhere"
    );
}

#[tokio::test]
async fn cancelled_run_stops_restic() {
    if !restic_installed() {
        return;
    }
    let fixture = Fixture::new();
    // restic blocks opening a named pipe that no process writes, so the run is still going when
    // it is cancelled.
    let fifo = fixture.root().join("password-fifo");
    let status = Command::new("/usr/bin/mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let yaml = fixture.config().replace(
        &fixture.password_file().display().to_string(),
        &fifo.display().to_string(),
    );
    let plugin = RecoveryPlugin::from_yaml("recovery.yaml", &yaml).unwrap();
    let cancel = CancellationToken::new();

    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            plugin
                .run(request("list_snapshots", json!({})), cancel)
                .await
        }
    });
    let marker = fifo.display().to_string();
    wait_until(Duration::from_secs(10), || {
        !processes_naming(&marker).is_empty()
    })
    .await;
    assert!(
        !processes_naming(&marker).is_empty(),
        "restic did not start"
    );
    let started = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the cancelled run did not end")
        .unwrap();

    assert!(matches!(result, Err(PluginError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_until(Duration::from_secs(5), || {
        processes_naming(&marker).is_empty()
    })
    .await;
    assert_eq!(processes_naming(&marker), Vec::<u32>::new());
}

/// Lists the processes whose command line contains `text`.
fn processes_naming(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(text)
        {
            found.push(pid);
        }
    }
    found
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
