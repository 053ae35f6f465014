use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role grants a set of permissions; definitions name the roles that may take each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Opens records and follows their own records only.
    Requester,
    /// Works records of every requester.
    Technician,
    /// Edits definitions and rules; has every technician permission.
    ProcessOwner,
    /// Manages users and tokens; may take every step.
    Admin,
    /// A machine account that may only hand raw email to the intake
    /// (`POST /api/v1/mail/inbound`).
    MailGateway,
    /// A machine account that may only hand alerts to the alert intake
    /// (`POST /api/v1/alerts` and `POST /api/v1/alerts/alertmanager`).
    AlertSource,
    /// A machine account that may only hand inventories to the CMDB import
    /// (`POST /api/v1/inventory`).
    InventoryAgent,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Requester,
        Role::Technician,
        Role::ProcessOwner,
        Role::Admin,
        Role::MailGateway,
        Role::AlertSource,
        Role::InventoryAgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Technician => "technician",
            Role::ProcessOwner => "process_owner",
            Role::Admin => "admin",
            Role::MailGateway => "mail_gateway",
            Role::AlertSource => "alert_source",
            Role::InventoryAgent => "inventory_agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role `{0}`: use one of requester, technician, process_owner, admin, mail_gateway, alert_source, inventory_agent"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| UnknownRole(value.to_owned()))
    }
}

/// The issuer of a command: a person (by user name) or a part of Tend itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn new(name: impl Into<String>, roles: impl Into<Vec<Role>>) -> Self {
        Actor {
            name: name.into(),
            roles: roles.into(),
        }
    }

    /// Tend's own actor, used by replays and imports that speak for a system.
    pub fn system(name: impl Into<String>) -> Self {
        Actor::new(name, vec![Role::Admin])
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// Checks whether the actor has one of `allowed`. Admins have every role, and
    /// process owners have every technician permission.
    pub fn may(&self, allowed: &[Role]) -> bool {
        if self.is_admin() {
            return true;
        }
        allowed.iter().any(|role| {
            self.has_role(*role) || (*role == Role::Technician && self.has_role(Role::ProcessOwner))
        })
    }

    /// Checks whether the actor works records of other people, as opposed to a requester
    /// who may read only their own.
    pub fn is_staff(&self) -> bool {
        self.may(&[Role::Technician])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_parse_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn process_owner_may_act_as_technician() {
        let owner = Actor::new("olga", vec![Role::ProcessOwner]);
        assert!(owner.may(&[Role::Technician]));
        assert!(!owner.may(&[Role::Requester]));
    }

    #[test]
    fn admin_may_everything() {
        let admin = Actor::new("root", vec![Role::Admin]);
        assert!(admin.may(&[Role::Requester]));
        assert!(admin.may(&[]));
    }
}
