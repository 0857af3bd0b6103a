//! Writing the command's messages to stdout and stderr without panicking.
//!
//! `println!` and `eprintln!` panic when their stream is closed: `regulab run ... | head`
//! closes stdout after ten lines, `2>&1 | head` stderr too, and a terminal can go away
//! while a sweep runs. A panic there would stop the command between its results and its
//! figures, or in the middle of a run. The command's products are its files, each with
//! its own error handling; its messages are a courtesy. So every message goes through
//! [`out!`] and [`err!`], which write and drop a write error: with a closed stream the
//! command finishes its work and exits as it would have.

use std::fmt;
use std::io::{self, Write};

/// Writes `args` to stdout; an error (a closed pipe) is dropped.
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    let _ = io::stdout().lock().write_fmt(args);
}

/// Writes `args` to stderr; an error (a closed pipe) is dropped.
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `println!` that never panics: the line to stdout, a write error dropped.
macro_rules! out {
    () => {
        $crate::cli::console::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::console::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: the line to stderr, a write error dropped.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::console::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {err, out};
