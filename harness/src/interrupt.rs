//! SIGINT (Ctrl-C) and SIGTERM (what a cluster scheduler such as Slurm sends before
//! SIGKILL at a job's time limit or on preemption): stop at the next safe point.
//!
//! [`install`] replaces the default action (die at once) by setting a flag; the work
//! polls it with [`check`] at safe points only: between two training batches, between
//! two runs, between two figures. A write in progress is never cut: every output is
//! written atomically, and the flag is looked at only between writes, so the files on
//! disk are those of the last completed epoch (checkpoint included), from which
//! `--resume` continues bit for bit. The command then exits `128 + signal` (130 for
//! SIGINT, 143 for SIGTERM) after saying how to resume.
//!
//! A second signal while stopping ends the process at once with the same status (for
//! a user who does not want to wait; the atomic writes keep the files whole even then).
//! Without [`install`] (the library used by tests and other programs) [`check`] never
//! reports anything.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use thiserror::Error;

/// The signal that arrived (0: none).
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
/// Set by the first signal: arms the immediate exit on the second.
static ARMED: AtomicBool = AtomicBool::new(false);

/// Work stopped at a safe point because of a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("interrupted by {}", signal_name(*signal))]
pub struct Interrupted {
    /// The signal number.
    pub signal: i32,
}

impl Interrupted {
    /// The conventional exit status, `128 + signal`.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(u8::MAX)
    }

    /// `SIGINT`, `SIGTERM`, ...
    pub fn name(self) -> &'static str {
        signal_name(self.signal)
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Handle SIGINT and SIGTERM by setting the flag [`check`] reads (a second one exits
/// at once with status `128 + signal`).
pub fn install() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // the order matters: the exit checks the flag before the first signal sets it
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, &ARMED)?;
        signal_hook::flag::register(sig, &ARMED)?;
        signal_hook::flag::register_usize(sig, &RECEIVED, sig as usize)?;
    }
    Ok(())
}

/// The signal received, if any.
pub fn pending() -> Option<Interrupted> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(Interrupted {
            signal: i32::try_from(s).unwrap_or(i32::MAX),
        }),
    }
}

/// `Err` once a signal has arrived: call at safe points only.
pub fn check() -> Result<(), Interrupted> {
    pending().map_or(Ok(()), Err)
}

/// The [`Interrupted`] in an error's chain, if that is why it failed.
pub fn cause(e: &anyhow::Error) -> Option<Interrupted> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Interrupted>().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_names() {
        let int = Interrupted {
            signal: signal_hook::consts::SIGINT,
        };
        let term = Interrupted {
            signal: signal_hook::consts::SIGTERM,
        };
        assert_eq!((int.exit_code(), int.name()), (130, "SIGINT"));
        assert_eq!((term.exit_code(), term.name()), (143, "SIGTERM"));
        assert_eq!(term.to_string(), "interrupted by SIGTERM");
        let e = anyhow::Error::new(term).context("run `a`");
        assert_eq!(cause(&e), Some(term));
        assert_eq!(cause(&anyhow::anyhow!("other")), None);
    }
}
