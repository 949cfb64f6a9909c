//! The process logger: env_logger's formatting and filter syntax, with a filter that can be
//! replaced while running (`PUT /system/config {"log_level": "debug"}`), which plain
//! `env_logger::init` cannot do.

use std::sync::RwLock;

struct Reloadable {
    inner: RwLock<env_logger::Logger>,
}

static LOGGER: std::sync::OnceLock<Reloadable> = std::sync::OnceLock::new();

fn build(spec: &str) -> env_logger::Logger {
    env_logger::Builder::new()
        .parse_filters(spec)
        .format_timestamp_secs()
        .build()
}

impl log::Log for Reloadable {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.inner.read().map(|l| l.enabled(m)).unwrap_or(false)
    }

    fn log(&self, r: &log::Record<'_>) {
        if let Ok(l) = self.inner.read() {
            l.log(r);
        }
    }

    fn flush(&self) {
        if let Ok(l) = self.inner.read() {
            l.flush();
        }
    }
}

/// Installs the logger with an env_logger filter (`info`, `ipv6wgm::bgp=debug,warn`, …).
/// A second call only changes the filter.
pub fn init(spec: &str) {
    let logger = LOGGER.get_or_init(|| Reloadable {
        inner: RwLock::new(build(spec)),
    });
    if log::set_logger(logger).is_err() {
        set_filter(spec);
        return;
    }
    if let Ok(l) = logger.inner.read() {
        log::set_max_level(l.filter());
    }
}

/// Replaces the filter. Before [`init`] (tests) there is nothing to change.
pub fn set_filter(spec: &str) {
    if let Some(logger) = LOGGER.get() {
        let new = build(spec);
        log::set_max_level(new.filter());
        if let Ok(mut l) = logger.inner.write() {
            *l = new;
        }
    }
}

/// Whether `spec` is a filter env_logger understands: a level, or `module=level` items
/// separated by commas. (env_logger itself accepts anything and ignores what it cannot
/// parse; the API should say no instead.)
pub fn valid_filter(spec: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = |s: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    let module = |s: &str| {
        let s = s.trim();
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    };
    !spec.trim().is_empty()
        && spec.len() <= 200
        && spec.split(',').all(|item| match item.split_once('=') {
            Some((m, l)) => module(m) && level(l),
            // env_logger reads a bare word as a module name; here it must be a level, so
            // that "debgu" is an error rather than "trace everything in module debgu".
            None => level(item),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked() {
        for ok in [
            "info",
            "DEBUG",
            "warn,ipv6wgm::bgp=debug",
            "ipv6wgm=trace",
            "off",
        ] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in [
            "",
            "loud",
            "ipv6wgm",
            "ipv6wgm=loud",
            "a b",
            "x=info=debug",
            ",",
            "info;rm",
        ] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }
}
