//! `regulab slurm`: write a sweep's job scripts into DIR/slurm/ ([`regulab::slurm`]),
//! and with `--submit` submit them and say how to watch them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use regulab::config;
use regulab::outdir;
use regulab::slurm;

use super::console::{err, out};
use super::options::SlurmOptions;

/// Run `regulab slurm`.
pub fn execute(o: SlurmOptions) -> Result<ExitCode> {
    let plan = config::load(&o.config, &o.sets)?;
    let out = match o.out {
        Some(out) => out,
        None => slurm::absolute(&PathBuf::from("runs").join(&plan.name))?,
    };
    let sweep = slurm::Sweep {
        name: plan.name.clone(),
        runs: plan.runs.len(),
        config: o.config,
        sets: o.set_args,
        data_dir: o.data_dir,
        out,
        regulab: o.regulab,
        version: env!("CARGO_PKG_VERSION").to_string(),
        resources: o.resources,
    };
    let written = slurm::write_scripts(&sweep, &plan, o.mode)?;
    if let Some(r) = &written.removed {
        err!("regulab: --overwrite: {r}");
    }
    let tasks = sweep.tasks();
    out!(
        "{} run(s) of `{}` in {tasks} array task(s): {}",
        sweep.runs,
        plan.name,
        written.sweep.display()
    );
    out!("merge job: {}", written.merge.display());
    if tasks > slurm::DEFAULT_MAX_ARRAY_TASKS {
        let per_task = sweep.runs.div_ceil(slurm::DEFAULT_MAX_ARRAY_TASKS as usize);
        err!(
            "warning: {tasks} tasks: many clusters allow at most {} per array \
             (MaxArraySize, see `scontrol show config`); --runs-per-task {per_task} gives {}",
            slurm::DEFAULT_MAX_ARRAY_TASKS,
            sweep.runs.div_ceil(per_task)
        );
    }
    if !o.submit {
        out!("submit with:");
        out!("  sbatch --parsable {}", written.sweep.display());
        out!(
            "  sbatch --dependency=afterany:ARRAY_JOB_ID {}",
            written.merge.display()
        );
        out!("(or run this command again with --resume --submit)");
        return Ok(ExitCode::SUCCESS);
    }
    let array = slurm::submit::sbatch(&written.sweep, None)?;
    let merge = slurm::submit::sbatch(&written.merge, Some(&array)).with_context(|| {
        format!(
            "the array was submitted as job {array}, the merge job was not; submit it \
             by hand: sbatch --dependency=afterany:{array} {}",
            written.merge.display()
        )
    })?;
    out!("submitted: array job {array} ({tasks} tasks), merge job {merge} (after the array)");
    out!("watch:     squeue -j {array},{merge}");
    out!(
        "           sacct -j {array},{merge}   (where the cluster keeps accounting), \
         or scontrol show job {array}"
    );
    out!(
        "logs:      {}",
        slurm::script::task_log(&sweep.out, &array, 0)
            .with_file_name(format!("sweep-{array}_*.log"))
            .display()
    );
    out!(
        "results:   {} and {} once job {merge} has finished (its log: {})",
        sweep.out.join(outdir::SUMMARY_FILE).display(),
        sweep.out.join(outdir::REPORT_FILE).display(),
        sweep
            .out
            .join(slurm::script::MERGE_LOG_PATTERN.replace("%j", &merge))
            .display()
    );
    Ok(ExitCode::SUCCESS)
}
