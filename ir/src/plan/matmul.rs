//! Matmul stages: `out = epilogue(a @ b)` with numpy batch broadcasting, on
//! the cube ([`CubeSchedule`]) or, for dtypes the cube lacks, on the vector
//! unit ([`VecMatSchedule`]).
//!
//! The cube path cuts the output into `base_m × base_n` tiles (one L0C
//! accumulator each) and streams K through L1 stages of `l1_k`, consumed in
//! L0 steps of `base_k`; the operands' L1 buffers hold the fractal (NZ)
//! layout ([`nz_rows`], [`nz_bytes`]). The geometry both the scheduler and
//! the code generator work from is [`Geometry`]; the strips of a partial
//! last round are [`Tail`].

use super::{LocalBuf, View, coalesce};
use crate::types::DType;

/// A matmul operand: a view whose last two dims are the matrix, stored
/// row-major or transposed (the view's last dim strided, its second-to-last
/// contiguous).
#[derive(Clone, Debug, PartialEq)]
pub struct MatOperand {
    /// The logical operand, `[batch…, rows, cols]`.
    pub view: View,
    /// Whether memory holds the transpose (`cols` contiguous across rows).
    pub transposed: bool,
}

/// `out = a @ b` with batch broadcasting, then the epilogue (`relu`, and the
/// cast to the output's dtype).
#[derive(Clone, Debug, PartialEq)]
pub struct MatMul {
    /// Left operand `[batch…, m, k]`.
    pub a: MatOperand,
    /// Right operand `[batch…, k, n]`.
    pub b: MatOperand,
    /// The result `[batch…, m, n]`.
    pub out: View,
    /// `relu` applied to the accumulator before the cast.
    pub relu: bool,
    /// The accumulator multiplied by this f32 constant (rounding to f32, as
    /// the `mul` it replaces) before relu and the cast. The planner sets it
    /// only for an f32 result without relu, on a coupled machine, where the
    /// vector pipe's L0C → UB move leaves the product in UB; the split-K
    /// reduction and the vector path apply it too. FixPipe cannot, so a
    /// split machine's cube path refuses it.
    pub scale: Option<f32>,
    /// The unit, tiles and buffers.
    pub schedule: MatMulSchedule,
}

/// Where a matmul runs, with its tiles.
#[derive(Clone, Debug, PartialEq)]
pub enum MatMulSchedule {
    /// On the cube.
    Cube(CubeSchedule),
    /// On the vector unit.
    Vector(VecMatSchedule),
}

impl Default for MatMulSchedule {
    fn default() -> Self {
        MatMulSchedule::Cube(CubeSchedule::default())
    }
}

/// The most L1 stages an A panel's K loop runs (all in one iteration, so
/// every stage's part of the panel is a fixed place).
pub const PANEL_STAGES: u64 = 16;

/// L1 stages a deep operand's load covers (`a_stages` or `b_stages`).
pub const DEEP_STAGES: u64 = 2;

/// Whether a stage of K `k` can load an operand [`DEEP_STAGES`] deep with
/// L1 stages of `l1_k`: its K loop (`2 · DEEP_STAGES` stages per iteration)
/// must run whole iterations, since a skipped step would still set the
/// events after it, and ids shared between events could then be set twice.
pub fn deep_loads_fit(k: u64, l1_k: u64) -> bool {
    k.is_multiple_of(2 * DEEP_STAGES * l1_k)
}

