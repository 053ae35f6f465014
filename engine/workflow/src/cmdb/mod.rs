//! The CMDB schema: CI classes from `workflows/cmdb/classes/*.yaml` and relationship
//! types from `workflows/cmdb/relationships.yaml`. Loading resolves inheritance (a class
//! gets its parent's attributes and keys) and reports cycles, unknown parents, unknown
//! classes and keys that name no attribute, with file, line and column.

mod classes;
mod collections;
mod relationships;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;
use sha2::Sha256;

pub use classes::{
    AttributeDef, AttributeOwner, AttributeType, CiClass, ClassFile, DISCOVERY_SOURCES,
    RESERVED_ATTRIBUTES, ResolvedAttribute, ResolvedClass,
};
pub use collections::{Collection, CollectionFile, Condition, Operators, Texts};
pub use relationships::{ImpactDirection, RelationshipFile, RelationshipType};

use crate::diagnostic::Diagnostic;
use crate::load::{FileReport, parse_file};
use crate::yaml_index::YamlIndex;

/// The loaded CMDB schema. Empty when the definitions directory has no `workflows/cmdb`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CmdbSchema {
    /// Classes with their inherited attributes and keys, in file order.
    pub classes: IndexMap<String, ResolvedClass>,
    pub relationship_types: IndexMap<String, RelationshipType>,
    /// Settings of the CMDB audit (`workflows/cmdb/audit.yaml`), defaults without it.
    pub audit: AuditSettings,
    /// Saved queries over CIs (`workflows/cmdb/collections.yaml`), in file order.
    pub collections: IndexMap<String, Collection>,
}

/// Settings of the CMDB audit, from `workflows/cmdb/audit.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// A CI of a class that discovery writes (a class with `sources`) is stale when no
    /// source has seen it for this many days.
    #[serde(default = "default_stale_days")]
    pub stale_after_days: u32,
    /// Classes with `sources` whose CIs are not seen on their own, such as software
    /// packages, which inventories report through `installed_on` relationships.
    #[serde(default)]
    pub stale_ignore: Vec<String>,
    /// Classes whose CIs are not orphans when they have no relationship, such as
    /// locations, which other CIs point to through attributes.
    #[serde(default)]
    pub orphans_ignore: Vec<String>,
    /// Process of the tasks that the audit opens for its findings.
    #[serde(default = "default_task_process")]
    pub task_process: String,
}

fn default_stale_days() -> u32 {
    30
}

fn default_task_process() -> String {
    "cmdb_audit".to_owned()
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            stale_after_days: default_stale_days(),
            stale_ignore: Vec::new(),
            orphans_ignore: Vec::new(),
            task_process: default_task_process(),
        }
    }
}

/// The file `workflows/cmdb/audit.yaml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    audit: AuditSettings,
}

impl CmdbSchema {
    pub fn class(&self, name: &str) -> Option<&ResolvedClass> {
        self.classes.get(name)
    }

    pub fn relationship_type(&self, name: &str) -> Option<&RelationshipType> {
        self.relationship_types.get(name)
    }

    /// Returns `class` and every class that extends it, directly or not.
    pub fn subclasses_of(&self, class: &str) -> Vec<String> {
        self.classes
            .values()
            .filter(|candidate| candidate.is_a(class))
            .map(|candidate| candidate.name.clone())
            .collect()
    }

    /// Checks whether a CI of `class` may be the source of a `kind` relationship.
    pub fn allows_source(&self, kind: &RelationshipType, class: &str) -> bool {
        self.allows(&kind.from, class)
    }

    /// Checks whether a CI of `class` may be the target of a `kind` relationship.
    pub fn allows_target(&self, kind: &RelationshipType, class: &str) -> bool {
        self.allows(&kind.to, class)
    }

    fn allows(&self, listed: &[String], class: &str) -> bool {
        if listed.is_empty() {
            return true;
        }
        let Some(resolved) = self.classes.get(class) else {
            return false;
        };
        listed.iter().any(|allowed| resolved.is_a(allowed))
    }

    /// Lists the concrete classes that no impact-carrying relationship type names, itself
    /// or through an ancestor, in its `from` or `to`. A failure of such a CI reaches
    /// nothing unless people use a type open to every class, so an impact analysis is
    /// likely blind to it. Types with an empty end name no class and do not count.
    pub fn classes_without_impact(&self) -> Vec<String> {
        let named: BTreeSet<&str> = self
            .relationship_types
            .values()
            .filter(|kind| kind.impact)
            .flat_map(|kind| kind.from.iter().chain(kind.to.iter()))
            .map(String::as_str)
            .collect();
        self.classes
            .values()
            .filter(|class| !class.is_abstract)
            .filter(|class| !named.iter().any(|listed| class.is_a(listed)))
            .map(|class| class.name.clone())
            .collect()
    }
}

