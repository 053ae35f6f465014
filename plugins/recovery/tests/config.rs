//! Loading the configuration: the shipped file, the declared actions, and the messages for
//! broken files.

use std::path::{Path, PathBuf};

use serde_json::json;
use tend_plugin_api::{ActionRequest, CancellationToken, OutcomeStatus, ParamType, Plugin};
use tend_plugin_recovery::{PasswordSource, RecoveryPlugin};

fn problems(yaml: &str) -> Vec<String> {
    RecoveryPlugin::from_yaml("recovery.yaml", yaml)
        .unwrap_err()
        .problems
}

#[test]
fn shipped_file_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("recovery.yaml");

    let plugin = RecoveryPlugin::load(&file).unwrap();

    assert_eq!(plugin.name(), "recovery");
    let names: Vec<&str> = plugin.actions().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["restore_file", "list_snapshots"]);
    let config = plugin.config();
    assert_eq!(config.restic, Path::new("/usr/bin/restic"));
    assert_eq!(config.timeout_seconds, 3600);
    assert_eq!(
        config.allowed_targets,
        [
            PathBuf::from("/srv/share"),
            PathBuf::from("/var/tmp/tend-restores")
        ]
    );
    assert_eq!(
        config.repositories["files"].password,
        PasswordSource::File(PathBuf::from("/etc/tend/restic-files.password"))
    );
}

#[test]
fn actions_declare_the_repositories_as_choices() {
    let yaml = "repositories:\n  files: {repository: /b/files, password_file: /p/f}\n  mail: {repository: 'sftp:backup@nas:/srv/mail', password_env: MAIL_PW}\nroles: [technician]\ntimeout_seconds: 120\n";

    let plugin = RecoveryPlugin::from_yaml("recovery.yaml", yaml).unwrap();

    let restore = &plugin.actions()[0];
    assert_eq!(restore.timeout_seconds, 120);
    assert_eq!(restore.roles, ["technician"]);
    assert!(restore.idempotent);
    let keys: Vec<&str> = restore.params.keys().map(String::as_str).collect();
    assert_eq!(keys, ["repository", "path", "snapshot", "target"]);
    let repository = &restore.params["repository"];
    assert_eq!(repository.kind, ParamType::Enum);
    assert_eq!(repository.values, ["files", "mail"]);
    assert_eq!(repository.default, None);
    assert_eq!(restore.params["snapshot"].default, Some(json!("latest")));
    assert!(restore.params["target"].required);

    let list = &plugin.actions()[1];
    assert!(!list.params["path"].required);
}

#[test]
fn single_repository_is_the_default() {
    let plugin = RecoveryPlugin::from_yaml(
        "recovery.yaml",
        "repositories:\n  files: {repository: /b/files, password_file: /p/f}\n",
    )
    .unwrap();

    assert_eq!(
        plugin.actions()[0].params["repository"].default,
        Some(json!("files"))
    );
    // No roles means admins only.
    assert!(plugin.actions()[0].roles.is_empty());
}