/// The tiles of a cube matmul.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CubeSchedule {
    /// Output tile rows in L0C.
    pub base_m: u64,
    /// Output tile columns in L0C.
    pub base_n: u64,
    /// K per L0 step.
    pub base_k: u64,
    /// K per L1 stage (a multiple of `base_k`).
    pub l1_k: u64,
    /// L1 stages one A load covers (1, or [`DEEP_STAGES`]): A moves in
    /// `a_stages · l1_k`-deep chunks, so it takes fewer, larger GM → L1
    /// transfers while B keeps the stage depth. At most one of `a_stages`,
    /// `b_stages` exceeds 1, and then [`deep_loads_fit`] holds.
    pub a_stages: u64,
    /// L1 stages one B load covers.
    pub b_stages: u64,
    /// Epilogue chunk width through UB on coupled machines (0 on split ones).
    pub epi_cols: u64,
    /// Column parts of each tile of the last, partial round (1: none). With
    /// `tiles = q·block_dim + r`, the last `r` tiles are cut into
    /// `tail_parts` column strips of [`CubeSchedule::tail_width`] dealt to the
    /// cores as `r · tail_parts` tiles, so the busiest core runs `q` tiles
    /// and one strip rather than `q + 1` tiles.
    pub tail_parts: u64,
    /// The order of a batch's tiles (0 or 1: row-major). `G > 1` walks them
    /// in groups of `G` tile rows, column by column within a group (the
    /// group's rows fastest), so the tiles the cores run at once share A's
    /// and B's panels in L2 rather than all touching new B columns
    /// ([`CubeSchedule::tile_at`]).
    pub group_m: u64,
    /// L0C accumulators (0 or 1: one; 2: tiles alternate between two, so
    /// a tile's epilogue overlaps the next tile's K loop). The layout's
    /// `acc` has this many copies.
    pub accumulators: u64,
    /// K parts (0 or 1: none; split machines only). With `S > 1`, each
    /// tile's K is cut into `S` parts of `part_k` (the last takes the
    /// rest), and every (part, tile) pair is a unit of the cube cores' loop
    /// (unit `u`: part `u / tiles` of tile `u % tiles`). FixPipe writes each unit's
    /// accumulator, unconverted, to the `partials` workspace (`[S, m, n]`
    /// of the accumulator dtype); the cube cores meet at a cross-core
    /// barrier and signal their vector cores, which add the parts in order
    /// (`p = 0, 1, …`, so results are the same bits on every run), apply
    /// relu and the cast, and write the output in `red_rows × red_cols`
    /// chunks ([`CubeSchedule::check_split`] says which stages may).
    pub split_k: u64,
    /// Split-K: K of a part (a multiple of 16; `S · part_k ≥ k`, and every
    /// part holds some K).
    pub part_k: u64,
    /// Split-K: the workspace byte offset of the partial tiles.
    pub partials: u64,
    /// Split-K: rows of a reduction chunk.
    pub red_rows: u64,
    /// Split-K: columns of a reduction chunk (a multiple of 16; the UB
    /// row pitch).
    pub red_cols: u64,
    /// A joined prologue's first phase, in rows of A (0: none; split
    /// machines only). With `R > 0` the stage before this one, a row stage
    /// writing A, runs in this stage's launch on the vector cores, in
    /// phases of `R`, `2R`, `4R`, … rows, and each cube core waits for a
    /// phase's signal before its first unit that reads its rows
    /// ([`super::join`]).
    pub prologue: u64,
    /// A joined epilogue's phase, in rows of the result (0: none; split
    /// machines only). With `R > 0` the stage after this one, a row or
    /// elementwise stage reading the result, runs in this stage's launch on
    /// the vector cores, in phases of `R` rows, each once every cube core
    /// has written its rows ([`super::join`]).
    pub epilogue: u64,
    /// A joined epilogue's ring (0: none; else twice `epilogue`): the
    /// result's row `r` is kept at row `r mod ring` of its buffer, and the
    /// cube cores write a phase's rows once the vector cores have read the
    /// phase two before, so the product crosses HBM once per ring rather
    /// than whole ([`super::join`]).
    pub ring: u64,
    /// Odd cores take their tail strip second rather than last (units `0,
    /// n − 1, 1, …, n − 2` of their `n`), so that half the cores write a
    /// tile's output at a time ([`CubeSchedule::staggered`] says where it
    /// applies; the scheduler sets it where the output's drain is worth it).
    pub stagger: bool,
    /// A's whole K panel stays in L1 (`a_panel=1`): `a_l1` holds one copy
    /// of `base_m × K`, each stage's A load fills its part of it, and a
    /// tile whose A rows are the previous tile's (on the same core) loads
    /// no A at all. Each core runs a contiguous run of
    /// [`CubeSchedule::panel_units`] units, so its tiles mostly share A's
    /// rows; B streams as usual ([`CubeSchedule::check_panel`] says where
    /// it applies).
    pub a_panel: bool,
    /// Tile columns folded into slabs (0 or 1: none). With `F > 1` (`F`
    /// dividing the `tn` tile columns), a tile row's column positions go
    /// slab by slab: position `w = j·F + i` takes column `i·s + j` when
    /// `i` is even and `(i + 1)·s − 1 − j` when odd (`s = tn / F`). With an
    /// A panel whose runs are `F` units, so that run `j` of a row is its
    /// positions `j·F … j·F + F − 1`, a core's tiles spread across the row
    /// instead of sitting side by side: the cores' first tiles write
    /// neighbouring columns, so a round's output covers fewer, whole GM
    /// lines (half as many new lines for `F = 2` where a tile is half a
    /// line wide), and each core's tiles alternate between
    /// line-aligned and unaligned columns ([`CubeSchedule::check_fold`]).
    pub fold: u64,
    /// The accumulator in two column halves (`halves=1`; split machines,
    /// one accumulator): every L1 stage runs its steps into the left half
    /// (`⌈base_n / 32⌉ · 16` columns), then into the right, each an `mmad`
    /// of its own, and a tile's last stage drains each half as soon as its
    /// steps are done. FixPipe drains the left half while the cube runs the
    /// right half's steps, and the next tile's left-half steps run while
    /// FixPipe drains the right half, so the cube does not wait for a whole
    /// tile's drain. MTE1 loads each A step twice (once a half).
    pub halves: bool,
    /// Output tiles (`base_m × base_n`) of the whole stage.
    pub tiles: u64,
    /// The on-chip buffers.
    pub layout: CubeLayout,
}

