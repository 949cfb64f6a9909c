//! User accounts: input validation (pure), the rules that must hold across the table (there
//! is always an active admin), first-start bootstrap, and the SSH `reset-password` command.
//! Each operation runs as one transaction on the database thread, so a rule check and the
//! write it guards are atomic; after it commits, the [`Service`] publishes
//! [`Change::User`].

use crate::auth::{password, Hashing, HashingStopped, Permission, Principal, Role};
use crate::changes::{Bus, Change, Op};
use crate::error::Invalid;
use crate::store::users::{self as q, UserFields, UserFilter, UserRow};
use crate::store::{Store, StoreError, StoreResult};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What can go wrong with a user operation.
#[derive(Debug)]
pub enum Error {
    NotFound(&'static str),
    Invalid(Invalid),
    /// The caller's role does not allow it (another user's password without `users:write`).
    Forbidden,
    /// Password hashing could not run (shutting down).
    Hashing,
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl From<HashingStopped> for Error {
    fn from(_: HashingStopped) -> Self {
        Error::Hashing
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Invalid(e) => e.fmt(f),
            Error::Forbidden => f.write_str("your role does not allow this operation"),
            Error::Hashing => f.write_str("password hashing is unavailable"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub role: &'static str,
    pub is_active: bool,
    /// `api-reference.zh.md`'s name for "role is admin".
    pub is_superuser: bool,
    pub permissions: Vec<&'static str>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub last_login: Option<i64>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            email: u.email,
            full_name: u.full_name,
            role: u.role.as_str(),
            is_active: u.is_active,
            is_superuser: u.role == Role::Admin,
            permissions: u.role.permission_names(),
            last_login: u.last_login,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_superuser: Option<bool>,
}

/// PUT and PATCH body: every field optional; `null` clears `email`/`full_name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub full_name: Option<Option<String>>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_superuser: Option<bool>,
}

// ---- validation (pure) ----

pub fn validate_username(s: &str) -> Result<String, Invalid> {
    let ok_len = (3..=32).contains(&s.len());
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let ok_start = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(s.to_string())
    } else {
        Err(Invalid::new(
            "username",
            "username must be 3-32 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

pub fn validate_password(field: &str, s: &str, min_len: usize) -> Result<(), Invalid> {
    let n = s.chars().count();
    if n < min_len {
        return Err(Invalid::new(
            field,
            format!("password must be at least {min_len} characters"),
        ));
    }
    if s.len() > 256 {
        return Err(Invalid::new(field, "password must be at most 256 bytes"));
    }
    Ok(())
}

/// Empty or blank means "no email".
pub fn validate_email(s: Option<String>) -> Result<Option<String>, Invalid> {
    let Some(s) = s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let valid = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(Some(s))
    } else {
        Err(Invalid::new(
            "email",
            "email must look like name@example.com",
        ))
    }
}

pub fn validate_full_name(s: Option<String>) -> Result<Option<String>, Invalid> {
    let Some(s) = s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.chars().count() > 128 || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "full_name",
            "full_name must be at most 128 printable characters",
        ));
    }
    Ok(Some(s))
}

/// `role` and the seeds' `is_superuser` together → the role to store. `current` is the
/// user's present role (for updates), `None` on create.
pub fn resolve_role(
    role: Option<&str>,
    is_superuser: Option<bool>,
    current: Option<Role>,
) -> Result<Role, Invalid> {
    let named = match role {
        Some(r) => Some(r.parse::<Role>().map_err(|_| {
            Invalid::new("role", "role must be one of admin, manager, user, viewer")
        })?),
        None => None,
    };
    match (named, is_superuser) {
        (Some(r), Some(su)) if su != (r == Role::Admin) => Err(Invalid::new(
            "is_superuser",
            "is_superuser contradicts role",
        )),
        (Some(r), _) => Ok(r),
        (None, Some(true)) => Ok(Role::Admin),
        (None, Some(false)) => Ok(match current {
            Some(Role::Admin) | None => Role::User,
            Some(r) => r,
        }),
        (None, None) => Ok(current.unwrap_or(Role::User)),
    }
}

impl NewUser {
    fn validate(self, min_password: usize) -> Result<(UserFields, String), Invalid> {
        let fields = UserFields {
            username: validate_username(&self.username)?,
            email: validate_email(self.email)?,
            full_name: validate_full_name(self.full_name)?,
            role: resolve_role(self.role.as_deref(), self.is_superuser, None)?,
            is_active: self.is_active.unwrap_or(true),
        };
        validate_password("password", &self.password, min_password)?;
        Ok((fields, self.password))
    }
}

impl UserChanges {
    /// `current` with these changes applied, validated.
    fn apply(self, current: &UserRow) -> Result<UserFields, Invalid> {
        Ok(UserFields {
            username: match self.username {
                Some(u) => validate_username(&u)?,
                None => current.username.clone(),
            },
            email: match self.email {
                Some(e) => validate_email(e)?,
                None => current.email.clone(),
            },
            full_name: match self.full_name {
                Some(n) => validate_full_name(n)?,
                None => current.full_name.clone(),
            },
            role: resolve_role(self.role.as_deref(), self.is_superuser, Some(current.role))?,
            is_active: self.is_active.unwrap_or(current.is_active),
        })
    }
}

// ---- rules (run inside the database closure) ----

/// Refuses a change that would leave no active admin.
fn keep_an_admin(conn: &Connection, user: &UserRow, after: Option<&UserFields>) -> StoreResult<()> {
    let was_admin = user.role == Role::Admin && user.is_active;
    let stays_admin = after.is_some_and(|f| f.role == Role::Admin && f.is_active);
    if was_admin && !stays_admin && q::count_other_active_admins(conn, user.id)? == 0 {
        let what = if after.is_some() {
            "demote or deactivate"
        } else {
            "delete"
        };
        return Err(StoreError::Rule(format!(
            "cannot {what} the last active admin"
        )));
    }
    Ok(())
}

// ---- operations ----

/// User accounts as a service: the store, password hashing (bounded, off the async
/// workers), the bus, and the two settings it needs.
pub struct Service {
    store: Store,
    hashing: Hashing,
    bus: Bus,
    password_min_length: usize,
    /// Where the first start's password file is (`<data_dir>/initial-admin-password`).
    data_dir: PathBuf,
}

/// A password change as asked: `current_password` is required when users change their own
/// password without `users:write`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub new_password: String,
    #[serde(default)]
    pub current_password: Option<String>,
}

impl Service {
    pub fn new(
        store: Store,
        hashing: Hashing,
        bus: Bus,
        password_min_length: usize,
        data_dir: PathBuf,
    ) -> Service {
        Service {
            store,
            hashing,
            bus,
            password_min_length,
            data_dir,
        }
    }

