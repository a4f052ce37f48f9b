//! Simulator-in-the-loop tuning (`tessera tune`) and the tuning file that
//! `compile`, `run` and `bench` read.
//!
//! The scheduler ranks a stage's candidate schedules with its cost model
//! and takes the cheapest. `tune` (`search.rs`) simulates (timing only) the
//! cheapest few of each matmul stage in the kernel's real program: of a
//! cube matmul also the scheduler's choice in its other tile orders (up to
//! 3), of a vector matmul also the cheapest of its other form (outer or
//! dot products). It records the
//! fastest: in a TOML file of entries keyed by the stage's canonical form
//! (its geometry: extents, strides, dtypes, transposes, epilogue), the
//! machine's name and the machine description's fingerprint (`[[entry]]`
//! tables for cube matmuls, `[[vector_matmul]]` for vector ones). Reading a file
//! back, an entry whose fingerprint differs (the machine changed), or whose
//! schedule no longer fits, is ignored with a note, never trusted.
//!
//! Tuning is deterministic: candidates are simulated in parallel (rayon),
//! but their order, the simulated cycles and the choice (least cycles, the
//! cost model's order breaking ties) do not depend on the thread count, and
//! the file holds no times.

mod search;

pub use search::{Report, StageReport, Tried, tune};

use crate::driver::Failure;
use crate::plan::schedule::finish;
use crate::plan::schedule::matmul::{
    apply_cube, apply_vector, cube_candidates, cube_cost, tile_orders, vector_candidates,
    vector_cost,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{
    CubeSchedule, MatMul, MatMulSchedule, Plan, Stage, StageKind, VecMatSchedule,
};
use tessera_ir::{Code, Diagnostic};
use tessera_sim::Machine;

/// The tuning file's name in the per-user cache directory.
pub const FILE_NAME: &str = "tuning.toml";

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;

/// A tuning file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// [`FORMAT`].
    pub format: u32,
    /// The entries, sorted by machine and stage.
    #[serde(default, rename = "entry", skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry>,
    /// The entries of vector matmul stages, sorted likewise (absent from
    /// files without any).
    #[serde(
        default,
        rename = "vector_matmul",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub vectors: Vec<VectorEntry>,
    /// Whether the file was named on the command line (`--tuning`): then
    /// its entries for another machine, or that match no stage of the
    /// kernel, are noted as ignored (the per-user file holds every
    /// kernel's and stays quiet about them).
    #[serde(skip)]
    pub named: bool,
}

/// The tuned schedule of one stage on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The machine's name.
    pub machine: String,
    /// The machine description's fingerprint (16 hex digits).
    pub fingerprint: String,
    /// The stage's canonical form ([`stage_key`]).
    pub stage: String,
    /// Output tile rows in L0C.
    pub base_m: u64,
    /// Output tile columns in L0C.
    pub base_n: u64,
    /// K per L0 step.
    pub base_k: u64,
    /// K per L1 stage.
    pub l1_k: u64,
    /// L1 stages one A load covers.
    pub a_stages: u64,
    /// L1 stages one B load covers.
    pub b_stages: u64,
    /// The tile order (`CubeSchedule::group_m`; 1, row-major, when absent).
    #[serde(default = "one")]
    pub group_m: u64,
    /// L0C accumulators (1 when absent).
    #[serde(default = "one")]
    pub accumulators: u64,
    /// A's whole K panel kept in L1 (`CubeSchedule::a_panel`; false when
    /// absent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub a_panel: bool,
    /// The accumulator in two halves (`CubeSchedule::halves`; false when
    /// absent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub halves: bool,
    /// An A panel's runs folded over their tile row (`CubeSchedule::fold`;
    /// 1, none, when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub fold: u64,
    /// K parts (`CubeSchedule::split_k`; 1, none, when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub split_k: u64,
    /// The cost model's cycles for this schedule (on the sample, when
    /// there is one).
    pub predicted: u64,
    /// The stage's simulated cycles with it (the stage alone, launch
    /// included; on the sample, when there is one).
    pub simulated: u64,
    /// The stage's simulated cycles with the scheduler's own choice (alone,
    /// on the same sample).
    pub untuned: u64,
    /// When the stage was simulated on a sample: the items of its outermost
    /// batch dim kept, and of how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<[u64; 2]>,
}

