//! A position index over a YAML document: for every node, its line and column, keyed by
//! the same path syntax that `serde_path_to_error` prints (`transitions[2].to`). It also
//! finds duplicate mapping keys, which serde would either reject without the first
//! position or silently resolve as "last one wins".

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Position {
    fn from(marker: Marker) -> Self {
        // yaml-rust2 0.10 counts lines from 1 and columns from 0.
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub path: String,
    pub key: String,
    pub first: Position,
    pub again: Position,
}

#[derive(Debug, Default)]
pub struct YamlIndex {
    positions: HashMap<String, Position>,
    pub duplicates: Vec<DuplicateKey>,
}

impl YamlIndex {
    /// Builds the index. Returns `None` when the text is not valid YAML; the caller
    /// reports the syntax error from the serde parser, which carries the position.
    pub fn build(text: &str) -> Option<YamlIndex> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).ok()?;
        builder.index.positions.entry(String::new()).or_default();
        Some(builder.index)
    }

    /// Returns the position of the node at `path`, or of its nearest indexed ancestor.
    pub fn position(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.positions.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.positions.get("").copied().unwrap_or_default(),
            }
        }
    }
}

enum Frame {
    Mapping {
        path: String,
        keys: HashMap<String, Position>,
        /// The key whose value comes next, or `None` when a key comes next.
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    index: YamlIndex,
    stack: Vec<Frame>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// Returns the path of the value that starts now, advancing the parent frame. For a
    /// mapping key, returns `None` after recording the key.
    fn value_path(&mut self, scalar_key: Option<&str>, position: Position) -> Option<String> {
        let Some(frame) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Sequence { path, next } => {
                let child = format!("{path}[{next}]");
                *next += 1;
                Some(child)
            }
            Frame::Mapping {
                path,
                keys,
                pending_key,
            } => match pending_key.take() {
                Some(key) => Some(join(path, &key)),
                None => {
                    // A key. Complex (non-scalar) keys are indexed under a placeholder.
                    let key = scalar_key.unwrap_or("?").to_owned();
                    if key != "<<" {
                        if let Some(first) = keys.get(&key) {
                            self.index.duplicates.push(DuplicateKey {
                                path: path.clone(),
                                key: key.clone(),
                                first: *first,
                                again: position,
                            });
                        } else {
                            keys.insert(key.clone(), position);
                        }
                    }
                    let key_path = join(path, &key);
                    self.index.positions.entry(key_path).or_insert(position);
                    *pending_key = Some(key);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = Position::from(marker);
        match event {
            // A scalar value is located at the value itself; a collection keeps the
            // position of its key, which is where a reader looks for it.
            Event::Scalar(value, ..) => {
                if let Some(path) = self.value_path(Some(&value), position) {
                    self.index.positions.insert(path, position);
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.value_path(None, position) {
                    self.index.positions.insert(path, position);
                }
            }
            Event::MappingStart(..) => {
                let path = self.value_path(None, position).unwrap_or_default();
                self.index.positions.entry(path.clone()).or_insert(position);
                self.stack.push(Frame::Mapping {
                    path,
                    keys: HashMap::new(),
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(None, position).unwrap_or_default();
                self.index.positions.entry(path.clone()).or_insert(position);
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_positions_nested_paths() {
        let text =
            "process: incident\nstates:\n  new: {}\ntransitions:\n  - name: start\n    to: done\n";
        let index = YamlIndex::build(text).unwrap();
        assert_eq!(
            index.position("process"),
            Position {
                line: 1,
                column: 10
            }
        );
        assert_eq!(
            index.position("transitions[0].to"),
            Position { line: 6, column: 9 }
        );
        assert_eq!(index.position("states.new.label").line, 3);
    }

    #[test]
    fn index_reports_duplicate_keys_with_both_lines() {
        let text = "process: incident\nsla:\n  response: 4h\n  resolution: 24h\nstates: [new]\nsla:\n  response: 1h\n";
        let index = YamlIndex::build(text).unwrap();
        assert_eq!(index.duplicates.len(), 1);
        let duplicate = &index.duplicates[0];
        assert_eq!(duplicate.key, "sla");
        assert_eq!(duplicate.first.line, 2);
        assert_eq!(duplicate.again.line, 6);
    }

    #[test]
    fn index_reports_nested_duplicate() {
        let text = "sla:\n  response: 4h\n  response: 1h\n";
        let index = YamlIndex::build(text).unwrap();
        assert_eq!(index.duplicates[0].path, "sla");
        assert_eq!(index.duplicates[0].key, "response");
    }

    #[test]
    fn merge_key_override_is_not_duplicate() {
        let text = "base: &base\n  a: 1\nchild:\n  <<: *base\n  a: 2\n";
        let index = YamlIndex::build(text).unwrap();
        assert!(index.duplicates.is_empty());
    }
}
