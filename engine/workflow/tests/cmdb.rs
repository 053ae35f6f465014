//! Loading of the CMDB schema: CI classes with inheritance, relationship types, and every
//! load error with its file, line and column.

use std::path::{Path, PathBuf};

use tend_workflow::cmdb::{AttributeOwner, AttributeType, ImpactDirection};
use tend_workflow::{DefinitionSet, RuleCheckError, RuleFailure, RuleInput, RuleRunner, load_dir};

/// Accepts every rule whose script exists under `rules/`.
struct ExistingRules(PathBuf);

impl RuleRunner for ExistingRules {
    fn check(&self, rule: &str) -> Result<(), RuleCheckError> {
        let path = self.0.join("rules").join(format!("{rule}.rhai"));
        if path.is_file() {
            Ok(())
        } else {
            Err(RuleCheckError::Missing {
                rule: rule.into(),
                expected: path,
            })
        }
    }

    fn run(
        &self,
        rule: &str,
        _: &RuleInput<'_>,
    ) -> Result<Vec<tend_domain::ProposedEffect>, RuleFailure> {
        Err(RuleFailure {
            rule: rule.into(),
            message: "not run in load tests".into(),
        })
    }
}

const TICKET: &str = "\
process: ticket
title: Ticket
number_prefix: TKT
fields:
  ci: { type: ci_ref }
states:
  open: { initial: true }
  done: { final: true }
transitions:
  - { name: finish, from: open, to: done, roles: [technician] }
";

const CLASSES: &str = "\
classes:
  computer:
    label: Computer
    abstract: true
    attributes:
      serial_number: { type: string, owner: discovery, unique: true }
      uuid: { type: string, owner: discovery }
      ip_addresses: { type: list, of: string, owner: discovery }
    keys: [[serial_number], [uuid]]
  server:
    label: Server
    extends: computer
    attributes:
      environment: { type: enum, values: [production, test] }
      room: { type: ci, class: location }
    keys: [[uuid, serial_number]]
  location:
    label: Location
  service:
    label: Service
    attributes:
      criticality: { type: enum, values: [low, high], required: true }
";

const RELATIONSHIPS: &str = "\
relationship_types:
  runs_on:
    label: Runs on
    inverse_label: Runs
    from: [service]
    to: [computer]
    impact: true
  used_by:
    label: Used by
    inverse_label: Uses
    from: [service]
    to: [service]
    impact: true
    impact_flows: to_target
  located_in:
    label: Located in
    inverse_label: Contains
    to: [location]
";

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn load(files: &[(&str, &str)]) -> Result<DefinitionSet, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", TICKET);
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    load_dir(dir.path(), &ExistingRules(dir.path().to_path_buf())).map_err(|error| {
        error
            .diagnostics
            .iter()
            .map(|d| {
                let file = d.file.strip_prefix(dir.path()).unwrap().display();
                format!("{file}:{}:{}: {}", d.line, d.column, d.message)
            })
            .collect()
    })
}

fn load_errors(files: &[(&str, &str)]) -> Vec<String> {
    match load(files) {
        Ok(_) => panic!("the set loaded, but errors were expected"),
        Err(errors) => errors,
    }
}