/// The tuned schedule of one vector matmul stage (the machine's cube lacks
/// its dtype) on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorEntry {
    /// The machine's name.
    pub machine: String,
    /// The machine description's fingerprint (16 hex digits).
    pub fingerprint: String,
    /// The stage's canonical form ([`stage_key`]).
    pub stage: String,
    /// Output tile rows.
    pub rows: u64,
    /// Output tile columns (all of N in the dot form).
    pub cols: u64,
    /// K per chunk.
    pub k_chunk: u64,
    /// The dot-product form (false, the outer-product form, when absent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dot: bool,
    /// As [`Entry::predicted`].
    pub predicted: u64,
    /// As [`Entry::simulated`].
    pub simulated: u64,
    /// As [`Entry::untuned`].
    pub untuned: u64,
    /// As [`Entry::sample`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<[u64; 2]>,
    /// When the stage was simulated on a prefix of its K: the K kept, and
    /// of how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_sample: Option<[u64; 2]>,
}

/// A schedule `tune` weighs for a matmul stage, or a tuning file holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Candidate {
    /// A cube matmul's.
    Cube(CubeSchedule),
    /// A vector matmul's.
    Vector(VecMatSchedule),
}

/// The default of the fields older files lack.
fn one() -> u64 {
    1
}

/// Whether a field holds its default of 1 (and is left out of the file).
fn is_one(x: &u64) -> bool {
    *x == 1
}

fn is_false(x: &bool) -> bool {
    !*x
}

/// A matmul stage's canonical form: what its best schedule depends on.
pub fn stage_key(mm: &MatMul) -> Option<String> {
    let g = Geometry::of(mm).ok()?;
    Some(format!(
        "matmul {}->{} batch={:?} m={} k={} n={} a_t={} b_t={} a_row={} b_row={} c_row={} a_bs={:?} b_bs={:?} c_bs={:?} relu={}",
        g.dtype,
        g.out,
        g.batch,
        g.m,
        g.k,
        g.n,
        g.a_t,
        g.b_t,
        g.a_row,
        g.b_row,
        g.c_row,
        g.a_bs,
        g.b_bs,
        g.c_bs,
        mm.relu
    ))
}

fn fingerprint(machine: &Machine) -> String {
    format!("{:016x}", machine.fingerprint())
}

/// The per-user tuning file (`tuning.toml` in the cache directory of
/// `compiler/src/cache.rs`), if there is a cache directory.
pub fn default_path() -> Option<PathBuf> {
    crate::cache::default_dir().map(|d| d.join(FILE_NAME))
}

fn malformed(path: &Path, why: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new(
        Code::E0608,
        format!("`{}` is not a tuning file: {why}", path.display()),
    )
    .help("make it again with `tessera tune`, or delete it")
}

