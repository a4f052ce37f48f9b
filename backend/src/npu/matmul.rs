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

use super::Ctx;
use super::prog::{Access, Item, Labels, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use tessera_ir::DType;
use tessera_ir::plan::{
    LocalBuf, MatOperand, MemSpace, Schedule, Source, StageKind, Unit, View, coalesce,
};
use tessera_sim::{Machine, Organisation};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// The shape of a matmul stage, with batch dims coalesced.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Coalesced batch extents (`[1]` when there is no batch).
    pub batch: Vec<u64>,
    /// Batch strides (elements) of A, B and the output over `batch`.
    pub a_bs: Vec<u64>,
    /// Batch strides of B.
    pub b_bs: Vec<u64>,
    /// Batch strides of the output.
    pub c_bs: Vec<u64>,
    /// Rows of A and of the output.
    pub m: u64,
    /// The contracted extent.
    pub k: u64,
    /// Columns of B and of the output.
    pub n: u64,
    /// A is stored transposed.
    pub a_t: bool,
    /// B is stored transposed.
    pub b_t: bool,
    /// Stride (elements) between stored rows of A: of `m` when row-major,
    /// of `k` when transposed.
    pub a_row: u64,
    /// Stride between stored rows of B: of `k` when row-major, of `n` when
    /// transposed.
    pub b_row: u64,
    /// Row stride of the output.
    pub c_row: u64,
    /// Input dtype.
    pub dtype: DType,
    /// Output dtype.
    pub out: DType,
    /// Relu before the cast.
    pub relu: bool,
}

impl Geometry {
    /// The geometry of a matmul stage kind.
    pub fn of(kind: &StageKind) -> Result<Geometry, String> {
        let StageKind::MatMul { a, b, out, relu } = kind else {
            return Err("internal: not a matmul stage".into());
        };
        let r = out.shape.len();
        if r < 2 || a.view.shape.len() != r || b.view.shape.len() != r {
            return Err("internal: matmul operands must have the output's rank".into());
        }
        let (m, n) = (out.shape[r - 2], out.shape[r - 1]);
        let k = a.view.shape[r - 1];
        let batch_shape = &out.shape[..r - 2];
        let (batch, st) = coalesce(
            batch_shape,
            &[
                &a.view.strides[..r - 2],
                &b.view.strides[..r - 2],
                &out.strides[..r - 2],
            ],
        );
        let row = |o: &MatOperand| {
            let s = &o.view.strides;
            if o.transposed { s[r - 1] } else { s[r - 2] }
        };
        Ok(Geometry {
            batch,
            a_bs: st[0].clone(),
            b_bs: st[1].clone(),
            c_bs: st[2].clone(),
            m,
            k,
            n,
            a_t: a.transposed,
            b_t: b.transposed,
            a_row: row(a),
            b_row: row(b),
            c_row: if m > 1 { out.strides[r - 2] } else { n },
            dtype: a.view.dtype,
            out: out.dtype,
            relu: *relu,
        })
    }

    /// Number of batches.
    pub fn batches(&self) -> u64 {
        self.batch.iter().product()
    }

    /// Elements per 32-byte block of the input dtype (`C0`).
    pub fn c0(&self) -> u64 {
        32 / size(self.dtype)
    }

    /// The accumulation dtype (f32, or i32 for i8).
    pub fn acc(&self) -> DType {
        if self.dtype.is_int() {
            DType::I32
        } else {
            DType::F32
        }
    }
}

