//! The accuracy an elementwise body's values must have: what their uses
//! let the kernel's results observe.
//!
//! Results are judged against the reference with a tolerance per output
//! dtype (`language.md`, numeric semantics). A value that reaches the
//! kernel only as a half-precision result (f16 or bf16) is judged by that
//! result's tolerance, `1e-3 + 1e-2·|ref|` for f16, twenty times the f16
//! rounding step. The backend may then compute a transcendental composite
//! to that accuracy rather than to f32's: `gelu` in 8 vector steps and 12
//! cycles a repeat rather than 18 steps and 27 (`docs/codegen.md`,
//! "Composites: gelu").
//!
//! A value is **half-demanded** ([`half_demanded`]) when it is not an f32
//! result of the stage and every use of it is
//! - a cast to f16 or bf16, or a copy,
//! - a product with a value in `[−1, 1]` (a `sigmoid`, `tanh` or `erf`),
//!
//! and each such use is half-demanded in turn, down to half-precision
//! stage results that are kernel results no stage reads. Neither use lets
//! an error grow past the same fraction of the result's tolerance: a
//! product with `|s| ≤ 1` scales the error and the tolerance's relative
//! term alike, and a cast adds only its own rounding, which the reference
//! has too.
//! Anything else (a sum, a difference, a division, a reduction, a
//! workspace or a later stage) can cancel the value or magnify its error,
//! so it demands f32.

use super::{BufKind, EwArg, EwInst, EwOp, Plan, Source, View};
use crate::op::{BinaryOp, UnaryOp};
use crate::types::DType;

/// Per instruction of `body`: whether its value is half-demanded, given
/// which instructions leave the stage (`results`: the instruction and
/// whether it is a half-precision kernel result that nothing else reads).
pub fn body_demand(body: &[EwInst], results: &[(usize, bool)]) -> Vec<bool> {
    let mut half = vec![false; body.len()];
    for i in (0..body.len()).rev() {
        let leaves: Vec<bool> = results
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|&(_, h)| h && is_half(body[i].dtype))
            .collect();
        if leaves.contains(&false) {
            continue;
        }
        let mut used = !leaves.is_empty();
        let mut ok = true;
        for (j, inst) in body.iter().enumerate().skip(i + 1) {
            let Some(pos) = inst.args.iter().position(|a| *a == EwArg::Inst(i)) else {
                continue;
            };
            used = true;
            let fits = match inst.op {
                EwOp::Cast(d) => is_half(d),
                EwOp::Copy => true,
                EwOp::Binary(BinaryOp::Mul) => {
                    let other = &inst.args[1 - pos.min(1)];
                    inst.args.len() == 2 && *other != EwArg::Inst(i) && bounded(body, other)
                }
                EwOp::Binary(
                    BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Div
                    | BinaryOp::Pow
                    | BinaryOp::Maximum
                    | BinaryOp::Minimum,
                )
                | EwOp::Unary(_)
                | EwOp::Compare(_)
                | EwOp::Select => false,
            };
            if !(fits && half[j]) {
                ok = false;
                break;
            }
        }
        half[i] = used && ok;
    }
    half
}

/// [`body_demand`] for elementwise stage `e` of `plan`: its output and
/// further results leave the stage; a half-precision one whose buffer is a
/// kernel result that no stage reads is the kernel's to judge.
pub fn half_demanded(plan: &Plan, e: &super::Elementwise) -> Vec<bool> {
    let Some(last) = e.body.len().checked_sub(1) else {
        return Vec::new();
    };
    let results: Vec<(usize, bool)> = std::iter::once((last, &e.out))
        .chain(e.also.iter().map(|(j, v)| (*j, v)))
        .map(|(j, v)| (j, final_result(plan, v)))
        .collect();
    body_demand(&e.body, &results)
}

/// Whether `v` is a half-precision kernel result that no stage reads.
fn final_result(plan: &Plan, v: &View) -> bool {
    let Source::Buffer(b) = v.source else {
        return false;
    };
    let result = plan
        .buffers
        .get(b)
        .is_some_and(|buf| matches!(buf.kind, BufKind::Result(_)));
    let read = plan
        .stages
        .iter()
        .any(|s| s.reads().iter().any(|r| r.source == Source::Buffer(b)));
    result && !read && is_half(v.dtype)
}

fn is_half(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16)
}

/// Whether operand `a` lies in `[−1, 1]` (or is NaN) for every input.
fn bounded(body: &[EwInst], a: &EwArg) -> bool {
    match a {
        EwArg::Inst(k) => matches!(
            body.get(*k).map(|i| &i.op),
            Some(EwOp::Unary(UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Erf))
        ),
        EwArg::Input(_) => false,
    }
}

#[cfg(test)]
mod tests;
