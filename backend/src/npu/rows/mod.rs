//! The row stage: a fused group over rows on the vector unit (see
//! `tessera_ir::plan::rows`), in three forms:
//!
//! - `whole.rs`: whole rows kept in UB, a tile of `rows` rows;
//! - `chunked.rs`: rows longer than UB holds, streamed in chunks once per
//!   pass of the body (row by row, or pipelined);
//! - `transposed.rs`: short rows gathered into column runs.
//!
//! This file dispatches on the schedule and holds what the forms share: the
//! opening (block registers, GM addresses, constants), a tile's rows, the
//! reductions' accumulator dtype and finish, the expansion's blocks, and
//! the scalar-operand form of arithmetic with a per-row value.

mod chunked;
mod online;
mod transposed;
mod whole;

use super::Ctx;
use super::inst::{Address, InstBuilder, VecOperand, int_scalar};
use super::prog::{Access, Build, Item};
use super::vector::{self, Opnd, Seq, VBuf, dt, scalar};
use tessera_ir::plan::{EwArg, EwOp, Rows, RowsInput, RowsInst, RowsLayout, RowsOp, Source, Width};
use tessera_ir::{BinaryOp, DType, ReduceOp, Scalar};
use tessera_sim::isa::{AluOp, MemTy, Reg, ScaOp, Scal, ScalarSpace};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// Generates a row stage, in the form its schedule says.
pub fn generate(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
    let layout = &r.schedule.layout;
    if layout.inputs.len() != r.inputs.len() || layout.temps.len() + 1 != r.body.len() {
        return Err("internal: the layout does not match the row stage".into());
    }
    if ctx.phases.is_some() && (r.schedule.transposed || r.schedule.chunked()) {
        return Err("internal: a joined row stage whose rows UB does not hold whole".into());
    }
    if r.schedule.transposed {
        transposed::generate(ctx, r)
    } else if r.schedule.chunked() {
        chunked::generate(ctx, r)
    } else {
        whole::generate(ctx, r)
    }
}

/// What both forms of a row stage open with.
struct Opening {
    /// This block's index and the block count.
    bi: Reg,
    bd: Reg,
    /// Per input, its GM address (none for a constant).
    bases: Vec<Option<Reg>>,
    /// The result's GM address.
    base_out: Reg,
}

/// Reads the block registers and GM addresses, and fills the constant
/// inputs once (`count` elements of a value of each width).
fn opening(
    ctx: &mut Ctx<'_>,
    r: &Rows,
    items: &mut Vec<Item>,
    count: impl Fn(Width) -> u64,
) -> Result<Opening, String> {
    let (bi, bd) = ctx.block(items)?;
    let mut bases = Vec::with_capacity(r.inputs.len());
    for i in &r.inputs {
        bases.push(match i.view.source {
            Source::Constant(_) => None,
            Source::Buffer(_) => Some(ctx.gm_view(items, &i.view)?),
        });
    }
    let base_out = ctx.gm_view(items, &r.out)?;
    for (k, i) in r.inputs.iter().enumerate() {
        if let Source::Constant(c) = &i.view.source {
            let b = VBuf::of(&r.schedule.layout.inputs[k], 0, i.view.dtype);
            let value = match *c {
                Scalar::Float(x) => scalar(i.view.dtype, x),
                Scalar::Int(v) => int_scalar(v),
                Scalar::Bool(v) => int_scalar(i64::from(v)),
            };
            Seq {
                items,
                n: count(i.width),
            }
            .dup(b, value);
        }
    }
    Ok(Opening {
        bi,
        bd,
        bases,
        base_out,
    })
}

/// Emits elementwise instruction `inst` of `r` (op `op`) over `n`
/// elements, in tensor-scalar form when an operand is a constant
/// ([`vector::constant_form`]) and the instruction is over full rows. An
/// instruction over per-row values (`rows` elements, one short instruction
/// a tile) keeps the tensor-tensor form: the form saves it a cycle or two,
/// and on 910b-like rmsnorm-matmul its `+ eps`, shortened, moved the
/// FixPipe's drains against the cube, 1 734 638 → 1 736 595 cycles.
fn ew(
    h: &mut Vec<Item>,
    n: u64,
    (r, inst, op): (&Rows, &RowsInst, &EwOp),
    dst: VBuf,
    args: &[VBuf],
    scratch: &[VBuf],
) -> Result<(), String> {
    let consts: Vec<Option<Scalar>> = inst
        .args
        .iter()
        .map(|a| match *a {
            _ if inst.width == Width::Row => None,
            EwArg::Input(k) => match r.inputs.get(k).map(|i| &i.view.source) {
                Some(Source::Constant(c)) => Some(*c),
                _ => None,
            },
            EwArg::Inst(_) => None,
        })
        .collect();
    let op = (op, vector::Accuracy::F32);
    vector::emit_op_with(h, n, op, dst, (args, &consts), scratch)
}