/// Tile sizes of a cube matmul (`schedule` parameter names in brackets).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CubeTiles {
    /// Output tile rows in L0C (`base_m`).
    pub bm: u64,
    /// Output tile columns in L0C (`base_n`).
    pub bn: u64,
    /// K per L0 step (`base_k`).
    pub bk: u64,
    /// K per L1 stage (`l1_k`, a multiple of `bk`).
    pub kl1: u64,
    /// L1 stages one A load covers (`a_stages`; 1 when absent): A moves in
    /// `a_stages · l1_k`-deep chunks, so it takes fewer, larger GM → L1
    /// transfers while B keeps the stage depth. At most one of `sa`, `sb`
    /// exceeds 1; when one does, it is [`DEEP_STAGES`] and
    /// [`deep_loads_fit`] holds.
    pub sa: u64,
    /// L1 stages one B load covers (`b_stages`; 1 when absent).
    pub sb: u64,
    /// Epilogue chunk width through UB on coupled machines (`epi_cols`; 0 on
    /// split machines).
    pub ec: u64,
    /// Column parts of each tile of the last, partial round (`tail_parts`;
    /// 1: none). With `tiles = q·block_dim + r`, the last `r` tiles are cut
    /// into `tail_parts` column strips of [`CubeTiles::tail_width`] dealt
    /// to the cores as `r · tail_parts` tiles, so the busiest core runs `q`
    /// tiles and one strip rather than `q + 1` tiles.
    pub tail: u64,
}

/// L1 stages a deep operand's load covers (`a_stages` or `b_stages`).
pub const DEEP_STAGES: u64 = 2;

/// Whether a stage of K `k` can load an operand [`DEEP_STAGES`] deep with
/// L1 stages of `kl1`: its K loop (`2 · DEEP_STAGES` stages per iteration)
/// must run whole iterations, since a skipped step would still set the
/// events after it, and ids shared between events could then be set twice.
pub fn deep_loads_fit(k: u64, kl1: u64) -> bool {
    k.is_multiple_of(2 * DEEP_STAGES * kl1)
}

impl CubeTiles {
    /// The width of a tail strip: `base_n / tail_parts` rounded up to 16.
    pub fn tail_width(&self) -> u64 {
        self.bn.div_ceil(self.tail.max(1)).div_ceil(16) * 16
    }

    /// Writes the parameters into a schedule.
    pub fn store(&self, s: &mut Schedule) {
        s.set("base_m", self.bm);
        s.set("base_n", self.bn);
        s.set("base_k", self.bk);
        s.set("l1_k", self.kl1);
        if self.sa > 1 {
            s.set("a_stages", self.sa);
        }
        if self.sb > 1 {
            s.set("b_stages", self.sb);
        }
        if self.ec > 0 {
            s.set("epi_cols", self.ec);
        }
        if self.tail > 1 {
            s.set("tail_parts", self.tail);
        }
    }

    /// Reads the parameters from a schedule.
    pub fn from_schedule(s: &Schedule) -> Result<CubeTiles, String> {
        let get = |n: &str| {
            s.get(n)
                .ok_or_else(|| format!("internal: the schedule has no `{n}`"))
        };
        let t = CubeTiles {
            bm: get("base_m")?,
            bn: get("base_n")?,
            bk: get("base_k")?,
            kl1: get("l1_k")?,
            sa: s.get("a_stages").unwrap_or(1),
            sb: s.get("b_stages").unwrap_or(1),
            ec: s.get("epi_cols").unwrap_or(0),
            tail: s.get("tail_parts").unwrap_or(1),
        };
        if t.sa == 0 || t.sb == 0 || (t.sa > 1 && t.sb > 1) {
            return Err(format!(
                "internal: a_stages={} b_stages={} (one of them must be 1)",
                t.sa, t.sb
            ));
        }
        Ok(t)
    }
}

/// Tile sizes of a vector matmul.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VecTiles {
    /// Output tile rows (`rows`).
    pub rows: u64,
    /// Output tile columns (`cols`, a multiple of 64).
    pub cols: u64,
    /// K per chunk (`k_chunk`).
    pub kc: u64,
}

impl VecTiles {
    /// Writes the parameters into a schedule.
    pub fn store(&self, s: &mut Schedule) {
        s.set("rows", self.rows);
        s.set("cols", self.cols);
        s.set("k_chunk", self.kc);
    }