    async fn hash_password(&self, pw: String) -> Result<String> {
        Ok(self.hashing.run(move || password::hash(&pw)).await?)
    }

    /// One page of users matching `filter`, and how many match in all.
    pub async fn list(
        &self,
        filter: UserFilter,
        page: crate::input::Page,
    ) -> Result<(Vec<UserView>, u64)> {
        let (rows, total) = self
            .store
            .call(move |c| q::list(c, &filter, page.size, page.offset()))
            .await?;
        Ok((rows.into_iter().map(UserView::from).collect(), total))
    }

    pub async fn create(&self, input: NewUser) -> Result<UserRow> {
        let (fields, pw) = input.validate(self.password_min_length)?;
        let hash = self.hash_password(pw).await?;
        let now = crate::time::now();
        let row = self
            .store
            .call(move |c| q::insert(c, &fields, &hash, now))
            .await?;
        self.published(row.id, Op::Added).await;
        Ok(row)
    }

    pub async fn get(&self, id: i64) -> Result<UserRow> {
        self.store
            .call(move |c| q::get(c, id))
            .await?
            .ok_or(Error::NotFound("user"))
    }

    pub async fn update(&self, id: i64, changes: UserChanges) -> Result<UserRow> {
        let now = crate::time::now();
        let row = self
            .store
            .write(move |tx| {
                let current = q::get(tx, id)?.ok_or(StoreError::NotFound("user"))?;
                let fields = changes.apply(&current)?;
                keep_an_admin(tx, &current, Some(&fields))?;
                // Deactivation voids the user's tokens, so reactivating does not revive them.
                let revoke = current.is_active && !fields.is_active;
                Ok::<_, Error>(q::update(tx, id, &fields, revoke, now)?)
            })
            .await?;
        self.published(id, Op::Changed).await;
        Ok(row)
    }

    pub async fn delete(&self, id: i64) -> Result<()> {
        self.store
            .write(move |tx| {
                let current = q::get(tx, id)?.ok_or(StoreError::NotFound("user"))?;
                keep_an_admin(tx, &current, None)?;
                q::delete(tx, id)
            })
            .await?;
        self.published(id, Op::Removed).await;
        self.forget_stale_initial_password().await;
        Ok(())
    }

