//! Small synchronisation helpers shared by every layer.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on through poisoning. A panic while holding a lock aborts the process in
/// release builds (`panic = "abort"`), so a poisoned lock is only seen in tests, and the data
/// behind our locks is consistent between statements. Never hold the guard across `.await`.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A boxed, sendable future: what trait objects with async methods return (health checks,
/// the change bus's appliers, route handlers).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