/// Asserts that `errors` holds exactly one error per prefix, in any order.
fn assert_errors(errors: &[String], expected: &[&str]) {
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "missing `{prefix}` in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn classes_inherit_attributes_and_keys() {
    let set = load(&[
        ("workflows/cmdb/classes/all.yaml", CLASSES),
        ("workflows/cmdb/relationships.yaml", RELATIONSHIPS),
    ])
    .unwrap();
    let cmdb = &set.cmdb;
    let server = cmdb.class("server").unwrap();

    assert_eq!(server.ancestors, ["computer"]);
    let names: Vec<&str> = server.attributes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "serial_number",
            "uuid",
            "ip_addresses",
            "environment",
            "room"
        ]
    );
    assert_eq!(server.attributes["serial_number"].declared_by, "computer");
    assert_eq!(
        server.attributes["serial_number"].def.owner,
        AttributeOwner::Discovery
    );
    assert_eq!(server.attributes["room"].def.owner, AttributeOwner::People);
    assert_eq!(
        server.attributes["ip_addresses"].def.value_type(),
        AttributeType::String
    );
    assert_eq!(
        server.keys,
        [
            vec!["uuid".to_owned(), "serial_number".to_owned()],
            vec!["serial_number".to_owned()],
            vec!["uuid".to_owned()],
        ]
    );
    assert!(cmdb.class("computer").unwrap().is_abstract);
    assert_eq!(cmdb.subclasses_of("computer"), ["computer", "server"]);
}

#[test]
fn relationship_types_match_subclasses() {
    let set = load(&[
        ("workflows/cmdb/classes/all.yaml", CLASSES),
        ("workflows/cmdb/relationships.yaml", RELATIONSHIPS),
    ])
    .unwrap();
    let cmdb = &set.cmdb;
    let runs_on = cmdb.relationship_type("runs_on").unwrap();

    assert!(
        cmdb.allows_target(runs_on, "server"),
        "a server is a computer"
    );
    assert!(!cmdb.allows_target(runs_on, "location"));
    assert!(cmdb.allows_source(runs_on, "service"));
    assert!(!cmdb.allows_source(runs_on, "server"));
    assert_eq!(runs_on.impact_flows, ImpactDirection::ToSource);
    assert_eq!(
        cmdb.relationship_type("used_by").unwrap().impact_flows,
        ImpactDirection::ToTarget
    );
    assert!(!cmdb.relationship_type("located_in").unwrap().impact);
    // Only `located_in` reaches a location, and it carries no impact.
    assert_eq!(cmdb.classes_without_impact(), ["location"]);
}

#[test]
fn inheritance_cycle_is_load_error() {
    let text = "\
classes:
  a:
    label: A
    extends: c
  b:
    label: B
    extends: a
  c:
    label: C
    extends: b
  d:
    label: D
    extends: a
";
    let errors = load_errors(&[("workflows/cmdb/classes/cycle.yaml", text)]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/cycle.yaml:4:14: class `a` inherits from itself through a → c → b → a",
            "workflows/cmdb/classes/cycle.yaml:7:14: class `b` inherits from itself through b → a → c → b",
            "workflows/cmdb/classes/cycle.yaml:10:14: class `c` inherits from itself through c → b → a → c",
        ],
    );
}

#[test]
fn self_inheritance_is_load_error() {
    let text = "classes:\n  a: { label: A, extends: a }\n";
    let errors = load_errors(&[("workflows/cmdb/classes/self.yaml", text)]);
    assert_errors(
        &errors,
        &["workflows/cmdb/classes/self.yaml:2:27: class `a` inherits from itself through a → a"],
    );
}

#[test]
fn unknown_parent_is_load_error() {
    let text = "\
classes:
  computer: { label: Computer }
  server:
    label: Server
    extends: compute
";
    let errors = load_errors(&[("workflows/cmdb/classes/bad.yaml", text)]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/bad.yaml:5:14: class `server` extends unknown class `compute`: did you mean `computer`?",
        ],
    );
}

#[test]
fn unknown_attribute_type_is_load_error() {
    let text = "\
classes:
  server:
    label: Server
    attributes:
      memory_mb: { type: integer }
      fqdn: { type: string }
";
    let errors = load_errors(&[("workflows/cmdb/classes/bad.yaml", text)]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "workflows/cmdb/classes/bad.yaml:5:26: `classes.server.attributes.memory_mb.type`: unknown variant `integer`"
        ),
        "{errors:?}"
    );
    assert!(errors[0].contains("`number`"), "{errors:?}");
}

