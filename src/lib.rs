//! # ipv6wgm — architecture map
//!
//! One static binary that turns an OpenWrt router or a Linux host into an IPv6-over-WireGuard
//! access concentrator, driven entirely through a REST API under `/api/v1`
//! (`../shared/CONTRACT.md`).
//!
//! ## Bird's-eye view
//! ```text
//!  client ──HTTP/1.1──► api::serve ──► api::handle ──► router (matchit per method)
//!                                          │               │ Access: Public | Authenticated | Require(Permission)
//!                                          │               ▼
//!                                          │         auth::authenticate ── token (JWT) + revocation + user row
//!                                          │               ▼
//!                                          │         api::<resource> handler (thin: parse → domain → Reply)
//!                                          │               ▼
//!                                          │         domain (users, auth::login, …) ──► Store ──► ipv6wgm-db thread ──► SQLite
//!                                          ▼
//!                         response envelope · metrics · request log · audit log
//! ```
//!
//! ## Code map
//! - `main.rs` — command line → [`config`] → [`app::run`]. Nothing else.
//! - [`cli`] — flags and subcommands (`serve`, `reset-password`).
//! - [`config`] — defaults < TOML < `IPV6WGM_*` env < flags; unknown keys are errors.
//! - [`app`] — start-up and shutdown; [`app::App`], the state every handler shares.
//! - [`api`] — listener, request pipeline, router, request/response helpers, one module per
//!   resource group (`auth`, `users`, `status`, `wireguard`, `ipv6`).
//! - [`auth`] — roles and permissions, password hashing, JWTs, login limiter (pure), and the
//!   login/refresh/logout flows.
//! - [`users`] — user validation, the "always an active admin" rule, first-start bootstrap.
//! - [`store`] — SQLite: migrations and one query file per table. The only place with SQL.
//! - [`health`], [`metrics`] — component health checks; latency histograms (API requests,
//!   database jobs).
//! - [`monitor`] — pure `/proc` parsers, fixed-size metric history, the alert evaluator; the
//!   collector task (one sample per interval: host, engines, alerts) and Prometheus text.
//! - [`logs`] — the log store's front: audit entries and engine events, filters, exports.
//! - [`system`] — settings that change live (`/system/config`), host info, reload/restart.
//! - [`ws`] — WebSocket channels (hyper upgrade, tokio-tungstenite frames).
//! - [`logging`] — the process logger with a filter that can change while running.
//! - [`ipv6`] — IPv6 prefix pools: the pure allocator ([`ipv6::alloc`]), pool/whitelist/
//!   allocation rules, one in-memory allocator per pool updated in the same DB-thread closure
//!   as the SQL (race-free), and the link that puts delegated prefixes into a WireGuard
//!   client's `routed_prefixes`.
//! - [`rpki`] — route origin validation: the VRP table and RFC 6811 ([`rpki::vrp`]), VRP
//!   files and SLURM, the live table fed by a file watcher or the RTR client ([`rpki::rtr`]).
//! - [`error`] — [`error::ApiError`], the one error type clients see.
//! - [`time`], [`fsutil`] — RFC 3339 formatting; private (0600) atomic file writes.
//! - [`wg`] — userspace WireGuard. Pure: keys, wg-quick and UAPI codecs, cryptokey routing,
//!   QR codes. I/O: TUN, the device driving `boringtun::noise::Tunn` per peer
//!   ([`wg::device`]), its `wg`-compatible UAPI socket, netlink, and [`wg::engine`], which
//!   runs one device per started server and knows nothing of the database.
//! - [`wireguard`] — WireGuard servers and clients as stored: validation, subnet/prefix
//!   conflict rules, address allocation, views, client configs, wg-quick import; its `live`
//!   module turns rows into engine specs and device statistics into the views' live fields.
//!
//! ```text
//!  /wireguard handler ──► wireguard (rules, DB thread) ──► wireguard::live ──► wg::engine
//!                                                                              │ one per running server
//!                                     netlink (MTU, addrs, routes) ◄── wg::device ──► TUN + UDP v4/v6
//!                                                                              └─► /var/run/wireguard/<if>.sock
//! ```
//!
//! ## Invariants
//! - Every response body is the contract's success or error envelope, rendered only by
//!   `api::response`; every error is an [`error::ApiError`] whose code fixes the status.
//! - Every route declares its access requirement in the route table; handlers never check
//!   roles themselves except for "own record" exceptions (password change).
//! - Every mutating request to a known route leaves one audit-log row, success or not —
//!   except refusals without a principal, summed up per address and minute ([`logs::refused`]).
//! - No SQL outside `store/`; no blocking I/O or password hashing on async worker threads
//!   (database work goes to the `ipv6wgm-db` thread, hashing to the blocking pool, bounded).
//! - Pure logic (role table, password hash, token codec, rate limiter, validation, query and
//!   pagination parsing, time formatting) does no I/O and takes time as a parameter.
//! - Memory is bounded: request heads (`http.max_header_bytes`), request bodies (4 KiB
//!   before authentication, `http.max_body_bytes` after), connections
//!   (`http.max_connections`, `http.max_connections_per_ip`), downloads (streamed in
//!   chunks), the database queue, the login limiter, the latency histograms,
//!   the metric history, the log store (`logs.max_entries`, `logs.max_size_mb`), the event
//!   queue and every WebSocket's output (one message in flight) all have fixed caps; WireGuard devices have
//!   fixed packet buffers and never queue packets per peer (see [`wg::device`]).
//! - What the API reports as running is running: a server's `status` comes from the engine
//!   (a live device), client statistics from the device; nothing is stored as a guess.
//! - Secrets (JWT key, initial admin password) are written 0600, atomically; password
//!   hashes and private keys never appear in API responses or logs.

pub mod api;
pub mod app;
pub mod auth;
pub mod bgp;
pub mod changes;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod input;
pub mod ipam;
pub mod logging;
pub mod logs;
pub mod monitor;
pub mod rpki;
pub mod store;
pub mod sync;
pub mod system;
#[cfg(test)]
mod testutil;
pub mod time;
pub mod users;
pub mod wireguard;
