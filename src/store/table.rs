//! One place per table that names its columns, so that adding a column is one edit.
//!
//! **Reading.** A query file declares a table's columns once with [`columns!`]: the list every
//! SELECT of the table reads (`LIST`) and, for each column, its index in that list, which the
//! row-mapping function reads by (`r.get(pool_col::name)`). Reading by index keeps list
//! pages as fast as before (a lookup by name would search the statement's columns for every
//! field of every row).
//!
//! **Writing.** What a create or an update writes is one list of [`Set`]s — a column's name
//! beside its value — from which [`insert`] and [`update`] build their statements; no column
//! list is repeated per statement.
//!
//! The helpers below turn stored text back into typed values with an error naming the column.

use rusqlite::types::{ToSql, Type};
use rusqlite::{params_from_iter, Connection, Row};
use std::str::FromStr;

/// Declares a table's columns, in SELECT order:
/// `columns! { pool_col: id, name, prefix }` makes a module `pool_col` with
/// `LIST` (`"id, name, prefix"`), `COUNT` (3: the index of the first thing a query selects
/// after them) and one index constant per column (`pool_col::prefix == 2`).
macro_rules! columns {
    ($(#[$doc:meta])* $module:ident: $first:ident $(, $rest:ident)* $(,)?) => {
        $(#[$doc])*
        #[allow(non_upper_case_globals, dead_code)]
        mod $module {
            #[allow(non_camel_case_types)]
            enum Index {
                $first,
                $($rest,)*
            }
            /// Every column, in order: what each SELECT of the table reads.
            pub const LIST: &str = concat!(stringify!($first) $(, ", ", stringify!($rest))*);
            /// How many columns [`LIST`] names.
            pub const COUNT: usize = [stringify!($first) $(, stringify!($rest))*].len();
            pub const $first: usize = Index::$first as usize;
            $(pub const $rest: usize = Index::$rest as usize;)*
        }
    };
}
pub(crate) use columns;

/// A column a create or an update writes, with its value.
pub(crate) type Set<'a> = (&'static str, Box<dyn ToSql + 'a>);

/// `column` gets `value`.
pub(crate) fn set<'a>(column: &'static str, value: impl ToSql + 'a) -> Set<'a> {
    (column, Box::new(value))
}

/// `INSERT INTO table (a, b, …) VALUES (?1, ?2, …)` for these columns.
pub(crate) fn insert_sql(table: &str, sets: &[Set<'_>]) -> String {
    let names: Vec<&str> = sets.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=sets.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    )
}

/// The values of `sets`, in order, as statement parameters.
pub(crate) fn values<'s>(sets: &'s [Set<'_>]) -> impl Iterator<Item = &'s dyn ToSql> {
    sets.iter().map(|(_, v)| &**v as &dyn ToSql)
}

/// Every row `sql` selects, each read by `map`: the one way a query returns a list.
pub(crate) fn rows<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> super::StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts one row; returns the number of rows inserted.
pub(crate) fn insert(conn: &Connection, table: &str, sets: &[Set<'_>]) -> rusqlite::Result<usize> {
    conn.execute(&insert_sql(table, sets), params_from_iter(values(sets)))
}

/// `UPDATE table SET a = ?1, b = ?2, … WHERE id = ?n`; returns the number of rows changed
/// (0: no row has that id).
pub(crate) fn update(
    conn: &Connection,
    table: &str,
    id: i64,
    sets: &[Set<'_>],
) -> rusqlite::Result<usize> {
    update_and(conn, table, id, sets, &[])
}

/// [`update`] that also makes `assignments`, SQL without parameters (`n = n + 1`), in the
/// same statement.
pub(crate) fn update_and(
    conn: &Connection,
    table: &str,
    id: i64,
    sets: &[Set<'_>],
    assignments: &[&str],
) -> rusqlite::Result<usize> {
    let all: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ?{}", i + 1))
        .chain(assignments.iter().map(|a| a.to_string()))
        .collect();
    let sql = format!(
        "UPDATE {table} SET {} WHERE id = ?{}",
        all.join(", "),
        sets.len() + 1
    );
    let id: &dyn ToSql = &id;
    conn.execute(&sql, params_from_iter(values(sets).chain([id])))
}

/// Inserts one row, or updates the row whose `key` column holds the same value: every
/// column but `key` and `insert_only` is overwritten.
pub(crate) fn upsert(
    conn: &Connection,
    table: &str,
    key: &str,
    sets: &[Set<'_>],
    insert_only: &[&str],
) -> rusqlite::Result<usize> {
    let overwritten: Vec<String> = sets
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| *c != key && !insert_only.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "{} ON CONFLICT ({key}) DO UPDATE SET {}",
        insert_sql(table, sets),
        overwritten.join(", ")
    );
    conn.execute(&sql, params_from_iter(values(sets)))
}

/// A value the database holds that the code cannot read back.
pub(crate) fn bad(col: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, msg.into())
}

/// Column `col`, stored as text, parsed.
pub(crate) fn parsed<T: FromStr>(r: &Row<'_>, col: usize) -> rusqlite::Result<T> {
    let s: String = r.get(col)?;
    s.parse()
        .map_err(|_| bad(col, format!("malformed value {s:?}")))
}

/// Column `col`, stored as text or NULL, parsed.
pub(crate) fn parsed_opt<T: FromStr>(r: &Row<'_>, col: usize) -> rusqlite::Result<Option<T>> {
    let Some(s) = r.get::<_, Option<String>>(col)? else {
        return Ok(None);
    };
    s.parse()
        .map(Some)
        .map_err(|_| bad(col, format!("malformed value {s:?}")))
}

/// Column `col`, stored as a JSON array of text (see [`json_list`]), each item parsed.
pub(crate) fn parsed_list<T: FromStr>(r: &Row<'_>, col: usize) -> rusqlite::Result<Vec<T>> {
    let s: String = r.get(col)?;
    let items: Vec<String> =
        serde_json::from_str(&s).map_err(|e| bad(col, format!("malformed list: {e}")))?;
    items
        .iter()
        .map(|i| {
            i.parse()
                .map_err(|_| bad(col, format!("malformed list item {i:?}")))
        })
        .collect()
}

/// A list as stored: a JSON array of the items' text.
pub(crate) fn json_list<T: ToString>(items: &[T]) -> String {
    let strings: Vec<String> = items.iter().map(T::to_string).collect();
    serde_json::to_string(&strings).unwrap_or_else(|_| "[]".into())
}

/// An optional value as stored: its text, or NULL.
pub(crate) fn text<T: ToString>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(T::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    columns! { demo_col: id, name, prefix }

    #[test]
    fn columns_list_and_index_agree() {
        assert_eq!(demo_col::LIST, "id, name, prefix");
        assert_eq!(
            (
                demo_col::id,
                demo_col::name,
                demo_col::prefix,
                demo_col::COUNT
            ),
            (0, 1, 2, 3)
        );
    }

    #[test]
    fn statements_name_each_column_once() {
        let sets = [set("name", "x"), set("prefix", 48)];
        assert_eq!(
            insert_sql("t", &sets),
            "INSERT INTO t (name, prefix) VALUES (?1, ?2)"
        );
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, prefix INTEGER)")
            .expect("table");
        assert_eq!(insert(&c, "t", &sets).expect("insert"), 1);
        let changed = update(&c, "t", 1, &[set("prefix", 56), set("name", "y")]);
        assert_eq!(changed.expect("update"), 1);
        assert_eq!(update(&c, "t", 9, &[set("name", "z")]).expect("none"), 0);
        let bumped = update_and(&c, "t", 1, &[], &["prefix = prefix + 8"]);
        assert_eq!(bumped.expect("expression"), 1);
        let row: (String, i64) = c
            .query_row("SELECT name, prefix FROM t WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("row");
        assert_eq!(row, ("y".to_string(), 64));
        let again = [set("id", 1), set("name", "w"), set("prefix", 1)];
        assert_eq!(
            upsert(&c, "t", "id", &again, &["prefix"]).expect("upsert"),
            1
        );
        let row: (String, i64) = c
            .query_row("SELECT name, prefix FROM t WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("row");
        assert_eq!(row, ("w".to_string(), 64), "prefix is insert-only");
    }
}
