//! `regulab verify`: rerun finished runs and compare their outputs bit for bit.

use std::process::ExitCode;

use anyhow::{Context, Result};
use regulab::interrupt;
use regulab::lock::{self, Access};

use super::console::{self, err};
use super::options::VerifyOptions;

/// Run `regulab verify`; exit 0 identical, 1 different.
pub fn execute(o: VerifyOptions) -> Result<ExitCode> {
    let run_dir = &o.run_dir;
    if !run_dir.is_dir() {
        anyhow::bail!("{}: no such directory", run_dir.display());
    }
    interrupt::install().context("handling SIGINT and SIGTERM")?;
    // read-only: shared with other readers, never while a command writes there
    let _owner = lock::lock_path(run_dir, Access::Shared, "regulab verify")?;
    let _keep = match &o.verify.keep {
        Some(k) => {
            regulab::verify::prepare_keep(run_dir, k)?;
            Some(lock::lock_dir(
                k,
                Access::Exclusive,
                "regulab verify --keep",
            )?)
        }
        None => None,
    };
    let verification = match regulab::verify::verify_path(run_dir, &o.verify) {
        Ok(v) => v,
        Err(e) => {
            if let Some(stop) = interrupt::cause(&e) {
                err!(
                    "regulab: verify stopped by {}; nothing was changed; run it again to verify",
                    stop.name()
                );
                return Ok(ExitCode::from(stop.exit_code()));
            }
            return Err(e);
        }
    };
    console::stdout(format_args!("{}", verification.render()));
    Ok(ExitCode::from(verification.exit_code()))
}