/// A class read from a file, with what is needed to report its problems there.
struct Parsed {
    class: CiClass,
    file: PathBuf,
    index: std::rc::Rc<YamlIndex>,
}

/// Loads the CMDB schema under `workflows`. Problems are appended to `diagnostics`, and
/// the files are hashed into the set's version.
pub(crate) fn load_cmdb(
    workflows: &Path,
    rules: &dyn crate::RuleRunner,
    root: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> CmdbSchema {
    let dir = workflows.join("cmdb");
    let class_files = crate::load::yaml_files(&dir.join("classes"), &mut Vec::new());
    let relationship_file = dir.join("relationships.yaml");

    let mut parsed: IndexMap<String, Parsed> = IndexMap::new();
    for file in &class_files {
        let Some((_, index, content, pruned)) = parse_file::<ClassFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let index = std::rc::Rc::new(index);
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, class) in content.classes {
            if let Some(first) = parsed.get(&name) {
                report.error(
                    &format!("classes.{name}"),
                    format!(
                        "class `{name}` is already defined in {}: keep one of them or rename this one",
                        first.file.display()
                    ),
                );
                continue;
            }
            parsed.insert(
                name,
                Parsed {
                    class,
                    file: file.clone(),
                    index: index.clone(),
                },
            );
        }
    }

    let names: BTreeSet<String> = parsed.keys().cloned().collect();
    for (name, entry) in &parsed {
        let mut report = FileReport {
            file: &entry.file,
            index: &entry.index,
            diagnostics,
            pruned: &[],
        };
        for (path, message) in entry.class.problems(name, &names) {
            report.error(&path, message);
        }
        for (i, rule) in entry.class.rules.iter().enumerate() {
            crate::load::check_rule_script(
                rule,
                &format!("classes.{name}.rules[{i}]"),
                rules,
                root,
                &mut report,
                hasher,
                true,
            );
        }
    }

    let classes = resolve_classes(&parsed, diagnostics);

    let mut relationship_types = IndexMap::new();
    if relationship_file.is_file()
        && let Some((_, index, content, pruned)) =
            parse_file::<RelationshipFile>(&relationship_file, hasher, diagnostics)
    {
        let mut report = FileReport {
            file: &relationship_file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, kind) in content.relationship_types {
            for (path, message) in kind.problems(&name, &names) {
                report.error(&path, message);
            }
            relationship_types.insert(name, kind);
        }
    }

    let audit = load_audit(&dir.join("audit.yaml"), &names, hasher, diagnostics);
    let collections =
        load_collections(&dir.join("collections.yaml"), &classes, hasher, diagnostics);

    CmdbSchema {
        classes,
        relationship_types,
        audit,
        collections,
    }
}