/// `row0 = t · rows`, `rcur = min(rows, outer − row0)`: a tile's first row
/// and its row count.
fn tile_rows(h: &mut Vec<Item>, (row0, rcur): (Reg, Reg), t: Reg, rows: u64, outer: u64) {
    h.ins().s_alu(AluOp::Mul, row0, t, rows);
    h.ins().s_li(rcur, outer);
    h.ins().s_alu(AluOp::Sub, rcur, rcur, row0);
    h.ins().s_alu(AluOp::Min, rcur, rcur, rows);
}

/// `dst = offset` (bytes) of row `row` of full input `i` from its base:
/// `row · rs`, or for rows that repeat with a period `p`,
/// `(row / p)·hs + (row % p)·rs`. `tmp` is clobbered.
fn row_offset(h: &mut Vec<Item>, dst: Reg, tmp: Reg, row: Reg, i: &RowsInput) {
    let s = size(i.view.dtype);
    match i.period() {
        None => {
            h.ins().s_alu(AluOp::Mul, dst, row, i.row_stride() * s);
        }
        Some((p, hs, rs)) => {
            h.ins().s_alu(AluOp::Rem, dst, row, p);
            h.ins().s_alu(AluOp::Mul, dst, dst, rs * s);
            if hs != 0 {
                h.ins().s_alu(AluOp::Div, tmp, row, p);
                h.ins().s_alu(AluOp::Mul, tmp, tmp, hs * s);
                h.ins().s_alu(AluOp::Add, dst, dst, tmp);
            }
        }
    }
}

/// `dst` = the folded accumulator `acc` (÷ `n` for `mean`), in `dst`'s
/// dtype, for `slots` per-row values.
fn finish(h: &mut Vec<Item>, op: ReduceOp, dst: VBuf, acc: VBuf, slots: u64, n: u64) {
    let mut q = Seq { items: h, n: slots };
    let scale = scalar(acc.dtype, 1.0 / n as f64);
    match (op == ReduceOp::Mean, dst.dtype == acc.dtype) {
        (true, true) => q.sca(ScaOp::Muls, dst, acc, scale),
        (true, false) => {
            q.sca(ScaOp::Muls, acc, acc, scale);
            q.cvt(dst, acc);
        }
        (false, true) => q.copy(dst, acc),
        (false, false) => q.cvt(dst, acc),
    }
}

/// `src` in its reduction's accumulator dtype `acc`: itself, or its first
/// `n` elements converted into the stage's wide buffer.
fn widened(
    h: &mut Vec<Item>,
    layout: &RowsLayout,
    src: VBuf,
    acc: DType,
    n: u64,
) -> Result<VBuf, String> {
    if src.dtype == acc {
        return Ok(src);
    }
    let w = layout
        .wide
        .as_ref()
        .ok_or("internal: a widening reduction without its wide buffer")?;
    let w = VBuf::of(w, 0, acc);
    Seq { items: h, n }.cvt(w, src);
    Ok(w)
}

/// Replicates `slots` per-row values of `src` (a multiple of 8) into
/// 32-byte blocks at `bc`, one block per row (`vec.brcb`).
fn replicate(h: &mut Vec<Item>, bc: VBuf, src: VBuf, slots: u64) {
    h.op(vec![
        (Access::Write, bc.region(slots * 32)),
        (Access::Read, src.region(slots * size(src.dtype))),
    ])
    .vec_brcb(
        dt(src.dtype),
        VecOperand::new(bc.addr, 1, 8),
        src.addr,
        slots / 8,
    );
}

/// Spreads each row's block (from `bc`) along its run of `pitch` elements
/// in `dst`, for `rows` rows.
fn spread(h: &mut Vec<Item>, dst: VBuf, bc: VBuf, rows: u64, pitch: u64) {
    let s = size(dst.dtype);
    for row in 0..rows {
        vector::emit(
            h,
            pitch,
            &[
                Opnd::Run(dst.offset(row * pitch * s)),
                Opnd::Block(bc.offset(32 * row)),
            ],
            |b, v, rep, m| b.vec_copy(dt(dst.dtype), v[0], v[1], rep, m),
        );
    }
}

