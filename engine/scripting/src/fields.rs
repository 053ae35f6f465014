//! Fields a script names literally, found by walking its syntax tree: `record.NAME` and
//! `previous.NAME` read a field, `set_field("NAME", ...)` writes one, and `assign_group` and
//! `assign_to` write `assignment_group` and `assignee`.

use std::path::Path;

use rhai::{AST, ASTNode, Expr, FnCallExpr, Stmt};
use tend_workflow::{FieldAccess, FieldUse};

/// Variables whose properties are record fields.
const RECORD_VARIABLES: [&str; 2] = ["record", "previous"];

pub(crate) fn fields_used(ast: &AST, path: &Path) -> Vec<FieldUse> {
    let mut uses = Vec::new();
    let mut add = |field: &str, access, position: rhai::Position| {
        uses.push(FieldUse {
            field: field.to_owned(),
            access,
            path: path.to_path_buf(),
            line: position.line().unwrap_or(0),
            column: position.position().unwrap_or(0),
        });
    };
    let mut call = |call: &FnCallExpr, position: rhai::Position| match call.name.as_str() {
        "set_field" => {
            if let Some(Expr::StringConstant(name, name_position)) = call.args.first() {
                add(name.as_str(), FieldAccess::Write, *name_position);
            }
        }
        "assign_group" => add("assignment_group", FieldAccess::Write, position),
        "assign_to" => add("assignee", FieldAccess::Write, position),
        _ => {}
    };
    let mut reads = Vec::new();
    ast.walk(&mut |nodes: &[ASTNode]| {
        match nodes.last() {
            // A call used as a statement is a statement node; one inside an expression is
            // an expression node.
            Some(ASTNode::Stmt(Stmt::FnCall(expression, position))) => call(expression, *position),
            Some(ASTNode::Expr(Expr::FnCall(expression, position))) => call(expression, *position),
            Some(ASTNode::Expr(Expr::Dot(binary, _, _))) => {
                if let (Expr::Variable(variable, _, _), Expr::Property(property, position)) =
                    (&binary.lhs, &binary.rhs)
                    && RECORD_VARIABLES.contains(&variable.1.as_str())
                {
                    reads.push((property.2.to_string(), *position));
                }
            }
            _ => {}
        }
        true
    });
    for (field, position) in reads {
        add(&field, FieldAccess::Read, position);
    }
    uses.sort_by_key(|used| (used.line, used.column));
    uses
}
