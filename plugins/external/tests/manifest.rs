//! Loading manifests and plugin directories, and the messages for broken manifests.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tend_plugin_api::Plugin;
use tend_plugin_external::ExternalPlugin;

use common::{manifest, write_plugin};

fn problems_of(file: &Path) -> Vec<String> {
    ExternalPlugin::load(file).unwrap_err().problems
}

#[test]
fn valid_manifest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(dir.path(), "probe", &manifest("probe", 10, ""), "exit 0");

    let plugin = ExternalPlugin::load(&file).unwrap();

    assert_eq!(plugin.name(), "probe");
    assert_eq!(plugin.description(), "Test plugin");
    assert_eq!(plugin.actions().len(), 1);
    assert_eq!(plugin.actions()[0].name, "act");
    assert!(plugin.executable().is_absolute());
    assert!(plugin.executable().ends_with("probe/run.sh"));
}

#[test]
fn missing_executable_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(dir.path(), "probe", &manifest("probe", 10, ""), "exit 0");
    std::fs::remove_file(dir.path().join("probe/run.sh")).unwrap();

    let problems = problems_of(&file);

    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("executable `run.sh` was not found at "),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].ends_with("Put the program there or fix `executable`"),
        "{}",
        problems[0]
    );
}

#[test]
fn non_executable_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(dir.path(), "probe", &manifest("probe", 10, ""), "exit 0");
    let program = dir.path().join("probe/run.sh");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644)).unwrap();

    let problems = problems_of(&file);

    assert_eq!(
        problems,
        [format!(
            "{}: executable `run.sh` at {} is not executable. Run `chmod +x {}`",
            file.display(),
            program.display(),
            program.display()
        )]
    );
}

#[test]
fn executable_outside_the_directory_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = manifest("probe", 10, "").replace("executable: run.sh", "executable: ../run.sh");
    let file = write_plugin(dir.path(), "probe", &text, "exit 0");

    let problems = problems_of(&file);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("leaves the plugin's directory with `..`"));

    let text = manifest("probe", 10, "").replace("executable: run.sh", "executable: /bin/true");
    let file = write_plugin(dir.path(), "probe", &text, "exit 0");

    let problems = problems_of(&file);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains(
        "is an absolute path. Write it relative to the manifest's directory, such as `true`"
    ));
}

#[test]
fn yaml_error_names_line_action_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = manifest("probe", 10, "").replace("timeout_seconds: 10", "timeout_seconds: -1");
    let file = write_plugin(dir.path(), "probe", &text, "exit 0");

    let problems = problems_of(&file);

    assert_eq!(
        problems,
        [format!(
            "{}:11:22: action `act`: field `actions[0].timeout_seconds`: invalid type: integer `-1`, expected u64",
            file.display()
        )]
    );
}

#[test]
fn unknown_field_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plugin(
        dir.path(),
        "probe",
        &manifest("probe", 10, "command: run.sh --fast"),
        "exit 0",
    );

    let problems = problems_of(&file);

    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .contains(":4:1: field `command`: unknown field `command`, expected one of `name`"),
        "{}",
        problems[0]
    );
}

#[test]
fn every_manifest_problem_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = manifest("Probe Plugin", 0, "protocol: 2\noutput_limit_bytes: 0");
    let file = write_plugin(dir.path(), "probe", &text, "exit 0");

    let problems = problems_of(&file);

    let file_name = file.display();
    assert_eq!(
        problems,
        [
            format!(
                "{file_name}: plugin name `Probe Plugin` is invalid: it starts with `P`, not a lowercase letter. Use lowercase letters, digits and underscores, such as `disk_report`"
            ),
            format!(
                "{file_name}: the plugin speaks protocol 2, but this Tend speaks protocol 1. Update the plugin or Tend"
            ),
            format!(
                "{file_name}: action `act` has timeout_seconds 0. Set how many seconds a run may take, such as 60"
            ),
            format!(
                "{file_name}: output_limit_bytes is 0, which keeps no output. Set a limit such as 1048576, or remove it for that default"
            ),
        ]
    );
}

#[test]
fn manifest_without_actions_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name: empty\nexecutable: run.sh\nactions: []\n";
    let file = write_plugin(dir.path(), "empty", text, "exit 0");

    let problems = problems_of(&file);

    assert_eq!(
        problems,
        [format!(
            "{}: the plugin declares no actions. Add at least one under `actions`",
            file.display()
        )]
    );
}

#[test]
fn unreadable_manifest_is_reported() {
    let problems = problems_of(Path::new("/nonexistent/plugin.yaml"));

    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("/nonexistent/plugin.yaml: could not read the plugin manifest: ")
    );
}

#[test]
fn load_dir_keeps_good_plugins() {
    let dir = tempfile::tempdir().unwrap();
    write_plugin(dir.path(), "alpha", &manifest("alpha", 10, ""), "exit 0");
    write_plugin(dir.path(), "broken", &manifest("broken", 0, ""), "exit 0");
    write_plugin(dir.path(), "gamma", &manifest("gamma", 10, ""), "exit 0");
    std::fs::create_dir(dir.path().join("notes")).unwrap();
    std::fs::write(dir.path().join("README"), "not a plugin").unwrap();

    let (plugins, errors) = ExternalPlugin::load_dir(dir.path());

    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["alpha", "gamma"]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].file.ends_with("broken/plugin.yaml"));
    assert!(errors[0].problems[0].contains("timeout_seconds 0"));
}

#[test]
fn load_dir_rejects_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    write_plugin(dir.path(), "first", &manifest("same", 10, ""), "exit 0");
    write_plugin(dir.path(), "second", &manifest("same", 10, ""), "exit 0");

    let (plugins, errors) = ExternalPlugin::load_dir(dir.path());

    assert_eq!(plugins.len(), 1);
    assert!(plugins[0].manifest_path().ends_with("first/plugin.yaml"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].problems[0].contains("plugin name `same` is already used by "),
        "{}",
        errors[0].problems[0]
    );
}

#[test]
fn load_dir_reports_missing_directory() {
    let (plugins, errors) = ExternalPlugin::load_dir("/nonexistent/plugins");

    assert!(plugins.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].problems[0]
            .starts_with("/nonexistent/plugins: could not read the plugins directory: ")
    );
}