impl CubeSchedule {
    /// Columns of the left half of the accumulator with
    /// [`CubeSchedule::halves`]: `base_n / 2` rounded up to 16.
    pub fn half_n(&self) -> u64 {
        self.base_n.div_ceil(32) * 16
    }

    /// The width of a tail strip: `base_n / tail_parts` rounded up to 16.
    pub fn tail_width(&self) -> u64 {
        self.base_n.div_ceil(self.tail_parts.max(1)).div_ceil(16) * 16
    }

    /// The batch, tile row and tile column of tile `idx` (in the order the
    /// cores take tiles) of a stage with `tm × tn` tiles per batch. With
    /// `group_m = G > 1`, group `idx / (G·tn)` covers tile rows from `G` on
    /// its index (fewer in the last group), walked column by column.
    pub fn tile_at(&self, idx: u64, tm: u64, tn: u64) -> (u64, u64, u64) {
        let per_batch = tm * tn;
        let (q, r) = (idx / per_batch, idx % per_batch);
        if self.group_m <= 1 {
            return (q, r / tn, self.fold_column(r % tn, tn));
        }
        let per_group = self.group_m * tn;
        let first = r / per_group * self.group_m;
        let rows = (tm - first).min(self.group_m);
        let w = r % per_group;
        (q, first + w % rows, w / rows)
    }

    /// The tile column at position `w` of a row of `tn` tile columns in
    /// the order of [`CubeSchedule::fold`] (`w` itself without a fold, or
    /// where `fold` does not divide `tn`).
    pub fn fold_column(&self, w: u64, tn: u64) -> u64 {
        let f = self.fold;
        if f <= 1 || !tn.is_multiple_of(f) {
            return w;
        }
        let (s, j, i) = (tn / f, w / f, w % f);
        if i % 2 == 0 {
            i * s + j
        } else {
            (i + 1) * s - 1 - j
        }
    }

    /// Why a fold ([`CubeSchedule::fold`]) does not apply to a stage of
    /// geometry `g` run on `cores` cube cores, if it does not: it needs an
    /// A panel whose runs are `fold` units, no more than a tile row has
    /// columns and dividing them, so that every run stays in one row.
    pub fn check_fold(&self, g: &Geometry, cores: u64) -> Result<(), String> {
        if self.fold <= 1 {
            return Ok(());
        }
        let tn = g.n.div_ceil(self.base_n.max(1));
        let why = if !self.a_panel {
            "it needs an A panel (a_panel=1)"
        } else if self.group_m > 1 {
            "its tiles go in groups of tile rows"
        } else if self.panel_units(g, cores) != self.fold {
            "the A panel's runs are not `fold` units"
        } else if !tn.is_multiple_of(self.fold) {
            "`fold` does not divide the tile columns"
        } else {
            return Ok(());
        };
        Err(format!("fold={}: {why}", self.fold))
    }

    /// Whether single-stage loads are issued a stage early: with one
    /// accumulator and more L0 steps a stage than a pipe queue of
    /// `queue_depth` entries holds (a step queues about four in MTE1's: its
    /// two loads, the wait for a free L0 copy and the event to the cube),
    /// the loads placed after a stage's steps would reach MTE2 only as the
    /// cube caught up. A deep operand is always prefetched.
    pub fn loads_early(&self, queue_depth: u32) -> bool {
        (self.a_stages, self.b_stages) == (1, 1)
            && self.accumulators <= 1
            && self.l1_k / self.base_k.max(1) > u64::from(queue_depth) / 4
    }

