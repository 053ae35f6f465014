//! The docs stay true to the shipped definitions: every Mermaid diagram under
//! docs/processes/ is what `tend graph` prints for its process, and every process has one.

use std::collections::BTreeMap;

use tend_test_support::{repo_root, run_tend};

/// Extracts the Mermaid blocks of a Markdown text.
fn diagrams(text: &str) -> Vec<String> {
    text.split("```mermaid\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .map(|body| body.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn process_diagrams_match_graph() -> anyhow::Result<()> {
    let root = repo_root();
    let mut documented = Vec::new();
    for entry in std::fs::read_dir(root.join("docs/processes"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            documented.extend(diagrams(&std::fs::read_to_string(&path)?));
        }
    }
    let mut graphs = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("workflows"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let process = path.file_stem().unwrap().to_string_lossy().into_owned();
        let output = run_tend(
            [
                "graph".into(),
                process.clone().into(),
                "--definitions".into(),
                root.clone().into_os_string(),
            ],
            None,
        )
        .await?;
        assert!(output.success(), "{output}");
        graphs.insert(process, output.stdout.trim().to_owned());
    }
    assert!(graphs.len() >= 15, "{:?}", graphs.keys());
    for (process, graph) in &graphs {
        assert!(
            documented.contains(graph),
            "docs/processes/ has no diagram of `{process}` as `tend graph {process}` prints it:\n{graph}"
        );
    }
    Ok(())
}
