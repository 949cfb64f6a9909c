//! RPKI route origin validation. [`vrp`] is the pure part: the VRP table and RFC 6811
//! validation; the RTR client and file loaders fill the table.

pub mod vrp;
