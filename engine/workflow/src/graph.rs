//! The state machine of a definition as a Mermaid state diagram, for docs and reviews.

use std::fmt::Write as _;

use crate::model::Definition;

/// Renders `definition` as a Mermaid `stateDiagram-v2`. Each transition is one arrow,
/// labelled with its label (or name) and the roles that may take it. The initial state
/// starts from `[*]`, and final states lead to `[*]`.
pub fn mermaid(definition: &Definition) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for (name, state) in &definition.states {
        let label = state.label.as_deref().unwrap_or(name);
        let _ = writeln!(out, "    state \"{}\" as {name}", escape(label));
    }
    if let Some(initial) = definition.initial_state() {
        let _ = writeln!(out, "    [*] --> {initial}");
    }
    for transition in &definition.transitions {
        let label = transition.label.as_deref().unwrap_or(&transition.name);
        let roles: Vec<&str> = transition.roles.iter().map(|role| role.as_str()).collect();
        for from in &transition.from {
            let _ = writeln!(
                out,
                "    {from} --> {}: {} ({})",
                transition.to,
                escape(label),
                roles.join(", ")
            );
        }
    }
    for (name, state) in &definition.states {
        if state.is_final {
            let _ = writeln!(out, "    {name} --> [*]");
        }
    }
    out
}

/// Mermaid labels end at a colon or a quote; replace both so a label cannot break the
/// diagram.
fn escape(label: &str) -> String {
    label.replace(':', " -").replace('"', "'")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn mermaid_lists_states_and_arrows() {
        let text = "\
process: ticket
title: Ticket
number_prefix: TKT
states:
  open: { initial: true, label: \"Open: new\" }
  done: { final: true }
transitions:
  - { name: finish, label: Finish work, from: open, to: done, roles: [technician, requester] }
";
        let definition: Definition = crate::parse_yaml(Path::new("ticket.yaml"), text).unwrap();
        let diagram = mermaid(&definition);
        let lines: Vec<&str> = diagram.lines().collect();
        assert_eq!(
            lines,
            [
                "stateDiagram-v2",
                "    state \"Open - new\" as open",
                "    state \"done\" as done",
                "    [*] --> open",
                "    open --> done: Finish work (technician, requester)",
                "    done --> [*]",
            ]
        );
    }
}
