//! IPv6 prefix pools: delegating a routed prefix to every client. [`alloc`] is the pure
//! allocator (lowest free aligned prefix, exact counts, O(log n) per operation).

pub mod alloc;