/// Loads the collections and checks them against the classes.
fn load_collections(
    file: &Path,
    classes: &IndexMap<String, ResolvedClass>,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, Collection> {
    if !file.is_file() {
        return IndexMap::new();
    }
    let Some((_, index, content, pruned)) = parse_file::<CollectionFile>(file, hasher, diagnostics)
    else {
        return IndexMap::new();
    };
    let mut report = FileReport {
        file,
        index: &index,
        diagnostics,
        pruned: &pruned,
    };
    for (name, collection) in &content.collections {
        for (path, message) in collection.problems(name, classes) {
            report.error(&path, message);
        }
    }
    content.collections
}

/// Loads the audit settings, checking the days and the class names.
fn load_audit(
    file: &Path,
    classes: &BTreeSet<String>,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> AuditSettings {
    if !file.is_file() {
        return AuditSettings::default();
    }
    let Some((_, index, content, pruned)) = parse_file::<AuditFile>(file, hasher, diagnostics)
    else {
        return AuditSettings::default();
    };
    let mut report = FileReport {
        file,
        index: &index,
        diagnostics,
        pruned: &pruned,
    };
    let settings = content.audit;
    if settings.stale_after_days == 0 {
        report.error(
            "audit.stale_after_days",
            "`stale_after_days` is 0, so every CI would be stale: give a number of days of 1 or more",
        );
    }
    for (list, names) in [
        ("stale_ignore", &settings.stale_ignore),
        ("orphans_ignore", &settings.orphans_ignore),
    ] {
        for (i, class) in names.iter().enumerate() {
            if !classes.contains(class) {
                report.error(
                    &format!("audit.{list}[{i}]"),
                    format!(
                        "`{list}` names unknown class `{class}`: {}",
                        crate::validate::choices(class, classes)
                    ),
                );
            }
        }
    }
    settings
}

/// Merges each class with its ancestors. Reports inheritance cycles (at the `extends` of
/// every class on the cycle), attributes that redefine an inherited one, and keys naming
/// attributes the class does not have. Classes on or below a cycle, or below an unknown
/// parent, are left out; their problems are reported already.
fn resolve_classes(
    parsed: &IndexMap<String, Parsed>,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, ResolvedClass> {
    let mut chains: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, entry) in parsed {
        let mut chain: Vec<String> = Vec::new();
        let mut current = entry.class.extends.as_deref();
        let mut broken = false;
        while let Some(parent) = current {
            if parent == name {
                let mut cycle = vec![name.clone()];
                cycle.extend(chain.iter().cloned());
                cycle.push(name.clone());
                FileReport {
                    file: &entry.file,
                    index: &entry.index,
                    diagnostics,
                    pruned: &[],
                }
                .error(
                    &format!("classes.{name}.extends"),
                    format!(
                        "class `{name}` inherits from itself through {}: remove one `extends` of the cycle",
                        cycle.join(" → ")
                    ),
                );
                broken = true;
                break;
            }
            // A chain that enters a cycle elsewhere is reported by the classes on it.
            if chain.iter().any(|seen| seen == parent) {
                broken = true;
                break;
            }
            let Some(parent_entry) = parsed.get(parent) else {
                broken = true;
                break;
            };
            chain.push(parent.to_owned());
            current = parent_entry.class.extends.as_deref();
        }
        if !broken {
            chains.insert(name, chain);
        }
    }

    let mut classes = IndexMap::new();
    for (name, entry) in parsed {
        let Some(ancestors) = chains.get(name.as_str()) else {
            continue;
        };
        let mut report = FileReport {
            file: &entry.file,
            index: &entry.index,
            diagnostics,
            pruned: &[],
        };
        let mut attributes: IndexMap<String, ResolvedAttribute> = IndexMap::new();
        let mut keys: Vec<Vec<String>> = entry.class.keys.clone();
        for ancestor in ancestors.iter().rev() {
            for (attribute, def) in &parsed[ancestor].class.attributes {
                attributes.insert(
                    attribute.clone(),
                    ResolvedAttribute {
                        def: def.clone(),
                        declared_by: ancestor.clone(),
                    },
                );
            }
        }
        for ancestor in ancestors {
            keys.extend(parsed[ancestor].class.keys.iter().cloned());
        }
        let sources = std::iter::once(&entry.class)
            .chain(ancestors.iter().map(|ancestor| &parsed[ancestor].class))
            .map(|class| &class.sources)
            .find(|sources| !sources.is_empty())
            .cloned()
            .unwrap_or_default();
        let mut rules: Vec<String> = Vec::new();
        for class in ancestors
            .iter()
            .rev()
            .map(|ancestor| &parsed[ancestor].class)
            .chain(std::iter::once(&entry.class))
        {
            for rule in &class.rules {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
        for (attribute, def) in &entry.class.attributes {
            if let Some(inherited) = attributes.get(attribute) {
                report.error(
                    &format!("classes.{name}.attributes.{attribute}"),
                    format!(
                        "class `{name}` redefines attribute `{attribute}`, which it inherits from `{}`: rename it or change it in `{}`",
                        inherited.declared_by, inherited.declared_by
                    ),
                );
                continue;
            }
            attributes.insert(
                attribute.clone(),
                ResolvedAttribute {
                    def: def.clone(),
                    declared_by: name.clone(),
                },
            );
        }
        for (i, key) in entry.class.keys.iter().enumerate() {
            if key.is_empty() {
                report.error(
                    &format!("classes.{name}.keys[{i}]"),
                    format!(
                        "identification key {} of class `{name}` is empty: list the attributes that identify a CI",
                        i + 1
                    ),
                );
            }
            for (j, attribute) in key.iter().enumerate() {
                if !attributes.contains_key(attribute) {
                    report.error(
                        &format!("classes.{name}.keys[{i}][{j}]"),
                        format!(
                            "identification key {} of class `{name}` names unknown attribute `{attribute}`: {}",
                            i + 1,
                            crate::validate::choices(attribute, attributes.keys())
                        ),
                    );
                }
            }
        }
        classes.insert(
            name.clone(),
            ResolvedClass {
                name: name.clone(),
                label: entry.class.label.clone(),
                is_abstract: entry.class.is_abstract,
                ancestors: ancestors.clone(),
                attributes,
                keys,
                sources,
                rules,
            },
        );
    }
    classes
}
