//! Code generation (`cases/codegen/*.tsr`): the plan and the assembly of
//! each kernel on both built-in machines are snapshotted, and the kernel runs
//! on the simulator (race detector on) against the reference interpreter on
//! seeded random inputs.

use std::path::Path;
use tessera_compiler::{driver, inputs, simulate};
use tessera_ir::compare::{Tolerance, compare};
use tessera_testsuite::{case_name, directives, load, snapshot_settings};

type Result = datatest_stable::Result<()>;

fn codegen_case(path: &Path) -> Result {
    let src = load(path);
    let name = case_name(path);
    let dirs = directives(&src.text)?;
    let file = driver::parse_and_check(&src).map_err(|f| format!("{f:?}"))?;
    let def = driver::select_kernel(&file, dirs.kernel.as_deref()).map_err(|f| format!("{f:?}"))?;
    let kernel =
        driver::lower(&file, &def.name.name, &dirs.dims, &src).map_err(|f| format!("{f:?}"))?;
    let inputs: Vec<tessera_ir::Tensor> = kernel
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            inputs::random_tensor(p.ty.dtype, p.ty.shape.as_usize().unwrap_or_default(), 7, i)
        })
        .collect();
    let reference = tessera_ir::interp::run(&kernel, &inputs).map_err(|e| e.to_string())?;
    let settings = snapshot_settings(path);
    for machine_name in ["910b-like", "910-like"] {
        let machine = simulate::machine(Some(machine_name)).map_err(|f| format!("{f:?}"))?;
        let code = driver::compile_npu(&kernel, &machine, &src).map_err(|f| format!("{f:?}"))?;
        settings.bind(|| {
            insta::assert_snapshot!(format!("{name}@plan-{machine_name}"), code.plan.text());
            insta::assert_snapshot!(
                format!("{name}@asm-{machine_name}"),
                tessera_sim::disassemble(&code.program)
            );
        });
        let named: Vec<(String, tessera_sim::Tensor)> = kernel
            .params
            .iter()
            .zip(&inputs)
            .map(|(p, t)| (p.name.clone(), simulate::to_sim(t)))
            .collect();
        let out = tessera_sim::run(
            &machine,
            &code.program,
            &named,
            &tessera_sim::RunOptions::default(),
        )
        .map_err(|e| format!("{machine_name}: {e}"))?;
        for ((o, (_, got)), want) in kernel.outputs.iter().zip(&out.outputs).zip(&reference) {
            let got = simulate::from_sim(got).map_err(|f| format!("{f:?}"))?;
            let c = compare(
                &got,
                want,
                Tolerance::for_output(want.dtype, kernel.accumulated(o.value)),
            );
            if !c.ok() {
                return Err(format!("{machine_name}: output `{}`: {c:?}", o.name).into());
            }
        }
    }
    Ok(())
}

datatest_stable::harness! {
    { test = codegen_case, root = "cases/codegen", pattern = r"^[^/]*\.tsr$" },
}
