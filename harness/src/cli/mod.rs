//! The `regulab` command line, in two levels as ripgrep's flags are:
//!
//! * [`args`]: the parse level, clap's derive structs — the words the user typed;
//! * [`options`]: the high level, one typed options value per command, resolved from
//!   the parse level (`--set`s parsed, counts checked against the limits, the output
//!   directory's mode, the progress style), before any file is read;
//! * one module per command, which runs it with those options and is the only place
//!   that writes to stdout and stderr: [`run`], [`plot`] (also `dropout-figure`), [`fetch`],
//!   [`verify`], [`slurm`], [`merge`]; [`feedback`] draws `regulab run`'s progress (the library's
//!   [`regulab::feedback::Feedback`] events) as lines or bars. They write through
//!   [`console`]'s `out!` and `err!`, which drop a write error (a closed pipe) instead
//!   of panicking as `println!` does.
//!
//! The library returns typed errors and values and never prints; `main` renders an
//! error with its causes and exits 2.

mod args;
pub(crate) mod console;
mod feedback;
mod fetch;
mod merge;
mod options;
mod plot;
mod run;
mod slurm;
mod verify;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use console::err;

pub use options::Command;

/// Run one resolved command; its exit code (0 success, 1 a negative result such as a
/// diverged run or a failed verification, 130/143 stopped by a signal).
pub fn execute(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(o) => run::execute(o),
        Command::Plot(o) => plot::execute(o),
        Command::DropoutFigure(o) => plot::dropout_figure(o),
        Command::Fetch(o) => fetch::execute(o),
        Command::Verify(o) => verify::execute(o),
        Command::Slurm(o) => slurm::execute(o),
        Command::Merge(o) => merge::execute(o),
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text is already
/// said (a library error that prints its OS error and also returns it as its source
/// would otherwise show it twice).
pub fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `warning: ...` on stderr for each warning the library returned.
fn report_warnings<W: std::fmt::Display>(warnings: impl IntoIterator<Item = W>) {
    for w in warnings {
        err!("warning: {w}");
    }
}

/// Whether stderr is a terminal (progress bars are drawn only there).
fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("runs/lab4"), "runs/lab4");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
