//! The online softmax of chunked row stages (`chunked.rs`) on rows that
//! are −∞ throughout.

use crate::npu::prog::Item;
use crate::npu::vector::{self, Seq, VBuf};
use tessera_ir::plan::{EwArg, EwOp, RowsInst, RowsOp};
use tessera_ir::{BinaryOp, DType, UnaryOp};
use tessera_sim::isa::Cond;

/// The online softmax of a row that is −∞ throughout: its running max `m`
/// stayed at the lowest finite value and its sum of `exp(x − m)` is 0,
/// where the whole-row form (and the reference) take `m = −∞` and sum
/// `exp(−∞ − (−∞))`, NaN. A row with any other value sums at least
/// `exp(0) = 1` at its maximum (an infinite or NaN maximum gives NaN
/// already), so a zero sum marks such a row exactly: its `m` becomes −∞
/// and its sum NaN. `spare` (a repeat of lanes) holds the mask and the
/// two values.
pub(super) fn all_neg_inf(h: &mut Vec<Item>, (m, sum): (VBuf, VBuf), spare: VBuf, slots: u64) {
    let (mask, nan, ninf) = (
        spare.as_dtype(DType::Bool),
        spare.offset(slots * 4).as_dtype(sum.dtype),
        spare.offset(slots * 8).as_dtype(m.dtype),
    );
    let mut q = Seq { items: h, n: slots };
    q.cmps(Cond::Eq, mask, sum, vector::scalar(sum.dtype, 0.0));
    q.dup(nan, vector::scalar(sum.dtype, f64::NAN));
    q.sel(sum, mask, nan, sum);
    q.dup(ninf, vector::scalar(m.dtype, f64::NEG_INFINITY));
    q.sel(m, mask, ninf, m);
}

/// Whether a row that is −∞ throughout would show in the stage's result
/// as the online softmax leaves it ([`all_neg_inf`] not run): the chain's
/// max `m` (the lowest finite value, not −∞), its difference and `exp` (−∞
/// and 0, not NaN), the sum `s` (0) or its reciprocal (+∞) reach the
/// result other than through `exp(x − m) · (1 / s)` or `exp(x − m) / s`,
/// which are `0 · ∞` and `0 / 0`, NaN, as in the whole-row form.
/// Softmax's stage does not show it, so its rows pay no instruction for it
/// (five per row cost 910-like softmax-long 176 470 → 184 805 cycles).
pub(super) fn neg_inf_rows_show(body: &[RowsInst], (m, s): (usize, usize)) -> bool {
    let uses = |j: usize| -> Vec<usize> {
        (j + 1..body.len())
            .filter(|&k| body[k].args.contains(&EwArg::Inst(j)))
            .collect()
    };
    let last = body.len().saturating_sub(1);
    let exp = m + 3;
    let is = |k: usize, op: RowsOp| body[k].op == op;
    let mul = RowsOp::Ew(EwOp::Binary(BinaryOp::Mul));
    // `exp · v`, or `exp · expand(v)`: the products of the softmax (NaN
    // as in the whole-row form, so they may be the result).
    let scales_exp = |j: usize| {
        uses(j).iter().all(|&k| {
            (is(k, mul.clone()) && body[k].args.contains(&EwArg::Inst(exp)))
                || (is(k, RowsOp::Expand)
                    && k != last
                    && uses(k)
                        .iter()
                        .all(|&u| is(u, mul.clone()) && body[u].args.contains(&EwArg::Inst(exp))))
        })
    };
    // The chain, each value used by the next only.
    let chain = (m..exp).all(|j| j != last && uses(j) == [j + 1]);
    // `exp / expand(s)`: `0 / 0`.
    let divides_exp = |e: usize| {
        uses(e).iter().all(|&k| {
            is(k, RowsOp::Ew(EwOp::Binary(BinaryOp::Div)))
                && body[k].args == [EwArg::Inst(exp), EwArg::Inst(e)]
        })
    };
    let recs = uses(s);
    let reciprocals = !recs.is_empty()
        && s != last
        && recs.iter().all(|&r| {
            r != last
                && ((is(r, RowsOp::Ew(EwOp::Unary(UnaryOp::Reciprocal))) && scales_exp(r))
                    || (is(r, RowsOp::Expand) && divides_exp(r)))
        });
    // The exponentials go to the sum and to those products only.
    let products: Vec<usize> = recs
        .iter()
        .flat_map(|&r| uses(r))
        .flat_map(|k| {
            if is(k, RowsOp::Expand) {
                uses(k)
            } else {
                vec![k]
            }
        })
        .collect();
    let exps = exp != last && uses(exp).iter().all(|k| *k == s || products.contains(k));
    !(chain && reciprocals && exps)
}
