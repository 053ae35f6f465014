//! Checks of the paths a run names, and their translation into what restic reads.
//!
//! A path from a ticket reaches restic in two places: after `--` as a directory of
//! `restic ls`, where it is plain data, and as the value of `--include=...`, which is one
//! argument, so it cannot become an option either. restic reads an include as a glob
//! pattern, so [`include_pattern`] escapes `*`, `?`, `[`, `]` and `\` and the pattern
//! matches the one path only.

use std::path::{Component, Path, PathBuf};

/// Destination of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The original path, where only what the snapshot contains under it is replaced.
    Original,
    /// Into a directory, under which the path is recreated, such as
    /// `/srv/restores/srv/share/report.xlsx` for `/srv/restores`.
    Directory(PathBuf),
}

impl Target {
    /// Returns where a path of the snapshot lands.
    pub fn destination(&self, snapshot_path: &Path) -> PathBuf {
        match self {
            Target::Original => snapshot_path.to_path_buf(),
            Target::Directory(dir) => {
                let relative = snapshot_path.strip_prefix("/").unwrap_or(snapshot_path);
                dir.join(relative)
            }
        }
    }

    /// Returns the directory restic writes into: `/` for a restore in place.
    pub fn restic_target(&self) -> &Path {
        match self {
            Target::Original => Path::new("/"),
            Target::Directory(dir) => dir,
        }
    }

    /// Describes the target for the summary, as "in place" or "into /srv/restores".
    pub fn describe(&self) -> String {
        match self {
            Target::Original => String::from("in place"),
            Target::Directory(dir) => format!("into {}", dir.display()),
        }
    }
}

/// Checks the path of a file or directory to restore and returns it without a trailing
/// `/` or doubled separators. The error is a problem and its fix, for a parameter error.
pub fn source_path(value: &str) -> Result<PathBuf, (String, String)> {
    let path = clean_absolute(value).map_err(|problem| {
        (
            problem,
            String::from(
                "Give the full path the file or directory had when it was backed up, such as /srv/share/report.xlsx",
            ),
        )
    })?;
    if path.parent().is_none() {
        return Err((
            String::from("names the whole file system"),
            String::from("Name the file or directory to restore, such as /srv/share/report.xlsx"),
        ));
    }
    Ok(path)
}

/// Reads the `target` parameter: `original`, or the absolute path of a directory.
pub fn target(value: &str) -> Result<Target, (String, String)> {
    if value == "original" {
        return Ok(Target::Original);
    }
    clean_absolute(value).map(Target::Directory).map_err(|problem| {
        (
            problem,
            String::from(
                "Give `original` to restore in place, or the full path of a directory under an allowed target, such as /srv/restores",
            ),
        )
    })
}

/// Checks a snapshot id: `latest`, or 8 to 64 lowercase hexadecimal digits.
pub fn snapshot_id(value: &str) -> Result<(), (String, String)> {
    let hex = value
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if value == "latest" || ((8..=64).contains(&value.len()) && hex) {
        Ok(())
    } else {
        Err((
            String::from("is not a snapshot id"),
            String::from(
                "Give `latest`, or the id of a snapshot as list_snapshots shows it, such as 983d8a42",
            ),
        ))
    }
}

/// Builds the include pattern that matches exactly `path`.
pub fn include_pattern(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut pattern = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// Returns the first of `allowed` that contains `path` once symbolic links are followed,
/// or `None`. The part of `path` that exists is resolved, so a link inside an allowed
/// directory that points elsewhere does not count as inside it.
pub fn allowed_root<'a>(path: &Path, allowed: &'a [PathBuf]) -> Option<&'a Path> {
    let real = resolve(path);
    allowed
        .iter()
        .find(|root| real.starts_with(resolve(root)))
        .map(PathBuf::as_path)
}

/// Follows the symbolic links of the longest part of `path` that exists, and appends the
/// rest unchanged.
pub fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut resolved = real;
            resolved.extend(missing.iter().rev());
            return resolved;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Checks that `value` is an absolute path without `.` and `..` parts and rebuilds it from