    /// The units each of `cores` cores runs, when its odd cores may take
    /// their tail strip second rather than last ([`CubeSchedule::stagger`]
    /// aside): every core runs the same number `n ≥ 3` of units, whole
    /// tiles and one strip; one accumulator; no split-K and no joins.
    pub fn staggered(&self, g: &Geometry, cores: u64) -> Option<u64> {
        let units = Tail::of(g, self, cores)?.indices();
        let plain =
            self.parts() <= 1 && self.accumulators <= 1 && self.prologue == 0 && self.epilogue == 0;
        (plain && cores > 0 && units.is_multiple_of(cores) && units / cores >= 3)
            .then_some(units / cores)
    }

    /// The units of each core's contiguous run with an A panel (core `c`
    /// runs units `c·q … c·q + q − 1` below `units`): `⌈units / cores⌉`.
    pub fn panel_units(&self, g: &Geometry, cores: u64) -> u64 {
        let units = g.batches() * g.m.div_ceil(self.base_m) * g.n.div_ceil(self.base_n);
        units.div_ceil(cores.max(1))
    }

    /// The L1 stages of an A panel's K loop: `⌈K / l1_k⌉`, all in one
    /// iteration.
    pub fn panel_stages(&self, k: u64) -> u64 {
        k.div_ceil(self.l1_k.max(1))
    }

    /// Why an A panel does not apply to a stage of geometry `g` (A
    /// row-major, loads one stage deep, one accumulator, no split-K, no
    /// strips, row-major tile order, no joins, no staggering, at most
    /// [`PANEL_STAGES`] stages), if it does not.
    pub fn check_panel(&self, g: &Geometry) -> Result<(), String> {
        if !self.a_panel {
            return Ok(());
        }
        let why = if g.a_t {
            "A is transposed"
        } else if (self.a_stages, self.b_stages) != (1, 1) || self.accumulators > 1 {
            // Two accumulators alternating over a core's run set an
            // event twice where a run had an odd number of units.
            "loads are deep or there are two accumulators"
        } else if self.parts() > 1 || self.tail_parts > 1 || self.stagger {
            "the stage splits K, cuts its last round into strips or staggers them"
        } else if self.group_m > 1 {
            "its tiles go in groups of tile rows"
        } else if self.prologue > 0 || self.epilogue > 0 {
            "the stage is joined to another"
        } else if self.panel_stages(g.k) > PANEL_STAGES {
            "K has too many L1 stages"
        } else {
            return Ok(());
        };
        Err(format!("a_panel=1: {why}"))
    }

    /// Whether the schedule's halves ([`CubeSchedule::halves`]) can run:
    /// on a split machine (`split`: FixPipe drains the accumulator), with
    /// one accumulator, no split-K, and a tile of two halves whose left one
    /// is whole `c0`-column blocks of a row-major B's columns in L1.
    pub fn check_halves(&self, g: &Geometry, split: bool) -> Result<(), String> {
        if !self.halves {
            return Ok(());
        }
        let why = if !split {
            "the machine is not split (the vector unit drains L0C)"
        } else if self.accumulators > 1 {
            "there are two accumulators"
        } else if self.parts() > 1 {
            "the stage splits K"
        } else if self.base_n <= 16 {
            "a tile of one 16-column block has no right half"
        } else if !g.b_t && !self.half_n().is_multiple_of(g.c0()) {
            "the left half is not whole blocks of B's columns"
        } else {
            return Ok(());
        };
        Err(format!("halves=1: {why}"))
    }

    /// K parts (1 without split-K).
    pub fn parts(&self) -> u64 {
        self.split_k.max(1)
    }

    /// K of a unit for a stage of K `k`: `part_k`, or `k` without split-K.
    pub fn unit_k(&self, k: u64) -> u64 {
        if self.parts() <= 1 { k } else { self.part_k }
    }

    /// Why split-K does not apply to a stage of geometry `g` (every part
    /// must hold some K; one batch, float accumulators, single-stage loads,
    /// one accumulator, no tail strips, reduction chunks set), if it does
    /// not.
    pub fn check_split(&self, g: &Geometry) -> Result<(), String> {
        let s = self.parts();
        if s <= 1 {
            return Ok(());
        }
        let kp = self.part_k;
        let why = if kp == 0 || !kp.is_multiple_of(16) || s * kp < g.k {
            "the parts do not cover K (or part_k is not a multiple of 16)"
        } else if (s - 1) * kp >= g.k {
            "a part would hold no K"
        } else if g.batches() != 1 {
            "the stage has batches"
        } else if g.acc() != DType::F32 {
            "the accumulator is not f32"
        } else if (self.a_stages, self.b_stages) != (1, 1) || self.accumulators > 1 {
            "loads are deep or there are two accumulators"
        } else if self.tail_parts > 1 {
            "the last round is cut into strips"
        } else if self.red_rows == 0 || self.red_cols == 0 || !self.red_cols.is_multiple_of(16) {
            "the reduction chunks are not set"
        } else {
            return Ok(());
        };
        Err(format!("split_k={s}: {why}"))
    }

