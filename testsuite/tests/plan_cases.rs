//! Plan cases (`cases/plan/*.plan`): a plan in its text form, often with a
//! schedule the planner would not pick, is compiled without the planner; its
//! assembly is snapshotted and the program runs on the simulator of the
//! plan's machine (race detector on) against numpy fixtures.

use std::path::Path;
use tessera_compiler::{inputs, simulate};
use tessera_ir::Upstream;
use tessera_ir::compare::{Rule, compare};
use tessera_ir::plan::{Plan, StageKind};
use tessera_testsuite::{case_name, snapshot_settings};

type Result = datatest_stable::Result<()>;

fn plan_case(path: &Path) -> Result {
    let text = std::fs::read_to_string(path)?;
    let name = case_name(path);
    if !text.lines().any(|l| l.starts_with("//!")) {
        return Err("a case starts with a `//!` description".into());
    }
    let plan = Plan::parse(&text).map_err(|e| e.to_string())?;
    let back = Plan::parse(&plan.text()).map_err(|e| e.to_string())?;
    if back != plan {
        return Err("the plan does not round-trip through its text".into());
    }
    let machine = simulate::machine(Some(&plan.machine)).map_err(|f| format!("{f:?}"))?;
    let program = tessera_backend::npu::compile(&plan, &machine).map_err(|e| e.to_string())?;
    snapshot_settings(path).bind(|| {
        insta::assert_snapshot!(format!("{name}@asm"), tessera_sim::disassemble(&program))
    });

    let data = path.with_extension("");
    let named: Vec<(String, tessera_sim::Tensor)> = plan
        .params()
        .map(|b| {
            let file = data.join("inputs").join(format!("{}.npy", b.name));
            let t = inputs::read_input(&file, &b.name, b.dtype).map_err(|d| d.to_string())?;
            Ok((b.name.clone(), simulate::to_sim(&t)))
        })
        .collect::<std::result::Result<_, String>>()?;
    let out = tessera_sim::run(&machine, &program, &named, &Default::default())
        .map_err(|e| format!("simulator: {e}"))?;
    // The plan's stages say what its results went through: a reduction or
    // matmul, an op held to a tolerance, or only exact ops (language.md).
    let upstream = plan
        .stages
        .iter()
        .map(|s| match &s.kind {
            StageKind::Reduce(_) | StageKind::MatMul(_) | StageKind::Rows(_) => {
                Upstream::Accumulated
            }
            StageKind::Elementwise(e) if e.body.iter().any(|i| !i.op.is_exact()) => {
                Upstream::Rounded
            }
            StageKind::Elementwise(_) | StageKind::Transpose(_) => Upstream::Exact,
        })
        .max()
        .unwrap_or(Upstream::Exact);
    let results: Vec<_> = plan.results().collect();
    if results.len() != out.outputs.len()
        || results
            .iter()
            .zip(&out.outputs)
            .any(|(b, (n, _))| &b.name != n)
    {
        return Err(format!(
            "the program's outputs {:?} are not the plan's results",
            out.outputs.iter().map(|(n, _)| n).collect::<Vec<_>>()
        )
        .into());
    }
    let mut failures = Vec::new();
    for (b, (_, got)) in results.iter().zip(&out.outputs) {
        let got = simulate::from_sim(got).map_err(|f| format!("{f:?}"))?;
        let file = data.join("expected").join(format!("{}.npy", b.name));
        let want = inputs::read_input(&file, &b.name, b.dtype).map_err(|d| d.to_string())?;
        let c = compare(&got, &want, Rule::new(b.dtype, upstream));
        if !c.ok() {
            failures.push(format!(
                "output `{}`: {} mismatches, first {:?}, max abs {:.3e}, max rel {:.3e}",
                b.name, c.mismatches, c.first_mismatch, c.max_abs, c.max_rel
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

datatest_stable::harness! {
    { test = plan_case, root = "cases/plan", pattern = r"^[^/]*\.plan$" },
}