/// Reads a tuning file. A malformed one is `E0608` at the place TOML or
/// the schema found wrong (a key this format does not have too: a misspelt
/// `group_m` would otherwise be read as absent), with its line and column
/// in the message as well, for the note an ignored per-user file gets.
pub fn read(path: &Path) -> Result<Tuning, Failure> {
    let bytes = crate::files::read_raw(path, crate::files::MAX_TUNING_BYTES, "tuning file")
        .map_err(|e| Failure::input(vec![Diagnostic::new(Code::E0600, e.message())]))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        Failure::input(vec![malformed(
            path,
            format!("not UTF-8 (invalid byte at offset {at}, line {line})"),
        )])
    })?;
    let t: Tuning = toml::from_str(&text).map_err(|e| {
        let why = e.message().trim_end().to_string();
        let Some(r) = e.span() else {
            return Failure::input(vec![malformed(path, why)]);
        };
        let (line, column) = tessera_ir::diag::line_col(&text, r.start);
        let d = malformed(path, format!("{why} (line {line}, column {column})")).primary(
            tessera_ir::Span {
                start: r.start as u32,
                end: r.end.max(r.start) as u32,
            },
            "here",
        );
        let src = crate::driver::Source {
            name: path.display().to_string(),
            text: text.clone(),
        };
        Failure::in_source(vec![d], &src)
    })?;
    if t.format != FORMAT {
        return Err(Failure::input(vec![malformed(
            path,
            format!("format {} (this build reads format {FORMAT})", t.format),
        )]));
    }
    // One entry per stage and machine, as `tune` writes them: of two, which
    // would apply is nobody's choice.
    let cube = t.entries.iter().map(|e| (&e.machine, &e.stage));
    let vector = t.vectors.iter().map(|e| (&e.machine, &e.stage));
    for keys in [cube.collect::<Vec<_>>(), vector.collect()] {
        let mut seen = std::collections::BTreeSet::new();
        if let Some((machine, stage)) = keys.into_iter().find(|k| !seen.insert(*k)) {
            let mut d = malformed(
                path,
                format!("two entries for one stage on `{machine}` (`{stage}`)"),
            );
            // The second one, where it is written as `tune` writes it and
            // the stage appears just twice (with other machines' entries of
            // it, which line is the repeat is not known).
            let written = format!("stage = {}", toml::Value::String(stage.clone()));
            let hits: Vec<usize> = text.match_indices(&written).map(|(i, _)| i).collect();
            let [_, at] = hits[..] else {
                return Err(Failure::input(vec![d]));
            };
            let (line, column) = tessera_ir::diag::line_col(&text, at);
            d.message += &format!(" (line {line}, column {column})");
            let d = d.primary(
                tessera_ir::Span {
                    start: at as u32,
                    end: (at + written.len()) as u32,
                },
                "the stage again",
            );
            let src = crate::driver::Source {
                name: path.display().to_string(),
                text,
            };
            return Err(Failure::in_source(vec![d], &src));
        }
    }
    Ok(t)
}

/// The first message of a failure (a note's text).
fn first_message(f: &Failure) -> String {
    match f {
        Failure::Input { diags, .. } | Failure::Fault { diags, .. } => {
            diags.first().map(|d| d.message.clone()).unwrap_or_default()
        }
        Failure::Usage(m) | Failure::Internal(m) => m.clone(),
        Failure::Mismatch => String::new(),
    }
}

/// The tuning `compile`, `run` and `bench` use: `--tuning FILE` (an error
/// if it cannot be read), else the per-user file if it exists (a note if it
/// cannot be read, and no tuning). Notes go to `notes`.
pub fn for_command(named: Option<&Path>, notes: &mut Vec<String>) -> Result<Tuning, Failure> {
    if let Some(p) = named {
        let mut t = read(p)?;
        t.named = true;
        return Ok(t);
    }
    let Some(p) = default_path().filter(|p| p.exists()) else {
        return Ok(Tuning::default());
    };
    match read(&p) {
        Ok(t) => Ok(t),
        Err(f) => {
            notes.push(format!("{} (ignored)", first_message(&f)));
            Ok(Tuning::default())
        }
    }
}

/// Sets the tuned schedules of a plan's matmul stages; a note for each
/// entry that matches a stage but is not used.
pub fn apply(plan: &mut Plan, tuning: &Tuning, machine: &Machine) -> Vec<String> {
    let mut notes = Vec::new();
    if tuning.entries.is_empty() && tuning.vectors.is_empty() {
        return notes;
    }
    let fp = fingerprint(machine);
    if tuning.named {
        notes.extend(unmatched(plan, tuning, machine));
    }
    // As `tune` leaves them: a matmul its joined vector stage bounds keeps
    // the scheduler's choice (an entry of its form is another stage's).
    let bounded: Vec<Option<usize>> = (0..plan.stages.len())
        .map(|i| search::bound_by_joined(plan, i))
        .collect();
    for (i, stage) in plan.stages.iter_mut().enumerate() {
        let StageKind::MatMul(mm) = &stage.kind else {
            continue;
        };
        let (Some(key), Ok(g)) = (stage_key(mm), Geometry::of(mm)) else {
            continue;
        };
        let ours = |m: &str, k: &str| m == machine.name && k == key;
        // The entry of the stage's form, its fingerprint, and the candidate
        // of the scheduler's it names, if any.
        let (entry_fp, tuned) = match &mm.schedule {
            MatMulSchedule::Cube(_) => {
                let Some(e) = tuning.entries.iter().find(|e| ours(&e.machine, &e.stage)) else {
                    continue;
                };
                (&e.fingerprint, cube_entry(e, &g, machine))
            }
            MatMulSchedule::Vector(_) => {
                let Some(e) = tuning.vectors.iter().find(|e| ours(&e.machine, &e.stage)) else {
                    continue;
                };
                (&e.fingerprint, vector_entry(e, &g, machine))
            }
        };
        if let Some(j) = bounded[i] {
            notes.push(format!(
                "stage {i} runs in one launch with stage {j}, which bounds it: the scheduler's choice stays; its tuning is not used"
            ));
            continue;
        }
        if *entry_fp != fp {
            notes.push(format!(
                "the tuning of stage {i} was made for another description of `{}` (fingerprint {entry_fp}, now {fp}); ignored",
                machine.name
            ));
            continue;
        }
        let Some(t) = tuned else {
            notes.push(format!(
                "the tuned schedule of stage {i} is not a valid schedule of it on `{}`; ignored",
                machine.name
            ));
            continue;
        };
        set_schedule(stage, &g, t, machine);
    }
    finish(plan, machine);
    notes
}