    fn load(ctx: &Ctx<'_>) -> Result<VecTiles, String> {
        Ok(VecTiles {
            rows: ctx.param("rows")?,
            cols: ctx.param("cols")?,
            kc: ctx.param("k_chunk")?,
        })
    }
}

/// Rows of an L1 NZ buffer holding `rows` rows (fractal-padded, and to
/// `C0` rows when a transposing load reads `C0`-row blocks).
fn nz_rows(rows: u64, c0: u64) -> u64 {
    round_up(rows, 16.max(c0))
}

/// Bytes of an L1 NZ buffer of `rows × cols`.
fn nz_bytes(rows: u64, cols: u64, c0: u64) -> u64 {
    // Transposing loads read whole 16-column groups: cover them.
    round_up(round_up(cols, 16), c0) / c0 * nz_rows(rows, c0) * 32
}

struct Layout {
    bufs: Vec<LocalBuf>,
    at: [u64; 5],
}

impl Layout {
    fn new() -> Layout {
        Layout {
            bufs: Vec::new(),
            at: [0; 5],
        }
    }

    fn add(&mut self, name: &str, space: MemSpace, bytes: u64, copies: u32, align: u64) {
        let i = space as usize;
        let bytes = round_up(bytes.max(32), align);
        let offset = round_up(self.at[i], align);
        self.bufs.push(LocalBuf {
            name: name.to_string(),
            space,
            offset,
            bytes,
            copies,
        });
        self.at[i] = offset + bytes * u64::from(copies);
    }
}

/// The on-chip buffers of a cube matmul.
pub fn cube_layout(g: &Geometry, t: &CubeTiles, machine: &Machine) -> Vec<LocalBuf> {
    let mem = &machine.memory;
    let (s, c0) = (size(g.dtype), g.c0());
    let mut l = Layout::new();
    let (ka, kb) = (t.kl1 * t.sa, t.kl1 * t.sb);
    let a_l1 = if g.a_t {
        nz_bytes(ka, t.bm, c0)
    } else {
        nz_bytes(t.bm, ka, c0)
    };
    let b_l1 = if g.b_t {
        nz_bytes(t.bn, kb, c0)
    } else {
        nz_bytes(kb, t.bn, c0)
    };
    l.add("a_l1", MemSpace::L1, a_l1, 2, mem.l1.align);
    l.add("b_l1", MemSpace::L1, b_l1, 2, mem.l1.align);
    l.add(
        "a_l0",
        MemSpace::L0a,
        t.bm * round_up(t.bk, c0) * s,
        2,
        mem.l0a.align,
    );
    l.add(
        "b_l0",
        MemSpace::L0b,
        t.bn * round_up(t.bk, c0) * s,
        2,
        mem.l0b.align,
    );
    l.add("acc", MemSpace::L0c, t.bm * t.bn * 4, 1, mem.l0c.align);
    if machine.organisation == Organisation::Coupled {
        l.add(
            "out",
            MemSpace::Ub,
            t.bm * t.ec * size(g.out),
            2,
            mem.ub.align,
        );
    }
    l.bufs
}

/// Pitches (elements) of the vector path's UB tiles.
struct VecPitch {
    /// Row pitch of the A tile (k when row-major, m when transposed).
    a: u64,
    /// Row pitch of the transposed B tile (k).
    bt: u64,
}

fn vec_pitch(g: &Geometry, t: &VecTiles) -> VecPitch {
    let e = 32 / size(g.dtype);
    VecPitch {
        a: if g.a_t {
            round_up(t.rows, e)
        } else {
            round_up(t.kc, e)
        },
        bt: round_up(t.kc, 8.max(e)),
    }
}

