//! The files of a definitions directory as text: every file under `workflows/` and every
//! `*.rhai` script under `rules/`. A server stores them per version, so that a version can
//! be written back to a directory and loaded again after the files on disk have changed.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::Diagnostic;

/// Text of each file of a definition set, keyed by its path relative to the definitions
/// directory, with `/` between the parts (`workflows/incident.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefinitionFiles {
    pub files: BTreeMap<String, String>,
}

impl DefinitionFiles {
    /// Reads every file under `root/workflows` and every `*.rhai` file under `root/rules`.
    /// Skips hidden files and names ending in `~`, which editors leave beside the files
    /// they save. A file that is not UTF-8 text is reported with its path.
    pub fn read(root: &Path) -> Result<DefinitionFiles, Vec<Diagnostic>> {
        let mut files = BTreeMap::new();
        let mut problems = Vec::new();
        collect(
            root,
            Path::new("workflows"),
            &|_| true,
            &mut files,
            &mut problems,
        );
        let is_script = |path: &Path| path.extension().is_some_and(|ext| ext == "rhai");
        collect(
            root,
            Path::new("rules"),
            &is_script,
            &mut files,
            &mut problems,
        );
        if problems.is_empty() {
            Ok(DefinitionFiles { files })
        } else {
            Err(problems)
        }
    }

    /// Writes every file under `dir`, creating directories as needed. Rejects a path that
    /// is absolute or leaves `dir`, since the paths may come from the database.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        for (relative, text) in &self.files {
            let path = dir.join(checked_relative(relative)?);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)?;
        }
        Ok(())
    }
}

/// Checks that `relative` names a file inside a directory: relative, without `..`.
fn checked_relative(relative: &str) -> io::Result<PathBuf> {
    let path = PathBuf::from(relative);
    let inside = !relative.is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if inside {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "definition file path `{relative}` is not a relative path inside the definitions directory"
            ),
        ))
    }
}

/// Adds the files under `root/sub` that `wanted` accepts, recursively, in name order. A
/// missing directory adds nothing: loading the set reports it.
fn collect(
    root: &Path,
    sub: &Path,
    wanted: &dyn Fn(&Path) -> bool,
    files: &mut BTreeMap<String, String>,
    problems: &mut Vec<Diagnostic>,
) {
    let dir = root.join(sub);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return,
        Err(error) => {
            problems.push(problem(&dir, format!("cannot read the directory: {error}")));
            return;
        }
    };
    let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
    names.sort_by_key(|entry| entry.file_name());
    for entry in names {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            problems.push(problem(
                &entry.path(),
                "the file name is not UTF-8: rename it".to_owned(),
            ));
            continue;
        };
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = entry.path();
        let relative = sub.join(name);
        if path.is_dir() {
            collect(root, &relative, wanted, files, problems);
            continue;
        }
        if !path.is_file() || !wanted(&path) {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    let key = relative
                        .components()
                        .map(|part| part.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(key, text);
                }
                Err(_) => problems.push(problem(
                    &path,
                    "the file is not UTF-8 text: save it as UTF-8 or move it out of the definitions directory".to_owned(),
                )),
            },
            Err(error) => problems.push(problem(&path, format!("cannot read the file: {error}"))),
        }
    }
}

fn problem(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write_round_trip() {
        let source = tempfile::tempdir().unwrap();
        let root = source.path();
        std::fs::create_dir_all(root.join("workflows/links")).unwrap();
        std::fs::create_dir_all(root.join("rules/incident")).unwrap();
        std::fs::write(root.join("workflows/incident.yaml"), "process: incident\n").unwrap();
        std::fs::write(root.join("workflows/links/types.yaml"), "link_types: {}\n").unwrap();
        std::fs::write(root.join("workflows/.incident.yaml.swp"), [0xff, 0xfe]).unwrap();
        std::fs::write(root.join("rules/incident/assign.rhai"), "let x = 1;\n").unwrap();
        std::fs::write(root.join("rules/incident/assign.tests.yaml"), "[]\n").unwrap();

        let files = DefinitionFiles::read(root).unwrap();
        let names: Vec<&str> = files.files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "rules/incident/assign.rhai",
                "workflows/incident.yaml",
                "workflows/links/types.yaml"
            ]
        );

        let target = tempfile::tempdir().unwrap();
        files.write_to(target.path()).unwrap();
        let again = DefinitionFiles::read(target.path()).unwrap();
        assert_eq!(again, files);
    }

    #[test]
    fn read_reports_binary_file() {
        let source = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(source.path().join("workflows")).unwrap();
        std::fs::write(source.path().join("workflows/logo.png"), [0x89, 0xff, 0x00]).unwrap();
        let problems = DefinitionFiles::read(source.path()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].file.ends_with("workflows/logo.png"));
        assert!(problems[0].message.contains("not UTF-8"), "{}", problems[0]);
    }

    #[test]
    fn write_rejects_escaping_paths() {
        let target = tempfile::tempdir().unwrap();
        for bad in ["../outside.yaml", "/etc/passwd", "workflows/../../x", ""] {
            let mut files = DefinitionFiles::default();
            files.files.insert(bad.to_owned(), "text".to_owned());
            let error = files.write_to(target.path()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
