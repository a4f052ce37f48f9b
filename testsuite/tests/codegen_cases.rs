//! Code generation (`cases/codegen/*.tsr`): the optimised IR (with the
//! optimiser's report), the plan and the assembly of each kernel on both
//! built-in machines at `-O2` are snapshotted, and the kernel runs
//! on the simulator (race detector on) against the reference interpreter on
//! seeded random inputs.

use std::path::Path;
use tessera_compiler::{driver, simulate};
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
    let inputs = tessera_testsuite::random_inputs(&kernel, 7);
    let settings = snapshot_settings(path);
    for machine_name in ["910b-like", "910-like"] {
        let machine = simulate::machine(Some(machine_name)).map_err(|f| format!("{f:?}"))?;
        let code = driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
            .map_err(|f| format!("{f:?}"))?;
        settings.bind(|| {
            insta::assert_snapshot!(
                format!("{name}@opt-ir-{machine_name}"),
                tessera_ir::text::print_kernel(&code.kernel) + &code.report.text()
            );
            insta::assert_snapshot!(format!("{name}@plan-{machine_name}"), code.plan.text());
            insta::assert_snapshot!(
                format!("{name}@asm-{machine_name}"),
                tessera_sim::disassemble(&code.program)
            );
        });
        tessera_testsuite::plan_round_trip(&code.plan, &machine, &code.program)?;
        tessera_testsuite::simulate_against_reference(&kernel, &machine, &code.program, &inputs)?;
    }
    Ok(())
}

datatest_stable::harness! {
    { test = codegen_case, root = "cases/codegen", pattern = r"^[^/]*\.tsr$" },
}
