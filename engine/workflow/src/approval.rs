//! Approvals: who is asked, and when a round of requests is decided.
//!
//! A round asks a list of approvers. Each approver is one vote: a user, a group (any one
//! member votes for the group) or one member of a board. With `n` approvers of whom `k`
//! must approve, the round is approved once `k` have approved, and rejected as soon as
//! more than `n - k` have rejected, because `k` approvals can no longer be reached.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::GroupDef;

/// An approver as a definition or a rule names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    User(String),
    Group(String),
    Board(String),
}

impl Approver {
    /// Parses `user:NAME`, `group:NAME` or `board:NAME`.
    pub fn parse(text: &str) -> Result<Approver, String> {
        let fix = "write `user:NAME`, `group:NAME` (any one member decides) or `board:NAME` (each member decides)";
        let Some((kind, name)) = text.split_once(':') else {
            return Err(format!("invalid approver `{text}`: {fix}"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("approver `{text}` names nobody: {fix}"));
        }
        match kind.trim() {
            "user" => Ok(Approver::User(name.to_owned())),
            "group" => Ok(Approver::Group(name.to_owned())),
            "board" => Ok(Approver::Board(name.to_owned())),
            other => Err(format!(
                "unknown approver kind `{other}` in `{text}`: {fix}"
            )),
        }
    }
}

/// One vote of a round: who it is shown as, and the users who may cast it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// `user:alice`, `group:network` or `board:cab/alice`.
    pub approver: String,
    pub users: Vec<String>,
}

/// Turns approvers into votes. Users in `excluded` (the person who asked, and the record's
/// requester, unless self-approval is allowed) are left out. So a group with no other
/// member, and a user who is excluded, give no vote. The same user is asked once per vote they hold,
/// and a vote named twice is kept once.
pub fn expand(
    approvers: &[String],
    groups: &BTreeMap<String, GroupDef>,
    excluded: &[&str],
) -> Result<Vec<Slot>, String> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut push = |slot: Slot| {
        if !slot.users.is_empty() && !slots.iter().any(|s| s.approver == slot.approver) {
            slots.push(slot);
        }
    };
    let keep = |user: &String| !excluded.contains(&user.as_str());
    for text in approvers {
        let group = |name: &str| {
            groups.get(name).ok_or_else(|| {
                format!(
                    "approver `{text}` names unknown group `{name}`: define it in workflows/groups/"
                )
            })
        };
        match Approver::parse(text)? {
            Approver::User(name) => push(Slot {
                approver: format!("user:{name}"),
                users: [name].into_iter().filter(keep).collect(),
            }),
            Approver::Group(name) => push(Slot {
                approver: format!("group:{name}"),
                users: group(&name)?
                    .members
                    .iter()
                    .filter(|u| keep(u))
                    .cloned()
                    .collect(),
            }),
            Approver::Board(name) => {
                for member in group(&name)?.members.iter().filter(|u| keep(u)) {
                    push(Slot {
                        approver: format!("board:{name}/{member}"),
                        users: vec![member.clone()],
                    });
                }
            }
        }
    }
    Ok(slots)
}

/// The state of a round or of one request in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    /// The round ended before this request was decided (it is no longer needed), or the
    /// record left the state the round was opened in.
    Cancelled,
    /// The deadline passed and the request went to the escalation approvers.
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
            ApprovalStatus::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// Decides a round from its counts: `required` approvals out of `total` votes.
pub fn tally(required: usize, total: usize, approved: usize, rejected: usize) -> ApprovalStatus {
    if approved >= required {
        ApprovalStatus::Approved
    } else if rejected > total.saturating_sub(required) {
        ApprovalStatus::Rejected
    } else {
        ApprovalStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_follows_the_share_rule() {
        // n = 10, all must approve: one rejection decides.
        assert_eq!(tally(10, 10, 0, 1), ApprovalStatus::Rejected);
        // n = 4, half: two approvals decide.
        assert_eq!(tally(2, 4, 2, 0), ApprovalStatus::Approved);
        // n = 2, half: one rejection still leaves one approval possible.
        assert_eq!(tally(1, 2, 0, 1), ApprovalStatus::Pending);
        assert_eq!(tally(1, 2, 0, 2), ApprovalStatus::Rejected);
    }

    #[test]
    fn expand_boards_per_member_groups_once() {
        let groups = BTreeMap::from([(
            "cab".to_owned(),
            GroupDef {
                label: None,
                members: vec!["ann".into(), "bob".into(), "cy".into()],
            },
        )]);
        let slots = expand(
            &["board:cab".into(), "group:cab".into(), "user:dee".into()],
            &groups,
            &["bob"],
        )
        .unwrap();
        let names: Vec<&str> = slots.iter().map(|s| s.approver.as_str()).collect();
        assert_eq!(
            names,
            ["board:cab/ann", "board:cab/cy", "group:cab", "user:dee"]
        );
        assert_eq!(slots[2].users, ["ann", "cy"]);
    }

    #[test]
    fn expand_drops_excluded_user() {
        let slots = expand(&["user:ann".into()], &BTreeMap::new(), &["ann"]).unwrap();
        assert!(slots.is_empty());
    }
}
