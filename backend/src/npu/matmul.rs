//! The matmul stage: `out = epilogue(a @ b)` with numpy batch broadcasting.
//!
//! **Cube path** (`Unit::Cube`). The output is cut into `base_m × base_n`
//! tiles (one L0C accumulator each), handed out round-robin to the cube
//! cores over all batches. Per tile, K is streamed in L1 stages of `l1_k`
//! (A and B tiles moved GM → L1 by `mte2.nd2nz`, which zero-pads tails to
//! fractals), two stages per loop iteration on two L1 copies (ping-pong; the
//! second stage is guarded so a tail may skip it). Each stage is consumed in
//! `base_k` steps: MTE1 loads into L0A/L0B (two copies each, alternating
//! step by step; steps past the K tail are guarded) and one `cube.mmad`
//! accumulating into L0C. Layouts (docs/assembly.md):
//! - A row-major: L1 holds A (NZ, `base_m` rows) → `mte1.load.l0a`;
//!   A transposed (memory holds Aᵀ): L1 holds Aᵀ (NZ, `l1_k` rows) →
//!   `mte1.load.l0a.t`;
//! - B row-major: L1 holds B (NZ, `l1_k` rows) → `mte1.load.l0b.t`;
//!   B transposed: L1 holds Bᵀ (NZ, `base_n` rows) → `mte1.load.l0b`.
//!
//! The epilogue applies relu and the output cast on the way out of L0C:
//! FixPipe straight to GM on split machines; on coupled ones the vector
//! pipe's L0C → UB move in `epi_cols`-wide chunks (two UB copies) and MTE3
//! to GM. Every count that depends on a tail (`m`, `n`, `k` of a step,
//! fractal counts) is a runtime register, so any shape works.
//!
//! **Vector path** (`Unit::Vector`, for dtypes the cube lacks). Output tiles
//! of `rows × cols` accumulate in f32 (i32 for i8) in UB: for each `k` of a
//! chunk, every row's `a[i, k]` is read by the scalar unit and multiplies row
//! `k` of B (`vec.muls`) into a product tile, which one `vec.add` then adds
//! to the accumulator. bf16/i8 B chunks are widened first; a transposed B is
//! gathered into row-major order through an index table built once.
//!
//! Synchronisation is derived by `sync.rs` from the accesses.