    /// Why the load depths are not valid for a stage of K `k` (see
    /// [`CubeSchedule::a_stages`]), if they are not.
    pub fn check_depths(&self, k: u64) -> Result<(), String> {
        let (sa, sb) = (self.a_stages, self.b_stages);
        if sa == 0 || sb == 0 || (sa > 1 && sb > 1) {
            return Err(format!(
                "a_stages={sa} b_stages={sb} (one of them must be 1)"
            ));
        }
        let deep = sa.max(sb);
        if deep > 1 && (deep != DEEP_STAGES || !deep_loads_fit(k, self.l1_k)) {
            return Err(format!(
                "a_stages={sa} b_stages={sb} with l1_k={} needs stages of {DEEP_STAGES} and K ({k}) a multiple of {}",
                self.l1_k,
                2 * DEEP_STAGES * self.l1_k
            ));
        }
        Ok(())
    }
}

/// The on-chip buffers of a cube matmul (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CubeLayout {
    /// A's L1 stages in NZ (`a_l1`, two copies).
    pub a_l1: LocalBuf,
    /// B's L1 stages in NZ (`b_l1`, two copies).
    pub b_l1: LocalBuf,
    /// A's L0 steps (`a_l0`, L0A, two copies).
    pub a_l0: LocalBuf,
    /// B's L0 steps (`b_l0`, L0B, two copies).
    pub b_l0: LocalBuf,
    /// The accumulator tile (`acc`, L0C).
    pub acc: LocalBuf,
    /// Coupled machines: the epilogue's UB chunks (`out`, two copies).
    pub out: Option<LocalBuf>,
    /// Split-K: the vector cores' reduction buffers.
    pub reduce: Option<SplitBufs>,
}

/// The UB buffers of a split-K reduction (on the vector cores), one
/// `red_rows × red_cols` chunk each.
#[derive(Copy, Clone, Debug, PartialEq, Default)]
pub struct SplitBufs {
    /// The running sum (`r_acc`, accumulator dtype).
    pub acc: LocalBuf,
    /// The next part (`r_part`, two copies).
    pub part: LocalBuf,
    /// The cast result (`r_out`), when the output dtype is not the
    /// accumulator's.
    pub out: Option<LocalBuf>,
}

impl CubeLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        let mut v = vec![
            ("a_l1".to_string(), self.a_l1),
            ("b_l1".to_string(), self.b_l1),
            ("a_l0".to_string(), self.a_l0),
            ("b_l0".to_string(), self.b_l0),
            ("acc".to_string(), self.acc),
        ];
        if let Some(o) = self.out {
            v.push(("out".to_string(), o));
        }
        if let Some(r) = self.reduce {
            v.push(("r_acc".to_string(), r.acc));
            v.push(("r_part".to_string(), r.part));
            if let Some(o) = r.out {
                v.push(("r_out".to_string(), o));
            }
        }
        v
    }
}

/// The tiles of a vector matmul: output tiles of `rows × cols` accumulate
/// over `k_chunk`-deep chunks of K.
///
/// Two forms:
/// - **outer products** (`dot == false`): per k, each row's `a[i, k]`
///   scales B's row of `cols` lanes (`cols` a multiple of 64);
/// - **dot products** (`dot == true`, for narrow B (`n < 256`), A not
///   transposed):
///   the tile is `rows × n` (`cols == n`), each output a dot product of
///   A's row with B's column along K, 64 lanes of K at a time, folded
///   across K at the tile's end; `k_chunk` is a multiple of 64.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VecMatSchedule {
    /// Output tile rows.
    pub rows: u64,
    /// Output tile columns (a multiple of 64; all of N in the dot form).
    pub cols: u64,
    /// K per chunk.
    pub k_chunk: u64,
    /// The dot-product form.
    pub dot: bool,
    /// Output tiles of the whole stage.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: VecMatLayout,
}

/// The UB buffers of a vector matmul (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VecMatLayout {
    /// A's chunk (`a`, two copies).
    pub a: LocalBuf,
    /// A's chunk widened to the accumulator dtype (`a32`; the dot form,
    /// when the dtypes differ).
    pub a_wide: Option<LocalBuf>,
    /// B's chunk and what it becomes.
    pub b: VecMatB,
    /// The products (`prod`): a tile's row of them (outer products), or
    /// every output's `k_chunk` (dot products).
    pub prod: LocalBuf,
    /// The accumulator tile (`acc`), `k_chunk` lanes an output in the
    /// dot form.
    pub acc: LocalBuf,
    /// The output tile (`out`).
    pub out: LocalBuf,
}

