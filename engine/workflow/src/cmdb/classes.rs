//! CI classes (`workflows/cmdb/classes/*.yaml`): the kinds of configuration items, their
//! typed attributes, identification keys and inheritance.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::validate::{choices, is_identifier};

/// Names that a CI has as columns; an attribute of the same name would shadow them.
pub const RESERVED_ATTRIBUTES: [&str; 8] = [
    "id",
    "class",
    "name",
    "status",
    "attributes",
    "created_at",
    "updated_at",
    "retired_at",
];

/// One file of CI classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassFile {
    /// Classes by name, in the order the file lists them.
    pub classes: IndexMap<String, CiClass>,
}

/// A CI class as written in its file. Inherited attributes and keys are not merged in
/// here: [`ResolvedClass`] holds the merged view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiClass {
    /// Name people see, e.g. `Virtual machine`.
    // A missing label is reported by `problems`, so that a misspelt key does not hide the
    // other problems of the file.
    #[serde(default)]
    pub label: String,
    /// Parent class whose attributes and keys this class inherits.
    #[serde(default)]
    pub extends: Option<String>,
    /// An abstract class only groups its subclasses: no CI is created of it.
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    #[serde(default)]
    pub attributes: IndexMap<String, AttributeDef>,
    /// Identification keys in order of preference: an import matches an incoming item by
    /// the first key whose attributes it carries. Each key is a set of attribute names
    /// that together identify one CI. A subclass's keys come before its parent's.
    #[serde(default)]
    pub keys: Vec<Vec<String>>,
    /// Discovery sources that may write the class's discovery-owned attributes, the one
    /// that wins first. Without it, a class uses its parent's list, and a class with no
    /// list anywhere takes no imported values.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Rules (`rules/NAME.rhai`) run with the `on_ci_change` hook after a person or an
    /// import created or changed a CI of the class. A subclass runs its parent's rules
    /// first.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// Discovery sources an import can name: one per inventory format.
pub const DISCOVERY_SOURCES: [&str; 3] = ["glpi_agent", "fusioninventory", "lshw"];

/// The value types of attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    String,
    Number,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of `values`.
    Enum,
    /// The id or name of another CI, of `class` (or one of its subclasses) when set.
    Ci,
    /// The name of a Tend user.
    User,
    /// A list of values of the type `of`.
    List,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Number => "number",
            AttributeType::Boolean => "boolean",
            AttributeType::Date => "date",
            AttributeType::Enum => "enum",
            AttributeType::Ci => "ci",
            AttributeType::User => "user",
            AttributeType::List => "list",
        }
    }
}

/// Who keeps an attribute true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeOwner {
    /// Inventory imports may write it; people and rules may too.
    Discovery,
    /// Only people and rules write it; an import never overwrites it.
    #[default]
    People,
}

/// An attribute of a CI class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub label: Option<String>,
    /// Item type of a list.
    #[serde(default)]
    pub of: Option<AttributeType>,
    /// Allowed values of an enum (or of a list of enums).
    #[serde(default)]
    pub values: Vec<String>,
    /// Class that a CI reference must point to; subclasses match too.
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// No two CIs that are not retired may share a value. Checked among the CIs of the
    /// class that declares the attribute and its subclasses.
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub owner: AttributeOwner,
    /// Keeps the attribute's values in the key index, so that the CI list's `q` finds a CI
    /// by one of them, such as an IP address. Keys, unique attributes and references are
    /// indexed anyway.
    #[serde(default)]
    pub indexed: bool,
    /// For a discovery-owned attribute, the sources that may write it, the one that wins
    /// first, in place of the class's `sources`.
    #[serde(default)]
    pub sources: Vec<String>,
}

impl AttributeDef {
    /// Returns the type of a single value: the item type of a list, else the type itself.
    pub fn value_type(&self) -> AttributeType {
        match self.kind {
            AttributeType::List => self.of.unwrap_or(AttributeType::String),
            kind => kind,
        }
    }