    /// `POST /users/{id}/reset-password` by `by`: with `users:write` any user's; without,
    /// only one's own, and then with the current password.
    pub async fn change_password(
        &self,
        by: &Principal,
        id: i64,
        change: PasswordChange,
    ) -> Result<()> {
        if !by.role.allows(Permission::UsersWrite) {
            if by.user_id != id {
                return Err(Error::Forbidden);
            }
            let current = change.current_password.ok_or_else(|| {
                Invalid::new(
                    "current_password",
                    "current_password is required to change your own password",
                )
            })?;
            let stored = self.get(id).await?.password_hash;
            let matches = self
                .hashing
                .run(move || password::verify(&current, &stored))
                .await?;
            if !matches {
                return Err(
                    Invalid::new("current_password", "current password is incorrect").into(),
                );
            }
        }
        self.set_password(id, change.new_password).await
    }

    async fn set_password(&self, id: i64, new_password: String) -> Result<()> {
        validate_password("new_password", &new_password, self.password_min_length)?;
        let hash = self.hash_password(new_password).await?;
        let now = crate::time::now();
        self.store
            .call(move |c| q::set_password(c, id, &hash, now))
            .await?;
        self.published(id, Op::Changed).await;
        self.forget_stale_initial_password().await;
        Ok(())
    }

    async fn published(&self, id: i64, op: Op) {
        self.bus.publish(Change::User { id, op }).await;
    }

    /// On first start (no users at all) creates `admin`. The password is `env_password` if
    /// given, else a random one printed once to stderr and saved to
    /// `<data_dir>/initial-admin-password` (0600), removed once that password is changed.
    /// There is no built-in default password.
    pub async fn bootstrap_admin(
        &self,
        env_password: Option<String>,
    ) -> std::result::Result<(), String> {
        if self
            .store
            .call(|c| q::count(c))
            .await
            .map_err(|e| e.to_string())?
            > 0
        {
            self.forget_stale_initial_password().await;
            return Ok(());
        }
        let generated = env_password.is_none();
        let pw = env_password.unwrap_or_else(crate::auth::random_password);
        validate_password("IPV6WGM_ADMIN_PASSWORD", &pw, self.password_min_length)
            .map_err(|e| format!("IPV6WGM_ADMIN_PASSWORD: {}", e.message))?;
        let fields = UserFields {
            username: "admin".into(),
            email: None,
            full_name: Some("Administrator".into()),
            role: Role::Admin,
            is_active: true,
        };
        let hash = self
            .hash_password(pw.clone())
            .await
            .map_err(|e| e.to_string())?;
        let now = crate::time::now();
        self.store
            .call(move |c| q::insert(c, &fields, &hash, now))
            .await
            .map_err(|e| e.to_string())?;
        if generated {
            let file = self.data_dir.join(INITIAL_PASSWORD_FILE);
            crate::fsutil::write_private(&file, format!("{pw}\n").as_bytes())?;
            eprintln!(
                "\n  ipv6wgm first start: created user 'admin' with password: {pw}\n  \
                 (also saved to {}; change it after logging in)\n",
                file.display()
            );
        } else {
            log::info!(
                "first start: created user 'admin' with the password from IPV6WGM_ADMIN_PASSWORD"
            );
        }
        Ok(())
    }

