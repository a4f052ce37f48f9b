//! Matmul on the host: operands packed into zero-padded f32 (or i32)
//! matrices, then a blocked product whose register block is 4 rows × 8
//! columns (eight 4-lane accumulators), one multiply-add per lane and
//! operand pair (fused where the host has FMA).
//!
//! The loops, in a stage's range of row blocks: 16 row blocks (64 rows of
//! A, in L2) × 256 of K (`KC`) × every 8-column panel of B (256 × 8, in
//! L1) × each row block. Every element of the result sums its products in
//! the order of K, whatever the range, so threads do not change its bits.

use super::super::HostError;
use super::super::elem::{El, mem};
use super::super::schedule::{Access, GEMM_COLS, GEMM_ROWS, Gemm, Place, contiguous};
use super::Lower;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, InstBuilder, Type, Value as ClValue, types};
use tessera_ir::DType;

/// K per block.
const KC: i64 = 256;
/// Row blocks per block of A.
const MB: i64 = 16;

impl Lower<'_, '_, '_> {
    /// A pack stage: the padded matrix's element, or 0 outside the valid
    /// rows and columns.
    pub(super) fn pack(
        &mut self,
        src: &Access,
        dst: Place,
        valid: &[u64],
        padded: &[u64],
        int: bool,
        panels: bool,
    ) -> Result<(), HostError> {
        let r = padded.len();
        let batch_strides = contiguous(&padded[..r - 2]);
        let (k, n_pad) = (padded[r - 2] as i64, padded[r - 1] as i64);
        let (et, dtype) = if int {
            (types::I32, DType::I32)
        } else {
            (types::F32, DType::F32)
        };
        let out = Access {
            place: dst,
            dtype,
            strides: contiguous(padded),
            offset: 0,
        };
        self.stage_nest(padded, &mut |l, idx| {
            let fb = l.fb();
            let in_r =
                fb.ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, idx[r - 2], valid[r - 2] as i64);
            let in_c =
                fb.ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, idx[r - 1], valid[r - 1] as i64);
            let inside = fb.ins().band(in_r, in_c);
            let load = fb.create_block();
            let zero = fb.create_block();
            let join = fb.create_block();
            fb.append_block_param(join, et);
            fb.ins().brif(inside, load, &[], zero, &[]);
            fb.switch_to_block(zero);
            let z = if int {
                fb.ins().iconst(types::I32, 0)
            } else {
                fb.ins().f32const(0.0)
            };
            fb.ins().jump(join, &[z.into()]);
            fb.switch_to_block(load);
            let at = l.addr(src, idx);
            let x = match l.e.load(src.dtype, at) {
                El::F(x) | El::I(x) => x,
                El::B(_) => return Err(HostError::Unsupported("a matmul of bools".into())),
            };
            let fb = l.fb();
            fb.ins().jump(join, &[x.into()]);
            fb.switch_to_block(join);
            let v = fb.block_params(join)[0];
            let to = if panels {
                // ((batch · panels + j / 8) · k + l) · 8 + j % 8
                let fb = l.fb();
                let mut b = fb.ins().iconst(types::I64, 0);
                for (&i, &st) in idx.iter().zip(&batch_strides) {
                    let t = fb.ins().imul_imm_s(i, st);
                    b = fb.ins().iadd(b, t);
                }
                let per = n_pad / GEMM_COLS as i64;
                let b = fb.ins().imul_imm_s(b, per);
                let jp = fb.ins().ushr_imm_u(idx[r - 1], 3);
                let jl = fb.ins().band_imm_u(idx[r - 1], 7);
                let p = fb.ins().iadd(b, jp);
                let p = fb.ins().imul_imm_s(p, k);
                let p = fb.ins().iadd(p, idx[r - 2]);
                let p = fb.ins().imul_imm_s(p, GEMM_COLS as i64);
                let p = fb.ins().iadd(p, jl);
                let p = fb.ins().imul_imm_s(p, 4);
                let base = l.base(dst);
                l.fb().ins().iadd(base, p)
            } else {
                l.addr(&out, idx)
            };
            let v = if int { El::I(v) } else { El::F(v) };
            l.e.store(dtype, v, to);
            Ok(())
        })
    }

    /// A GEMM stage over its range of row blocks.
    pub(super) fn gemm(&mut self, g: &Gemm) -> Result<(), HostError> {
        let (lo, hi) = (self.frame.lo, self.frame.hi);
        let out = self.access(self.k.params.len() + g.node)?;
        let et = if g.int { types::I32 } else { types::F32 };
        self.loop_step(lo, hi, MB, &mut |l, r0| {
            let fb = l.fb();
            let r1 = fb.ins().iadd_imm_s(r0, MB);
            let r1 = fb.ins().smin(r1, hi);
            let zero = fb.ins().iconst(types::I64, 0);
            let kk = fb.ins().iconst(types::I64, g.k as i64);
            l.loop_step(zero, kk, KC, &mut |l, k0| {
                let fb = l.fb();
                let k1 = fb.ins().iadd_imm_s(k0, KC);
                let k1 = fb.ins().smin(k1, kk);
                let zero = fb.ins().iconst(types::I64, 0);
                let panels = fb.ins().iconst(types::I64, (g.n_pad / GEMM_COLS) as i64);
                l.loop_step(zero, panels, 1, &mut |l, jb| {
                    l.loop_step(r0, r1, 1, &mut |l, rb| l.micro(g, rb, jb, k0, k1))
                })
            })?;
            // These rows are complete: into the result, in its dtype.
            l.loop_step(r0, r1, 1, &mut |l, rb| {
                let (b, i0) = l.row_block(g, rb);
                for rr in 0..GEMM_ROWS as i64 {
                    let fb = l.fb();
                    let i = fb.ins().iadd_imm_s(i0, rr);
                    let real = fb.ins().icmp_imm_s(IntCC::SignedLessThan, i, g.m as i64);
                    let row = fb.create_block();
                    let next = fb.create_block();
                    fb.ins().brif(real, row, &[], next, &[]);
                    fb.switch_to_block(row);
                    let bm = fb.ins().imul_imm_s(b, g.m as i64);
                    let bi = fb.ins().iadd(bm, i);
                    let zero = fb.ins().iconst(types::I64, 0);
                    let n = fb.ins().iconst(types::I64, g.n as i64);
                    l.loop_step(zero, n, 1, &mut |l, j| {
                        let fb = l.fb();
                        // C[b, i, j] and out[b, i, j].
                        let bp = fb.ins().imul_imm_s(b, g.m_pad as i64);
                        let ci = fb.ins().iadd(bp, i);
                        let ci = fb.ins().imul_imm_s(ci, g.n_pad as i64);
                        let ci = fb.ins().iadd(ci, j);
                        let ci = fb.ins().imul_imm_s(ci, 4);
                        let cb = l.base(g.c);
                        let fb = l.fb();
                        let at = fb.ins().iadd(cb, ci);
                        let c = fb.ins().load(et, mem(), at, 0);
                        let oi = fb.ins().imul_imm_s(bi, g.n as i64);
                        let oi = fb.ins().iadd(oi, j);
                        let oi = fb.ins().imul_imm_s(oi, out.dtype.size_bytes() as i64);
                        let ob = l.base(out.place);
                        let to = l.fb().ins().iadd(ob, oi);
                        let v = if g.int {
                            El::I(c)
                        } else {
                            El::F(l.e.round(out.dtype, c))
                        };
                        l.e.store(out.dtype, v, to);
                        Ok(())
                    })?;
                    let fb = l.fb();
                    fb.ins().jump(next, &[]);
                    fb.switch_to_block(next);
                }
                Ok(())
            })
        })
    }

    /// Row block `rb`'s batch index and first row.
    fn row_block(&mut self, g: &Gemm, rb: ClValue) -> (ClValue, ClValue) {
        let per = (g.m_pad / GEMM_ROWS) as i64;
        let fb = self.fb();
        let b = fb.ins().sdiv_imm_s(rb, per);
        let r = fb.ins().srem_imm_s(rb, per);
        let i0 = fb.ins().imul_imm_s(r, GEMM_ROWS as i64);
        (b, i0)
    }

    /// One register block: `C[rows, panel] (+)= A[rows, k0..k1] · B[k0..k1,
    /// panel]`, starting from zero at `k0 = 0`.
    fn micro(
        &mut self,
        g: &Gemm,
        rb: ClValue,
        jb: ClValue,
        k0: ClValue,
        k1: ClValue,
    ) -> Result<(), HostError> {
        let (b, i0) = self.row_block(g, rb);
        let (abase, bbase, cbase) = (self.base(g.a), self.base(g.b), self.base(g.c));
        let fma = self.frame.fma;
        let (et, vt): (Type, Type) = if g.int {
            (types::I32, types::I32X4)
        } else {
            (types::F32, types::F32X4)
        };
        let (k, n_pad, m_pad) = (g.k as i64, g.n_pad as i64, g.m_pad as i64);
        let fb = self.fb();
        // Byte addresses of the block's first elements.
        let row0 = fb.ins().imul_imm_s(b, m_pad);
        let row0 = fb.ins().iadd(row0, i0);
        let a_off = fb.ins().imul_imm_s(row0, k * 4);
        let a_row = fb.ins().iadd(abase, a_off);
        let col0 = fb.ins().imul_imm_s(jb, GEMM_COLS as i64);
        // B's panel jb of batch b: [k, 8] contiguous.
        let bp = fb.ins().imul_imm_s(b, n_pad / GEMM_COLS as i64);
        let bp = fb.ins().iadd(bp, jb);
        let b_off = fb.ins().imul_imm_s(bp, k * GEMM_COLS as i64 * 4);
        let b_col = fb.ins().iadd(bbase, b_off);
        let c_off = fb.ins().imul_imm_s(row0, n_pad);
        let c_off = fb.ins().iadd(c_off, col0);
        let c_off = fb.ins().imul_imm_s(c_off, 4);
        let c_at = fb.ins().iadd(cbase, c_off);
        let slots: Vec<i32> = (0..GEMM_ROWS as i32)
            .flat_map(|r| [r * n_pad as i32 * 4, r * n_pad as i32 * 4 + 16])
            .collect();
        // The accumulators: zero for the first block of K, else C.
        let first = fb.create_block();
        let later = fb.create_block();
        let head = fb.create_block();
        let body = fb.create_block();
        let exit = fb.create_block();
        fb.append_block_param(head, types::I64);
        for _ in &slots {
            fb.append_block_param(head, vt);
        }
        let is_first = fb.ins().icmp_imm_s(IntCC::Equal, k0, 0);
        fb.ins().brif(is_first, first, &[], later, &[]);
        fb.switch_to_block(first);
        let z = if g.int {
            let z = fb.ins().iconst(types::I32, 0);
            fb.ins().splat(vt, z)
        } else {
            let z = fb.ins().f32const(0.0);
            fb.ins().splat(vt, z)
        };
        let mut args: Vec<BlockArg> = vec![k0.into()];
        args.extend(slots.iter().map(|_| BlockArg::from(z)));
        fb.ins().jump(head, &args);
        fb.switch_to_block(later);
        let mut args: Vec<BlockArg> = vec![k0.into()];
        for &off in &slots {
            args.push(fb.ins().load(vt, mem(), c_at, off).into());
        }
        fb.ins().jump(head, &args);
        // One step of K: the accumulators after A[rows, l] · B[l, panel].
        let step = |fb: &mut cranelift_frontend::FunctionBuilder<'_>,
                    l: ClValue,
                    acc: &[ClValue]|
         -> Vec<ClValue> {
            let boff = fb.ins().imul_imm_s(l, GEMM_COLS as i64 * 4);
            let brow = fb.ins().iadd(b_col, boff);
            let b0 = fb.ins().load(vt, mem(), brow, 0);
            let b1 = fb.ins().load(vt, mem(), brow, 16);
            let aoff = fb.ins().imul_imm_s(l, 4);
            let acol = fb.ins().iadd(a_row, aoff);
            let mut next = Vec::with_capacity(acc.len());
            for r in 0..GEMM_ROWS as usize {
                let a = fb.ins().load(et, mem(), acol, (r as i64 * k * 4) as i32);
                let av = fb.ins().splat(vt, a);
                for (v, bv) in [b0, b1].into_iter().enumerate() {
                    let s = acc[2 * r + v];
                    next.push(if g.int {
                        let p = fb.ins().imul(av, bv);
                        fb.ins().iadd(s, p)
                    } else if fma {
                        fb.ins().fma(av, bv, s)
                    } else {
                        let p = fb.ins().fmul(av, bv);
                        fb.ins().fadd(s, p)
                    });
                }
            }
            next
        };
        let args = |l: ClValue, acc: &[ClValue]| -> Vec<BlockArg> {
            std::iter::once(l)
                .chain(acc.iter().copied())
                .map(BlockArg::from)
                .collect()
        };
        // Two steps of K a turn (half the loop's moves of the accumulators),
        // then the odd last one.
        let head1 = fb.create_block();
        let body1 = fb.create_block();
        fb.append_block_param(head1, types::I64);
        for _ in &slots {
            fb.append_block_param(head1, vt);
            fb.append_block_param(exit, vt);
        }
        fb.switch_to_block(head);
        let params = fb.block_params(head).to_vec();
        let (l, acc) = (params[0], &params[1..]);
        let l2 = fb.ins().iadd_imm_s(l, 2);
        let two = fb.ins().icmp(IntCC::SignedLessThanOrEqual, l2, k1);
        fb.ins().brif(two, body, &[], head1, &args(l, acc));
        fb.switch_to_block(body);
        let once = step(fb, l, acc);
        let l1 = fb.ins().iadd_imm_s(l, 1);
        let twice = step(fb, l1, &once);
        fb.ins().jump(head, &args(l2, &twice));
        fb.switch_to_block(head1);
        let params = fb.block_params(head1).to_vec();
        let (l, acc) = (params[0], &params[1..]);
        let more = fb.ins().icmp(IntCC::SignedLessThan, l, k1);
        fb.ins().brif(more, body1, &[], exit, &args(l, acc)[1..]);
        fb.switch_to_block(body1);
        let once = step(fb, l, acc);
        let l1 = fb.ins().iadd_imm_s(l, 1);
        fb.ins().jump(head1, &args(l1, &once));
        fb.switch_to_block(exit);
        let acc = fb.block_params(exit).to_vec();
        for (&off, &a) in slots.iter().zip(&acc) {
            fb.ins().store(mem(), a, c_at, off);
        }
        Ok(())
    }
}
