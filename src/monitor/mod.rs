//! Observe and operate: the metrics collector ([`collector`]) reading narrow [`sources`],
//! its bounded history, alerts, component health, the event log of engine notifications.
//!
//! Pure parts: [`procfs`] (parsers of `/proc` files and `statvfs`), [`history`] (fixed-size
//! sample rings), [`alerts`] (rule evaluation with a fake clock).

pub mod alerts;
pub mod collector;
pub mod events;
pub mod health;
pub mod history;
pub mod latency;
pub mod procfs;
pub mod prometheus;
pub mod sources;