    /// Removes `<data_dir>/initial-admin-password` if it is stale (see
    /// [`initial_password_is_stale`]); after a password change and at start. Failing to
    /// remove it is logged, not an error: the password change itself has happened.
    async fn forget_stale_initial_password(&self) {
        let file = self.data_dir.join(INITIAL_PASSWORD_FILE);
        let Ok(content) = std::fs::read_to_string(&file) else {
            return;
        };
        let first = match self.store.call(|c| q::first(c)).await {
            Ok(u) => u.map(|u| u.password_hash),
            Err(e) => return log::warn!("cannot check {}: {e}", file.display()),
        };
        let stale = self
            .hashing
            .run(move || initial_password_is_stale(&content, first.as_deref()))
            .await;
        if stale.unwrap_or(false) {
            remove_initial_password(&file);
        }
    }
}

pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// The first start's password file is kept only while it still opens the account it was
/// made for, the first user ever created (lowest id; ids are never reused). Once that
/// password has changed, or the account is gone, the file would only mislead (and leak an
/// old password): it is removed. `first_user_hash` is that user's current hash.
fn initial_password_is_stale(file_content: &str, first_user_hash: Option<&str>) -> bool {
    first_user_hash.is_none_or(|h| !password::verify(file_content.trim_end_matches('\n'), h))
}

fn remove_initial_password(file: &Path) {
    match std::fs::remove_file(file) {
        Ok(()) => log::info!(
            "removed {}: the initial admin password has been changed",
            file.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("cannot remove stale {}: {e}", file.display()),
    }
}

/// `ipv6wgm reset-password USER` over SSH, with the service stopped or running: sets a new
/// password (given, or random and printed), reactivates the account and voids its tokens.
pub fn admin_reset_password(
    data_dir: &Path,
    username: &str,
    new: Option<String>,
) -> Result<String, String> {
    let db = data_dir.join(crate::store::DB_FILE);
    if !db.exists() {
        return Err(format!(
            "no database at {} (wrong --data-dir?)",
            db.display()
        ));
    }
    let mut conn = crate::store::open_connection(&db)?;
    crate::store::schema::migrate(&mut conn)?;
    let user = q::get_by_username(&conn, username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {username:?}"))?;
    let pw = new.unwrap_or_else(crate::auth::random_password);
    validate_password("password", &pw, 1).map_err(|e| e.message)?;
    let now = crate::time::now();
    q::set_password(&conn, user.id, &password::hash(&pw), now).map_err(|e| e.to_string())?;
    if !user.is_active {
        let fields = UserFields {
            is_active: true,
            username: user.username,
            email: user.email,
            full_name: user.full_name,
            role: user.role,
        };
        q::update(&conn, user.id, &fields, false, now).map_err(|e| e.to_string())?;
    }
    let file = data_dir.join(INITIAL_PASSWORD_FILE);
    if let Ok(content) = std::fs::read_to_string(&file) {
        let first = q::first(&conn).map_err(|e| e.to_string())?;
        if initial_password_is_stale(&content, first.as_ref().map(|u| u.password_hash.as_str())) {
            remove_initial_password(&file);
        }
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<impl std::fmt::Debug, Invalid>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn usernames() {
        for ok in [
            "bob",
            "a.b-c_d",
            "X9",
            "abc",
            "a23456789012345678901234567890ab",
        ] {
            if ok.len() >= 3 {
                assert!(validate_username(ok).is_ok(), "{ok}");
            }
        }
        for bad in [
            "ab",
            "",
            "-bob",
            "bob smith",
            "bøb",
            "a234567890123456789012345678901234",
        ] {
            assert_eq!(field(validate_username(bad)), "username", "{bad}");
        }
    }

    #[test]
    fn emails_and_names() {
        assert_eq!(
            validate_email(Some(" a@b.c ".into()))
                .expect("ok")
                .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(validate_email(Some("".into())).expect("ok"), None);
        for bad in ["a", "a@b", "@b.c", "a b@c.d", "a@b@c.d", "a@.b", "a@b."] {
            assert_eq!(field(validate_email(Some(bad.into()))), "email", "{bad}");
        }
        assert_eq!(
            field(validate_full_name(Some("x".repeat(129)))),
            "full_name"
        );
        assert_eq!(
            field(validate_full_name(Some("a\u{7}".into()))),
            "full_name"
        );
    }

    #[test]
    fn passwords() {
        assert!(validate_password("p", "12345678", 8).is_ok());
        assert_eq!(field(validate_password("p", "1234567", 8)), "p");
        assert_eq!(field(validate_password("p", &"x".repeat(257), 8)), "p");
    }

    #[test]
    fn the_initial_password_is_stale_once_it_no_longer_opens_the_first_account() {
        let hash = password::hash("initial-pw");
        assert!(!initial_password_is_stale("initial-pw\n", Some(&hash)));
        assert!(initial_password_is_stale(
            "initial-pw\n",
            Some(&password::hash("changed"))
        ));
        assert!(
            initial_password_is_stale("initial-pw\n", None),
            "account gone"
        );
    }

    #[test]
    fn roles_and_is_superuser() {
        use Role::*;
        assert_eq!(resolve_role(None, None, None).expect("ok"), User);
        assert_eq!(
            resolve_role(Some("viewer"), None, None).expect("ok"),
            Viewer
        );
        assert_eq!(resolve_role(None, Some(true), None).expect("ok"), Admin);
        assert_eq!(
            resolve_role(Some("admin"), Some(true), None).expect("ok"),
            Admin
        );
        assert_eq!(
            field(resolve_role(Some("user"), Some(true), None)),
            "is_superuser"
        );
        assert_eq!(field(resolve_role(Some("root"), None, None)), "role");
        assert_eq!(
            resolve_role(None, Some(false), Some(Admin)).expect("ok"),
            User
        );
        assert_eq!(
            resolve_role(None, Some(false), Some(Manager)).expect("ok"),
            Manager
        );
        assert_eq!(resolve_role(None, None, Some(Viewer)).expect("ok"), Viewer);
    }
}