#[test]
fn inline_password_is_rejected_unechoed() {
    let found = problems(
        "repositories:\n  files:\n    repository: /b/files\n    password: hunter2-secret\n    password_file: /p/f\n",
    );

    assert_eq!(
        found,
        [
            "recovery.yaml: repository `files`: `password` is not accepted, so that the password never sits in this file. Put it in a file readable only by Tend and name that file in `password_file`, or name an environment variable in `password_env`"
        ]
    );
    assert!(!found[0].contains("hunter2"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        r#"
restic: restic
allowed_targets: [/, srv/share, /srv/../etc]
cache_dir: cache
output_limit_bytes: 0
timeout_seconds: 0
repositories:
  Files:
    repository: backups/files
    password_file: /p/f
  both:
    repository: /b/both
    password_file: /p/f
    password_env: PW
  none:
    repository: 'ftp:host:/x'
  envs:
    repository: /b/envs
    password_env: 1PW
    pass_env: [AWS_KEY, RESTIC_PASSWORD_COMMAND, "bad name"]
  relative:
    repository: /b/rel
    password_file: secrets/pw
"#,
    );

    let expected = [
        "recovery.yaml: `restic` is not an absolute path. Write the full path of the program, such as /usr/bin/restic (`command -v restic` prints it)",
        "recovery.yaml: allowed target `/` would let a run overwrite any file of the machine. List the directories that restores may write to, such as /srv/share",
        "recovery.yaml: allowed target `srv/share` is not an absolute path. Write the full path of a directory, such as /srv/restores",
        "recovery.yaml: allowed target `/srv/../etc` contains `.` or `..`. Write the full path of a directory, such as /srv/restores",
        "recovery.yaml: `cache_dir` `cache` is not an absolute path. Write the full path of a directory, such as /var/cache/tend/restic",
        "recovery.yaml: output_limit_bytes is 0. Set it between 1 and 16777216, or remove it for 65536",
        "recovery.yaml: repository `Files`: the name is invalid. Use lowercase letters, digits, `_` and `-`, starting with a letter or digit, at most 64 characters, such as `files`",
        "recovery.yaml: repository `Files`: `repository` `backups/files` is neither an absolute path nor a restic URL. Write the full path, such as /var/backups/restic, or a URL that starts with one of `local:`, `sftp:`, `rest:`, `s3:`, `b2:`, `azure:`, `gs:`, `swift:`, `rclone:`, `opendal:`",
        "recovery.yaml: repository `both`: both `password_file` and `password_env` are set. Keep one of them",
        "recovery.yaml: repository `none`: `repository` `ftp:host:/x` is neither an absolute path nor a restic URL. Write the full path, such as /var/backups/restic, or a URL that starts with one of `local:`, `sftp:`, `rest:`, `s3:`, `b2:`, `azure:`, `gs:`, `swift:`, `rclone:`, `opendal:`",
        "recovery.yaml: repository `none`: no password source. Set `password_file` to a file that holds the password, or `password_env` to the environment variable that does",
        "recovery.yaml: repository `envs`: `password_env` `1PW` is not a valid variable name. Use letters, digits and `_`, not starting with a digit, such as TEND_RESTIC_PASSWORD",
        "recovery.yaml: repository `envs`: `pass_env` names `RESTIC_PASSWORD_COMMAND`, which the plugin sets from `repository`, `password_file` and `password_env`. Remove it from `pass_env`",
        "recovery.yaml: repository `envs`: `pass_env` names `bad name`, which is not a valid variable name. Use letters, digits and `_`, not starting with a digit",
        "recovery.yaml: repository `relative`: `password_file` `secrets/pw` is not an absolute path. Write the full path, such as /etc/tend/restic-relative.password",
    ];
    assert_eq!(found, expected);
}

#[test]
fn zero_timeout_is_reported() {
    let found = problems(
        "timeout_seconds: 0\nrepositories:\n  files: {repository: /b/files, password_file: /p/f}\n",
    );

    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("recovery.yaml: action `restore_file`"),
        "{found:#?}"
    );
    assert!(found[0].contains("timeout_seconds"), "{found:#?}");
}

#[test]
fn yaml_errors_name_line_and_field() {
    let found =
        problems("repositories:\n  files:\n    repository: /b/files\n    pasword_file: /p/f\n");

    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "recovery.yaml:4:5: repositories.files.pasword_file: unknown field `pasword_file`"
        ),
        "{found:#?}"
    );
}

#[test]
fn empty_repository_list_is_reported() {
    assert_eq!(
        problems("repositories: {}\n"),
        [
            "recovery.yaml: `repositories` is empty. Name at least one restic repository, with its `repository` location and its `password_file` or `password_env`"
        ]
    );
}

#[tokio::test]
async fn missing_restic_is_named() {
    let yaml = "restic: /nonexistent/restic\nrepositories:\n  files: {repository: 'sftp:backup@nas:/srv/files', password_file: /p/f}\n";
    let plugin = RecoveryPlugin::from_yaml("recovery.yaml", yaml).unwrap();
    let request = ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 3,
        plugin: String::from("recovery"),
        action: String::from("list_snapshots"),
        params: serde_json::Map::new(),
        record: None,
        actor: String::from("alice"),
    };

    let outcome = plugin.run(request, CancellationToken::new()).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "restic is not installed at /nonexistent/restic. Install it (Debian: apt-get install restic), or fix `restic` in recovery.yaml"
    );
    assert_eq!(
        plugin.missing_setup().len(),
        2,
        "{:#?}",
        plugin.missing_setup()
    );
}
