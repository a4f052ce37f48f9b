//! `tessera tune`, and the tuning file the other commands read.

use super::{Io, TuneArgs};
use crate::driver::{self, Failure};
use crate::files::{self, Claims};
use crate::{inputs, simulate, tune};

/// The tuning of `compile`, `run` and `bench` (`--tuning FILE` or the
/// per-user file), printing its notes.
pub(super) fn tuning(
    io: &mut Io<'_>,
    named: Option<&std::path::Path>,
) -> Result<tune::Tuning, Failure> {
    let mut notes = Vec::new();
    let t = tune::for_command(named, &mut notes)?;
    notes_out(io, &notes);
    Ok(t)
}

/// The simulator's flags given with any target: `--tuning` applies
/// recorded schedules of the simulator's stages and `--machine` describes
/// the simulated NPU, so with another target either is a usage error, not a
/// flag silently ignored; a `--machine` is loaded (a bad name or file is an
/// error before any work).
pub(super) fn sim_flags(
    tuning: Option<&std::path::Path>,
    machine: Option<&str>,
    target: super::Target,
) -> Result<(), Failure> {
    if tuning.is_some() && target != super::Target::Sim {
        return Err(Failure::Usage(
            "`--tuning` applies schedules tuned for the simulator; it needs `--target sim`".into(),
        ));
    }
    // The reference interpreter and the host have no NPU to describe.
    if machine.is_some() && target != super::Target::Sim {
        return Err(Failure::Usage(
            "`--machine` picks the simulated NPU; it needs `--target sim` (the default)".into(),
        ));
    }
    if machine.is_some() {
        crate::simulate::machine(machine)?;
    }
    Ok(())
}

/// Prints notes (tuning entries not used) to the error writer.
pub(super) fn notes_out(io: &mut Io<'_>, notes: &[String]) {
    for n in notes {
        io.note(n);
    }
}

pub(super) fn cmd_tune(io: &mut Io<'_>, a: &TuneArgs) -> Result<(), Failure> {
    let output = match &a.output {
        Some(p) => p.clone(),
        None => tune::default_path().ok_or_else(|| {
            Failure::Usage(
                "there is no per-user cache directory (TESSERA_CACHE=0, or no HOME): give `-o FILE`"
                    .into(),
            )
        })?,
    };
    let mut claims = Claims::default();
    claims.input(&a.file, "source file");
    claims.machine(a.machine.as_deref());
    claims.output(&output, "tuning file")?;
    let src = driver::load_source(&a.file)?;
    let file = driver::parse_and_check(&src)?;
    let def = driver::select_kernel(&file, a.kernel.as_deref())?;
    let env = inputs::parse_dims(&a.dims, def).map_err(|d| Failure::in_source(d, &src))?;
    let kernel = driver::lower(&file, &def.name.name, &env, &src)?;
    let machine = simulate::target(a.machine.as_deref())?;
    let report = tune::tune(
        &kernel,
        &machine,
        &src,
        super::level(&a.opt_level),
        usize::from(a.top),
    )?;
    // Add to the file: one that exists must be a tuning file (it may hold
    // other kernels' entries); a missing one is made.
    let existing = if output.is_file() && !files::is_stream(&output) {
        tune::read(&output)?
    } else {
        tune::Tuning::default()
    };
    let merged = tune::merge(existing, &report.entries, &report.vectors);
    // The report first: a tune whose report does not reach standard output
    // leaves the file as it was (`docs/cli.md`, outputs).
    let n = report.entries.len() + report.vectors.len();
    let (text, written) = if a.json {
        (
            serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
            String::new(),
        )
    } else {
        (
            report.table(),
            format!(
                "-> {} ({n} entr{})\n",
                output.display(),
                if n == 1 { "y" } else { "ies" }
            ),
        )
    };
    let _ = io.out.write_all(text.as_bytes());
    io.out_reached()?;
    // Writing makes the file's directory if need be.
    files::write(&output, tune::to_text(&merged).as_bytes())?;
    let _ = io.out.write_all(written.as_bytes());
    Ok(())
}
