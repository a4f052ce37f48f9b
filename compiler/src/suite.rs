//! `tessera bench --suite`: the benchmark suite of benchmarks.md.
//!
//! The suite is data: `benches/suite.toml` lists each benchmark (a kernel of
//! `benches/kernels.tsr`, its dims and its efficiency target) and each
//! comparison with a hand-written expert kernel of `testsuite/cases/asm/`.
//! Every benchmark runs on both built-in machines (or the one given); the
//! results go to `RESULTS.md` (a table per machine) and `RESULTS.json`.
//! Cycles are simulated, so they are exact and reproducible; compile times
//! are host wall-clock and vary from run to run.

use crate::bench::{BenchResult, bench};
use crate::driver::{self, Failure};
use crate::simulate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use tessera_ir::{Code, Diagnostic};

/// The suite file.
pub const SUITE: &str = "benches/suite.toml";

/// The model-shape suite (its rows follow the suite's, in their own tables).
pub const MODELS: &str = "benches/models.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    bench: Vec<BenchSpec>,
    #[serde(default)]
    expert: Vec<ExpertSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchSpec {
    id: String,
    file: String,
    kernel: String,
    dims: BTreeMap<String, u64>,
    target: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpertSpec {
    id: String,
    /// The benchmark (by id) whose compiled kernel the expert is compared with.
    bench: String,
    /// Assembly file per machine.
    asm: BTreeMap<String, String>,
    defines: BTreeMap<String, i64>,
}

/// One row of the results.
#[derive(Serialize)]
struct Row {
    /// `suite` (benches/suite.toml) or `models` (benches/models.toml).
    suite: &'static str,
    id: String,
    machine: String,
    kernel: String,
    dims: String,
    cycles: u64,
    bound: f64,
    bound_by: String,
    efficiency: f64,
    target: Option<f64>,
    stages: usize,
    compile_ms: f64,
    /// Cycles at `-O0` (no optimiser) and the `-O2` speed-up over them.
    cycles_o0: u64,
    speedup_o0: f64,
    /// The optimiser's e-graph: most e-nodes of a phase, iterations.
    egraph_nodes: usize,
    iterations: usize,
    /// `tessera tune` (its default 8 candidates a cube matmul stage): the
    /// kernel's cycles with its file, the speed-up over `cycles` and the
    /// host seconds it took on one thread; none for a kernel without a
    /// cube matmul.
    tuned_cycles: Option<u64>,
    tune_speedup: Option<f64>,
    tune_seconds: Option<f64>,
}

#[derive(Serialize)]
struct ExpertRow {
    id: String,
    machine: String,
    expert_cycles: u64,
    compiled_cycles: u64,
    speedup: f64,
}

#[derive(Serialize)]
struct Results {
    benches: Vec<Row>,
    experts: Vec<ExpertRow>,
    cost_model: Vec<CostRow>,
}

/// How the cost model ranks the suite's stages against the simulator.
#[derive(Serialize)]
struct CostRow {
    machine: String,
    /// Stages compared (every stage of the `-O0` and `-O2` plans the model
    /// predicts).
    stages: usize,
    /// Spearman's rank correlation of predicted and simulated cycles.
    spearman: f64,
    /// The matmul schedules `tune` simulated, and the Spearman rank
    /// correlation of the scheduler's estimates with their cycles.
    matmul_candidates: usize,
    matmul_spearman: f64,
}

/// Spearman's rank correlation (ties take their average rank).
pub fn spearman(pairs: &[(f64, f64)]) -> f64 {
    fn ranks(xs: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        let mut r = vec![0.0; xs.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    }
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return f64::NAN;
    }
    let a = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let b = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
    cov / (va * vb).sqrt()
}

fn input_error(message: String) -> Failure {
    Failure::input(vec![Diagnostic::new(Code::E0600, message)])
}

/// A benchmark's kernel, lowered with its dims: each a symbolic dim of
/// the kernel (E0606 otherwise, as `--dim` has it).
fn load(spec: &BenchSpec) -> Result<(driver::Source, tessera_ir::Kernel), Failure> {
    let src = driver::load_source(Path::new(&spec.file))?;
    let file = driver::parse_and_check(&src)?;
    let def = driver::select_kernel(&file, Some(&spec.kernel))?;
    let known: Vec<String> = tessera_frontend::lower::signature_dims(def)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if let Some(n) = spec.dims.keys().find(|n| !known.contains(n)) {
        return Err(Failure::input(vec![
            Diagnostic::new(
                Code::E0606,
                format!(
                    "benchmark `{}`: kernel `{}` has no symbolic dim `{n}`",
                    spec.id, spec.kernel
                ),
            )
            .note(format!("its symbolic dims: {}", known.join(", "))),
        ]));
    }
    let kernel = driver::lower(&file, &spec.kernel, &spec.dims, &src)?;
    Ok((src, kernel))
}

fn run_one(
    spec: &BenchSpec,
    machine: &tessera_sim::Machine,
    level: crate::opt::Level,
) -> Result<BenchResult, Failure> {
    let (src, kernel) = load(spec)?;
    bench(
        &kernel,
        machine,
        &src,
        level,
        &crate::tune::Tuning::default(),
    )
}

/// `tessera tune` on a benchmark (its default candidate count) on one host
/// thread, so that its seconds are one core's; then the kernel's cycles
/// with the tuning file it made.
fn tune_one(
    spec: &BenchSpec,
    machine: &tessera_sim::Machine,
) -> Result<(crate::tune::Report, u64), Failure> {
    let (src, kernel) = load(spec)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Failure::Internal(format!("a thread pool: {e}")))?;
    let report =
        pool.install(|| crate::tune::tune(&kernel, machine, &src, crate::opt::Level::O2, 8))?;
    let tuning = crate::tune::merge(
        crate::tune::Tuning::default(),
        &report.entries,
        &report.vectors,
    );
    let tuned = bench(&kernel, machine, &src, crate::opt::Level::O2, &tuning)?;
    Ok((report, tuned.cycles))
}