use super::prog::{Access, Item, Labels, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use super::{Ctx, slot};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{Geometry, Tail, nz_rows, vec_pitch};
use tessera_ir::plan::{
    CubeSchedule, LocalBuf, MatMul, MatMulSchedule, MemSpace, Source, VecMatB, VecMatSchedule, View,
};
use tessera_sim::Organisation;

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// Generates a matmul stage.
pub fn generate(ctx: &mut Ctx<'_>, mm: &MatMul) -> Result<Vec<Item>, String> {
    match &mm.schedule {
        MatMulSchedule::Cube(t) => cube(ctx, mm, t),
        MatMulSchedule::Vector(t) => vector_path(ctx, mm, t),
    }
}

/// A buffer copy as a region.
fn region(l: &LocalBuf, copy: u32) -> (Region, u64) {
    let start = l.copy(copy);
    let space = match l.space {
        MemSpace::L1 => Space::L1,
        MemSpace::L0a => Space::L0a,
        MemSpace::L0b => Space::L0b,
        MemSpace::L0c => Space::L0c,
        MemSpace::Ub => Space::Ub,
    };
    (
        Region {
            space,
            start,
            end: start + l.bytes,
            slot: slot(l, copy),
        },
        start,
    )
}

fn op(text: String, pipe: Pipe, accesses: Vec<(Access, Region)>) -> Item {
    Item::Op(MicroOp {
        text,
        pipe,
        accesses,
    })
}

fn sc(items: &mut Vec<Item>, s: String) {
    items.push(Item::Scalar(s));
}

/// Loads the GM address of a view's element 0 into a fresh register.
fn base(ctx: &mut Ctx<'_>, items: &mut Vec<Item>, v: &View) -> Result<String, String> {
    if let Source::Constant(_) = v.source {
        return Err("internal: a matmul operand is a constant".into());
    }
    let r = ctx.gm_base(items, v)?;
    let off = v.offset * size(v.dtype);
    if off != 0 {
        sc(items, format!("s.add {r}, {r}, {off}"));
    }
    Ok(r)
}

/// Registers every tile needs: its coordinates and GM addresses.
struct TileRegs {
    /// Rows of this tile.
    mcur: String,
    /// Columns of this tile.
    ncur: String,
    /// GM address of A's tile at K offset 0.
    ga: String,
    /// GM address of B's tile at K offset 0.
    gb: String,
    /// GM address of the output tile.
    gc: String,
}

/// Scalar code: `dst = min(total - start, tile)`.
fn remaining(items: &mut Vec<Item>, dst: &str, total: u64, start: &str, tile: u64) {
    sc(items, format!("s.li {dst}, {total}"));
    sc(items, format!("s.sub {dst}, {dst}, {start}"));
    sc(items, format!("s.min {dst}, {dst}, {tile}"));
}

fn log2(x: u64) -> u32 {
    x.trailing_zeros()
}

/// Per-tile setup shared by both paths: batch digits and the GM addresses
/// of the tile's A rows, B columns and output, plus its extents.
#[allow(clippy::too_many_arguments)]
fn tile_setup(
    g: &Geometry,
    (tile_m, tile_n): (u64, u64),
    t: &str,
    bases: [&str; 3],
    r: &TileRegs,
    tmp: [&str; 3],
    digits: &[String],
    tail: Option<(&Tail, &mut Labels)>,
    items: &mut Vec<Item>,
) {
    let (s, so) = (size(g.dtype), size(g.out));
    let tm = g.m.div_ceil(tile_m);
    let tn = g.n.div_ceil(tile_n);
    let per_batch = tm * tn;
    let [o, m0, n0] = tmp;
    let mut whole = Vec::new();
    sc(&mut whole, format!("s.div {o}, {t}, {per_batch}"));
    sc(&mut whole, format!("s.rem {n0}, {t}, {per_batch}"));
    sc(&mut whole, format!("s.div {m0}, {n0}, {tn}"));
    sc(&mut whole, format!("s.rem {n0}, {n0}, {tn}"));
    sc(&mut whole, format!("s.mul {m0}, {m0}, {tile_m}"));
    sc(&mut whole, format!("s.mul {n0}, {n0}, {tile_n}"));
    remaining(&mut whole, &r.mcur, g.m, m0, tile_m);
    remaining(&mut whole, &r.ncur, g.n, n0, tile_n);
    match tail {
        None => items.extend(whole),
        Some((tl, labels)) => {
            // Index `t >= first` is strip `p` of tile `first + q`
            // (`t - first = q·parts + p`); a single batch, so `o` is free.
            let label = labels.fresh("whole");
            items.push(Item::Guard {
                skip_if: format!("s.br.ge {t}, {}, {label}_skip", tl.first),
                label,
                body: whole,
            });
            let mut strip = Vec::new();
            sc(&mut strip, format!("s.sub {o}, {t}, {}", tl.first));
            sc(&mut strip, format!("s.div {n0}, {o}, {}", tl.parts));
            sc(&mut strip, format!("s.add {n0}, {n0}, {}", tl.first));
            sc(&mut strip, format!("s.div {m0}, {n0}, {tn}"));
            sc(&mut strip, format!("s.rem {n0}, {n0}, {tn}"));
            sc(&mut strip, format!("s.mul {m0}, {m0}, {tile_m}"));
            sc(&mut strip, format!("s.mul {n0}, {n0}, {tile_n}"));
            remaining(&mut strip, &r.mcur, g.m, m0, tile_m);
            // ncur = min(tile end, n) - strip start, at most the width.
            sc(&mut strip, format!("s.add {}, {n0}, {tile_n}", r.ncur));
            sc(&mut strip, format!("s.min {}, {}, {}", r.ncur, r.ncur, g.n));
            sc(&mut strip, format!("s.rem {o}, {o}, {}", tl.parts));
            sc(&mut strip, format!("s.mul {o}, {o}, {}", tl.width));
            sc(&mut strip, format!("s.add {n0}, {n0}, {o}"));
            sc(&mut strip, format!("s.sub {}, {}, {n0}", r.ncur, r.ncur));
            sc(
                &mut strip,
                format!("s.min {}, {}, {}", r.ncur, r.ncur, tl.width),
            );
            let label = labels.fresh("strip");
            items.push(Item::Guard {
                skip_if: format!("s.br.lt {t}, {}, {label}_skip", tl.first),
                label,
                body: strip,
            });
        }
    }
    // A: rows m0.. (row-major: m strided by a_row; transposed: m contiguous).
    let a_m = if g.a_t { 1 } else { g.a_row };
    sc(items, format!("s.mul {}, {m0}, {}", r.ga, a_m * s));
    sc(items, format!("s.add {}, {}, {}", r.ga, r.ga, bases[0]));
    // B: columns n0.. (row-major: contiguous; transposed: strided by b_row).
    let b_n = if g.b_t { g.b_row } else { 1 };
    sc(items, format!("s.mul {}, {n0}, {}", r.gb, b_n * s));
    sc(items, format!("s.add {}, {}, {}", r.gb, r.gb, bases[1]));
    // Output.
    sc(items, format!("s.mul {}, {m0}, {}", r.gc, g.c_row * so));
    sc(items, format!("s.add {}, {}, {}", r.gc, r.gc, bases[2]));
    sc(items, format!("s.mul {n0}, {n0}, {so}"));
    sc(items, format!("s.add {}, {}, {n0}", r.gc, r.gc));
    // Batch digits.
    if g.batches() > 1 {
        for (d, &ext) in g.batch.iter().enumerate().rev() {
            sc(items, format!("s.rem {}, {o}, {ext}", digits[d]));
            sc(items, format!("s.div {o}, {o}, {ext}"));
        }
        for (d, dg) in digits.iter().enumerate() {
            for (reg, st, e) in [
                (&r.ga, g.a_bs[d], s),
                (&r.gb, g.b_bs[d], s),
                (&r.gc, g.c_bs[d], so),
            ] {
                if st != 0 {
                    sc(items, format!("s.mul {o}, {dg}, {}", st * e));
                    sc(items, format!("s.add {reg}, {reg}, {o}"));
                }
            }
        }
    }
}

fn cube(ctx: &mut Ctx<'_>, mm: &MatMul, t: &CubeSchedule) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    let (a, b, out) = (&mm.a, &mm.b, &mm.out);
    let layout = &t.layout;
    let coupled = ctx.machine.organisation == Organisation::Coupled;
    let (s, so, c0) = (size(g.dtype), size(g.out), g.c0());
    let dt = vector::dt(g.dtype);
    let odt = vector::dt(g.out);
    let tm = g.m.div_ceil(t.base_m);
    let tn = g.n.div_ceil(t.base_n);
    let tail = Tail::of(&g, t, u64::from(ctx.stage.block_dim));
    if t.tail_parts > 1 && tail.is_none() {
        return Err(format!(
            "internal: tail_parts={} does not fit this stage's last round",
            t.tail_parts
        ));
    }
    t.check_depths(g.k).map_err(|e| format!("internal: {e}"))?;
    let total = tail.map_or(g.batches() * tm * tn, |tl| tl.indices());
    let steps = t.l1_k / t.base_k;

    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    sc(&mut items, format!("s.sys {bi}, block_idx"));
    sc(&mut items, format!("s.sys {bd}, block_dim"));
    let ra = base(ctx, &mut items, &a.view)?;
    let rb = base(ctx, &mut items, &b.view)?;
    let rc = base(ctx, &mut items, out)?;
    let tr = ctx.regs.get()?;
    sc(&mut items, format!("s.mov {tr}, {bi}"));
    let regs = TileRegs {
        mcur: ctx.regs.get()?,
        ncur: ctx.regs.get()?,
        ga: ctx.regs.get()?,
        gb: ctx.regs.get()?,
        gc: ctx.regs.get()?,
    };
    let tmp = [ctx.regs.get()?, ctx.regs.get()?, ctx.regs.get()?];
    let digits: Vec<String> = if g.batches() > 1 {
        (0..g.batch.len())
            .map(|_| ctx.regs.get())
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let (m16, m1, n1, init, ks, kc, kk, k1) = (
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    );

    let mut tile = Vec::new();
    tile_setup(
        &g,
        (t.base_m, t.base_n),
        &tr,
        [&ra, &rb, &rc],
        &regs,
        [&tmp[0], &tmp[1], &tmp[2]],
        &digits,
        tail.as_ref().map(|tl| (tl, &mut ctx.labels)),
        &mut tile,
    );
    let TileRegs {
        mcur,
        ncur,
        ga,
        gb,
        gc,
    } = &regs;
    sc(&mut tile, format!("s.add {m1}, {mcur}, 15"));
    sc(&mut tile, format!("s.shr {m1}, {m1}, 4"));
    sc(&mut tile, format!("s.shl {m16}, {m1}, 4"));
    sc(&mut tile, format!("s.add {n1}, {ncur}, 15"));
    sc(&mut tile, format!("s.shr {n1}, {n1}, 4"));
    sc(&mut tile, format!("s.li {init}, 1"));
    sc(&mut tile, format!("s.li {ks}, 0"));

    let (acc, acc_addr) = region(&layout.acc, 0);
    // One L1 stage `h` of an iteration, as pieces: the loads, each L0 step
    // (with the K offset it skips at), the advance. An iteration runs
    // `2 · max(a_stages, b_stages)` stages so every buffer copy sits at a
    // fixed place: A's load `h / a_stages` goes to copy `(h / a_stages) % 2`
    // and stage `h` reads its part `h % a_stages` (likewise B). Later stages
    // of an iteration guard every piece on its own (rather than the whole
    // stage at once), so the events into its steps wait for the matching
    // step of the first stage only.
    let (ka, kb) = (t.l1_k * t.a_stages, t.l1_k * t.b_stages);
    let (ka_rows, kb_rows) = (nz_rows(ka, c0), nz_rows(kb, c0));
    // GM → L1 loads of A and B: `ke` K from GM address `src`.
    let a_load = |(a1, a1_addr): (Region, u64), src: &str, ke: &str| {
        let text = if g.a_t {
            format!(
                "mte2.nd2nz.gm.l1.{dt} [{a1_addr}], [{src}], {ke}, {mcur}, {}, {ka_rows}",
                g.a_row * s
            )
        } else {
            format!(
                "mte2.nd2nz.gm.l1.{dt} [{a1_addr}], [{src}], {mcur}, {ke}, {}, {}",
                g.a_row * s,
                nz_rows(t.base_m, 16)
            )
        };
        op(text, Pipe::Mte2, vec![(Access::Write, a1)])
    };
    let b_load = |(b1, b1_addr): (Region, u64), src: &str, ke: &str| {
        let text = if g.b_t {
            format!(
                "mte2.nd2nz.gm.l1.{dt} [{b1_addr}], [{src}], {ncur}, {ke}, {}, {}",
                g.b_row * s,
                nz_rows(t.base_n, 16)
            )
        } else {
            format!(
                "mte2.nd2nz.gm.l1.{dt} [{b1_addr}], [{src}], {ke}, {ncur}, {}, {kb_rows}",
                g.b_row * s
            )
        };
        op(text, Pipe::Mte2, vec![(Access::Write, b1)])
    };
    // GM bytes per K of each operand's rows / columns.
    let a_k = if g.a_t { g.a_row } else { 1 } * s;
    let b_k = if g.b_t { 1 } else { g.b_row } * s;
    // An operand loaded `stages > 1` deep is prefetched one L1 stage early:
    // the last stage of each of its chunks (after its own loads) loads the
    // next chunk, from the next stage's K on, into the other copy. Issued
    // later, the large load would sit in MTE2's queue behind the wait for
    // the other operand's buffer and starve the cube.
    // K from which no stage follows (no next chunk to prefetch).
    let (last_k, prefetch_reg) = (g.k.saturating_sub(t.l1_k), &tmp[0]);
    let prefetch = |ctx: &mut Ctx<'_>,
                    st: &mut Vec<Item>,
                    ld: Item,
                    step_bytes: u64,
                    gsrc: &str,
                    depth: u64| {
        let mut body = Vec::new();
        remaining(&mut body, &kk, last_k, &ks, depth);
        sc(
            &mut body,
            format!("s.add {prefetch_reg}, {gsrc}, {}", t.l1_k * step_bytes),
        );
        body.push(ld);
        let label = ctx.labels.fresh("prefetch");
        st.push(Item::Guard {
            skip_if: format!("s.br.ge {ks}, {last_k}, {label}_skip"),
            label,
            body,
        });
    };
    // The tile's first chunk of a deep operand: in the first stage, so its
    // buffer's release is the previous tile's last reader of it, not the
    // end of the previous tile's K loop.
    let first_chunk = |ctx: &mut Ctx<'_>, st: &mut Vec<Item>, ld: Item, depth: u64| {
        let mut body = Vec::new();
        sc(&mut body, format!("s.li {kk}, {}", depth.min(g.k)));
        body.push(ld);
        let label = ctx.labels.fresh("first");
        st.push(Item::Guard {
            skip_if: format!("s.br.ge {ks}, {}, {label}_skip", t.l1_k),
            label,
            body,
        });
    };
    let stage = |ctx: &mut Ctx<'_>, h: u64| -> Result<Vec<(Vec<Item>, u64)>, String> {
        let mut pieces = Vec::new();
        let mut st = Vec::new();
        let (a_part, b_part) = (h % t.a_stages, h % t.b_stages);
        remaining(&mut st, &kc, g.k, &ks, t.l1_k);
        let a1 = region(&layout.a_l1, ((h / t.a_stages) % 2) as u32);
        let b1 = region(&layout.b_l1, ((h / t.b_stages) % 2) as u32);
        let (a1_addr, b1_addr) = (a1.1, b1.1);
        if t.a_stages == 1 {
            st.push(a_load(a1, ga, &kc));
        } else if h == 0 {
            first_chunk(ctx, &mut st, a_load(a1, ga, &kk), ka);
        }
        if t.b_stages == 1 {
            st.push(b_load(b1, gb, &kc));
        } else if h == 0 {
            first_chunk(ctx, &mut st, b_load(b1, gb, &kk), kb);
        }
        pieces.push((std::mem::take(&mut st), 0));
        // Its own piece, so the events of this stage's loads are set
        // before it.
        if t.a_stages > 1 && a_part == t.a_stages - 1 {
            let to = region(&layout.a_l1, ((h / t.a_stages + 1) % 2) as u32);
            prefetch(ctx, &mut st, a_load(to, prefetch_reg, &kk), a_k, ga, ka);
        }
        if t.b_stages > 1 && b_part == t.b_stages - 1 {
            let to = region(&layout.b_l1, ((h / t.b_stages + 1) % 2) as u32);
            prefetch(ctx, &mut st, b_load(to, prefetch_reg, &kk), b_k, gb, kb);
        }
        if !st.is_empty() {
            pieces.push((std::mem::take(&mut st), 0));
        }
        let (a1, b1) = (a1.0, b1.0);
        for step in 0..steps {
            let c = ((h * steps + step) % 2) as u32;
            let (a0, a0_addr) = region(&layout.a_l0, c);
            let (b0, b0_addr) = region(&layout.b_l0, c);
            let koff = step * t.base_k;
            let (ak, bk) = (a_part * t.l1_k + koff, b_part * t.l1_k + koff);
            let mut body = Vec::new();
            sc(&mut body, format!("s.sub {kk}, {kc}, {koff}"));
            sc(&mut body, format!("s.min {kk}, {kk}, {}", t.base_k));
            sc(&mut body, format!("s.add {k1}, {kk}, {}", c0 - 1));
            sc(&mut body, format!("s.shr {k1}, {k1}, {}", log2(c0)));
            // L1 → L0A.
            let (a_text, a_src, a_stride) = if g.a_t {
                ("mte1.load.l0a.t", a1_addr + ak * 32, ka_rows * 32)
            } else {
                (
                    "mte1.load.l0a",
                    a1_addr + ak / c0 * nz_rows(t.base_m, 16) * 32,
                    nz_rows(t.base_m, 16) * 32,
                )
            };
            body.push(op(
                format!("{a_text}.{dt} [{a0_addr}], [{a_src}], {m1}, {k1}, {a_stride}"),
                Pipe::Mte1,
                vec![(Access::Write, a0), (Access::Read, a1)],
            ));
            let (b_text, b_src, b_stride) = if g.b_t {
                (
                    "mte1.load.l0b",
                    b1_addr + bk / c0 * nz_rows(t.base_n, 16) * 32,
                    nz_rows(t.base_n, 16) * 32,
                )
            } else {
                ("mte1.load.l0b.t", b1_addr + bk * 32, kb_rows * 32)
            };
            body.push(op(
                format!("{b_text}.{dt} [{b0_addr}], [{b_src}], {k1}, {n1}, {b_stride}"),
                Pipe::Mte1,
                vec![(Access::Write, b0), (Access::Read, b1)],
            ));
            body.push(op(
                format!(
                    "cube.mmad.{dt} [{acc_addr}], [{a0_addr}], [{b0_addr}], {mcur}, {kk}, {ncur}, {init}"
                ),
                Pipe::M,
                vec![
                    (Access::Accumulate, acc),
                    (Access::Read, a0),
                    (Access::Read, b0),
                ],
            ));
            sc(&mut body, format!("s.li {init}, 0"));
            pieces.push((body, koff));
        }
        // Advance to the next stage.
        sc(&mut st, format!("s.add {ks}, {ks}, {}", t.l1_k));
        sc(&mut st, format!("s.add {ga}, {ga}, {}", t.l1_k * a_k));
        sc(&mut st, format!("s.add {gb}, {gb}, {}", t.l1_k * b_k));
        pieces.push((st, 0));
        Ok(pieces)
    };
    let mut kbody = Vec::new();
    for h in 0..2 * t.a_stages.max(t.b_stages) {
        for (body, koff) in stage(ctx, h)? {
            let label = ctx.labels.fresh("kstep");
            let mut skip = Vec::new();
            if h > 0 {
                skip.push(format!("s.br.ge {ks}, {}, {label}_skip", g.k));
            }
            if koff > 0 {
                skip.push(format!("s.br.le {kc}, {koff}, {label}_skip"));
            }
            if skip.is_empty() {
                kbody.extend(body);
            } else {
                kbody.push(Item::Guard {
                    skip_if: skip.join("\n    "),
                    label,
                    body,
                });
            }
        }
    }
    let klabel = ctx.labels.fresh("kloop");
    tile.push(Item::Loop {
        header: vec![format!("s.br.ge {ks}, {}, {klabel}_end", g.k)],
        label: klabel,
        body: kbody,
        latch: Vec::new(),
    });

    // Epilogue.
    let relu = u8::from(g.relu);
    if coupled {
        let chunks = t.base_n.div_ceil(t.epi_cols);
        let (ecur, la, gaddr) = (&tmp[0], &tmp[1], &tmp[2]);
        for ch in 0..chunks {
            let out_buf = layout
                .out
                .as_ref()
                .ok_or_else(|| "internal: a coupled cube epilogue without UB".to_string())?;
            let (ub, ub_addr) = region(out_buf, (ch % 2) as u32);
            let mut body = Vec::new();
            sc(
                &mut body,
                format!("s.sub {ecur}, {ncur}, {}", ch * t.epi_cols),
            );
            sc(&mut body, format!("s.min {ecur}, {ecur}, {}", t.epi_cols));
            sc(
                &mut body,
                format!("s.mul {la}, {m16}, {}", ch * (t.epi_cols / 16) * 64),
            );
            body.push(op(
                format!(
                    "vec.copy.l0c.ub.{odt} [{ub_addr}], [{la} + {acc_addr}], {mcur}, {ecur}, {m16}, {}, {relu}",
                    t.epi_cols * so
                ),
                Pipe::V,
                vec![(Access::Read, acc), (Access::Write, ub)],
            ));
            sc(
                &mut body,
                format!("s.add {gaddr}, {gc}, {}", ch * t.epi_cols * so),
            );
            sc(&mut body, format!("s.mul {ecur}, {ecur}, {so}"));
            body.push(op(
                format!(
                    "mte3.copy.ub.gm [{gaddr}], [{ub_addr}], {mcur}, {ecur}, {}, {}",
                    t.epi_cols * so,
                    g.c_row * so
                ),
                Pipe::Mte3,
                vec![(Access::Read, ub)],
            ));
            if ch == 0 {
                tile.extend(body);
            } else {
                let label = ctx.labels.fresh("epi");
                tile.push(Item::Guard {
                    skip_if: format!("s.br.le {ncur}, {}, {label}_skip", ch * t.epi_cols),
                    label,
                    body,
                });
            }
        }
    } else {
        tile.push(op(
            format!(
                "fix.copy.l0c.gm.{odt} [{gc}], [{acc_addr}], {mcur}, {ncur}, {m16}, {}, {relu}",
                g.c_row * so
            ),
            Pipe::Fix,
            vec![(Access::Read, acc)],
        ));
    }
    let label = ctx.labels.fresh("tiles");
    items.push(Item::Loop {
        header: vec![format!("s.br.ge {tr}, {total}, {label}_end")],
        label,
        body: tile,
        latch: vec![format!("s.add {tr}, {tr}, {bd}")],
    });
    Ok(items)
}

