//! Builds plugin directories for tests: a manifest and a small shell script that plays a
//! plugin, well-behaved or not.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tend_plugin_api::ActionRequest;

/// Manifest of a plugin `name` with one action `act`, which takes a `path` and a `count`
/// with a default, and times out after `timeout_seconds`.
pub fn manifest(name: &str, timeout_seconds: u64, extra: &str) -> String {
    format!(
        "name: {name}
description: Test plugin
executable: run.sh
{extra}
actions:
  - name: act
    label: Act
    params:
      path: {{type: string, required: true}}
      count: {{type: integer, default: 3}}
    timeout_seconds: {timeout_seconds}
"
    )
}

/// Creates `<parent>/<name>/` with `plugin.yaml` and an executable `run.sh`.
pub fn write_plugin(parent: &Path, name: &str, manifest: &str, script: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.yaml"), manifest).unwrap();
    let program = dir.join("run.sh");
    std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.join("plugin.yaml")
}

pub fn request(plugin: &str, action: &str, params: Value) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 42,
        plugin: plugin.to_owned(),
        action: action.to_owned(),
        params,
        record: None,
        actor: String::from("alice"),
    }
}
