//! RPKI route origin validation. [`vrp`] is the pure part: the VRP table and RFC 6811
//! validation; [`file`] reads the JSON VRP exports and SLURM exceptions; the RTR client
//! fills the table from a cache.

pub mod file;
pub mod vrp;