/// The UB buffers of a vector matmul.
pub fn vector_layout(g: &Geometry, t: &VecTiles, machine: &Machine) -> Vec<LocalBuf> {
    let align = machine.memory.ub.align;
    let (s, acc) = (size(g.dtype), g.acc());
    let p = vec_pitch(g, t);
    let mut l = Layout::new();
    let a_rows = if g.a_t { t.kc } else { t.rows };
    l.add("a", MemSpace::Ub, a_rows * p.a * s, 2, align);
    if g.b_t {
        l.add("bt", MemSpace::Ub, t.cols * p.bt * s, 2, align);
        if g.dtype != acc {
            l.add("bt32", MemSpace::Ub, t.cols * p.bt * 4, 1, align);
        }
        l.add("idx", MemSpace::Ub, t.kc * t.cols * 4, 1, align);
        l.add("b32", MemSpace::Ub, t.kc * t.cols * 4, 1, align);
    } else {
        l.add("b", MemSpace::Ub, t.kc * t.cols * s, 2, align);
        if g.dtype != acc {
            l.add("b32", MemSpace::Ub, t.kc * t.cols * 4, 1, align);
        }
    }
    l.add("prod", MemSpace::Ub, t.rows * t.cols * 4, 1, align);
    l.add("acc", MemSpace::Ub, t.rows * t.cols * 4, 1, align);
    l.add("out", MemSpace::Ub, t.rows * t.cols * size(g.out), 1, align);
    l.bufs
}

/// The on-chip buffers of a matmul stage on `unit` with the schedule's tiles.
pub fn layout(
    kind: &StageKind,
    unit: Unit,
    schedule: &Schedule,
    machine: &Machine,
) -> Result<Vec<LocalBuf>, String> {
    let g = Geometry::of(kind)?;
    let get = |n: &str| {
        schedule
            .get(n)
            .ok_or_else(|| format!("internal: the schedule has no `{n}`"))
    };
    Ok(match unit {
        Unit::Cube => cube_layout(&g, &CubeTiles::from_schedule(schedule)?, machine),
        Unit::Vector => vector_layout(
            &g,
            &VecTiles {
                rows: get("rows")?,
                cols: get("cols")?,
                kc: get("k_chunk")?,
            },
            machine,
        ),
    })
}

/// Generates a matmul stage.
pub fn generate(ctx: &mut Ctx<'_>) -> Result<Vec<Item>, String> {
    match ctx.stage.unit {
        Unit::Cube => cube(ctx),
        Unit::Vector => vector_path(ctx),
    }
}

/// A buffer copy as a region.
fn region(ctx: &Ctx<'_>, name: &str, copy: u32) -> Result<(Region, u64), String> {
    let l = ctx.local(name)?;
    let copy = copy.min(l.copies - 1);
    let start = l.offset + u64::from(copy) * l.bytes;
    let space = match l.space {
        MemSpace::L1 => Space::L1,
        MemSpace::L0a => Space::L0a,
        MemSpace::L0b => Space::L0b,
        MemSpace::L0c => Space::L0c,
        MemSpace::Ub => Space::Ub,
    };
    Ok((
        Region {
            space,
            start,
            end: start + l.bytes,
            slot: ctx.slot(name, copy),
        },
        start,
    ))
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

/// The strips of a stage's last round (see [`CubeTiles::tail`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The first tile index that is cut into strips (`tiles - r`).
    pub first: u64,
    /// Strips per tile.
    pub parts: u64,
    /// Strip width (a multiple of 16).
    pub width: u64,
    /// All tiles of the stage.
    pub tiles: u64,
}

impl Tail {
    /// The strips of `t` on a stage of geometry `g` over `cores` cube
    /// cores; `None` when `t` asks for none, the stage has batches, the
    /// last round is full, or some strip would hold no column of its tile.
    pub fn of(g: &Geometry, t: &CubeTiles, cores: u64) -> Option<Tail> {
        if t.tail <= 1 || g.batches() != 1 {
            return None;
        }
        let tn = g.n.div_ceil(t.bn);
        let tiles = g.m.div_ceil(t.bm) * tn;
        let r = tiles % cores;
        if tiles <= cores || r == 0 || r * t.tail > cores {
            return None;
        }
        let width = t.tail_width();
        let first = tiles - r;
        let nonempty = (first..tiles).all(|q| {
            let w = t.bn.min(g.n - (q % tn) * t.bn);
            w > (t.tail - 1) * width
        });
        nonempty.then_some(Tail {
            first,
            parts: t.tail,
            width,
            tiles,
        })
    }