/// The scalar-operand form of instruction `j`: a full `add`, `mul` or
/// `x - v` one of whose operands is an elided expansion of a per-row value
/// `v` of the instruction's own float dtype: f32, or with `narrow` (chunked
/// rows, which convert `v` to f32 first) also f16 and bf16. Row by row, `v`
/// is loaded into a scalar register (`s.ld.ub` of its f32 bits, after the
/// vector pipe wrote them) and the op runs as `vec.adds`/`vec.muls`, a
/// cycle a repeat instead of two, without the expansion's blocks. The
/// vector unit takes the register's f32 value rounded to the op's dtype,
/// which is `v` itself. `x - v` adds `-v` (the sign bit flipped): the same
/// IEEE result. Returns the op, the index of the other operand and whether
/// `v` is negated.
pub(super) fn scalar_form(
    body: &[RowsInst],
    elided: &[bool],
    j: usize,
    narrow: bool,
) -> Option<(ScaOp, usize, bool)> {
    let inst = body.get(j)?;
    let RowsOp::Ew(EwOp::Binary(b)) = inst.op else {
        return None;
    };
    let float = match inst.dtype {
        DType::F32 => true,
        DType::F16 | DType::BF16 => narrow,
        DType::I32 | DType::I8 | DType::Bool => false,
    };
    let per_row = |a: &EwArg| match *a {
        EwArg::Inst(k) => {
            elided.get(k).copied().unwrap_or(false)
                && body[k].op == RowsOp::Expand
                && body[k].dtype == inst.dtype
        }
        EwArg::Input(_) => false,
    };
    let [x, y] = inst.args.as_slice() else {
        return None;
    };
    if inst.width != Width::Full || !float || per_row(x) == per_row(y) {
        return None;
    }
    let at = if per_row(x) { 0 } else { 1 };
    let other = 1 - at;
    match b {
        BinaryOp::Add => Some((ScaOp::Adds, other, false)),
        BinaryOp::Mul => Some((ScaOp::Muls, other, false)),
        BinaryOp::Sub if at == 1 => Some((ScaOp::Adds, other, true)),
        BinaryOp::Sub | BinaryOp::Div | BinaryOp::Maximum | BinaryOp::Minimum | BinaryOp::Pow => {
            None
        }
    }
}

/// Whether every reader of elided expansion `k` takes the scalar-operand
/// form (`narrow` as for [`scalar_form`]), so that its blocks are never
/// read.
fn scalar_only(body: &[RowsInst], elided: &[bool], k: usize, narrow: bool) -> bool {
    body.iter().enumerate().all(|(j, i)| {
        !i.args.contains(&EwArg::Inst(k)) || scalar_form(body, elided, j, narrow).is_some()
    })
}

/// Loads the f32 at `bits` (written by the vector pipe) into `reg`, its
/// sign flipped when `negate`.
fn load_scalar(h: &mut Vec<Item>, reg: Reg, bits: VBuf, negate: bool) {
    h.op(vec![(Access::Read, bits.region(4))]).s_ld(
        ScalarSpace::Ub,
        MemTy::U32,
        reg,
        Address::from(bits.addr),
    );
    if negate {
        h.ins().s_alu(AluOp::Xor, reg, reg, 0x8000_0000u64);
    }
}

/// `dst = op(x, v)` row by row in the scalar-operand form: `vals` holds the
/// per-row values (f32), `reg` takes each in turn.
#[allow(clippy::too_many_arguments)]
fn scalar_rows(
    h: &mut Vec<Item>,
    (op, negate): (ScaOp, bool),
    reg: Reg,
    dst: VBuf,
    x: VBuf,
    x_repeated: bool,
    vals: VBuf,
    (rows, pitch): (u64, u64),
) {
    let s = size(dst.dtype);
    for row in 0..rows {
        load_scalar(h, reg, vals.offset(row * 4), negate);
        let xr = if x_repeated {
            x
        } else {
            x.offset(row * pitch * s)
        };
        Seq { items: h, n: pitch }.sca(op, dst.offset(row * pitch * s), xr, Scal::Reg(reg));
    }
}