/// its parts, which drops doubled and trailing separators.
fn clean_absolute(value: &str) -> Result<PathBuf, String> {
    if !value.starts_with('/') {
        return Err(String::from("is not an absolute path"));
    }
    let path = Path::new(value);
    let mut clean = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::RootDir => {}
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => return Err(String::from("contains `..`")),
            // `Path::components` drops `.` except at the start, where a relative path
            // has it; check the text for the dropped ones.
            Component::CurDir | Component::Prefix(_) => {
                return Err(String::from("contains `.` as a part"));
            }
        }
    }
    if value.split('/').any(|part| part == ".") {
        return Err(String::from("contains `.` as a part"));
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_paths_are_cleaned() {
        assert_eq!(
            source_path("/srv//share/report.xlsx/").unwrap(),
            Path::new("/srv/share/report.xlsx")
        );
        assert_eq!(source_path("/-rf").unwrap(), Path::new("/-rf"));
    }

    #[test]
    fn hostile_source_paths_are_rejected() {
        for (value, problem) in [
            ("-rf", "is not an absolute path"),
            ("../etc/passwd", "is not an absolute path"),
            ("$(id)", "is not an absolute path"),
            ("srv/share", "is not an absolute path"),
            ("", "is not an absolute path"),
            ("/srv/../etc/passwd", "contains `..`"),
            ("/srv/./share", "contains `.` as a part"),
            ("/srv/share/.", "contains `.` as a part"),
            ("/", "names the whole file system"),
            ("//", "names the whole file system"),
        ] {
            let (found, _) = source_path(value).unwrap_err();
            assert_eq!(found, problem, "{value:?}");
        }
    }

    #[test]
    fn targets_are_original_or_absolute() {
        assert_eq!(target("original").unwrap(), Target::Original);
        assert_eq!(
            target("/srv/restores/").unwrap(),
            Target::Directory(PathBuf::from("/srv/restores"))
        );
        assert!(target("Original").is_err());
        assert!(target("restores").is_err());
        assert!(target("/srv/restores/../../etc").is_err());
    }

    #[test]
    fn snapshot_ids_are_latest_or_hex() {
        assert!(snapshot_id("latest").is_ok());
        assert!(snapshot_id("983d8a42").is_ok());
        assert!(snapshot_id(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "983d8a4",
            "983D8A42",
            "--help",
            "latest~1",
            &"a".repeat(65),
        ] {
            assert!(snapshot_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn include_patterns_escape_glob_characters() {
        assert_eq!(
            include_pattern(Path::new("/srv/a*b?/c[1]\\d")),
            "/srv/a\\*b\\?/c\\[1\\]\\\\d"
        );
        assert_eq!(include_pattern(Path::new("/srv/$(id)")), "/srv/$(id)");
    }

    #[test]
    fn destinations_follow_the_target() {
        let path = Path::new("/srv/share/report.xlsx");
        assert_eq!(Target::Original.destination(path), path);
        assert_eq!(
            Target::Directory(PathBuf::from("/tmp/out")).destination(path),
            Path::new("/tmp/out/srv/share/report.xlsx")
        );
    }

    #[test]
    fn allowed_roots_compare_whole_parts() {
        let allowed = [PathBuf::from("/srv/share")];
        assert!(allowed_root(Path::new("/srv/share/a"), &allowed).is_some());
        assert!(allowed_root(Path::new("/srv/share"), &allowed).is_some());
        assert!(allowed_root(Path::new("/srv/shared/a"), &allowed).is_none());
        assert!(allowed_root(Path::new("/etc/passwd"), &allowed).is_none());
    }

    #[test]
    fn links_out_of_an_allowed_root_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("allowed");
        std::fs::create_dir(&inside).unwrap();
        std::os::unix::fs::symlink("/etc", inside.join("escape")).unwrap();
        let allowed = [inside.clone()];

        assert!(allowed_root(&inside.join("file"), &allowed).is_some());
        assert!(allowed_root(&inside.join("escape/passwd"), &allowed).is_none());
        assert!(allowed_root(&inside.join("escape/new/dir"), &allowed).is_none());
    }
}