/// The cube schedule entry `e` records, if the scheduler itself offers it
/// for a stage of geometry `g`, in one of its tile orders: only such a
/// schedule is trusted.
fn cube_entry(e: &Entry, g: &Geometry, machine: &Machine) -> Option<Candidate> {
    let found = cube_candidates(g, machine).into_iter().find(|(_, c)| {
        (c.base_m, c.base_n, c.base_k, c.l1_k, c.a_stages, c.b_stages)
            == (e.base_m, e.base_n, e.base_k, e.l1_k, e.a_stages, e.b_stages)
            && c.accumulators == e.accumulators
            // 0 parts or a fold of 0 is no schedule (absent means 1).
            && c.parts() == e.split_k
            && c.a_panel == e.a_panel
            && c.halves == e.halves
            && c.fold.max(1) == e.fold
    });
    // An A panel's units go row-major, in runs.
    let (_, mut t) = found.filter(|(_, c)| {
        tile_orders(g, c.base_m, c.base_n, machine).contains(&e.group_m)
            && (!c.a_panel || e.group_m <= 1)
    })?;
    t.group_m = e.group_m;
    Some(Candidate::Cube(t))
}

/// The vector schedule entry `e` records, if the scheduler itself offers
/// it for a stage of geometry `g`.
fn vector_entry(e: &VectorEntry, g: &Geometry, machine: &Machine) -> Option<Candidate> {
    vector_candidates(g, machine)
        .into_iter()
        .find(|(_, t)| (t.rows, t.cols, t.k_chunk, t.dot) == (e.rows, e.cols, e.k_chunk, e.dot))
        .map(|(_, t)| Candidate::Vector(t))
}

/// Notes for a named tuning file's entries that no stage of `plan` can
/// use: those for another machine, and those of this machine whose stage
/// form matches none of the plan's matmuls of their kind (cube or vector;
/// a changed kernel, or another kernel's).
fn unmatched(plan: &Plan, tuning: &Tuning, machine: &Machine) -> Vec<String> {
    // The canonical forms of the plan's cube and vector matmuls.
    let keys = |vector: bool| -> Vec<String> {
        plan.stages
            .iter()
            .filter_map(|s| {
                let StageKind::MatMul(mm) = &s.kind else {
                    return None;
                };
                (matches!(mm.schedule, MatMulSchedule::Vector(_)) == vector)
                    .then(|| stage_key(mm))
                    .flatten()
            })
            .collect()
    };
    let (cube_keys, vector_keys) = (keys(false), keys(true));
    let all = (tuning.entries.iter())
        .map(|e| (&e.machine, &e.stage, &cube_keys))
        .chain((tuning.vectors.iter()).map(|e| (&e.machine, &e.stage, &vector_keys)));
    let mut others: Vec<&str> = Vec::new();
    let mut elsewhere = 0;
    let mut stale = 0;
    for (on, stage, keys) in all {
        if *on != machine.name {
            elsewhere += 1;
            if !others.contains(&on.as_str()) {
                others.push(on);
            }
        } else if !keys.contains(stage) {
            stale += 1;
        }
    }
    let mut notes = Vec::new();
    let entries = |n: usize| if n == 1 { "entry" } else { "entries" };
    if elsewhere > 0 {
        notes.push(format!(
            "{elsewhere} tuning {} {} for another machine (`{}`, not `{}`); ignored",
            entries(elsewhere),
            if elsewhere == 1 { "is" } else { "are" },
            others.join("`, `"),
            machine.name
        ));
    }
    if stale > 0 {
        notes.push(format!(
            "{stale} tuning {} for `{}` match{} no matmul stage of kernel `{}` (a changed kernel, or another one's); ignored",
            entries(stale),
            machine.name,
            if stale == 1 { "es" } else { "" },
            plan.kernel
        ));
    }
    notes
}

