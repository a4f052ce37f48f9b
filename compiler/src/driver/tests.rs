//! The driver's fallbacks, on a machine whose UB is too small for a fused
//! group but large enough for each of its ops.

use super::*;
use crate::opt::{Level, Report};
use tessera_sim::Machine;

const SRC: &str = "kernel fma2(a: f32[64], b: f32[64], c: f32[64], d: f32[64]) -> f32[64] {
    return a * b + c * d;
}
";

fn kernel() -> (Kernel, Source) {
    let src = Source {
        name: "fma2.tsr".into(),
        text: SRC.into(),
    };
    let file = parse_and_check(&src).expect("parses");
    let k = lower(&file, "fma2", &DimEnv::default(), &src).expect("lowers");
    (k, src)
}

/// 910b-like with `ub` bytes of UB.
fn machine(ub: u64) -> Machine {
    let text = include_str!("../../../backend/sim/src/machines/910b-like.toml");
    let old = "ub = { bytes = 196608, align = 32 }";
    assert!(text.contains(old), "the machine description changed");
    Machine::from_toml(&text.replace(old, &format!("ub = {{ bytes = {ub}, align = 32 }}")))
        .expect("a valid machine")
}

/// The kernel with all its ops in one fused group.
fn grouped(k: &Kernel) -> Kernel {
    let mut g = k.clone();
    for n in &mut g.nodes {
        n.group = Some(0);
    }
    g
}

#[test]
fn a_group_that_does_not_fit_is_split_into_its_ops() {
    let (k, src) = kernel();
    // At the smallest tile (32 f32), the group needs four double-buffered
    // inputs, two temporaries and the output: 1 792 bytes; one op needs
    // two inputs and the output: 768.
    let m = machine(1024);
    let mut report = Report::default();
    let (planned, plan) =
        plan_optimised(grouped(&k), &k, &m, &src, Level::O2, &mut report).expect("plans");
    assert_eq!(report.split, 1);
    assert!(!report.fallback);
    assert_eq!(plan.stages.len(), 3, "one stage per op");
    assert!(planned.nodes.iter().all(|n| n.group.is_none()));
    assert!(
        report
            .text()
            .contains("1 fused group(s) did not fit the machine")
    );
}

#[test]
fn a_group_that_fits_stays_one_stage() {
    let (k, src) = kernel();
    let m = machine(4096);
    let mut report = Report::default();
    let (_, plan) =
        plan_optimised(grouped(&k), &k, &m, &src, Level::O2, &mut report).expect("plans");
    assert_eq!((report.split, plan.stages.len()), (0, 1));
}

#[test]
fn at_o0_a_capacity_error_is_the_users() {
    let (k, src) = kernel();
    let m = machine(1024);
    let mut report = Report::default();
    let r = plan_optimised(grouped(&k), &k, &m, &src, Level::O0, &mut report);
    assert!(matches!(r, Err(Failure::Input { .. })), "not split at -O0");
}
