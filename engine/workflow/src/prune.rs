//! Keeps deserializing a YAML document after a type error, so that one file reports all
//! of its unknown keys and invalid values at once. After each error the offending node is
//! removed and the document is read again. Paths are reported in the coordinates of the
//! original document, even after elements of a list were removed.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_norway::Value;
use serde_path_to_error::Segment;

/// Errors after which reading stops, to bound the work on a badly broken file.
const MAX_ERRORS: usize = 50;

/// A type error at `path` (original coordinates) with serde's message.
pub(crate) struct TypeError {
    pub path: String,
    pub message: String,
}

/// The outcome of a tolerant read: the value, if the pruned document could be read, and
/// the errors met on the way. `pruned` lists the paths that were removed.
pub(crate) struct Tolerant<T> {
    pub value: Option<T>,
    pub errors: Vec<TypeError>,
    pub pruned: Vec<String>,
}

pub(crate) fn deserialize_tolerant<T: DeserializeOwned>(mut document: Value) -> Tolerant<T> {
    let mut errors = Vec::new();
    let mut pruned: Vec<String> = Vec::new();
    // Original indexes removed from each list, keyed by the list's original path.
    let mut removed: HashMap<String, Vec<usize>> = HashMap::new();
    // Set once a whole struct had to be removed: later checks of the rest of the document
    // would then report problems that only its absence causes.
    let mut container_removed = false;
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(document.clone()) {
            Ok(value) => {
                return Tolerant {
                    value: (!container_removed).then_some(value),
                    errors,
                    pruned,
                };
            }
            Err(error) => error,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let path = original_path(&segments, &removed);
        let message = error.inner().to_string();
        // A required key that is missing only because an earlier error removed it
        // repeats that error: remove its container as well, without reporting again.
        if let Some(missing) = missing_field(&message) {
            container_removed = true;
            let missing_path = join(&path, missing);
            if pruned.iter().any(|p| overlaps(p, &missing_path)) {
                if !remove(&mut document, &segments, &path, &mut removed) {
                    break;
                }
                pruned.push(path);
                continue;
            }
        }
        errors.push(TypeError {
            path: path.clone(),
            message,
        });
        if errors.len() >= MAX_ERRORS || !remove(&mut document, &segments, &path, &mut removed) {
            break;
        }
        pruned.push(path);
    }
    Tolerant {
        value: None,
        errors,
        pruned,
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Checks whether one path lies inside the other (or they are equal).
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let inside = |long: &str, short: &str| {
        long.starts_with(short)
            && (long.len() == short.len()
                || short.is_empty()
                || matches!(long.as_bytes()[short.len()], b'.' | b'['))
    };
    inside(a, b) || inside(b, a)
}

/// Converts `segments` to a path in original coordinates, given the list elements removed
/// so far.
fn original_path(segments: &[Segment], removed: &HashMap<String, Vec<usize>>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => {
                let index = original_index(removed.get(&path), *index);
                path = format!("{path}[{index}]");
            }
            Segment::Map { key } => path = join(&path, key),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    path
}

fn original_index(removed: Option<&Vec<usize>>, mut index: usize) -> usize {
    if let Some(removed) = removed {
        let mut sorted = removed.clone();
        sorted.sort_unstable();
        for removed_index in sorted {
            if removed_index <= index {
                index += 1;
            }
        }
    }
    index
}

/// Removes the node at `segments` from `document`. Returns false when nothing could be
/// removed (the error is about the document as a whole).
fn remove(
    document: &mut Value,
    segments: &[Segment],
    original: &str,
    removed: &mut HashMap<String, Vec<usize>>,
) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = document;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Seq { index }, Value::Sequence(items)) => match items.get_mut(*index) {
                Some(item) => item,
                None => return false,
            },
            (Segment::Map { key }, Value::Mapping(map)) => match map.get_mut(key.as_str()) {
                Some(item) => item,
                None => return false,
            },
            (Segment::Enum { .. } | Segment::Unknown, node) => node,
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Seq { index }, Value::Sequence(items)) if *index < items.len() => {
            items.remove(*index);
            let parent = original
                .rfind('[')
                .map_or(String::new(), |cut| original[..cut].to_owned());
            let original_index = original[parent.len() + 1..original.len() - 1]
                .parse()
                .unwrap_or(*index);
            removed.entry(parent).or_default().push(original_index);
            true
        }
        (Segment::Map { key }, Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u32,
        #[serde(default)]
        flag: bool,
    }

    fn read(text: &str) -> Tolerant<Doc> {
        deserialize_tolerant(serde_norway::from_str(text).unwrap())
    }

    #[test]
    fn collects_every_unknown_key() {
        let result =
            read("name: a\ncolour: red\nitems:\n  - { size: 1, shade: dark }\n  - { size: 2 }\n");
        let paths: Vec<&str> = result.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["colour", "items[0].shade"]);
        assert!(result.value.is_some());
    }

    #[test]
    fn keeps_original_indexes_after_removal() {
        let result =
            read("name: a\nitems:\n  - { size: big }\n  - { size: 2 }\n  - { size: huge }\n");
        let paths: Vec<&str> = result.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["items[0].size", "items[2].size"]);
        assert!(
            result.value.is_none(),
            "a removed item makes the rest unreliable"
        );
    }

    #[test]
    fn stops_at_missing_key_it_removed() {
        let result = read("name: 7\n");
        assert_eq!(
            result.errors.len(),
            1,
            "{:?}",
            result.errors.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
        assert_eq!(result.errors[0].path, "name");
        assert!(result.value.is_none());
    }

    #[test]
    fn overlap_is_by_path_segment() {
        assert!(overlaps("transitions[0].roles", "transitions[0].roles[1]"));
        assert!(overlaps("a.b", "a.b"));
        assert!(!overlaps("a.bc", "a.b"));
        assert!(overlaps("", "a"));
    }
}
