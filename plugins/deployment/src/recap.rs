//! Reads the PLAY RECAP that ansible-playbook's default output ends with: one line per
//! host with its task counts, such as
//!
//! ```text
//! PLAY RECAP *********************************************************************
//! localhost                  : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
//! ```

use indexmap::IndexMap;
use serde::Serialize;

/// The task counts of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HostCounts {
    pub ok: u64,
    pub changed: u64,
    pub unreachable: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rescued: u64,
    pub ignored: u64,
}

impl HostCounts {
    /// Returns whether a task failed on the host or the host could not be reached.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.unreachable > 0
    }

    /// Describes the counts for a summary, as "ok=2 changed=1 unreachable=0 failed=0".
    pub fn describe(&self) -> String {
        format!(
            "ok={} changed={} unreachable={} failed={}",
            self.ok, self.changed, self.unreachable, self.failed
        )
    }
}

/// Returns the counts of every host of the last PLAY RECAP in `log`, in the order listed,
/// or `None` when the log has no recap.
pub fn parse_recap(log: &str) -> Option<IndexMap<String, HostCounts>> {
    let start = log.rfind("PLAY RECAP")?;
    let mut hosts = IndexMap::new();
    for line in log[start..].lines().skip(1) {
        if line.trim().is_empty() {
            break;
        }
        let Some((host, counts)) = line.split_once(" : ") else {
            break;
        };
        hosts.insert(host.trim().to_owned(), parse_counts(counts));
    }
    Some(hosts)
}

fn parse_counts(text: &str) -> HostCounts {
    let mut counts = HostCounts::default();
    for pair in text.split_whitespace() {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let Ok(value) = value.parse() else {
            continue;
        };
        match key {
            "ok" => counts.ok = value,
            "changed" => counts.changed = value,
            "unreachable" => counts.unreachable = value,
            "failed" => counts.failed = value,
            "skipped" => counts.skipped = value,
            "rescued" => counts.rescued = value,
            "ignored" => counts.ignored = value,
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "
PLAY [all] *********************************************************************

TASK [ping] ********************************************************************
ok: [web1]
fatal: [db1]: UNREACHABLE! => {\"changed\": false, \"unreachable\": true}
fatal: [web2]: FAILED! => {\"changed\": false, \"msg\": \"boom\"}

PLAY RECAP *********************************************************************
web1                       : ok=3    changed=1    unreachable=0    failed=0    skipped=2    rescued=0    ignored=1   
db1                        : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0   
web2                       : ok=1    changed=0    unreachable=0    failed=1    skipped=0    rescued=1    ignored=0   

";

    #[test]
    fn recap_lists_every_host() {
        let hosts = parse_recap(LOG).unwrap();

        assert_eq!(
            hosts.keys().map(String::as_str).collect::<Vec<_>>(),
            ["web1", "db1", "web2"]
        );
        assert_eq!(
            hosts["web1"],
            HostCounts {
                ok: 3,
                changed: 1,
                unreachable: 0,
                failed: 0,
                skipped: 2,
                rescued: 0,
                ignored: 1
            }
        );
        assert!(!hosts["web1"].has_failures());
        assert!(hosts["db1"].has_failures());
        assert!(hosts["web2"].has_failures());
        assert_eq!(
            hosts["web2"].describe(),
            "ok=1 changed=0 unreachable=0 failed=1"
        );
    }

    #[test]
    fn log_without_recap_gives_none() {
        assert_eq!(
            parse_recap("ERROR! the playbook: x.yml could not be found\n"),
            None
        );
    }

    #[test]
    fn recap_after_cut_log_parses() {
        let log = "[output cut]\nPLAY RECAP ***\nlocalhost : ok=1 changed=0 unreachable=0 failed=0";

        let hosts = parse_recap(log).unwrap();
        assert_eq!(hosts["localhost"].ok, 1);
    }
}