/// How a vector matmul holds B's chunk.
#[derive(Clone, Debug, PartialEq)]
pub enum VecMatB {
    /// B row-major: loaded (`b`, two copies), widened to the accumulator
    /// dtype when it differs (`b32`).
    RowMajor {
        /// The loaded chunk.
        b: LocalBuf,
        /// The widened chunk.
        widened: Option<LocalBuf>,
    },
    /// B stored transposed: Bᵀ loaded (`bt`, two copies), widened
    /// (`bt32`), gathered into row-major order (`b32`) through an index
    /// table (`idx`).
    Transposed {
        /// The loaded Bᵀ chunk.
        bt: LocalBuf,
        /// Bᵀ widened.
        widened: Option<LocalBuf>,
        /// The gather offsets.
        idx: LocalBuf,
        /// The row-major chunk.
        gathered: LocalBuf,
    },
    /// The dot form's B: the chunk loaded (`b`, two copies; `[k, n]`, or
    /// `[n, k]` when B is stored transposed), widened when the dtypes
    /// differ (`b32`), and, when B is row-major, gathered into columns
    /// (`cols`, `[n, k]`) through an index table (`idx`).
    Columns {
        /// The loaded chunk.
        b: LocalBuf,
        /// The widened chunk.
        widened: Option<LocalBuf>,
        /// The gather offsets and the columns (B row-major).
        gather: Option<(LocalBuf, LocalBuf)>,
    },
}

impl Default for VecMatB {
    fn default() -> Self {
        VecMatB::RowMajor {
            b: LocalBuf::default(),
            widened: None,
        }
    }
}

impl VecMatLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        let mut v = vec![("a".to_string(), self.a)];
        if let Some(w) = self.a_wide {
            v.push(("a32".to_string(), w));
        }
        match &self.b {
            VecMatB::RowMajor { b, widened } => {
                v.push(("b".to_string(), *b));
                if let Some(w) = widened {
                    v.push(("b32".to_string(), *w));
                }
            }
            VecMatB::Transposed {
                bt,
                widened,
                idx,
                gathered,
            } => {
                v.push(("bt".to_string(), *bt));
                if let Some(w) = widened {
                    v.push(("bt32".to_string(), *w));
                }
                v.push(("idx".to_string(), *idx));
                v.push(("b32".to_string(), *gathered));
            }
            VecMatB::Columns { b, widened, gather } => {
                v.push(("b".to_string(), *b));
                if let Some(w) = widened {
                    v.push(("b32".to_string(), *w));
                }
                if let Some((idx, cols)) = gather {
                    v.push(("idx".to_string(), *idx));
                    v.push(("cols".to_string(), *cols));
                }
            }
        }
        v.push(("prod".to_string(), self.prod));
        v.push(("acc".to_string(), self.acc));
        v.push(("out".to_string(), self.out));
        v
    }
}

/// The shape of a matmul stage, with batch dims coalesced.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Coalesced batch extents (`[1]` when there is no batch).
    pub batch: Vec<u64>,
    /// Batch strides (elements) of A over `batch`.
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
    /// The accumulator's scale, before relu ([`MatMul::scale`]).
    pub scale: Option<f32>,
}

impl Geometry {
    /// The geometry of a matmul stage.
    pub fn of(mm: &MatMul) -> Result<Geometry, String> {
        let (a, b, out) = (&mm.a, &mm.b, &mm.out);
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
            relu: mm.relu,
            scale: mm.scale,
        })
    }

    /// Number of batches.
    pub fn batches(&self) -> u64 {
        self.batch.iter().product()
    }

    /// Elements per 32-byte block of the input dtype (`C0`).
    pub fn c0(&self) -> u64 {
        32 / self.dtype.size_bytes() as u64
    }

    /// The accumulation dtype (f32, or i32 for i8).
    pub fn acc(&self) -> DType {
        if self.dtype.is_int() {
            DType::I32
        } else {
            DType::F32
        }
    }

    /// Bytes of one split-K part's partial tiles: the whole `m × n` output
    /// in the accumulation dtype (the partials workspace holds one per
    /// part, part-major).
    pub fn partial_bytes(&self) -> u64 {
        self.m * self.n * self.acc().size_bytes() as u64
    }
}