/// Gives cube matmul stage `i` of `plan` the cost model's `n`-th cheapest
/// candidate other than its schedule (with its tile order), and settles
/// what follows from the schedules (`finish`); false when there is no
/// such stage or candidate. The code generator's templates have limits
/// the scheduler does not see (a machine's event ids): the driver tries
/// the next candidates of a stage it could not generate.
pub fn reschedule(plan: &mut Plan, i: usize, n: usize, machine: &Machine) -> bool {
    let Some(stage) = plan.stages.get_mut(i) else {
        return false;
    };
    let StageKind::MatMul(mm) = &stage.kind else {
        return false;
    };
    let (MatMulSchedule::Cube(now), Ok(g)) = (&mm.schedule, Geometry::of(mm)) else {
        return false;
    };
    let form = |c: &CubeSchedule| {
        (
            (c.base_m, c.base_n, c.base_k, c.l1_k, c.a_stages, c.b_stages),
            (
                c.accumulators.max(1),
                c.parts(),
                c.a_panel,
                c.fold.max(1),
                c.halves,
            ),
        )
    };
    let now = form(now);
    let mut cands = cube_candidates(&g, machine);
    cands.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some((_, t)) = cands.into_iter().filter(|(_, c)| form(c) != now).nth(n) else {
        return false;
    };
    set_schedule(stage, &g, Candidate::Cube(t), machine);
    finish(plan, machine);
    true
}

/// Gives matmul `stage` (of geometry `g`) the schedule `t`, with its block
/// count and estimate; returns the cost model's cycles for it.
fn set_schedule(stage: &mut Stage, g: &Geometry, t: Candidate, machine: &Machine) -> f64 {
    let StageKind::MatMul(mm) = &mut stage.kind else {
        return 0.0;
    };
    let (cost, (block_dim, estimate)) = match t {
        Candidate::Cube(t) => {
            let cost = cube_cost(g, &t, machine);
            (cost, apply_cube(mm, g, t, cost, machine))
        }
        Candidate::Vector(t) => {
            let cost = vector_cost(g, &t, machine);
            (cost, apply_vector(mm, g, t, cost, machine))
        }
    };
    stage.block_dim = block_dim;
    stage.estimate = estimate;
    cost
}

/// `file` with `entries` and `vectors` added (an entry for the same
/// machine and stage replaced), sorted so that the same entries give the
/// same file.
pub fn merge(mut file: Tuning, entries: &[Entry], vectors: &[VectorEntry]) -> Tuning {
    file.format = FORMAT;
    for e in entries {
        file.entries
            .retain(|o| !(o.machine == e.machine && o.stage == e.stage));
        file.entries.push(e.clone());
    }
    for e in vectors {
        file.vectors
            .retain(|o| !(o.machine == e.machine && o.stage == e.stage));
        file.vectors.push(e.clone());
    }
    file.entries.sort_by(|a, b| {
        (&a.machine, &a.stage, &a.fingerprint).cmp(&(&b.machine, &b.stage, &b.fingerprint))
    });
    file.vectors.sort_by(|a, b| {
        (&a.machine, &a.stage, &a.fingerprint).cmp(&(&b.machine, &b.stage, &b.fingerprint))
    });
    file
}

/// The file's text.
pub fn to_text(file: &Tuning) -> String {
    let mut s = String::from(
        "# Tessera tuning file: the fastest simulated schedule of each stage, made by `tessera tune`.\n",
    );
    s.push_str(&toml::to_string(file).unwrap_or_default());
    s
}

#[cfg(test)]
mod tests;