fn expert_cycles(
    path: &str,
    defines: &BTreeMap<String, i64>,
    machine: &tessera_sim::Machine,
) -> Result<u64, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error(format!("cannot read `{path}`: {e}")))?;
    let opts = tessera_sim::AsmOptions {
        defines: defines.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    };
    let program = tessera_sim::assemble_with(&text, machine, &opts).map_err(|e| {
        input_error(format!(
            "`{path}` does not assemble: {}",
            e.first().map_or("?".into(), |e| e.to_string())
        ))
    })?;
    let run = tessera_sim::RunOptions {
        timing_only: true,
        race_detection: false,
        ..tessera_sim::RunOptions::default()
    };
    let out = tessera_sim::run(machine, &program, &[], &run).map_err(simulate::run_error)?;
    Ok(out.report.cycles)
}

/// Reads a suite file (run from the repository root).
fn read_suite(path: &str) -> Result<SuiteFile, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        input_error(format!(
            "cannot read `{path}` (run from the repository root): {e}"
        ))
    })?;
    let suite: SuiteFile =
        toml::from_str(&text).map_err(|e| input_error(format!("`{path}`: {e}")))?;
    check_suite(path, &suite).map_err(input_error)?;
    Ok(suite)
}

/// What TOML cannot say of a suite file: ids are unique, dims positive,
/// and an expert names a benchmark of the file.
fn check_suite(path: &str, suite: &SuiteFile) -> Result<(), String> {
    let mut ids: Vec<&str> = Vec::new();
    for b in &suite.bench {
        if ids.contains(&b.id.as_str()) {
            return Err(format!("`{path}`: two benchmarks have the id `{}`", b.id));
        }
        ids.push(&b.id);
        if let Some((n, _)) = b.dims.iter().find(|(_, v)| **v == 0) {
            return Err(format!(
                "`{path}`: benchmark `{}`: dim `{n}` is 0; dims are positive integers",
                b.id
            ));
        }
    }
    let mut experts: Vec<&str> = Vec::new();
    for e in &suite.expert {
        if experts.contains(&e.id.as_str()) {
            return Err(format!("`{path}`: two experts have the id `{}`", e.id));
        }
        experts.push(&e.id);
        if !ids.contains(&e.bench.as_str()) {
            return Err(format!(
                "`{path}`: expert `{}` compares with benchmark `{}`, which the file does not define",
                e.id, e.bench
            ));
        }
    }
    Ok(())
}

