//! # ipv6wgm — architecture map
//!
//! One static binary that turns an OpenWrt router or a Linux host into an IPv6-over-WireGuard
//! access concentrator — userspace WireGuard, a routed IPv6 prefix per client from a pool, a
//! BGP speaker announcing them, RPKI origin validation, monitoring and logs — driven entirely
//! through a REST API under `/api/v1` (`../shared/CONTRACT.md`) and WebSocket channels.
//!
//! ## Bird's-eye view: the path of a write
//! ```text
//!  client ─HTTP/1.1─► api::serve ─► api::handle ─► router (matchit per method; Access per route)
//!                                        │              ▼
//!                                        │        auth::Service::authenticate (JWT + nonce + revocation)
//!                                        │              ▼
//!                                        │        api::<group> handler: parse → one service call → render
//!                                        │              ▼
//!                                        │        <domain>::Service ── rules (pure) ──► Store::write ──► ipv6wgm-db thread ──► SQLite
//!                                        │              │ after the commit
//!                                        │              ▼
//!                                        │        changes::Bus::publish(Change)
//!                                        │              ├─► appliers (awaited): wireguard::Reconciler ─► device::engine ─► devices
//!                                        │              │                       bgp::Reconciler ─► speaker sessions; exports marked dirty
//!                                        │              │                       api::ws cache invalidation
//!                                        │              └─► observers (broadcast): WebSocket connections
//!                                        ▼
//!                          response envelope (api::response, api::error) · latency · audit log
//! ```
//! A WireGuard client created through the API: `api::wireguard::create_client` →
//! `wireguard::Service::create_client` → `wireguard::write` (rules, address allocation, SQL in
//! one transaction) → `Bus::publish(Change::Client)` → `wireguard::Reconciler` → the engine adds
//! the peer to the running device → the answer shows its live state.
//!
//! ## Layers (checked by `cargo test --test layers`)
//! base (`sync`, `time`, `fsutil`, `input`, `error`, `config`, `logging`) ◄ bus ([`changes`]) ◄
//! domains and the store ◄ service ([`app`], [`api`]) ◄ root (`main`, [`cli`]). A module names
//! only its own layer or below; domains never name the API's error type or the `App`.
//!
//! ## Code map
//! - `main.rs` — command line → [`config`] → [`app::run`]. Nothing else.
//! - [`cli`] — flags and subcommands (`serve`, `reset-password`, key tools).
//! - [`config`] — defaults < TOML < `IPV6WGM_*` env < flags; unknown keys are errors.
//! - [`app`] — builds the services and engines, registers the appliers on the bus, owns the
//!   background tasks and the one shutdown path (diagram in its header).
//! - [`changes`] — the typed change bus: [`changes::Change`], appliers, observers.
//! - [`api`] — listener and connection limits (`conn`), request pipeline, router, request/
//!   response helpers, [`api::error`] (every domain error mapped to the contract once), one
//!   module per group (`auth`, `users`, `status`, `system`, `logs`, `monitoring`, `wireguard`,
//!   `ipv6`, `bgp`), the OpenAPI document, and `ws` (WebSocket channels).
//! - Domains, each a `Service` holding only its store handle, engine and settings, with its
//!   own `Error`:
//!   - [`auth`] — roles and permissions, password hashing, tokens (HS256), the login limiter
//!     (pure), and the login/refresh/logout flows ([`auth::login`]).
//!   - [`users`] — accounts, the "always an active admin" rule, first-start bootstrap.
//!   - [`wireguard`] — servers and clients as stored: pure rules and views ([`wireguard::model`]),
//!     writes (`wireguard::write`), the rules pools impose ([`wireguard::pool_rules`]) and
//!     prefixes delegated into routed prefixes ([`wireguard::delegated`]); keys, wg-quick and QR
//!     codecs; the [`wireguard::live`] reconciler; the client list's rendered items, kept per
//!     version of each row ([`wireguard::listing`]); and the datapath [`wireguard::device`]
//!     (TUN, the device driving `boringtun::noise::Tunn` per peer, UAPI socket, netlink, the
//!     engine running one device per started server — it knows nothing of the database).
//!   - [`ipam`] — IPv6 prefix pools: the pure allocator ([`ipam::alloc`]), pool/whitelist/
//!     allocation rules, one in-memory allocator per pool changed in the same DB-thread closure
//!     as the SQL (race-free), RPKI validation of a pool's prefix.
//!   - [`bgp`] — the BGP-4 speaker: pure codec ([`bgp::packet`]), FSM ([`bgp::fsm`]), OPEN
//!     checks, inbound policy, Adj-RIB-Out diff; the I/O session tasks and listeners
//!     (`speaker`, `session`); what we originate (pools + announcements, [`bgp::originations`],
//!     [`bgp::exports`]); the service and its reconciler.
//!   - [`rpki`] — route origin validation: the VRP table and RFC 6811 ([`rpki::vrp`]), VRP files
//!     and SLURM, the live table fed by a file watcher or the RTR client ([`rpki::rtr`]).
//!   - [`logs`] — the log store's front: audit entries and engine events, per-address refusal
//!     summaries ([`logs::refused`]), filters, exports; its writer task.
//!   - [`system`] — settings that change live (`/system/config`), host info, stop/restart.
//!   - [`backup`] — consistent `.tar.gz` archives (optionally age-encrypted) in a directory
//!     that is its own catalogue; upload; restore (staged, validated, swapped under a journal on
//!     the database thread, then every engine reconciled); OpenWrt's kept `latest` backup.
//!   - [`monitor`] — pure `/proc` parsers, fixed-size history, alert rules and evaluator; the
//!     collector reading the engines through narrow traits ([`monitor::sources`]); health
//!     checks; latency histograms; Prometheus text.
//!   - [`store`] — SQLite: migrations, one query file per table, columns named once
//!     (`store::table`); the only place with SQL.
//! - Base: [`error`] (`Invalid`, shared by domains), [`input`] (pagination, the "absent vs
//!   null" PATCH convention), [`sync`] (lock, boxed futures), [`time`], [`fsutil`], [`logging`].
//!
//! ## Invariants
//! - Effects follow commits: a domain operation commits, then publishes a [`changes::Change`];
//!   handlers never call engines or choose WebSocket channels. Appliers reconcile (re-read the
//!   desired state and converge), so start-up, a change and a restore use the same code.
//! - Every response body is the contract's success or error envelope, rendered only by
//!   `api::response`; every domain error becomes an `ApiError` in `api::error`, nowhere else.
//! - Every route declares its access requirement and query parameters in the route table;
//!   handlers never check roles themselves except for "own record" rules (password change).
//! - Every mutating request to a known route leaves one audit-log row, success or not —
//!   except refusals without a principal, summed up per address and minute ([`logs::refused`]).
//! - No SQL outside `store/`; no blocking I/O or password hashing on async worker threads
//!   (database work goes to the `ipv6wgm-db` thread, hashing to the blocking pool, bounded).
//! - Pure logic (codecs, FSM, allocator, role table, token codec, rate limiter, validation,
//!   query parsing, time formatting) does no I/O and takes time as a parameter.
//! - Memory is bounded: request heads, bodies (4 KiB before authentication), connections (in
//!   all and per address), downloads (streamed), the database queue, the login limiter, the
//!   latency histograms, the metric history, the log store, the event queue, the bus's
//!   observer backlog and every WebSocket's output all have fixed caps; WireGuard devices have
//!   fixed packet buffers and never queue packets per peer.
//! - What the API reports as running is running: a server's `status` comes from the engine,
//!   client statistics from the device, a session's state from its task.
//! - Every task has an owner and a stop: `app::run` stops background tasks with one signal and
//!   joins them before the database closes; sessions get a Cease, devices are taken down.
//! - Secrets (JWT key, initial admin password) are written 0600, atomically; password hashes
//!   and private keys never appear in API responses or logs.

pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
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
