//! Relationship types (`workflows/cmdb/relationships.yaml`): the typed, directed
//! relationships that join two CIs, and whether a failure travels along them.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::validate::{choices, is_identifier};

/// One file of relationship types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipFile {
    pub relationship_types: IndexMap<String, RelationshipType>,
}

/// Which end of a relationship a failure travels to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpactDirection {
    /// A failure of the target impacts the source: `app depends_on db`, so a failed
    /// database impacts the application.
    #[default]
    ToSource,
    /// A failure of the source impacts the target: `app used_by service`, so a failed
    /// application impacts the service.
    ToTarget,
}

/// A kind of relationship, directed from a source CI to a target CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipType {
    /// Label read from the source, e.g. `Depends on`.
    #[serde(default)]
    pub label: String,
    /// Label read from the target, e.g. `Required by`.
    #[serde(default)]
    pub inverse_label: String,
    /// Classes allowed as the source; subclasses match, and empty allows every class.
    #[serde(default, deserialize_with = "crate::model::one_or_many")]
    pub from: Vec<String>,
    /// Classes allowed as the target; subclasses match, and empty allows every class.
    #[serde(default, deserialize_with = "crate::model::one_or_many")]
    pub to: Vec<String>,
    /// Whether impact analysis follows relationships of this type.
    #[serde(default)]
    pub impact: bool,
    /// The end a failure travels to; only read when `impact` is true.
    #[serde(default)]
    pub impact_flows: ImpactDirection,
    /// A containment (a CI inside a location or a rack): saving a relationship that
    /// would close a cycle of this type is rejected, since nothing can contain itself.
    #[serde(default)]
    pub containment: bool,
}

impl RelationshipType {
    /// Checks the type `name` against the known classes; returns (path, message) pairs
    /// with paths relative to the file.
    pub fn problems(&self, name: &str, classes: &BTreeSet<String>) -> Vec<(String, String)> {
        let path = format!("relationship_types.{name}");
        let mut problems = Vec::new();
        if !is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid relationship type name `{name}`: use lower-case letters, digits and underscores, starting with a letter"
                ),
            ));
        }
        for (key, text) in [
            ("label", &self.label),
            ("inverse_label", &self.inverse_label),
        ] {
            if text.trim().is_empty() {
                problems.push((
                    path.clone(),
                    format!("relationship type `{name}` has no `{key}`: add the text users see"),
                ));
            }
        }
        for (key, end, listed) in [("from", "source", &self.from), ("to", "target", &self.to)] {
            let mut seen = BTreeSet::new();
            for (i, class) in listed.iter().enumerate() {
                let place = format!("{path}.{key}[{i}]");
                if !seen.insert(class) {
                    problems.push((
                        place,
                        format!(
                            "class `{class}` is listed twice in `{key}` of relationship type `{name}`: remove one"
                        ),
                    ));
                } else if !classes.contains(class) {
                    problems.push((
                        place,
                        format!(
                            "relationship type `{name}` allows unknown class `{class}` as its {end}: {}",
                            choices(class, classes)
                        ),
                    ));
                }
            }
        }
        problems
    }
}
