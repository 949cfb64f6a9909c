//! The process logger: env_logger's filter syntax and line format (`[INFO  target] message`
//! on stderr), with a filter that can be replaced while running (`PUT /system/config
//! {"log_level": "debug"}`). Ours rather than env_logger's (~20 KiB of router flash for
//! what is a filter and one line format): [`Filter::parse`] and [`Filter::enabled`] are pure
//! and keep env_filter 2's rules, so every spec means what it meant before.

use log::{Level, LevelFilter};
use std::io::Write;
use std::sync::RwLock;

/// One `module=level` item; `module: None` applies to every target.
#[derive(Debug, Clone, PartialEq)]
struct Directive {
    module: Option<String>,
    level: LevelFilter,
}

/// A parsed filter spec: `level`, `module`, `module=level` items separated by commas, and
/// an optional `/text` that a message must contain.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Shortest module first: the last one that matches a target decides.
    directives: Vec<Directive>,
    contains: Option<String>,
}

impl Filter {
    /// Parses `spec` as env_filter does: unparsable items are reported on stderr and
    /// skipped, a bare word that is not a level is a module at `trace`, and no item at all
    /// means `error`.
    pub fn parse(spec: &str) -> Filter {
        let (directives, contains, errors) = parse_items(spec);
        for e in errors {
            eprintln!("warning: {e}, ignoring it");
        }
        let mut directives = if directives.is_empty() {
            vec![Directive {
                module: None,
                level: LevelFilter::Error,
            }]
        } else {
            directives
        };
        directives.sort_by_key(|d| d.module.as_ref().map_or(0, String::len));
        Filter {
            directives,
            contains,
        }
    }

    /// The most verbose level any directive lets through.
    pub fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|d| d.level)
            .max()
            .unwrap_or(LevelFilter::Off)
    }

    /// Whether a record of `level` from `target` is logged (the `/text` aside).
    pub fn enabled(&self, level: Level, target: &str) -> bool {
        self.directives
            .iter()
            .rev()
            .find(|d| d.module.as_deref().is_none_or(|m| target.starts_with(m)))
            .is_some_and(|d| level <= d.level)
    }
}

type Items = (Vec<Directive>, Option<String>, Vec<String>);

/// The directives (a later item for the same module replaces an earlier one), the `/text`
/// part, and the items that could not be read.
fn parse_items(spec: &str) -> Items {
    let mut out: Items = (Vec::new(), None, Vec::new());
    let mut parts = spec.split('/');
    let (mods, contains) = (parts.next().unwrap_or(""), parts.next());
    if parts.next().is_some() {
        out.2
            .push(format!("invalid logging spec '{spec}' (too many '/'s)"));
        return out;
    }
    for item in mods.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut kv = item.split('=');
        let d = match (kv.next(), kv.next().map(str::trim), kv.next()) {
            (Some(word), None, None) => match word.parse() {
                Ok(level) => (None, level),
                Err(_) => (Some(word), LevelFilter::max()),
            },
            (Some(module), Some(""), None) => (Some(module), LevelFilter::max()),
            (Some(module), Some(level), None) => match level.parse() {
                Ok(level) => (Some(module), level),
                Err(_) => {
                    out.2.push(format!("invalid logging spec '{level}'"));
                    continue;
                }
            },
            _ => {
                out.2.push(format!("invalid logging spec '{item}'"));
                continue;
            }
        };
        let d = Directive {
            module: d.0.map(str::to_string),
            level: d.1,
        };
        match out.0.iter_mut().find(|o| o.module == d.module) {
            Some(o) => *o = d,
            None => out.0.push(d),
        }
    }
    out.1 = contains.map(str::to_string);
    out
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

struct Logger {
    filter: RwLock<Filter>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.filter
            .read()
            .is_ok_and(|f| f.enabled(m.level(), m.target()))
    }

    fn log(&self, r: &log::Record<'_>) {
        let Ok(filter) = self.filter.read() else {
            return;
        };
        if !filter.enabled(r.level(), r.target()) {
            return;
        }
        let message = r.args().to_string();
        if filter
            .contains
            .as_ref()
            .is_some_and(|c| !message.contains(c.as_str()))
        {
            return;
        }
        // One write per line, so lines from several threads do not interleave.
        let line = format!("[{:<5} {}] {message}\n", r.level(), r.target());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger with an env_logger filter (`info`, `ipv6wgm::bgp=debug,warn`, …).
/// A second call only changes the filter.
pub fn init(spec: &str) {
    let logger = LOGGER.get_or_init(|| Logger {
        filter: RwLock::new(Filter::parse(spec)),
    });
    if log::set_logger(logger).is_err() {
        set_filter(spec);
        return;
    }
    if let Ok(f) = logger.filter.read() {
        log::set_max_level(f.max_level());
    }
}

/// Replaces the filter. Before [`init`] (tests) there is nothing to change.
pub fn set_filter(spec: &str) {
    if let Some(logger) = LOGGER.get() {
        let new = Filter::parse(spec);
        log::set_max_level(new.max_level());
        if let Ok(mut f) = logger.filter.write() {
            *f = new;
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
    fn filters_decide_as_env_filter_does() {
        let f = Filter::parse("warn,ipv6wgm::bgp=debug,ipv6wgm::bgp::fsm=off");
        assert_eq!(f.max_level(), LevelFilter::Debug);
        assert!(f.enabled(Level::Warn, "hyper"));
        assert!(!f.enabled(Level::Info, "ipv6wgm::app"));
        assert!(f.enabled(Level::Debug, "ipv6wgm::bgp::session"));
        assert!(!f.enabled(Level::Trace, "ipv6wgm::bgp::session"));
        assert!(!f.enabled(Level::Error, "ipv6wgm::bgp::fsm"));
        // Prefixes of the target string, as env_filter matches them.
        assert!(f.enabled(Level::Debug, "ipv6wgm::bgpx"));
        // Without a catch-all, other targets are off; with no item at all, `error`.
        let only = Filter::parse("ipv6wgm=info");
        assert!(!only.enabled(Level::Error, "hyper"));
        assert!(only.enabled(Level::Info, "ipv6wgm::x"));
        for empty in ["", " , ", "x=loud"] {
            let f = Filter::parse(empty);
            assert_eq!(f.max_level(), LevelFilter::Error, "{empty:?}");
            assert!(f.enabled(Level::Error, "any") && !f.enabled(Level::Warn, "any"));
        }
    }

    #[test]
    fn filter_items() {
        let d = |m: Option<&str>, level| Directive {
            module: m.map(str::to_string),
            level,
        };
        let (dirs, contains, errors) =
            parse_items("DEBUG, a::b , c=, d=info, d=warn, e=x=y/needle");
        assert_eq!(
            dirs,
            [
                d(None, LevelFilter::Debug),
                d(Some("a::b"), LevelFilter::Trace),
                d(Some("c"), LevelFilter::Trace),
                d(Some("d"), LevelFilter::Warn),
            ]
        );
        assert_eq!(contains.as_deref(), Some("needle"));
        assert_eq!(errors, ["invalid logging spec 'e=x=y'"]);
        assert_eq!(parse_items("info/a/b").0, []);
        let f = Filter::parse("info/needle");
        assert_eq!(f.contains.as_deref(), Some("needle"));
    }

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