    /// The tile indices the stage's loop runs over: whole tiles, then strips.
    pub fn indices(&self) -> u64 {
        self.first + (self.tiles - self.first) * self.parts
    }
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

fn cube(ctx: &mut Ctx<'_>) -> Result<Vec<Item>, String> {
    let g = Geometry::of(&ctx.stage.kind)?;
    let StageKind::MatMul { a, b, out, .. } = ctx.stage.kind.clone() else {
        return Err("internal: not a matmul stage".into());
    };
    let t = CubeTiles::from_schedule(&ctx.stage.schedule)?;
    let coupled = ctx.machine.organisation == Organisation::Coupled;
    let (s, so, c0) = (size(g.dtype), size(g.out), g.c0());
    let dt = vector::dt(g.dtype);
    let odt = vector::dt(g.out);
    let tm = g.m.div_ceil(t.bm);
    let tn = g.n.div_ceil(t.bn);
    let tail = Tail::of(&g, &t, u64::from(ctx.stage.block_dim));
    if t.tail > 1 && tail.is_none() {
        return Err(format!(
            "internal: tail_parts={} does not fit this stage's last round",
            t.tail
        ));
    }
    let deep = t.sa.max(t.sb);
    if deep > 1 && (deep != DEEP_STAGES || !deep_loads_fit(g.k, t.kl1)) {
        return Err(format!(
            "internal: a_stages={} b_stages={} with l1_k={} needs stages of {DEEP_STAGES} and K ({}) a multiple of {}",
            t.sa,
            t.sb,
            t.kl1,
            g.k,
            2 * DEEP_STAGES * t.kl1
        ));
    }
    let total = tail.map_or(g.batches() * tm * tn, |tl| tl.indices());
    let steps = t.kl1 / t.bk;

    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    sc(&mut items, format!("s.sys {bi}, block_idx"));
    sc(&mut items, format!("s.sys {bd}, block_dim"));
    let ra = base(ctx, &mut items, &a.view)?;
    let rb = base(ctx, &mut items, &b.view)?;
    let rc = base(ctx, &mut items, &out)?;
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
        (t.bm, t.bn),
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

    let (acc, acc_addr) = region(ctx, "acc", 0)?;
    // One L1 stage `h` of an iteration, as pieces: the loads, each L0 step
    // (with the K offset it skips at), the advance. An iteration runs
    // `2 · max(a_stages, b_stages)` stages so every buffer copy sits at a
    // fixed place: A's load `h / a_stages` goes to copy `(h / a_stages) % 2`
    // and stage `h` reads its part `h % a_stages` (likewise B). Later stages
    // of an iteration guard every piece on its own (rather than the whole
    // stage at once), so the events into its steps wait for the matching
    // step of the first stage only.
    let (ka, kb) = (t.kl1 * t.sa, t.kl1 * t.sb);
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
                nz_rows(t.bm, 16)
            )
        };
        op(text, Pipe::Mte2, vec![(Access::Write, a1)])
    };
    let b_load = |(b1, b1_addr): (Region, u64), src: &str, ke: &str| {
        let text = if g.b_t {
            format!(
                "mte2.nd2nz.gm.l1.{dt} [{b1_addr}], [{src}], {ncur}, {ke}, {}, {}",
                g.b_row * s,
                nz_rows(t.bn, 16)
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
    let (last_k, prefetch_reg) = (g.k.saturating_sub(t.kl1), &tmp[0]);
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
            format!("s.add {prefetch_reg}, {gsrc}, {}", t.kl1 * step_bytes),
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
            skip_if: format!("s.br.ge {ks}, {}, {label}_skip", t.kl1),
            label,
            body,
        });
    };
    let stage = |ctx: &mut Ctx<'_>, h: u64| -> Result<Vec<(Vec<Item>, u64)>, String> {
        let mut pieces = Vec::new();
        let mut st = Vec::new();
        let (a_part, b_part) = (h % t.sa, h % t.sb);
        remaining(&mut st, &kc, g.k, &ks, t.kl1);
        let a1 = region(ctx, "a_l1", ((h / t.sa) % 2) as u32)?;
        let b1 = region(ctx, "b_l1", ((h / t.sb) % 2) as u32)?;
        let (a1_addr, b1_addr) = (a1.1, b1.1);
        if t.sa == 1 {
            st.push(a_load(a1, ga, &kc));
        } else if h == 0 {
            first_chunk(ctx, &mut st, a_load(a1, ga, &kk), ka);
        }
        if t.sb == 1 {
            st.push(b_load(b1, gb, &kc));
        } else if h == 0 {
            first_chunk(ctx, &mut st, b_load(b1, gb, &kk), kb);
        }
        pieces.push((std::mem::take(&mut st), 0));
        // Its own piece, so the events of this stage's loads are set
        // before it.
        if t.sa > 1 && a_part == t.sa - 1 {
            let to = region(ctx, "a_l1", ((h / t.sa + 1) % 2) as u32)?;
            prefetch(ctx, &mut st, a_load(to, prefetch_reg, &kk), a_k, ga, ka);
        }
        if t.sb > 1 && b_part == t.sb - 1 {
            let to = region(ctx, "b_l1", ((h / t.sb + 1) % 2) as u32)?;
            prefetch(ctx, &mut st, b_load(to, prefetch_reg, &kk), b_k, gb, kb);
        }
        if !st.is_empty() {
            pieces.push((std::mem::take(&mut st), 0));
        }
        let (a1, b1) = (a1.0, b1.0);
        for step in 0..steps {
            let c = ((h * steps + step) % 2) as u32;
            let (a0, a0_addr) = region(ctx, "a_l0", c)?;
            let (b0, b0_addr) = region(ctx, "b_l0", c)?;
            let koff = step * t.bk;
            let (ak, bk) = (a_part * t.kl1 + koff, b_part * t.kl1 + koff);
            let mut body = Vec::new();
            sc(&mut body, format!("s.sub {kk}, {kc}, {koff}"));
            sc(&mut body, format!("s.min {kk}, {kk}, {}", t.bk));
            sc(&mut body, format!("s.add {k1}, {kk}, {}", c0 - 1));
            sc(&mut body, format!("s.shr {k1}, {k1}, {}", log2(c0)));
            // L1 → L0A.
            let (a_text, a_src, a_stride) = if g.a_t {
                ("mte1.load.l0a.t", a1_addr + ak * 32, ka_rows * 32)
            } else {
                (
                    "mte1.load.l0a",
                    a1_addr + ak / c0 * nz_rows(t.bm, 16) * 32,
                    nz_rows(t.bm, 16) * 32,
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
                    b1_addr + bk / c0 * nz_rows(t.bn, 16) * 32,
                    nz_rows(t.bn, 16) * 32,
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
        sc(&mut st, format!("s.add {ks}, {ks}, {}", t.kl1));
        sc(&mut st, format!("s.add {ga}, {ga}, {}", t.kl1 * a_k));
        sc(&mut st, format!("s.add {gb}, {gb}, {}", t.kl1 * b_k));
        pieces.push((st, 0));
        Ok(pieces)
    };
    let mut kbody = Vec::new();
    for h in 0..2 * t.sa.max(t.sb) {
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
        let chunks = t.bn.div_ceil(t.ec);
        let (ecur, la, gaddr) = (&tmp[0], &tmp[1], &tmp[2]);
        for ch in 0..chunks {
            let (ub, ub_addr) = region(ctx, "out", (ch % 2) as u32)?;
            let mut body = Vec::new();
            sc(&mut body, format!("s.sub {ecur}, {ncur}, {}", ch * t.ec));
            sc(&mut body, format!("s.min {ecur}, {ecur}, {}", t.ec));
            sc(
                &mut body,
                format!("s.mul {la}, {m16}, {}", ch * (t.ec / 16) * 64),
            );
            body.push(op(
                format!(
                    "vec.copy.l0c.ub.{odt} [{ub_addr}], [{la} + {acc_addr}], {mcur}, {ecur}, {m16}, {}, {relu}",
                    t.ec * so
                ),
                Pipe::V,
                vec![(Access::Read, acc), (Access::Write, ub)],
            ));
            sc(
                &mut body,
                format!("s.add {gaddr}, {gc}, {}", ch * t.ec * so),
            );
            sc(&mut body, format!("s.mul {ecur}, {ecur}, {so}"));
            body.push(op(
                format!(
                    "mte3.copy.ub.gm [{gaddr}], [{ub_addr}], {mcur}, {ecur}, {}, {}",
                    t.ec * so,
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
                    skip_if: format!("s.br.le {ncur}, {}, {label}_skip", ch * t.ec),
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

fn vector_path(ctx: &mut Ctx<'_>) -> Result<Vec<Item>, String> {
    let g = Geometry::of(&ctx.stage.kind)?;
    let StageKind::MatMul { a, b, out, .. } = ctx.stage.kind.clone() else {
        return Err("internal: not a matmul stage".into());
    };
    let t = VecTiles::load(ctx)?;
    let p = vec_pitch(&g, &t);
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
    let rc = base(ctx, &mut items, &out)?;
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
    let vb = |ctx: &Ctx<'_>, name: &str, copy: u32, dtype: DType| -> Result<VBuf, String> {
        let (_, addr) = region(ctx, name, copy)?;
        let l = ctx.local(name)?;
        Ok(VBuf {
            addr,
            dtype,
            slot: ctx.slot(name, copy.min(l.copies - 1)),
        })
    };
    // The index table of the gather (transposed B): element (k, j) of the
    // row-major chunk is at byte (j · pitch + k) · 4 of the widened Bᵀ.
    if g.b_t {
        let idx = vb(ctx, "idx", 0, DType::I32)?;
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
        for kq in 1..t.kc {
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
    let accb = vb(ctx, "acc", 0, cd)?;
    let prod = vb(ctx, "prod", 0, cd)?;
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
        remaining(&mut st, &kc, g.k, &ks, t.kc);
        // A chunk.
        let ab = vb(ctx, "a", h, g.dtype)?;
        let a_bytes = ctx.local("a")?.bytes;
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
        let b32_bytes = t.kc * t.cols * 4;
        let brow: VBuf = if g.b_t {
            let bt = vb(ctx, "bt", h, g.dtype)?;
            let bt_bytes = ctx.local("bt")?.bytes;
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
                let w = vb(ctx, "bt32", 0, cd)?;
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
            let idx = vb(ctx, "idx", 0, DType::I32)?;
            let b32 = vb(ctx, "b32", 0, cd)?;
            let n = t.kc * t.cols;
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
            let bb = vb(ctx, "b", h, g.dtype)?;
            let b_bytes = ctx.local("b")?.bytes;
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
                let b32 = vb(ctx, "b32", 0, cd)?;
                vector::emit(
                    &mut st,
                    &format!("vec.cvt.{cdt}.{}", vector::dt(g.dtype)),
                    t.kc * t.cols,
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
        sc(&mut st, format!("s.add {ks}, {ks}, {}", t.kc));
        let a_k = if g.a_t { g.a_row } else { 1 };
        let b_k = if g.b_t { 1 } else { g.b_row };
        sc(&mut st, format!("s.add {ga}, {ga}, {}", t.kc * a_k * s));
        sc(&mut st, format!("s.add {gb}, {gb}, {}", t.kc * b_k * s));
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
    let ob = vb(ctx, "out", 0, g.out)?;
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
    let out_bytes = ctx.local("out")?.bytes;
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
