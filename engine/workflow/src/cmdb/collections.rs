//! CI collections (`workflows/cmdb/collections.yaml`): saved queries over CIs by class,
//! status and attribute values, which releases name as their targets and reports group.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AttributeType, ResolvedClass};
use crate::validate::{choices, is_identifier};

/// The file of collections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionFile {
    pub collections: IndexMap<String, Collection>,
}

/// A saved query over CIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Classes whose CIs the collection takes, subclasses included.
    pub classes: Vec<String>,
    /// Statuses to take; without it, every status but `retired`.
    #[serde(default)]
    pub status: Vec<String>,
    /// Conditions on attributes, all of which a CI must meet.
    #[serde(default, rename = "where")]
    pub conditions: IndexMap<String, Condition>,
}

/// A condition on one attribute. A plain value is short for `equals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Operators(Operators),
    Equals(Value),
}

/// The operators of a condition; a CI meets the condition when every one given holds.
/// On a list attribute, `equals`, `in` and `contains` hold when one item matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operators {
    /// The value, ignoring case for text. A CI reference may be given by name or id.
    #[serde(default)]
    pub equals: Option<Value>,
    /// One of these values, compared as `equals` does.
    #[serde(default, rename = "in")]
    pub any_of: Option<Vec<Value>>,
    /// Text that the value contains, ignoring case, or a list of texts of which it
    /// contains one.
    #[serde(default)]
    pub contains: Option<Texts>,
    /// Lowest number or date (`YYYY-MM-DD`), included.
    #[serde(default)]
    pub at_least: Option<Value>,
    /// Highest number or date, included.
    #[serde(default)]
    pub at_most: Option<Value>,
    /// `true`: the attribute has a value; `false`: it has none.
    #[serde(default)]
    pub present: Option<bool>,
}

/// One text or a list of texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    /// Returns the texts as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Texts::One(text) => vec![text.clone()],
            Texts::Many(texts) => texts.clone(),
        }
    }
}

impl Condition {
    /// Returns the condition as operators.
    pub fn operators(&self) -> Operators {
        match self {
            Condition::Operators(operators) => operators.clone(),
            Condition::Equals(value) => Operators {
                equals: Some(value.clone()),
                ..Operators::default()
            },
        }
    }
}

impl Collection {
    /// Checks the collection `name` against the classes; returns (path, message) pairs
    /// relative to the file.
    pub fn problems(
        &self,
        name: &str,
        classes: &IndexMap<String, ResolvedClass>,
    ) -> Vec<(String, String)> {
        let path = format!("collections.{name}");
        let mut problems = Vec::new();
        if !is_identifier(name) {
            problems.push((
                path.clone(),
                format!(
                    "invalid collection name `{name}`: use lower-case letters, digits and underscores, starting with a letter"
                ),
            ));
        }
        if self.label.trim().is_empty() {
            problems.push((
                path.clone(),
                format!("collection `{name}` has no `label`: add the name users see"),
            ));
        }
        if self.classes.is_empty() {
            problems.push((
                format!("{path}.classes"),
                format!("collection `{name}` names no class: list the classes of its CIs"),
            ));
        }
        let known: BTreeSet<&String> = classes.keys().collect();
        let mut chosen: Vec<&ResolvedClass> = Vec::new();
        for (i, class) in self.classes.iter().enumerate() {
            match classes.get(class) {
                Some(resolved) => chosen.push(resolved),
                None => problems.push((
                    format!("{path}.classes[{i}]"),
                    format!(
                        "collection `{name}` names unknown class `{class}`: {}",
                        choices(class, known.iter().copied())
                    ),
                )),
            }
        }
        for (i, status) in self.status.iter().enumerate() {
            if !["planned", "active", "maintenance", "retired"].contains(&status.as_str()) {
                problems.push((
                    format!("{path}.status[{i}]"),
                    format!(
                        "collection `{name}` names unknown status `{status}`: use planned, active, maintenance or retired"
                    ),
                ));
            }
        }
        for (attribute, condition) in &self.conditions {
            let place = format!("{path}.where.{attribute}");
            // The attribute must exist in one of the classes, or in one of their
            // subclasses, whose CIs the collection also takes.
            let kind = classes
                .values()
                .filter(|class| chosen.iter().any(|chosen| class.is_a(&chosen.name)))
                .find_map(|class| class.attributes.get(attribute))
                .map(|resolved| (resolved.def.kind, resolved.def.value_type()));
            let Some((kind, value_type)) = kind else {
                if !chosen.is_empty() {
                    problems.push((
                        place,
                        format!(
                            "collection `{name}` tests attribute `{attribute}`, which none of its classes ({}) has",
                            self.classes.join(", ")
                        ),
                    ));
                }
                continue;
            };
            problems.extend(operator_problems(
                name,
                attribute,
                &place,
                kind,
                value_type,
                &condition.operators(),
            ));
        }
        problems
    }
}

fn operator_problems(
    name: &str,
    attribute: &str,
    place: &str,
    kind: AttributeType,
    value_type: AttributeType,
    operators: &Operators,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let given = [
        operators.equals.is_some(),
        operators.any_of.is_some(),
        operators.contains.is_some(),
        operators.at_least.is_some(),
        operators.at_most.is_some(),
        operators.present.is_some(),
    ];
    if !given.contains(&true) {
        problems.push((
            place.to_owned(),
            format!(
                "the condition on `{attribute}` in collection `{name}` has no operator: use equals, in, contains, at_least, at_most or present"
            ),
        ));
    }
    if operators
        .contains
        .as_ref()
        .is_some_and(|texts| texts.to_vec().iter().all(|text| text.trim().is_empty()))
    {
        problems.push((
            format!("{place}.contains"),
            format!("`contains` on `{attribute}` in collection `{name}` gives no text: give one or a list"),
        ));
    }
    if operators.any_of.as_ref().is_some_and(Vec::is_empty) {
        problems.push((
            format!("{place}.in"),
            format!(
                "`in` on `{attribute}` in collection `{name}` lists no value: list at least one"
            ),
        ));
    }
    let textual = matches!(
        value_type,
        AttributeType::String | AttributeType::Enum | AttributeType::User | AttributeType::Ci
    );
    if operators.contains.is_some() && !textual {
        problems.push((
            format!("{place}.contains"),
            format!(
                "`contains` on `{attribute}` in collection `{name}` needs text, but the attribute is a {}: use equals, at_least or at_most",
                kind.as_str()
            ),
        ));
    }
    let ordered = matches!(value_type, AttributeType::Number | AttributeType::Date);
    for (operator, value) in [
        ("at_least", &operators.at_least),
        ("at_most", &operators.at_most),
    ] {
        let Some(value) = value else {
            continue;
        };
        let fits = match value_type {
            AttributeType::Number => value.is_number(),
            AttributeType::Date => value
                .as_str()
                .is_some_and(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()),
            _ => false,
        };
        if !ordered {
            problems.push((
                format!("{place}.{operator}"),
                format!(
                    "`{operator}` on `{attribute}` in collection `{name}` needs a number or date attribute, but it is a {}",
                    kind.as_str()
                ),
            ));
        } else if !fits {
            problems.push((
                format!("{place}.{operator}"),
                format!(
                    "`{operator}` on `{attribute}` in collection `{name}` is {value}: give a {}",
                    if value_type == AttributeType::Date {
                        "date as YYYY-MM-DD"
                    } else {
                        "number"
                    }
                ),
            ));
        }
    }
    problems
}
