//! The reference `age` CLI (Debian package `age`, installed by .ci/run), to prove that what
//! we encrypt opens with it. age reads passphrases only from a terminal (no flag or variable
//! in 1.1), so each run goes through util-linux `script`, which gives it a pty and feeds it
//! our stdin: the passphrase lines sit in the pty's buffer until age reads them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Whether `age` and `script` are installed; a test skips (saying why) when not, except
/// under CI (`CI` set), where a missing tool fails.
pub fn tools_present() -> bool {
    let found = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let present = found("age", "--version") && found("script", "--version");
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "age or script missing in CI (.ci/run installs age)"
        );
        eprintln!(
            "skipped: the `age` CLI or util-linux `script` is not installed (apt-get install age)"
        );
    }
    present
}

/// Runs `age ARGS` on a pty, typing `lines` at its passphrase prompts.
pub fn age_on_pty(args: &[&Path], flags: &[&str], lines: &[&str]) -> Output {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = String::from("age");
    for f in flags {
        cmd.push(' ');
        cmd.push_str(f);
    }
    for a in args {
        cmd.push(' ');
        cmd.push_str(&quote(&a.to_string_lossy()));
    }
    let mut child = Command::new("timeout")
        .args(["120", "script", "-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("age");
    let mut stdin = child.stdin.take().expect("age");
    for l in lines {
        writeln!(stdin, "{l}").expect("age");
    }
    drop(stdin);
    child.wait_with_output().expect("age")
}