    /// Checks the attribute `name` of class `class`; returns (path, message) pairs with
    /// paths relative to the file. `classes` lists every class of the set.
    pub fn problems(
        &self,
        class: &str,
        name: &str,
        classes: &BTreeSet<String>,
    ) -> Vec<(String, String)> {
        let path = format!("classes.{class}.attributes.{name}");
        let mut problems = Vec::new();
        if !is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid attribute name `{name}` in class `{class}`: use lower-case letters, digits and underscores, starting with a letter"
                ),
            ));
        } else if RESERVED_ATTRIBUTES.contains(&name) {
            problems.push((
                path.clone(),
                format!(
                    "attribute `{name}` of class `{class}` has the name of a CI column: rename it (reserved: {})",
                    RESERVED_ATTRIBUTES.join(", ")
                ),
            ));
        }
        match (self.kind, self.of) {
            (AttributeType::List, None) => problems.push((
                format!("{path}.type"),
                format!(
                    "list attribute `{name}` of class `{class}` has no item type: add `of: string` (or number, boolean, date, enum, ci, user)"
                ),
            )),
            (AttributeType::List, Some(AttributeType::List)) => problems.push((
                format!("{path}.of"),
                format!(
                    "list attribute `{name}` of class `{class}` is a list of lists: give `of` a single-value type"
                ),
            )),
            (kind, Some(_)) if kind != AttributeType::List => problems.push((
                format!("{path}.of"),
                format!(
                    "attribute `{name}` of class `{class}` has `of` but is a {}: remove `of` or make it `type: list`",
                    kind.as_str()
                ),
            )),
            _ => {}
        }
        let value_type = self.value_type();
        if value_type == AttributeType::Enum {
            if self.values.is_empty() {
                problems.push((
                    format!("{path}.type"),
                    format!(
                        "enum attribute `{name}` of class `{class}` has no values: list them under `values`"
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, value) in self.values.iter().enumerate() {
                if !seen.insert(value) {
                    problems.push((
                        format!("{path}.values[{i}]"),
                        format!(
                            "value `{value}` is listed twice in attribute `{name}` of class `{class}`: remove one"
                        ),
                    ));
                }
            }
        } else if !self.values.is_empty() {
            problems.push((
                format!("{path}.values"),
                format!(
                    "attribute `{name}` of class `{class}` lists `values` but is not an enum: remove `values` or make it `type: enum`"
                ),
            ));
        }
        match (&self.class, value_type) {
            (Some(target), AttributeType::Ci) if !classes.contains(target) => problems.push((
                format!("{path}.class"),
                format!(
                    "attribute `{name}` of class `{class}` refers to unknown class `{target}`: {}",
                    choices(target, classes)
                ),
            )),
            (Some(_), kind) if kind != AttributeType::Ci => problems.push((
                format!("{path}.class"),
                format!(
                    "attribute `{name}` of class `{class}` names a `class` but holds no CI reference: remove `class` or make it `type: ci`"
                ),
            )),
            _ => {}
        }
        if !self.sources.is_empty() && self.owner == AttributeOwner::People {
            problems.push((
                format!("{path}.sources"),
                format!(
                    "attribute `{name}` of class `{class}` lists `sources` but people own it, so no import writes it: add `owner: discovery` or remove `sources`"
                ),
            ));
        }
        problems.extend(source_problems(&self.sources, &format!("{path}.sources")));
        if self.unique
            && !matches!(
                self.kind,
                AttributeType::String | AttributeType::Number | AttributeType::Date
            )
        {
            problems.push((
                format!("{path}.unique"),
                format!(
                    "attribute `{name}` of class `{class}` is a {} and cannot be unique: only string, number and date attributes can",
                    self.kind.as_str()
                ),
            ));
        }
        problems
    }
}

/// A class with everything it inherits merged in, as the API and imports use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedClass {
    pub name: String,
    pub label: String,
    pub is_abstract: bool,
    /// The parent chain, nearest first.
    pub ancestors: Vec<String>,
    /// Inherited attributes first (from the root down), then the class's own, each with
    /// the class that declares it.
    pub attributes: IndexMap<String, ResolvedAttribute>,
    /// The class's own keys, then its parent's, and so on up the chain.
    pub keys: Vec<Vec<String>>,
    /// Discovery sources, the one that wins first: the class's own list, else the
    /// nearest ancestor's.
    pub sources: Vec<String>,
    /// Rules run on a change of a CI of the class: the root ancestor's first, the
    /// class's own last.
    pub rules: Vec<String>,
}

/// An attribute with the class that declares it, which scopes its uniqueness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedAttribute {
    #[serde(flatten)]
    pub def: AttributeDef,
    pub declared_by: String,
}

impl ResolvedClass {
    /// Checks whether this class is `class` or one of its subclasses.
    pub fn is_a(&self, class: &str) -> bool {
        self.name == class || self.ancestors.iter().any(|ancestor| ancestor == class)
    }

    /// Returns the discovery sources that may write `attribute`, the one that wins
    /// first; empty for an attribute people own or the class does not have.
    pub fn writers(&self, attribute: &str) -> &[String] {
        match self.attributes.get(attribute) {
            Some(resolved) if resolved.def.owner == AttributeOwner::Discovery => {
                if resolved.def.sources.is_empty() {
                    &self.sources
                } else {
                    &resolved.def.sources
                }
            }
            _ => &[],
        }
    }
}

/// Checks a list of discovery sources: each known, none twice.
fn source_problems(sources: &[String], path: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, source) in sources.iter().enumerate() {
        if !DISCOVERY_SOURCES.contains(&source.as_str()) {
            problems.push((
                format!("{path}[{i}]"),
                format!(
                    "unknown discovery source `{source}`: use {}",
                    DISCOVERY_SOURCES.join(", ")
                ),
            ));
        } else if !seen.insert(source) {
            problems.push((
                format!("{path}[{i}]"),
                format!("discovery source `{source}` is listed twice: remove one"),
            ));
        }
    }
    problems
}

impl CiClass {
    /// Checks the class `name` on its own (without its parents); returns (path, message)
    /// pairs with paths relative to the file.
    pub fn problems(&self, name: &str, classes: &BTreeSet<String>) -> Vec<(String, String)> {
        let path = format!("classes.{name}");
        let mut problems = Vec::new();
        if !is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid class name `{name}`: use lower-case letters, digits and underscores, starting with a letter"
                ),
            ));
        }
        if self.label.trim().is_empty() {
            problems.push((
                path.clone(),
                format!("class `{name}` has no `label`: add the name users see"),
            ));
        }
        if let Some(parent) = &self.extends
            && !classes.contains(parent)
        {
            problems.push((
                format!("{path}.extends"),
                format!(
                    "class `{name}` extends unknown class `{parent}`: {}",
                    choices(parent, classes)
                ),
            ));
        }
        for (attribute, def) in &self.attributes {
            problems.extend(def.problems(name, attribute, classes));
        }
        problems.extend(source_problems(&self.sources, &format!("{path}.sources")));
        problems
    }
}