#[test]
fn enum_without_values_is_load_error() {
    let text = "\
classes:
  service:
    label: Service
    attributes:
      criticality: { type: enum }
      tags: { type: list, of: enum, values: [a, b, a] }
";
    let errors = load_errors(&[("workflows/cmdb/classes/bad.yaml", text)]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/bad.yaml:5:28: enum attribute `criticality` of class `service` has no values: list them under `values`",
            "workflows/cmdb/classes/bad.yaml:6:52: value `a` is listed twice in attribute `tags` of class `service`",
        ],
    );
}

#[test]
fn attribute_shape_errors_name_fix() {
    let text = "\
classes:
  server:
    label: Server
    attributes:
      name: { type: string }
      addresses: { type: list }
      rack: { type: ci, class: rak }
      size: { type: number, values: [s, m] }
      owner: { type: user, class: server }
      tags: { type: list, of: string, unique: true }
  rack: { label: Rack }
";
    let errors = load_errors(&[("workflows/cmdb/classes/bad.yaml", text)]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/bad.yaml:5:7: attribute `name` of class `server` has the name of a CI column",
            "workflows/cmdb/classes/bad.yaml:6:26: list attribute `addresses` of class `server` has no item type: add `of: string`",
            "workflows/cmdb/classes/bad.yaml:7:32: attribute `rack` of class `server` refers to unknown class `rak`: did you mean `rack`?",
            "workflows/cmdb/classes/bad.yaml:8:29: attribute `size` of class `server` lists `values` but is not an enum",
            "workflows/cmdb/classes/bad.yaml:9:35: attribute `owner` of class `server` names a `class` but holds no CI reference",
            "workflows/cmdb/classes/bad.yaml:10:47: attribute `tags` of class `server` is a list and cannot be unique",
        ],
    );
}

#[test]
fn key_and_redefinition_errors() {
    let text = "\
classes:
  computer:
    label: Computer
    attributes:
      uuid: { type: string }
  server:
    label: Server
    extends: computer
    attributes:
      uuid: { type: number }
    keys: [[uuid], [serial], []]
  other:
    extends: computer
";
    let again = "classes:\n  server: { label: Server again }\n";
    let errors = load_errors(&[
        ("workflows/cmdb/classes/a.yaml", text),
        ("workflows/cmdb/classes/b.yaml", again),
    ]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/a.yaml:10:7: class `server` redefines attribute `uuid`, which it inherits from `computer`",
            "workflows/cmdb/classes/a.yaml:11:21: identification key 2 of class `server` names unknown attribute `serial`: use one of `uuid`",
            "workflows/cmdb/classes/a.yaml:11:30: identification key 3 of class `server` is empty",
            "workflows/cmdb/classes/a.yaml:12:3: class `other` has no `label`",
            "workflows/cmdb/classes/b.yaml:2:3: class `server` is already defined in",
        ],
    );
}

#[test]
fn discovery_sources_are_checked_and_inherited() {
    let text = "\
classes:
  computer:
    label: Computer
    attributes:
      serial_number: { type: string, owner: discovery }
      memory_mb: { type: number, owner: discovery, sources: [lshw, glpi_agent] }
      owner: { type: user }
    sources: [glpi_agent, fusioninventory]
  server:
    label: Server
    extends: computer
";
    let set = load(&[("workflows/cmdb/classes/a.yaml", text)]).unwrap();
    let server = set.cmdb.class("server").unwrap();
    assert_eq!(server.sources, ["glpi_agent", "fusioninventory"]);
    assert_eq!(
        server.writers("serial_number"),
        ["glpi_agent", "fusioninventory"]
    );
    assert_eq!(server.writers("memory_mb"), ["lshw", "glpi_agent"]);
    assert!(server.writers("owner").is_empty(), "people own `owner`");

    let bad = "\
classes:
  computer:
    label: Computer
    attributes:
      owner: { type: user, sources: [lshw] }
      serial_number: { type: string, owner: discovery, sources: [ocs] }
    sources: [glpi_agent, glpi_agent]
";
    let errors = load_errors(&[("workflows/cmdb/classes/a.yaml", bad)]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/classes/a.yaml:5:28: attribute `owner` of class `computer` lists `sources` but people own it",
            "workflows/cmdb/classes/a.yaml:6:66: unknown discovery source `ocs`: use glpi_agent, fusioninventory, lshw",
            "workflows/cmdb/classes/a.yaml:7:27: discovery source `glpi_agent` is listed twice",
        ],
    );
}