fn vector_path(ctx: &mut Ctx<'_>, mm: &MatMul, t: &VecMatSchedule) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    let (a, b, out) = (&mm.a, &mm.b, &mm.out);
    let layout = &t.layout;
    let p = vec_pitch(&g, t);
    let (s, so) = (size(g.dtype), size(g.out));
    let cd = g.acc();
    let cdt = vector::dt(cd);
    let (ld_ty, widen) = match g.dtype {
        DType::F32 => ("u32", false),
        DType::BF16 => ("u16", true),
        DType::I8 => ("i8", false),
        other => {
            return Err(format!(
                "internal: no vector matmul for {other} inputs (the cube handles them)"
            ));
        }
    };
    let tm = g.m.div_ceil(t.rows);
    let tn = g.n.div_ceil(t.cols);
    let total = g.batches() * tm * tn;
    let lanes = 64; // f32 / i32 lanes per repeat
    let row_reps = t.cols / lanes;
    let tile_elems = t.rows * t.cols;

    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    sc(&mut items, format!("s.sys {bi}, block_idx"));
    sc(&mut items, format!("s.sys {bd}, block_dim"));
    let ra = base(ctx, &mut items, &a.view)?;
    let rb = base(ctx, &mut items, &b.view)?;
    let rc = base(ctx, &mut items, out)?;
    let tr = ctx.regs.get()?;
    sc(&mut items, format!("s.mov {tr}, {bi}"));
    let regs = TileRegs {
        mcur: ctx.regs.get()?,
        ncur: ctx.regs.get()?,
        ga: ctx.regs.get()?,
        gb: ctx.regs.get()?,
        gc: ctx.regs.get()?,
    };
    let tmp = [ctx.regs.get()?, ctx.regs.get()?, ctx.regs.get()?];
    let digits: Vec<String> = if g.batches() > 1 {
        (0..g.batch.len())
            .map(|_| ctx.regs.get())
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let (ks, kc, kq, ii, sa, ta, bq, val) = (
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    );
    let vb = |l: &LocalBuf, copy: u32, dtype: DType| VBuf {
        addr: l.copy(copy),
        dtype,
        slot: slot(l, copy),
    };
    // B's buffers: (loaded chunk, widened chunk, gather offsets and
    // row-major chunk when B is transposed).
    type BBufs<'b> = (
        &'b LocalBuf,
        Option<&'b LocalBuf>,
        Option<(&'b LocalBuf, &'b LocalBuf)>,
    );
    let (b_load, b_wide, b_gather): BBufs<'_> = match (&layout.b, g.b_t) {
        (VecMatB::RowMajor { b, widened }, false) => (b, widened.as_ref(), None),
        (
            VecMatB::Transposed {
                bt,
                widened,
                idx,
                gathered,
            },
            true,
        ) => (bt, widened.as_ref(), Some((idx, gathered))),
        _ => return Err("internal: the layout of B does not match its storage".into()),
    };
    let widened = |cd: DType| {
        b_wide
            .map(|w| vb(w, 0, cd))
            .ok_or_else(|| "internal: a widening matmul without its wide buffer".to_string())
    };
    // The index table of the gather (transposed B): element (k, j) of the
    // row-major chunk is at byte (j · pitch + k) · 4 of the widened Bᵀ.
    if let Some((idx, _)) = b_gather {
        let idx = vb(idx, 0, DType::I32);
        let row0 = VBuf { ..idx };
        vector::emit(
            &mut items,
            "vec.iota.i32",
            t.cols,
            &[Opnd::Run(row0), Opnd::Lit("0".into())],
        );
        vector::emit(
            &mut items,
            "vec.muls.i32",
            t.cols,
            &[
                Opnd::Run(row0),
                Opnd::Run(row0),
                Opnd::Lit((p.bt * 4).to_string()),
            ],
        );
        for kq in 1..t.k_chunk {
            let row = VBuf {
                addr: idx.addr + kq * t.cols * 4,
                ..idx
            };
            vector::emit(
                &mut items,
                "vec.adds.i32",
                t.cols,
                &[
                    Opnd::Run(row),
                    Opnd::Run(row0),
                    Opnd::Lit((kq * 4).to_string()),
                ],
            );
        }
    }

    let mut tile = Vec::new();
    tile_setup(
        &g,
        (t.rows, t.cols),
        &tr,
        [&ra, &rb, &rc],
        &regs,
        [&tmp[0], &tmp[1], &tmp[2]],
        &digits,
        None,
        &mut tile,
    );
    let TileRegs {
        mcur,
        ncur,
        ga,
        gb,
        gc,
    } = &regs;
    let accb = vb(&layout.acc, 0, cd);
    let prod = vb(&layout.prod, 0, cd);
    vector::emit(
        &mut tile,
        &format!("vec.dup.{cdt}"),
        tile_elems,
        &[Opnd::Run(accb), Opnd::Lit("0".into())],
    );
    sc(&mut tile, format!("s.li {ks}, 0"));
    let whole = |b: VBuf, bytes: u64| Region {
        space: Space::Ub,
        start: b.addr,
        end: b.addr + bytes,
        slot: b.slot,
    };

    let chunk = |ctx: &mut Ctx<'_>, h: u32| -> Result<Vec<Item>, String> {
        let mut st = Vec::new();
        remaining(&mut st, &kc, g.k, &ks, t.k_chunk);
        // A chunk.
        let ab = vb(&layout.a, h, g.dtype);
        let a_bytes = layout.a.bytes;
        let (a_n, a_len) = if g.a_t { (&kc, mcur) } else { (mcur, &kc) };
        sc(&mut st, format!("s.mul {val}, {a_len}, {s}"));
        st.push(op(
            format!(
                "mte2.copy.gm.ub [{}], [{ga}], {a_n}, {val}, {}, {}",
                ab.addr,
                g.a_row * s,
                p.a * s
            ),
            Pipe::Mte2,
            vec![(Access::Write, whole(ab, a_bytes))],
        ));
        // B chunk, widened (and gathered) into `b32` unless usable as is.
        let b32_bytes = t.k_chunk * t.cols * 4;
        let brow: VBuf = if let Some((idx, gathered)) = b_gather {
            let bt = vb(b_load, h, g.dtype);
            let bt_bytes = b_load.bytes;
            sc(&mut st, format!("s.mul {val}, {kc}, {s}"));
            st.push(op(
                format!(
                    "mte2.copy.gm.ub [{}], [{gb}], {ncur}, {val}, {}, {}",
                    bt.addr,
                    g.b_row * s,
                    p.bt * s
                ),
                Pipe::Mte2,
                vec![(Access::Write, whole(bt, bt_bytes))],
            ));
            let src = if g.dtype != cd {
                let w = widened(cd)?;
                vector::emit(
                    &mut st,
                    &format!("vec.cvt.{cdt}.{}", vector::dt(g.dtype)),
                    t.cols * p.bt,
                    &[Opnd::Run(w), Opnd::Run(bt)],
                );
                w
            } else {
                bt.as_dtype(cd)
            };
            let idx = vb(idx, 0, DType::I32);
            let b32 = vb(gathered, 0, cd);
            let n = t.k_chunk * t.cols;
            let src_bytes = t.cols * p.bt * 4;
            let mut done = 0;
            while done < n {
                let reps = ((n - done) / lanes).min(255);
                st.push(op(
                    format!(
                        "vec.gather.{cdt} [{}, 1, 8], [{}], [{}, 1, 8], {reps}, {lanes}",
                        b32.addr + done * 4,
                        src.addr,
                        idx.addr + done * 4
                    ),
                    Pipe::V,
                    vec![
                        (
                            Access::Write,
                            whole(
                                VBuf {
                                    addr: b32.addr + done * 4,
                                    ..b32
                                },
                                reps * 256,
                            ),
                        ),
                        (Access::Read, whole(src, src_bytes)),
                        (
                            Access::Read,
                            whole(
                                VBuf {
                                    addr: idx.addr + done * 4,
                                    ..idx
                                },
                                reps * 256,
                            ),
                        ),
                    ],
                ));
                done += reps * lanes;
            }
            b32
        } else {
            let bb = vb(b_load, h, g.dtype);
            let b_bytes = b_load.bytes;
            sc(&mut st, format!("s.mul {val}, {ncur}, {s}"));
            st.push(op(
                format!(
                    "mte2.copy.gm.ub [{}], [{gb}], {kc}, {val}, {}, {}",
                    bb.addr,
                    g.b_row * s,
                    t.cols * s
                ),
                Pipe::Mte2,
                vec![(Access::Write, whole(bb, b_bytes))],
            ));
            if g.dtype != cd {
                let b32 = widened(cd)?;
                vector::emit(
                    &mut st,
                    &format!("vec.cvt.{cdt}.{}", vector::dt(g.dtype)),
                    t.k_chunk * t.cols,
                    &[Opnd::Run(b32), Opnd::Run(bb)],
                );
                b32
            } else {
                bb.as_dtype(cd)
            }
        };
        // For each k of the chunk: prod[i] = b[k] · a[i, k], acc += prod.
        let (a_istep, a_kstep) = if g.a_t { (s, p.a * s) } else { (p.a * s, s) };
        let mut kbody = Vec::new();
        sc(&mut kbody, format!("s.li {ii}, 0"));
        sc(&mut kbody, format!("s.li {ta}, {}", prod.addr));
        let mut ibody = Vec::new();
        ibody.push(op(
            format!("s.ld.ub.{ld_ty} {val}, [{sa}]"),
            Pipe::S,
            vec![(Access::Read, whole(ab, a_bytes))],
        ));
        if widen {
            sc(&mut ibody, format!("s.shl {val}, {val}, 16"));
        }
        ibody.push(op(
            format!("vec.muls.{cdt} [{ta}, 1, 8], [{bq}, 1, 8], {val}, {row_reps}, {lanes}"),
            Pipe::V,
            vec![
                (Access::Write, whole(prod, tile_elems * 4)),
                (Access::Read, whole(brow, b32_bytes)),
            ],
        ));
        let il = ctx.labels.fresh("rows");
        kbody.push(Item::Loop {
            header: vec![format!("s.br.ge {ii}, {mcur}, {il}_end")],
            label: il,
            body: ibody,
            latch: vec![
                format!("s.add {ii}, {ii}, 1"),
                format!("s.add {sa}, {sa}, {a_istep}"),
                format!("s.add {ta}, {ta}, {}", t.cols * 4),
            ],
        });
        // acc += prod over the whole tile.
        let mut left = tile_elems / lanes;
        let mut at = 0;
        while left > 0 {
            let reps = left.min(255);
            let pa = VBuf {
                addr: prod.addr + at * 4,
                ..prod
            };
            let aa = VBuf {
                addr: accb.addr + at * 4,
                ..accb
            };
            kbody.push(op(
                format!(
                    "vec.add.{cdt} [{}, 1, 8], [{}, 1, 8], [{}, 1, 8], {reps}, {lanes}",
                    aa.addr, aa.addr, pa.addr
                ),
                Pipe::V,
                vec![
                    (Access::Write, whole(aa, reps * 256)),
                    (Access::Read, whole(aa, reps * 256)),
                    (Access::Read, whole(pa, reps * 256)),
                ],
            ));
            left -= reps;
            at += reps * lanes;
        }
        sc(&mut st, format!("s.li {kq}, 0"));
        sc(&mut st, format!("s.li {bq}, {}", brow.addr));
        sc(&mut st, format!("s.li {sa}, {}", ab.addr));
        let kl = ctx.labels.fresh("kk");
        st.push(Item::Loop {
            header: vec![format!("s.br.ge {kq}, {kc}, {kl}_end")],
            label: kl.clone(),
            body: kbody,
            latch: vec![
                format!("s.add {kq}, {kq}, 1"),
                format!("s.add {bq}, {bq}, {}", t.cols * 4),
                // Back to row 0 of the next k.
                format!("s.mul {sa}, {kq}, {a_kstep}"),
                format!("s.add {sa}, {sa}, {}", ab.addr),
            ],
        });
        // Advance.
        sc(&mut st, format!("s.add {ks}, {ks}, {}", t.k_chunk));
        let a_k = if g.a_t { g.a_row } else { 1 };
        let b_k = if g.b_t { 1 } else { g.b_row };
        sc(
            &mut st,
            format!("s.add {ga}, {ga}, {}", t.k_chunk * a_k * s),
        );
        sc(
            &mut st,
            format!("s.add {gb}, {gb}, {}", t.k_chunk * b_k * s),
        );
        Ok(st)
    };
    let mut kbody = chunk(ctx, 0)?;
    let second = chunk(ctx, 1)?;
    let label = ctx.labels.fresh("chunk");
    kbody.push(Item::Guard {
        skip_if: format!("s.br.ge {ks}, {}, {label}_skip", g.k),
        label,
        body: second,
    });
    let klabel = ctx.labels.fresh("kloop");
    tile.push(Item::Loop {
        header: vec![format!("s.br.ge {ks}, {}, {klabel}_end", g.k)],
        label: klabel,
        body: kbody,
        latch: Vec::new(),
    });
    // Epilogue: relu, cast, store (two output copies alternate by tile
    // parity would need a paired loop; one copy is reused, so the next
    // tile's cast waits for this store).
    if g.relu {
        if cd.is_int() {
            vector::emit(
                &mut tile,
                &format!("vec.maxs.{cdt}"),
                tile_elems,
                &[Opnd::Run(accb), Opnd::Run(accb), Opnd::Lit("0".into())],
            );
        } else {
            vector::emit(
                &mut tile,
                &format!("vec.relu.{cdt}"),
                tile_elems,
                &[Opnd::Run(accb), Opnd::Run(accb)],
            );
        }
    }
    let ob = vb(&layout.out, 0, g.out);
    let mn = if g.out == cd { "vec.copy" } else { "vec.cvt" };
    let mnemonic = if g.out == cd {
        format!("{mn}.{cdt}")
    } else {
        format!("{mn}.{}.{cdt}", vector::dt(g.out))
    };
    vector::emit(
        &mut tile,
        &mnemonic,
        tile_elems,
        &[Opnd::Run(ob), Opnd::Run(accb)],
    );
    sc(&mut tile, format!("s.mul {val}, {ncur}, {so}"));
    let out_bytes = layout.out.bytes;
    tile.push(op(
        format!(
            "mte3.copy.ub.gm [{gc}], [{}], {mcur}, {val}, {}, {}",
            ob.addr,
            t.cols * so,
            g.c_row * so
        ),
        Pipe::Mte3,
        vec![(Access::Read, whole(ob, out_bytes))],
    ));
    let label = ctx.labels.fresh("tiles");
    items.push(Item::Loop {
        header: vec![format!("s.br.ge {tr}, {total}, {label}_end")],
        label,
        body: tile,
        latch: vec![format!("s.add {tr}, {tr}, {bd}")],
    });
    Ok(items)
}
