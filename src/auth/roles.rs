//! Roles and the permissions they grant — the one table every endpoint's access check
//! reads. Routes name the [`Permission`] they need; nothing else decides who may do what.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Manager,
    User,
    Viewer,
}

/// What a route can require. `*Read` covers GETs of a resource group, `*Write` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    UsersRead,
    UsersWrite,
    SystemRead,
    SystemWrite,
    StatusRead,
    WireguardRead,
    /// Servers: create, change, start, stop.
    WireguardWrite,
    /// Clients: create, change, delete, fetch configs with private keys.
    WireguardClientsWrite,
    BgpRead,
    BgpWrite,
    Ipv6Read,
    Ipv6Write,
    MonitoringRead,
    MonitoringWrite,
    LogsRead,
    BackupRead,
    BackupWrite,
    ClusterRead,
    ClusterWrite,
}

use Permission::*;

/// Everything any role can read (users are the admin's business only).
const READ_ALL: &[Permission] = &[
    SystemRead,
    StatusRead,
    WireguardRead,
    BgpRead,
    Ipv6Read,
    MonitoringRead,
    LogsRead,
    BackupRead,
    ClusterRead,
];

const MANAGER: &[Permission] = &[
    SystemRead,
    StatusRead,
    WireguardRead,
    WireguardWrite,
    WireguardClientsWrite,
    BgpRead,
    BgpWrite,
    Ipv6Read,
    Ipv6Write,
    MonitoringRead,
    MonitoringWrite,
    LogsRead,
    BackupRead,
    BackupWrite,
    ClusterRead,
    ClusterWrite,
];

const USER: &[Permission] = &[
    SystemRead,
    StatusRead,
    WireguardRead,
    WireguardClientsWrite,
    BgpRead,
    Ipv6Read,
    MonitoringRead,
    LogsRead,
    BackupRead,
    ClusterRead,
];

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::User, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Manager => MANAGER.contains(&p),
            Role::User => USER.contains(&p),
            Role::Viewer => READ_ALL.contains(&p),
        }
    }

    /// The `permissions` list of user responses; `["*"]` for admins.
    pub fn permission_names(self) -> Vec<&'static str> {
        let list = match self {
            Role::Admin => return vec!["*"],
            Role::Manager => MANAGER,
            Role::User => USER,
            Role::Viewer => READ_ALL,
        };
        list.iter().map(|p| p.as_str()).collect()
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Role, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            UsersRead => "users:read",
            UsersWrite => "users:write",
            SystemRead => "system:read",
            SystemWrite => "system:write",
            StatusRead => "status:read",
            WireguardRead => "wireguard:read",
            WireguardWrite => "wireguard:write",
            WireguardClientsWrite => "wireguard.clients:write",
            BgpRead => "bgp:read",
            BgpWrite => "bgp:write",
            Ipv6Read => "ipv6:read",
            Ipv6Write => "ipv6:write",
            MonitoringRead => "monitoring:read",
            MonitoringWrite => "monitoring:write",
            LogsRead => "logs:read",
            BackupRead => "backup:read",
            BackupWrite => "backup:write",
            ClusterRead => "cluster:read",
            ClusterWrite => "cluster:write",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_role_matrix() {
        // admin: everything
        assert!(Role::Admin.allows(UsersWrite) && Role::Admin.allows(SystemWrite));
        // manager: everything but users and system settings
        assert!(!Role::Manager.allows(UsersRead) && !Role::Manager.allows(UsersWrite));
        assert!(!Role::Manager.allows(SystemWrite));
        assert!(Role::Manager.allows(BgpWrite) && Role::Manager.allows(WireguardWrite));
        // user: read everything, manage WireGuard clients
        assert!(Role::User.allows(WireguardClientsWrite) && !Role::User.allows(WireguardWrite));
        assert!(Role::User.allows(BgpRead) && !Role::User.allows(BgpWrite));
        // viewer: read only
        assert!(READ_ALL.iter().all(|p| Role::Viewer.allows(*p)));
        assert!(!Role::Viewer.allows(WireguardClientsWrite));
    }

    #[test]
    fn no_role_but_admin_touches_users() {
        for r in [Role::Manager, Role::User, Role::Viewer] {
            assert!(!r.allows(UsersRead) && !r.allows(UsersWrite), "{r}");
        }
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(Role::Admin.permission_names(), vec!["*"]);
        assert!(Role::Viewer.permission_names().contains(&"bgp:read"));
    }
}
