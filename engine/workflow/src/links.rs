//! Link types (`workflows/links/*.yaml`): the typed, directed links that may join two
//! records, such as an incident caused by a change. Only the model and its validation live
//! here; links themselves are stored with the records.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::validate::{choices, is_identifier};

/// Link type from a follow-up record to the record it follows up. A reply that opens a
/// follow-up adds this link when the definition set declares the type and the type allows
/// the process at both ends.
pub const FOLLOW_UP_LINK: &str = "follow_up_of";

/// One file of link types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTypeFile {
    /// Link types by name, in the order the file lists them.
    pub link_types: IndexMap<String, LinkType>,
}

/// A kind of link, directed from a source record to a target record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkType {
    /// Label that the source record shows, e.g. `Caused by` (INC1 caused by CHG2).
    // A missing label is reported by `problems`, not by serde, so that a misspelt key does
    // not hide the other problems of the file.
    #[serde(default)]
    pub label: String,
    /// Label that the target record shows for the same link, e.g. `Caused` (CHG2 caused
    /// INC1).
    #[serde(default)]
    pub inverse_label: String,
    /// Processes whose records may be the source; empty allows every process.
    #[serde(default, deserialize_with = "crate::model::one_or_many")]
    pub from: Vec<String>,
    /// Processes whose records may be the target; empty allows every process.
    #[serde(default, deserialize_with = "crate::model::one_or_many")]
    pub to: Vec<String>,
}

impl LinkType {
    /// Checks whether a record of `process` may be the source of this link.
    pub fn allows_source(&self, process: &str) -> bool {
        self.from.is_empty() || self.from.iter().any(|allowed| allowed == process)
    }

    /// Checks whether a record of `process` may be the target of this link.
    pub fn allows_target(&self, process: &str) -> bool {
        self.to.is_empty() || self.to.iter().any(|allowed| allowed == process)
    }

    /// Returns the label as the record at one end reads it: `label` on the source
    /// (`outgoing`), `inverse_label` on the target.
    pub fn label_for(&self, outgoing: bool) -> &str {
        if outgoing {
            &self.label
        } else {
            &self.inverse_label
        }
    }

    /// Checks the link type named `name` against the loaded processes; returns (path,
    /// message) pairs with paths relative to the file.
    pub fn problems(&self, name: &str, processes: &BTreeSet<String>) -> Vec<(String, String)> {
        let path = format!("link_types.{name}");
        let mut problems = Vec::new();
        if !is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid link type name `{name}`: use lower-case letters, digits and underscores, starting with a letter"
                ),
            ));
        }
        for (key, text) in [
            ("label", &self.label),
            ("inverse_label", &self.inverse_label),
        ] {
            if text.trim().is_empty() {
                problems.push((
                    format!("{path}.{key}"),
                    format!("link type `{name}` has no `{key}`: add the text users see"),
                ));
            }
        }
        for (key, end, listed) in [("from", "source", &self.from), ("to", "target", &self.to)] {
            let mut seen = BTreeSet::new();
            for (i, process) in listed.iter().enumerate() {
                let place = format!("{path}.{key}[{i}]");
                if !seen.insert(process) {
                    problems.push((
                        place,
                        format!(
                            "process `{process}` is listed twice in `{key}` of link type `{name}`: remove one"
                        ),
                    ));
                } else if !processes.contains(process) {
                    problems.push((
                        place,
                        format!(
                            "link type `{name}` allows unknown process `{process}` as its {end}: {}",
                            choices(process, processes)
                        ),
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_type(from: &[&str], to: &[&str]) -> LinkType {
        LinkType {
            label: "Caused by".into(),
            inverse_label: "Caused".into(),
            from: from.iter().map(|p| (*p).to_owned()).collect(),
            to: to.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn empty_ends_allow_every_process() {
        let any = link_type(&[], &[]);
        assert!(any.allows_source("incident"));
        assert!(any.allows_target("change"));

        let narrow = link_type(&["incident"], &["change"]);
        assert!(narrow.allows_source("incident"));
        assert!(!narrow.allows_source("change"));
        assert!(narrow.allows_target("change"));
        assert!(!narrow.allows_target("incident"));
    }

    #[test]
    fn label_depends_on_direction() {
        let caused_by = link_type(&[], &[]);
        assert_eq!(caused_by.label_for(true), "Caused by");
        assert_eq!(caused_by.label_for(false), "Caused");
    }

    #[test]
    fn problems_name_path_and_fix() {
        let processes: BTreeSet<String> = ["incident".to_owned(), "change".to_owned()].into();
        let mut bad = link_type(&["incidnet", "change", "change"], &["release"]);
        bad.inverse_label = " ".into();
        let problems = bad.problems("Caused-By", &processes);
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "link_types.Caused-By",
                "link_types.Caused-By.inverse_label",
                "link_types.Caused-By.from[0]",
                "link_types.Caused-By.from[2]",
                "link_types.Caused-By.to[0]",
            ]
        );
        assert!(
            problems[2].1.contains("did you mean `incident`?"),
            "{problems:?}"
        );
        assert!(problems[3].1.contains("listed twice"), "{problems:?}");
        assert!(
            problems[4].1.contains("use one of `change`, `incident`"),
            "{problems:?}"
        );
    }
}
