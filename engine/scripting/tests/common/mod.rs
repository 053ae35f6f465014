//! Helpers shared by the integration tests: a definitions directory in a temporary folder
//! and records to run rules against.

#![allow(dead_code)]

use std::fs;

use chrono::DateTime;
use serde_json::{Value, json};
use tempfile::TempDir;
use tend_domain::{Actor, Fields, ProposedEffect, Record, Role};
use tend_scripting::{Limits, RuleHost};
use tend_workflow::{Hook, RuleFailure, RuleInput, RuleRunner};

/// A host over a temporary definitions directory. The directory lives as long as this.
pub struct TestRules {
    pub dir: TempDir,
    pub host: RuleHost,
}

impl TestRules {
    pub fn new(rules: &[(&str, &str)]) -> TestRules {
        TestRules::with_limits(rules, Limits::default())
    }

    pub fn with_limits(rules: &[(&str, &str)], limits: Limits) -> TestRules {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        for (name, source) in rules {
            write_rule(&dir, name, source);
        }
        let host = RuleHost::with_limits(dir.path(), limits);
        TestRules { dir, host }
    }

    pub fn write(&self, name: &str, source: &str) {
        write_rule(&self.dir, name, source);
    }

    pub fn run(&self, rule: &str, record: &Record) -> Result<Vec<ProposedEffect>, RuleFailure> {
        run_on(&self.host, rule, record)
    }
}

fn write_rule(dir: &TempDir, name: &str, source: &str) {
    let path = dir.path().join("rules").join(format!("{name}.rhai"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, source).unwrap();
}

pub fn run_on(
    host: &RuleHost,
    rule: &str,
    record: &Record,
) -> Result<Vec<ProposedEffect>, RuleFailure> {
    let actor = Actor::new("tara", vec![Role::Technician]);
    let input = RuleInput {
        hook: Hook::OnCreate,
        record,
        previous: None,
        actor: &actor,
        transition: None,
        links: &[],
        linked: None,
        now: chrono::DateTime::UNIX_EPOCH,
        email: None,
        cmdb: None,
        alert: None,
    };
    host.run(rule, &input)
}

pub fn record(title: &str, fields: Value) -> Record {
    let fields: Fields = match fields {
        Value::Object(map) => map,
        other => panic!("fields must be a JSON object, got {other}"),
    };
    Record {
        id: 1,
        number: "INC0000001".to_owned(),
        process: "incident".to_owned(),
        definition_version: "test".to_owned(),
        state: "new".to_owned(),
        open: true,
        title: title.to_owned(),
        description: String::new(),
        fields,
        recommendations: Vec::new(),
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
        state_changed_at: DateTime::UNIX_EPOCH,
        revision: 1,
    }
}

pub fn plain_record() -> Record {
    record("printer jam", json!({ "impact": "low", "urgency": "low" }))
}