#[test]
fn audit_settings_are_checked() {
    let audit = "\
audit:
  stale_after_days: 0
  orphans_ignore: [locatoin]
";
    let errors = load_errors(&[
        ("workflows/cmdb/classes/all.yaml", CLASSES),
        ("workflows/cmdb/audit.yaml", audit),
    ]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/audit.yaml:2:21: `stale_after_days` is 0, so every CI would be stale",
            "workflows/cmdb/audit.yaml:3:20: `orphans_ignore` names unknown class `locatoin`: did you mean `location`?",
        ],
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let set = load_dir(&root, &ExistingRules(root.clone())).unwrap();
    assert_eq!(set.cmdb.audit.stale_after_days, 30);
    assert_eq!(set.cmdb.audit.task_process, "cmdb_audit");
}

#[test]
fn relationship_type_unknown_class_is_load_error() {
    let relationships = "\
relationship_types:
  runs_on:
    label: Runs on
    inverse_label: Runs
    from: [servise, service]
    to: [rack]
    impact: yes
  hosted_by:
    label: Hosted by
  located_in: { label: Located in, inverse_label: Contains, impact_flows: upward }
";
    let errors = load_errors(&[
        ("workflows/cmdb/classes/all.yaml", CLASSES),
        ("workflows/cmdb/relationships.yaml", relationships),
    ]);
    assert_errors(
        &errors,
        &[
            "workflows/cmdb/relationships.yaml:5:12: relationship type `runs_on` allows unknown class `servise` as its source: did you mean `service`?",
            "workflows/cmdb/relationships.yaml:6:10: relationship type `runs_on` allows unknown class `rack` as its target: use one of `computer`, `location`, `server`, `service`",
            "workflows/cmdb/relationships.yaml:7:13: `relationship_types.runs_on.impact`: invalid type: string \"yes\", expected a boolean; write true or false",
            "workflows/cmdb/relationships.yaml:8:3: relationship type `hosted_by` has no `inverse_label`",
            "workflows/cmdb/relationships.yaml:10:75: `relationship_types.located_in.impact_flows`: unknown variant `upward`, expected `to_source` or `to_target`",
        ],
    );
}

#[test]
fn shipped_cmdb_schema_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let set = load_dir(&root, &ExistingRules(root.clone())).unwrap();
    let cmdb = &set.cmdb;
    for class in [
        "business_service",
        "application",
        "database",
        "computer",
        "server",
        "virtual_machine",
        "workstation",
        "laptop",
        "network_device",
        "software_package",
        "software_licence",
        "location",
        "cost_centre",
        "department",
        "contract",
    ] {
        assert!(
            cmdb.class(class).is_some(),
            "class `{class}` is not shipped"
        );
    }
    for kind in [
        "depends_on",
        "runs_on",
        "hosted_by",
        "connected_to",
        "installed_on",
        "used_by",
        "owned_by",
        "located_in",
        "member_of",
        "covered_by",
    ] {
        assert!(
            cmdb.relationship_type(kind).is_some(),
            "relationship type `{kind}` is not shipped"
        );
    }
    let laptop = cmdb.class("laptop").unwrap();
    assert!(laptop.is_a("computer"));
    assert!(laptop.attributes.contains_key("serial_number"));
    assert_eq!(laptop.keys[0], ["serial_number"]);
    assert!(
        cmdb.relationship_type("located_in").unwrap().containment,
        "a location cannot contain itself"
    );
}
