//! Submitting the scripts: `sbatch --parsable`, and what to tell the user afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

/// A submission that failed.
#[derive(Debug, Error)]
pub enum SubmitError {
    /// sbatch could not be started.
    #[error("cannot run sbatch ({source}); is this a Slurm login node with sbatch on PATH?")]
    NoSbatch {
        /// Why.
        source: std::io::Error,
    },
    /// sbatch refused the script.
    #[error("sbatch {script} failed ({status}): {stderr}")]
    Refused {
        /// The script.
        script: PathBuf,
        /// sbatch's exit status.
        status: String,
        /// What sbatch said.
        stderr: String,
    },
    /// sbatch said something that is not a job id.
    #[error("sbatch {script}: expected a job id from --parsable, got {stdout:?}")]
    NoJobId {
        /// The script.
        script: PathBuf,
        /// What sbatch printed.
        stdout: String,
    },
}

/// The job id in `sbatch --parsable`'s output: `ID` or `ID;CLUSTER`.
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.to_string())
}

/// `sbatch --parsable [--dependency=afterany:AFTER] SCRIPT`: the new job's id.
pub fn sbatch(script: &Path, after: Option<&str>) -> Result<String, SubmitError> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(a) = after {
        cmd.arg(format!("--dependency=afterany:{a}"));
    }
    let out = cmd
        .arg(script)
        .output()
        .map_err(|source| SubmitError::NoSbatch { source })?;
    if !out.status.success() {
        return Err(SubmitError::Refused {
            script: script.to_path_buf(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_job_id(&stdout).ok_or_else(|| SubmitError::NoJobId {
        script: script.to_path_buf(),
        stdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_from_parsable_output() {
        assert_eq!(parse_job_id("123\n").as_deref(), Some("123"));
        assert_eq!(parse_job_id("123;cluster2\n").as_deref(), Some("123"));
        assert_eq!(parse_job_id(""), None);
        assert_eq!(parse_job_id("Submitted batch job 5"), None);
    }
}
