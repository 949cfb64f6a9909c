//! Queries on `users`.

use super::table::{self, bad, columns, set, Set};
use super::{StoreError, StoreResult};
use crate::auth::Role;
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub password_hash: String,
    /// Tokens carry this; bumping it voids them all.
    pub token_generation: i64,
    /// Random, unique to this row (never reused, unlike a freed id would be): tokens carry
    /// it, so a token authenticates only the row it was issued for.
    pub token_nonce: String,
    pub last_login: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields a create or an update writes (all of them; updates merge first).
#[derive(Debug, Clone)]
pub struct UserFields {
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Case-insensitive substring of username, email or full name.
    pub search: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

columns! { user_col: id, username, email, full_name, role, is_active, password_hash,
token_generation, last_login, created_at, updated_at, token_nonce }

use user_col::LIST as COLUMNS;

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let role: String = r.get(user_col::role)?;
    Ok(UserRow {
        id: r.get(user_col::id)?,
        username: r.get(user_col::username)?,
        email: r.get(user_col::email)?,
        full_name: r.get(user_col::full_name)?,
        role: role
            .parse()
            .map_err(|_| bad(user_col::role, format!("unknown role {role:?}")))?,
        is_active: r.get(user_col::is_active)?,
        password_hash: r.get(user_col::password_hash)?,
        token_generation: r.get(user_col::token_generation)?,
        last_login: r.get(user_col::last_login)?,
        created_at: r.get(user_col::created_at)?,
        updated_at: r.get(user_col::updated_at)?,
        token_nonce: r.get(user_col::token_nonce)?,
    })
}

/// The columns a create or an update writes, with their values.
fn written(f: &UserFields) -> Vec<Set<'_>> {
    vec![
        set("username", &f.username),
        set("email", &f.email),
        set("full_name", &f.full_name),
        set("role", f.role.as_str()),
        set("is_active", f.is_active),
    ]
}

fn username_taken(e: rusqlite::Error, username: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            StoreError::Conflict {
                field: "username".into(),
                message: format!("username {username:?} is already taken"),
            }
        }
        e => StoreError::Sqlite(e),
    }
}

pub fn count(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn insert(conn: &Connection, f: &UserFields, hash: &str, now: i64) -> StoreResult<UserRow> {
    let mut sets = written(f);
    sets.extend([
        set("password_hash", hash),
        set("created_at", now),
        set("updated_at", now),
    ]);
    table::insert(conn, "users", &sets).map_err(|e| username_taken(e, &f.username))?;
    get(conn, conn.last_insert_rowid())?.ok_or(StoreError::NotFound("user"))
}

pub fn get(conn: &Connection, id: i64) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// The user with the lowest id: the first account ever made (ids are never reused), which
/// is the `admin` a first start created unless it was deleted.
pub fn first(conn: &Connection) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY id LIMIT 1");
    Ok(conn.query_row(&sql, [], from_row).optional()?)
}

pub fn get_by_username(conn: &Connection, username: &str) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], from_row)
        .optional()?)
}

/// One page of users matching `filter`, ordered by id, and the total number matching.
pub fn list(
    conn: &Connection,
    filter: &UserFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<UserRow>, u64)> {
    let pattern = filter.search.as_deref().map(super::contains_pattern);
    let role = filter.role.map(Role::as_str);
    let cond = "(?1 IS NULL OR username LIKE ?1 ESCAPE '\\' OR email LIKE ?1 ESCAPE '\\' \
                OR full_name LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR role = ?2) \
                AND (?3 IS NULL OR is_active = ?3)";
    let total: u64 = conn.query_row(
        &format!("SELECT count(*) FROM users WHERE {cond}"),
        params![pattern, role, filter.is_active],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users WHERE {cond} ORDER BY id LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt
        .query_map(
            params![pattern, role, filter.is_active, limit, offset as i64],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Writes every field of `f`; `revoke_tokens` voids the user's existing tokens.
pub fn update(
    conn: &Connection,
    id: i64,
    f: &UserFields,
    revoke_tokens: bool,
    now: i64,
) -> StoreResult<UserRow> {
    let mut sets = written(f);
    sets.push(set("updated_at", now));
    // Voiding tokens in the same statement: never new fields with the old tokens still good.
    let bump: &[&str] = if revoke_tokens {
        &["token_generation = token_generation + 1"]
    } else {
        &[]
    };
    let n = table::update_and(conn, "users", id, &sets, bump)
        .map_err(|e| username_taken(e, &f.username))?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    get(conn, id)?.ok_or(StoreError::NotFound("user"))
}

/// New password hash; every token the user holds stops working.
pub fn set_password(conn: &Connection, id: i64, hash: &str, now: i64) -> StoreResult<()> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2, token_generation = token_generation + 1, \
         updated_at = ?3 WHERE id = ?1",
        params![id, hash, now],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

pub fn record_login(conn: &Connection, id: i64, now: i64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE users SET last_login = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM users WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Active admins other than `except`.
pub fn count_other_active_admins(conn: &Connection, except: i64) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND is_active = 1 AND id != ?1",
        [except],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::store::test_db()
    }

    fn fields(name: &str, role: Role) -> UserFields {
        UserFields {
            username: name.into(),
            email: Some(format!("{name}@example.com")),
            full_name: None,
            role,
            is_active: true,
        }
    }

    #[test]
    fn usernames_are_unique_ignoring_case() {
        let c = db();
        insert(&c, &fields("alice", Role::User), "h", 1).expect("insert");
        let err = insert(&c, &fields("ALICE", Role::User), "h", 1).unwrap_err();
        assert!(matches!(err, StoreError::Conflict { ref field, .. } if field == "username"));
    }

    #[test]
    fn list_filters_and_escapes_like_wildcards() {
        let c = db();
        for (n, r) in [
            ("ann", Role::Admin),
            ("bob_x", Role::User),
            ("bobby", Role::Viewer),
        ] {
            insert(&c, &fields(n, r), "h", 1).expect("insert");
        }
        let page = |f: UserFilter| list(&c, &f, 10, 0).expect("list");
        let (rows, total) = page(UserFilter {
            search: Some("bob".into()),
            ..Default::default()
        });
        assert_eq!((rows.len(), total), (2, 2));
        let (rows, _) = page(UserFilter {
            search: Some("b_".into()),
            ..Default::default()
        });
        assert_eq!(rows.len(), 1, "'_' is literal");
        assert_eq!(rows[0].username, "bob_x");
        let (_, total) = page(UserFilter {
            role: Some(Role::Viewer),
            ..Default::default()
        });
        assert_eq!(total, 1);
        let (rows, total) = list(&c, &UserFilter::default(), 1, 2).expect("list");
        assert_eq!((rows[0].username.as_str(), total), ("bobby", 3));
    }

    #[test]
    fn password_change_voids_older_tokens() {
        let c = db();
        let u = insert(&c, &fields("a", Role::User), "h1", 10).expect("insert");
        set_password(&c, u.id, "h2", 20).expect("set");
        let u = get(&c, u.id).expect("get").expect("exists");
        assert_eq!((u.password_hash.as_str(), u.token_generation), ("h2", 1));
    }
}