/// The strips of a stage's last round (see [`CubeSchedule::tail_parts`]).
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
    pub fn of(g: &Geometry, t: &CubeSchedule, cores: u64) -> Option<Tail> {
        if t.tail_parts <= 1 || g.batches() != 1 {
            return None;
        }
        let tn = g.n.div_ceil(t.base_n);
        let tm = g.m.div_ceil(t.base_m);
        let tiles = tm * tn;
        let r = tiles % cores;
        if tiles <= cores || r == 0 || r * t.tail_parts > cores {
            return None;
        }
        let width = t.tail_width();
        let first = tiles - r;
        let nonempty = (first..tiles).all(|q| {
            let (_, _, col) = t.tile_at(q, tm, tn);
            let w = t.base_n.min(g.n - col * t.base_n);
            w > (t.tail_parts - 1) * width
        });
        nonempty.then_some(Tail {
            first,
            parts: t.tail_parts,
            width,
            tiles,
        })
    }

    /// The tile indices the stage's loop runs over: whole tiles, then strips.
    pub fn indices(&self) -> u64 {
        self.first + (self.tiles - self.first) * self.parts
    }
}

/// Rows of an L1 NZ buffer holding `rows` rows (fractal-padded, and to
/// `C0` rows when a transposing load reads `C0`-row blocks).
pub fn nz_rows(rows: u64, c0: u64) -> u64 {
    rows.div_ceil(16.max(c0)) * 16.max(c0)
}

/// Bytes of an L1 NZ buffer of `rows × cols`.
pub fn nz_bytes(rows: u64, cols: u64, c0: u64) -> u64 {
    // Transposing loads read whole 16-column groups: cover them.
    (cols.div_ceil(16) * 16).div_ceil(c0) * nz_rows(rows, c0) * 32
}

/// Pitches (elements) of a vector matmul's UB tiles.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VecPitch {
    /// Row pitch of the A tile (k when row-major, m when transposed).
    pub a: u64,
    /// Row pitch of the transposed B tile (k).
    pub bt: u64,
    /// Row pitch of the dot form's row-major B chunk (`[k, n]`): n when
    /// B's rows are contiguous in GM (the chunk is one burst), else n
    /// rounded up to 32 bytes.
    pub b: u64,
    /// Row pitch of the output tile: `cols`, or in the dot form n rounded
    /// up to 32 bytes of the output dtype.
    pub out: u64,
}

/// Whether the dot form runs a tile row's products as one instruction per
/// repeat position over its `n` outputs (A's repeat read again for each),
/// rather than one per output over its `reps` repeats of K: when that
/// makes fewer, longer instructions.
pub fn dot_across_outputs(n: u64, reps: u64) -> bool {
    n > reps
}

