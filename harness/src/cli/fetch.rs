//! `regulab fetch`: put a dataset's four verified IDX files where regulab finds them
//! (what to do is decided by [`regulab::data::fetch::plan_fetch`]).

use std::process::ExitCode;

use anyhow::Result;
use regulab::data::{self, FetchPlan, FetchStatus};

use super::console::out;
use super::options::FetchOptions;

/// Run `regulab fetch`.
pub fn execute(o: FetchOptions) -> Result<ExitCode> {
    let name = o.dataset;
    let report = match data::fetch::plan_fetch(name, o.data_dir.as_deref(), &o.mirrors) {
        FetchPlan::UseInstalled(sys) => {
            out!(
                "{name}: installed in {} (checksums ok); regulab reads it from there, \
                 nothing to download (to copy it elsewhere: regulab fetch {name} --data-dir DIR)",
                sys.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        FetchPlan::CopyInstalled { from, to } => data::fetch::copy_installed(name, &from, &to)?,
        FetchPlan::Download { to } => {
            data::fetch(name, &to, &o.mirrors, super::stderr_is_terminal())?
        }
    };
    for f in &report.files {
        match &f.status {
            FetchStatus::AlreadyPresent => {
                out!("{}: already present, checksum ok", f.path.display())
            }
            FetchStatus::Downloaded { url } => {
                out!("{}: downloaded from {url}, checksum ok", f.path.display())
            }
            FetchStatus::Copied { from } => out!(
                "{}: copied from {}, checksum ok",
                f.path.display(),
                from.display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
