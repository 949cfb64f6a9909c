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

/// Defines [`Permission`], its wire names and `Permission::ALL` from one list.
macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What a route can require. `*Read` covers GETs of a resource group, `*Write` changes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission {
            $($(#[$doc])* $variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The name shown in `permissions` lists.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }
    };
}

permissions! {
    UsersRead => "users:read",
    UsersWrite => "users:write",
    SystemRead => "system:read",
    SystemWrite => "system:write",
    StatusRead => "status:read",
    WireguardRead => "wireguard:read",
    /// Servers: create, change, start, stop.
    WireguardWrite => "wireguard:write",
    /// Clients: create, change, delete, fetch configs with private keys.
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

use Permission::*;

impl Permission {
    /// Reading anything but the user list (users are the admin's business only).
    fn is_general_read(self) -> bool {
        self != UsersRead && self.as_str().ends_with(":read")
    }
}

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

    /// The contract's role definitions, word for word.
    pub fn allows(self, p: Permission) -> bool {
        match self {
            // everything
            Role::Admin => true,
            // everything but users and system settings
            Role::Manager => !matches!(p, UsersRead | UsersWrite | SystemWrite),
            // read everything, manage WireGuard clients
            Role::User => p.is_general_read() || p == WireguardClientsWrite,
            // read only
            Role::Viewer => p.is_general_read(),
        }
    }

    /// The `permissions` list of user responses; `["*"]` for admins.
    pub fn permission_names(self) -> Vec<&'static str> {
        if self == Role::Admin {
            return vec!["*"];
        }
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.allows(*p))
            .map(Permission::as_str)
            .collect()
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
        for &p in Permission::ALL {
            let read = p.as_str().ends_with(":read") && p != UsersRead;
            assert_eq!(Role::Viewer.allows(p), read, "{}", p.as_str());
        }
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
        assert!(Role::User
            .permission_names()
            .contains(&"wireguard.clients:write"));
        assert!(!Role::Manager.permission_names().contains(&"system:write"));
    }
}