/// The pitches of a vector matmul of geometry `g` with tiles `t`.
pub fn vec_pitch(g: &Geometry, t: &VecMatSchedule) -> VecPitch {
    let e = 32 / g.dtype.size_bytes() as u64;
    let up = |x: u64, a: u64| x.div_ceil(a) * a;
    VecPitch {
        a: if g.a_t {
            up(t.rows, e)
        } else {
            up(t.k_chunk, e)
        },
        bt: up(t.k_chunk, 8.max(e)),
        b: if !t.dot {
            t.cols
        } else if g.b_row == g.n {
            g.n
        } else {
            up(g.n, e)
        },
        out: if t.dot {
            up(g.n, 32 / g.out.size_bytes() as u64)
        } else {
            t.cols
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(group_m: u64) -> CubeSchedule {
        CubeSchedule {
            group_m,
            ..CubeSchedule::default()
        }
    }

    #[test]
    fn grouped_orders_walk_each_group_column_by_column() {
        // 5 × 3 tiles in groups of 2 rows: rows {0, 1}, {2, 3}, then the
        // last group of row 4 alone; within a group the row is the fast
        // digit. Written out by hand.
        let want = [
            (0, 0),
            (1, 0),
            (0, 1),
            (1, 1),
            (0, 2),
            (1, 2),
            (2, 0),
            (3, 0),
            (2, 1),
            (3, 1),
            (2, 2),
            (3, 2),
            (4, 0),
            (4, 1),
            (4, 2),
        ];
        let t = order(2);
        for (idx, &(m, n)) in want.iter().enumerate() {
            assert_eq!(t.tile_at(idx as u64, 5, 3), (0, m, n), "tile {idx}");
        }
        // The next batch starts over.
        assert_eq!(t.tile_at(15 + 2, 5, 3), (1, 0, 1));
        // Row-major (0 and 1 alike), and a group of every row is
        // column-major.
        for g in [0, 1] {
            assert_eq!(order(g).tile_at(4, 5, 3), (0, 1, 1));
        }
        assert_eq!(order(5).tile_at(4, 5, 3), (0, 4, 0));
        assert_eq!(order(5).tile_at(7, 5, 3), (0, 2, 1));
    }

    #[test]
    fn folded_rows_take_their_columns_slab_by_slab() {
        let fold = |f: u64| CubeSchedule {
            fold: f,
            ..CubeSchedule::default()
        };
        // Written out by hand. Two slabs of 4: run j takes columns j and
        // 7 − j.
        let cols: Vec<u64> = (0..8).map(|w| fold(2).tile_at(w, 3, 8).2).collect();
        assert_eq!(cols, [0, 7, 1, 6, 2, 5, 3, 4]);
        // Three slabs of 2: the middle slab runs backwards.
        let cols: Vec<u64> = (0..6).map(|w| fold(3).tile_at(w, 1, 6).2).collect();
        assert_eq!(cols, [0, 3, 4, 1, 2, 5]);
        // Rows stay row-major, and the next row folds the same way.
        assert_eq!(fold(2).tile_at(8 + 3, 3, 8), (0, 1, 6));
        // A fold that does not divide the columns leaves them in order.
        assert_eq!(fold(3).tile_at(4, 2, 8), (0, 0, 4));
    }

    #[test]
    fn halves_need_a_split_machine_one_accumulator_and_whole_left_blocks() {
        let geometry = |dtype: DType, b_t: bool| Geometry {
            batch: vec![1],
            a_bs: vec![0],
            b_bs: vec![0],
            c_bs: vec![0],
            m: 256,
            k: 1024,
            n: 256,
            a_t: false,
            b_t,
            a_row: 1024,
            b_row: if b_t { 1024 } else { 256 },
            c_row: 256,
            dtype,
            out: dtype,
            relu: false,
            scale: None,
        };
        let halves = |base_n: u64| CubeSchedule {
            base_m: 128,
            base_n,
            halves: true,
            ..CubeSchedule::default()
        };
        let f16 = geometry(DType::F16, false);
        // Off, anything goes; on, a split machine only.
        let off = CubeSchedule {
            accumulators: 2,
            ..halves(16)
        };
        assert_eq!(
            CubeSchedule {
                halves: false,
                ..off
            }
            .check_halves(&f16, false),
            Ok(())
        );
        assert_eq!(halves(256).check_halves(&f16, true), Ok(()));
        assert!(halves(256).check_halves(&f16, false).is_err());
        let two = CubeSchedule {
            accumulators: 2,
            ..halves(256)
        };
        let split_k = CubeSchedule {
            split_k: 2,
            ..halves(256)
        };
        assert!(two.check_halves(&f16, true).is_err());
        assert!(split_k.check_halves(&f16, true).is_err());
        // One 16-column block has no right half; 32 columns split 16 + 16.
        assert!(halves(16).check_halves(&f16, true).is_err());
        assert_eq!(halves(32).check_halves(&f16, true), Ok(()));
        // i8 blocks are 32 columns: a 96-column tile's left half is 48
        // (refused), a 128-column tile's 64 (two blocks); a transposed B
        // takes any half.
        let i8 = geometry(DType::I8, false);
        assert!(halves(96).check_halves(&i8, true).is_err());
        assert_eq!(halves(128).check_halves(&i8, true), Ok(()));
        assert_eq!(
            halves(96).check_halves(&geometry(DType::I8, true), true),
            Ok(())
        );
    }

    #[test]
    fn every_order_takes_each_tile_once() {
        for (tm, tn) in [(1, 1), (7, 3), (32, 16), (5, 48), (3, 12)] {
            for g in [1, 2, 4, 8, 16, 102, 103, 104] {
                // 100 + f: row-major folded into f slabs.
                let t = if g > 100 {
                    CubeSchedule {
                        fold: g - 100,
                        ..CubeSchedule::default()
                    }
                } else {
                    order(g)
                };
                let mut seen = vec![false; (2 * tm * tn) as usize];
                for idx in 0..2 * tm * tn {
                    let (q, m, n) = t.tile_at(idx, tm, tn);
                    assert!(m < tm && n < tn && q < 2, "{tm}×{tn} g={g}: {idx}");
                    let at = ((q * tm + m) * tn + n) as usize;
                    assert!(!seen[at], "{tm}×{tn} g={g}: {idx} twice");
                    seen[at] = true;
                }
            }
        }
    }
}