/// Runs the suite, printing its rows as they finish, and returns
/// `RESULTS.md` and `RESULTS.json` in `out_dir` as a batch for the caller to
/// write once the rows have reached standard output.
pub fn run_suite(
    out: &mut dyn Write,
    machine: Option<&str>,
    out_dir: &Path,
) -> Result<crate::files::Batch, Failure> {
    let suite = read_suite(SUITE)?;
    let models = read_suite(MODELS)?;
    let specs: Vec<(&'static str, &BenchSpec)> = suite
        .bench
        .iter()
        .map(|b| ("suite", b))
        .chain(models.bench.iter().map(|b| ("models", b)))
        .collect();
    let machines: Vec<String> = match machine {
        Some(m) => vec![m.to_string()],
        None => tessera_sim::Machine::builtin_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut results = Results {
        benches: Vec::new(),
        experts: Vec::new(),
        cost_model: Vec::new(),
    };
    for mname in &machines {
        let m = simulate::machine(Some(mname))?;
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let mut tune_pairs: Vec<(f64, f64)> = Vec::new();
        for &(which, spec) in &specs {
            let r = run_one(spec, &m, crate::opt::Level::O2)?;
            let tuned = if r
                .per_stage
                .iter()
                .any(|s| s.kind.split('+').any(|k| k == "matmul"))
            {
                let (t, cycles) = tune_one(spec, &m)?;
                for st in &t.stages {
                    tune_pairs.extend(
                        st.tried
                            .iter()
                            .map(|c| (c.predicted as f64, c.simulated as f64)),
                    );
                }
                (!t.stages.is_empty()).then_some((t, cycles))
            } else {
                None
            };
            let o0 = run_one(spec, &m, crate::opt::Level::O0)?;
            let speedup_o0 = o0.cycles as f64 / r.cycles.max(1) as f64;
            if which == "suite" {
                for st in r.per_stage.iter().chain(&o0.per_stage) {
                    if let Some(p) = st.predicted {
                        pairs.push((p, st.simulated as f64));
                    }
                }
            }
            let dims: Vec<String> = spec.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "{:<16} {:<10} cycles {:>12}  bound {:>12.0}  efficiency {:.4}  ({} stages, {:.0} ms; -O0 {} cycles, {speedup_o0:.2}x)",
                spec.id, m.name, r.cycles, r.bound, r.efficiency, r.stages, r.compile_ms, o0.cycles
            );
            results.benches.push(Row {
                suite: which,
                id: spec.id.clone(),
                machine: m.name.clone(),
                kernel: spec.kernel.clone(),
                dims: dims.join(" "),
                cycles: r.cycles,
                bound: r.bound,
                bound_by: r.bound_by.clone(),
                efficiency: r.efficiency,
                target: spec.target,
                stages: r.stages,
                compile_ms: r.compile_ms,
                cycles_o0: o0.cycles,
                speedup_o0,
                egraph_nodes: r.optimiser.egraph_nodes,
                iterations: r.optimiser.iterations,
                tuned_cycles: tuned.as_ref().map(|(_, c)| *c),
                tune_speedup: tuned
                    .as_ref()
                    .map(|(_, c)| r.cycles as f64 / (*c).max(1) as f64),
                tune_seconds: tuned.as_ref().map(|(t, _)| t.seconds),
            });
        }
        let rho = spearman(&pairs);
        let _ = writeln!(
            out,
            "cost model on {}: Spearman {rho:.3} over {} stages",
            m.name,
            pairs.len()
        );
        let tune_rho = spearman(&tune_pairs);
        let _ = writeln!(
            out,
            "cost model on {}: Spearman {tune_rho:.3} over {} tuned matmul candidates",
            m.name,
            tune_pairs.len()
        );
        results.cost_model.push(CostRow {
            machine: m.name.clone(),
            stages: pairs.len(),
            spearman: rho,
            matmul_candidates: tune_pairs.len(),
            matmul_spearman: tune_rho,
        });
        for e in &suite.expert {
            let Some(path) = e.asm.get(mname) else {
                continue;
            };
            let compiled = results
                .benches
                .iter()
                .find(|r| r.id == e.bench && &r.machine == mname)
                .map(|r| r.cycles)
                .ok_or_else(|| {
                    input_error(format!(
                        "expert `{}` names no benchmark `{}`",
                        e.id, e.bench
                    ))
                })?;
            let expert = expert_cycles(path, &e.defines, &m)?;
            let speedup = expert as f64 / compiled.max(1) as f64;
            let _ = writeln!(
                out,
                "{:<16} {:<10} expert {:>12}  compiled {:>12}  compiled/expert speed {speedup:.3}",
                e.id, m.name, expert, compiled
            );
            results.experts.push(ExpertRow {
                id: e.id.clone(),
                machine: m.name.clone(),
                expert_cycles: expert,
                compiled_cycles: compiled,
                speedup,
            });
        }
    }
    let md = markdown(&results);
    let json = serde_json::to_string_pretty(&results).unwrap_or_default();
    let mut batch = crate::files::Batch::default();
    for (name, body) in [("RESULTS.md", md), ("RESULTS.json", json + "\n")] {
        batch.add(&out_dir.join(name), body.into_bytes());
    }
    Ok(batch)
}

fn markdown(r: &Results) -> String {
    let mut s = String::from(
        "# Benchmark results\n\n\
         Made by `cargo run --release -- bench --suite` from `benches/suite.toml` (kernels in\n\
         `benches/kernels.tsr`). Cycles are simulated (timing only), so they are exact and\n\
         reproducible; the bound is the roofline of machine.md and efficiency = bound / cycles\n\
         (four decimals, so that a row just below its target does not print as meeting it).\n\
         `-O2 / -O0` is the optimiser's speed-up over the unoptimised plan (one stage per op);\n\
         `e-nodes` and `iters` are its e-graph's largest size and its iterations over all phases.\n\
         Compile times (optimise, plan, generate) are host wall-clock, the median of three compiles,\n\
         and vary between runs.\n\
         `tuned` is the kernel with `tessera tune`'s schedules (the fastest simulated of the cost\n\
         model's 8 cheapest per cube matmul stage and its choice in up to 3 other tile orders, each\n\
         stage alone, a large batch on a sample), simulated whole; `tune ×` its speed-up, `tune s`\n\
         the host seconds the tuning took on one thread.\n",
    );
    let mut machines: Vec<&str> = r.benches.iter().map(|b| b.machine.as_str()).collect();
    machines.dedup();
    for (m, which) in machines
        .iter()
        .flat_map(|m| [(*m, "suite"), (*m, "models")])
    {
        let title = if which == "suite" {
            m.to_string()
        } else {
            format!("{m}: model shapes (`benches/models.toml`)")
        };
        s.push_str(&format!(
            "\n## {title}\n\n| id | kernel | dims | cycles | bound | bound by | efficiency | target | stages | -O0 cycles | -O2 / -O0 | e-nodes | iters | compile ms | tuned | tune × | tune s |\n| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        ));
        for b in r
            .benches
            .iter()
            .filter(|b| b.machine == m && b.suite == which)
        {
            let target = b
                .target
                .map_or_else(|| "—".to_string(), |t| format!("{t:.2}"));
            let dash = || "—".to_string();
            let tuned = b.tuned_cycles.map_or_else(dash, |c| c.to_string());
            let tune_x = b.tune_speedup.map_or_else(dash, |x| format!("{x:.3}"));
            let tune_s = b.tune_seconds.map_or_else(dash, |x| format!("{x:.2}"));
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.0} | {} | {:.4} | {} | {} | {} | {:.2} | {} | {} | {:.0} | {tuned} | {tune_x} | {tune_s} |\n",
                b.id,
                b.kernel,
                b.dims,
                b.cycles,
                b.bound,
                b.bound_by,
                b.efficiency,
                target,
                b.stages,
                b.cycles_o0,
                b.speedup_o0,
                b.egraph_nodes,
                b.iterations,
                b.compile_ms
            ));
        }
    }
    if !r.cost_model.is_empty() {
        s.push_str("\n## The cost model against the simulator\n\nEvery stage of the suite's `-O0` and `-O2` plans that the optimiser's cost model predicts\n(its groups and ops; not the copies the planner adds), predicted against simulated cycles.\nThe last two columns rank the scheduler's estimates of the matmul schedules `tune` simulated\n(suite and model shapes).\n\n| machine | stages | Spearman rank correlation | matmul candidates | Spearman |\n| --- | ---: | ---: | ---: | ---: |\n");
        for c in &r.cost_model {
            s.push_str(&format!(
                "| {} | {} | {:.3} | {} | {:.3} |\n",
                c.machine, c.stages, c.spearman, c.matmul_candidates, c.matmul_spearman
            ));
        }
    }
    if !r.experts.is_empty() {
        s.push_str("\n## Compiled kernels against the hand-written expert kernels\n\n| id | machine | expert cycles | compiled cycles | compiled speed / expert |\n| --- | --- | ---: | ---: | ---: |\n");
        for e in &r.experts {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} |\n",
                e.id, e.machine, e.expert_cycles, e.compiled_cycles, e.speedup
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suite file, read from the repository root.
    #[test]
    fn spearman_is_the_pearson_correlation_of_ranks() {
        // Hand-derived: a monotone relation is 1, a reversed one -1.
        let up: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), f64::from(i * i))).collect();
        assert!((spearman(&up) - 1.0).abs() < 1e-12);
        let down: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), f64::from(-i))).collect();
        assert!((spearman(&down) + 1.0).abs() < 1e-12);
        // x = 1..5, y ranks 2 1 4 3 5: d² = 1+1+1+1+0 = 4, ρ = 1 − 6·4/(5·24) = 0.8.
        let p = [
            (1.0, 20.0),
            (2.0, 10.0),
            (3.0, 40.0),
            (4.0, 30.0),
            (5.0, 50.0),
        ];
        assert!((spearman(&p) - 0.8).abs() < 1e-12);
        // Ties take the average rank: y = 1 1 2 → ranks 1.5 1.5 3.
        let t = [(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)];
        assert!((spearman(&t) - 0.866_025_403_784_438_6).abs() < 1e-12);
    }

    fn suite() -> SuiteFile {
        load_file(SUITE)
    }

    #[test]
    fn a_suite_file_is_checked_beyond_its_toml() {
        let bench = |id: &str, dims: &str| {
            format!(
                "[[bench]]\nid = \"{id}\"\nfile = \"f.tsr\"\nkernel = \"k\"\ndims = {{ {dims} }}\n"
            )
        };
        let check = |text: &str| {
            let suite: SuiteFile = toml::from_str(text).expect(text);
            check_suite("s.toml", &suite)
        };
        assert_eq!(check(&(bench("a", "M = 1") + &bench("b", "M = 2"))), Ok(()));
        let twice = check(&(bench("a", "M = 1") + &bench("a", "M = 2")));
        assert_eq!(
            twice,
            Err("`s.toml`: two benchmarks have the id `a`".to_string())
        );
        let zero = check(&bench("a", "M = 4, N = 0"));
        assert_eq!(
            zero,
            Err("`s.toml`: benchmark `a`: dim `N` is 0; dims are positive integers".to_string())
        );
        let expert = "[[expert]]\nid = \"e\"\nbench = \"b\"\nasm = {}\ndefines = {}\n";
        let orphan = check(&(bench("a", "M = 1") + expert));
        assert!(orphan.is_err_and(|e| e.contains("benchmark `b`, which the file does not define")));
        // A misspelt field is TOML's error, not ignored.
        let typo = bench("a", "M = 1").replace("kernel =", "kernal =");
        assert!(toml::from_str::<SuiteFile>(&typo).is_err());
    }

    #[test]
    fn a_benchmark_naming_a_dim_its_kernel_lacks_is_refused() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = BenchSpec {
            id: "x".into(),
            file: root.join("examples/mlp.tsr").display().to_string(),
            kernel: "mlp".into(),
            dims: [("M", 8), ("D", 16), ("H", 16), ("Q", 4)]
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            target: None,
        };
        let Err(Failure::Input { diags, .. }) = load(&spec) else {
            panic!("a dim Q of no kernel was accepted");
        };
        assert_eq!(diags[0].code, "E0606");
        assert!(
            diags[0].message.contains("has no symbolic dim `Q`"),
            "{}",
            diags[0].message
        );
    }

    fn load_file(path: &str) -> SuiteFile {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(path)).expect(path);
        toml::from_str(&text).expect(path)
    }

    #[test]
    fn the_model_suite_holds_the_shapes_of_the_spec() {
        // (M, K, N) of benchmarks.md's model shapes: one LLaMA-7B-class
        // layer's prefill GEMMs over 4096 tokens, its decode GEMVs at M = 1
        // and 16, 512×512×8192 and 4000³.
        let mut want = vec![
            (4096, 4096, 12288),
            (4096, 4096, 4096),
            (4096, 4096, 11008),
            (4096, 11008, 4096),
            (512, 8192, 512),
            (4000, 4000, 4000),
        ];
        for m in [1, 16] {
            want.extend([(m, 4096, 12288), (m, 4096, 11008), (m, 11008, 4096)]);
        }
        let got: Vec<(u64, u64, u64)> = load_file(MODELS)
            .bench
            .iter()
            .map(|b| {
                assert_eq!(b.kernel, "gemm", "{}", b.id);
                (b.dims["M"], b.dims["K"], b.dims["N"])
            })
            .collect();
        for w in want {
            assert!(
                got.contains(&w),
                "benches/models.toml lacks M, K, N = {w:?}"
            );
        }
    }

    #[test]
    fn the_suite_holds_every_benchmark_of_the_spec() {
        // The ids of benchmarks.md's suite table (the models suite is
        // benches/models.toml's own).
        let spec = [
            "gemm-1024",
            "gemm-2048",
            "gemm-4096",
            "gemm-6144",
            "gemm-i8",
            "gemm-f32",
            "mlp",
            "add",
            "softmax",
            "layernorm",
            "rmsnorm-matmul",
            "attention-1024",
            "attention-4096",
            "attention-8192",
            "transpose",
            "ew-chain",
            "swiglu-gate",
            "softmax-long",
            "layernorm-long",
            "rmsnorm",
            "ffn-swiglu",
            "attention-gqa",
            "attention-mask",
        ];
        let s = suite();
        let ids: Vec<&str> = s.bench.iter().map(|b| b.id.as_str()).collect();
        for id in spec {
            assert!(ids.contains(&id), "benches/suite.toml lacks `{id}`");
        }
    }

    #[test]
    fn every_benchmark_compiles_on_both_machines() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for b in suite().bench.into_iter().chain(load_file(MODELS).bench) {
            let src = driver::load_source(&root.join(&b.file)).expect("kernels.tsr");
            let file = driver::parse_and_check(&src).expect("kernels.tsr checks");
            let kernel = driver::lower(&file, &b.kernel, &b.dims, &src)
                .unwrap_or_else(|e| panic!("{}: {e:?}", b.id));
            for m in tessera_sim::Machine::builtin_names() {
                let machine = simulate::machine(Some(m)).expect("built-in machine");
                if let Err(e) = driver::compile_npu(&kernel, &machine, &src, crate::opt::Level::O2)
                {
                    panic!("{} on {m}: {e:?}", b.id);
                }
            }
        }
    }
}
