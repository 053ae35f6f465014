//! Parsing of restic's `--json` output: snapshots from `restic snapshots`
//! and the snapshot and its nodes from `restic ls`. Only the fields the plugin uses are
//! read, so newer restic versions that add fields still parse.

use serde::Deserialize;
use serde_json::{Value, json};

/// A snapshot as `restic snapshots --json` and the first line of `restic ls --json` give
/// it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub short_id: String,
    /// RFC 3339 time of the backup, such as `2026-12-05T07:09:27.196494032Z`.
    pub time: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl Snapshot {
    /// Returns the short id, or the first 8 digits of the id when restic gave none.
    pub fn short(&self) -> &str {
        if self.short_id.is_empty() {
            &self.id[..self.id.len().min(8)]
        } else {
            &self.short_id
        }
    }

    /// Formats the time for a summary, such as `2026-12-05 07:09:27 UTC`, or restic's text when it
    /// does not parse.
    pub fn time_text(&self) -> String {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .map(|time| {
                time.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| self.time.clone())
    }

    /// Returns whether the snapshot backed up `path` or a directory that contains it.
    pub fn covers(&self, path: &std::path::Path) -> bool {
        self.paths
            .iter()
            .any(|root| path.starts_with(std::path::Path::new(root)))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "short_id": self.short(),
            "time": self.time,
            "hostname": self.hostname,
            "paths": self.paths,
            "tags": self.tags.clone().unwrap_or_default(),
        })
    }
}

/// A file, directory or link of a snapshot, from `restic ls --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Node {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
}

/// Reads the output of `restic ls --json`: one snapshot line, then one line per node.
/// `complete` is false when the output was cut, and the last, partial line is then
/// dropped.
pub fn parse_ls(stdout: &str, complete: bool) -> Result<(Snapshot, Vec<Node>), String> {
    let mut lines = stdout.lines().filter(|line| !line.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| String::from("restic ls printed nothing"))?;
    let snapshot: Snapshot = serde_json::from_str(first)
        .map_err(|error| format!("restic ls printed no snapshot line: {error}"))?;
    let mut nodes = Vec::new();
    let lines: Vec<&str> = lines.collect();
    let count = lines.len();
    for (index, line) in lines.into_iter().enumerate() {
        match serde_json::from_str::<Node>(line) {
            Ok(node) => nodes.push(node),
            Err(_) if !complete && index + 1 == count => {}
            Err(error) => {
                return Err(format!(
                    "restic ls printed a line that is not a node: {error}"
                ));
            }
        }
    }
    Ok((snapshot, nodes))
}

/// Reads the output of `restic snapshots --json`: one array of snapshots.
pub fn parse_snapshots(stdout: &str) -> Result<Vec<Snapshot>, String> {
    serde_json::from_str(stdout.trim())
        .map_err(|error| format!("restic snapshots printed no snapshot list: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = r#"{"time":"2026-12-05T07:09:27.196494032Z","tree":"5f6e","paths":["/tmp/rx/data"],"hostname":"vm","username":"root","id":"983d8a420129db68205b5aeb05a7c2409c3287180206fed103c414d4c7af8ca0","short_id":"983d8a42","struct_type":"snapshot"}
{"name":"sub","type":"dir","path":"/tmp/rx/data/sub","uid":0,"gid":0,"mode":2147484141,"struct_type":"node"}
{"name":"b [1].txt","type":"file","path":"/tmp/rx/data/sub/b [1].txt","uid":0,"gid":0,"size":6,"mode":420,"struct_type":"node"}
"#;

    #[test]
    fn ls_output_gives_snapshot_and_nodes() {
        let (snapshot, nodes) = parse_ls(LS, true).unwrap();

        assert_eq!(snapshot.short(), "983d8a42");
        assert_eq!(snapshot.time_text(), "2026-12-05 07:09:27 UTC");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].path, "/tmp/rx/data/sub/b [1].txt");
        assert_eq!(nodes[1].kind, "file");
        assert_eq!(nodes[1].size, 6);
    }

    #[test]
    fn cut_ls_output_drops_the_partial_line() {
        let cut = &LS[..LS.len() - 30];

        let (_, nodes) = parse_ls(cut, false).unwrap();
        assert_eq!(nodes.len(), 1);
        assert!(parse_ls(cut, true).is_err());
    }

    #[test]
    fn snapshots_cover_paths_below_their_roots() {
        let snapshot = parse_ls(LS, true).unwrap().0;

        assert!(snapshot.covers(std::path::Path::new("/tmp/rx/data")));
        assert!(snapshot.covers(std::path::Path::new("/tmp/rx/data/a.txt")));
        assert!(!snapshot.covers(std::path::Path::new("/tmp/rx/database")));
        assert!(!snapshot.covers(std::path::Path::new("/tmp/rx")));
    }

    #[test]
    fn local_times_are_shown_in_utc() {
        let snapshot = Snapshot {
            id: String::from("abcdef0123456789"),
            short_id: String::new(),
            time: String::from("2026-12-05T08:09:27.5+01:00"),
            paths: Vec::new(),
            hostname: String::new(),
            tags: None,
        };

        assert_eq!(snapshot.short(), "abcdef01");
        assert_eq!(snapshot.time_text(), "2026-12-05 07:09:27 UTC");
    }
}
