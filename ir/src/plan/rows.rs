//! Row stages: a fused group over rows, on the vector unit. Values are
//! *full* (`[rows, n]`: one per element) or *per row* (`[rows]`: one per
//! row); a reduction folds each row of a full value to a per-row value and
//! an expansion spreads a per-row value back over its row, so softmax,
//! layer and RMS norms and the same patterns written out by hand read each
//! input once and write each result once.
//!
//! A tile is `rows` whole rows (`pitch` elements apart in UB, `n` of them
//! valid) kept in UB from the first load to the last store. Full inputs are
//! row-major (a row stride of 0 repeats one row: a `[n]` vector); per-row
//! inputs are contiguous; constants are filled once.

use super::{EwArg, EwOp, LocalBuf, View};
use crate::op::{BinaryOp, ReduceOp};
use crate::types::DType;

/// Elements of one vector repeat of 4-byte values: a row's pitch is a
/// multiple of it, so reductions fold whole repeats.
pub const ROW_ALIGN: u64 = 64;

/// Elements of a chunk of a chunked row are a multiple of this: whole
/// repeats of every dtype (128 2-byte values), so only the last chunk of a
/// row folds a partial repeat.
pub const CHUNK_ALIGN: u64 = 128;

/// Rows of at most this many elements are computed *transposed*: a tile of
/// `rows` rows (a multiple of [`ROW_ALIGN`]) is gathered into `n` column
/// runs of `rows` elements, so an elementwise op is one instruction over
/// the whole tile, a reduction folds the `n` runs and a per-row value is a
/// run of `rows`; the result is gathered back into rows. Padding each row
/// to whole repeats instead would waste up to 64 / `n` of every op.
pub const TRANSPOSE_MAX_N: u64 = 32;

/// Whether a value is full (`[rows, n]`) or one per row (`[rows]`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Width {
    /// One value per element.
    Full,
    /// One value per row.
    Row,
}

impl Width {
    /// `full` or `row`.
    pub fn name(self) -> &'static str {
        match self {
            Width::Full => "full",
            Width::Row => "row",
        }
    }
}

/// An instruction of a row stage's body.
#[derive(Clone, Debug, PartialEq)]
pub enum RowsOp {
    /// Elementwise, at the instruction's width (operands of that width).
    Ew(EwOp),
    /// The reduction of each row of a full operand (accumulated in f32 or
    /// i32; `mean` divides by `n`): a per-row result.
    Reduce(ReduceOp),
    /// A per-row operand spread over its row: a full result.
    Expand,
}

/// One instruction: op, operands (stage inputs or earlier instructions),
/// result dtype and width.
#[derive(Clone, Debug, PartialEq)]
pub struct RowsInst {
    /// The op.
    pub op: RowsOp,
    /// Operands.
    pub args: Vec<EwArg>,
    /// Result dtype.
    pub dtype: DType,
    /// Result width.
    pub width: Width,
}

/// An input of a row stage.
#[derive(Clone, Debug, PartialEq)]
pub struct RowsInput {
    /// The view: `[rows, n]` for a full input (column stride 1), or
    /// `[rows / p, p, n]` for one whose rows repeat with period `p` (a mask
    /// broadcast over heads: [`RowsInput::period`]); `[rows]` for a per-row
    /// one (stride 1); or a constant.
    pub view: View,
    /// Its width.
    pub width: Width,
}

impl RowsInput {
    /// A full input that is one row for every row (row stride 0).
    pub fn repeats_one_row(&self) -> bool {
        self.width == Width::Full && matches!(self.view.strides.as_slice(), [0, _])
    }

    /// The stride between consecutive rows of a full input (0 when it
    /// repeats one row; within a period for a periodic one).
    pub fn row_stride(&self) -> u64 {
        match self.view.strides.as_slice() {
            [rs, _] | [_, rs, _] => *rs,
            _ => 0,
        }
    }

    /// For a periodic full input (`[rows / p, p, n]` with strides
    /// `[hs, rs, 1]`): `(p, hs, rs)`, row `r` being at `(r / p)·hs +
    /// (r % p)·rs`. A tile of rows must not cross a multiple of `p`.
    pub fn period(&self) -> Option<(u64, u64, u64)> {
        match (
            self.width,
            self.view.shape.as_slice(),
            self.view.strides.as_slice(),
        ) {
            (Width::Full, [_, p, _], [hs, rs, _]) => Some((*p, *hs, *rs)),
            _ => None,
        }
    }
}

/// A fused row stage; the last instruction is the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Rows of the whole stage.
    pub outer: u64,
    /// Elements of a row.
    pub n: u64,
    /// Inputs.
    pub inputs: Vec<RowsInput>,
    /// The body.
    pub body: Vec<RowsInst>,
    /// The result: `[rows, n]` or `[rows]`, contiguous.
    pub out: View,
    /// Tiles and buffers.
    pub schedule: RowsSchedule,
}

impl Rows {
    /// The result's width (the last instruction's).
    pub fn out_width(&self) -> Width {
        self.body.last().map_or(Width::Full, |i| i.width)
    }

    /// Whether any instruction reduces.
    pub fn reduces(&self) -> bool {
        self.body.iter().any(|i| matches!(i.op, RowsOp::Reduce(_)))
    }

    /// Whether any instruction expands.
    pub fn expands(&self) -> bool {
        self.body.iter().any(|i| i.op == RowsOp::Expand)
    }
}

/// How a row stage is tiled.
///
/// With `chunks` ≤ 1 a tile is `rows` whole rows kept in UB. A row longer
/// than UB holds is *chunked*: a tile is one row (`rows == 1`), streamed in
/// `chunks` chunks of `pitch` elements (a multiple of [`CHUNK_ALIGN`]; the
/// last chunk holds the rest) once per pass of the body ([`Passes`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RowsSchedule {
    /// Rows of a tile.
    pub rows: u64,
    /// Elements between rows in UB (a multiple of [`ROW_ALIGN`]); chunked,
    /// the elements of a chunk.
    pub pitch: u64,
    /// Chunks of a row: 1 (or 0) when whole rows fit UB.
    pub chunks: u64,
    /// Whether tiles are computed transposed ([`TRANSPOSE_MAX_N`]).
    pub transposed: bool,
    /// Chunked: whether one row per pass is in flight ([`pipelines`]).
    pub pipelined: bool,
    /// Whether reductions of at least 32 repeats (of a row; chunked, of a
    /// chunk) fold block by block first (`vec.bsum`…, a converted row in
    /// place, another into `part`; then an eighth of the repeats across):
    /// fewer vector cycles, chosen when the stage is bound by its vector
    /// work rather than its GM traffic. Not transposed.
    pub blockwise: bool,
    /// Tiles of the whole stage.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: RowsLayout,
}

impl RowsSchedule {
    /// Whether rows are streamed in chunks.
    pub fn chunked(&self) -> bool {
        self.chunks > 1
    }
}

/// The UB buffers of a row stage (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RowsLayout {
    /// Per input (`in{i}`; two copies, one for a constant).
    pub inputs: Vec<LocalBuf>,
    /// The results of every instruction but the last (`t{j}`).
    pub temps: Vec<LocalBuf>,
    /// The result tile (`out`, two copies).
    pub out: LocalBuf,
    /// f32 scratch tiles of composites (`scr{k}`).
    pub scratch: Vec<LocalBuf>,
    /// A full f32/i32 tile for reductions of narrower values (`wide`).
    pub wide: Option<LocalBuf>,
    /// Per row one repeat of lanes, for reductions (`lanes`).
    pub lanes: Option<LocalBuf>,
    /// Per-row accumulators (`acc`).
    pub acc: Option<LocalBuf>,
    /// Per-row values replicated into 32-byte blocks, for expansions
    /// (`blocks`).
    pub blocks: Option<LocalBuf>,
    /// Transposed: per input, the rows as loaded, before the gather into
    /// its column runs (`raw{i}`; streamed inputs and repeated rows).
    pub raw: Vec<Option<LocalBuf>>,
    /// Transposed: the result's column runs, before the gather back into
    /// rows (`cols`).
    pub cols: Option<LocalBuf>,
    /// Transposed: the gathers' byte offsets (`idx`; per element size the
    /// stage gathers, into columns then back into rows).
    pub idx: Option<LocalBuf>,
    /// Folding block by block (`blockwise`): the partial sums of reductions
    /// whose operand is not scratch to fold in place (`part`; an eighth of
    /// a tile of f32).
    pub part: Option<LocalBuf>,
}

impl RowsLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        let mut out = Vec::new();
        for (i, b) in self.inputs.iter().enumerate() {
            out.push((format!("in{i}"), *b));
        }
        for (j, t) in self.temps.iter().enumerate() {
            out.push((format!("t{j}"), *t));
        }
        out.push(("out".to_string(), self.out));
        for (k, s) in self.scratch.iter().enumerate() {
            out.push((format!("scr{k}"), *s));
        }
        for (k, b) in self.raw.iter().enumerate() {
            if let Some(b) = b {
                out.push((format!("raw{k}"), *b));
            }
        }
        for (name, b) in [
            ("wide", self.wide),
            ("lanes", self.lanes),
            ("acc", self.acc),
            ("blocks", self.blocks),
            ("cols", self.cols),
            ("idx", self.idx),
            ("part", self.part),
        ] {
            if let Some(b) = b {
                out.push((name.to_string(), b));
            }
        }
        out
    }
}

/// Elements a per-row buffer of a `rows`-row tile holds: whole groups of
/// eight (an expansion replicates eight values per repeat).
pub fn row_slots(rows: u64) -> u64 {
    rows.div_ceil(8) * 8
}

/// The dtype a reduction of `d` values folds in: `max` and `min` of floats
/// in the values' own dtype (exact in any), sums in f32; integers in i32.
pub fn accumulator(op: ReduceOp, d: DType) -> DType {
    match (op, d.is_float()) {
        (ReduceOp::Max | ReduceOp::Min, true) => d,
        (ReduceOp::Sum | ReduceOp::Mean, true) => DType::F32,
        (_, false) => DType::I32,
    }
}

/// Fewest whole repeats (of its accumulator) a row's reduction folds block
/// by block in a `blockwise` stage: below, the extra instruction and its
/// barrier cost more than the repeats save.
pub const BLOCKWISE_MIN_REPEATS: u64 = 32;

/// What a reduction folds: its operand's dtype and its accumulator's
/// (`None` for an instruction that is not a reduction, or has no operand).
pub fn folds(body: &[RowsInst], inputs: &[RowsInput], inst: &RowsInst) -> Option<(DType, DType)> {
    let RowsOp::Reduce(op) = inst.op else {
        return None;
    };
    let d = match inst.args.first()? {
        EwArg::Input(k) => inputs.get(*k)?.view.dtype,
        EwArg::Inst(k) => body.get(*k)?.dtype,
    };
    Some((d, accumulator(op, d)))
}

/// Whether a reduction of the body folds an operand narrower than its
/// accumulator, which it first converts into a wide buffer.
pub fn widens(body: &[RowsInst], inputs: &[RowsInput]) -> bool {
    body.iter()
        .filter_map(|i| folds(body, inputs, i))
        .any(|(d, acc)| d != acc)
}

/// Whether reduction `j` folds its operand block by block in place (its
/// partials over the operand's own first bytes): the operand is converted
/// to the accumulator first (into scratch), or it is a full instruction's
/// value, not the result, that no other instruction computed alongside
/// (`with`: whole rows, every instruction; chunked, those of the pass that
/// folds `j`, [`Passes::streamed`]) reads. Otherwise its partials go to the
/// `part` buffer.
pub fn folds_in_place(body: &[RowsInst], inputs: &[RowsInput], j: usize, with: &[bool]) -> bool {
    let Some((src, acc)) = body.get(j).and_then(|i| folds(body, inputs, i)) else {
        return false;
    };
    if src != acc {
        return true;
    }
    let Some(&EwArg::Inst(k)) = body[j].args.first() else {
        return false;
    };
    body[k].width == Width::Full
        && k + 1 != body.len()
        && body.iter().enumerate().all(|(i, b)| {
            i == j || !with.get(i).copied().unwrap_or(true) || !b.args.contains(&EwArg::Inst(k))
        })
}

/// Which expansions are never materialised: those read only by full-width
/// binary arithmetic (`add`, `sub`, `mul`, `div`, `maximum`, `minimum`),
/// which read the replicated 32-byte blocks directly, row by row. Their
/// result needs no full tile.
pub fn elided(body: &[RowsInst]) -> Vec<bool> {
    let simple = |i: &RowsInst| {
        i.width == Width::Full
            && matches!(
                i.op,
                RowsOp::Ew(EwOp::Binary(
                    BinaryOp::Add
                        | BinaryOp::Sub
                        | BinaryOp::Mul
                        | BinaryOp::Div
                        | BinaryOp::Maximum
                        | BinaryOp::Minimum
                ))
            )
    };
    let last = body.len().saturating_sub(1);
    body.iter()
        .enumerate()
        .map(|(j, inst)| {
            inst.op == RowsOp::Expand
                && j != last
                && body
                    .iter()
                    .filter(|u| u.args.contains(&EwArg::Inst(j)))
                    .all(simple)
        })
        .collect()
}

/// Shares temporaries between instructions whose results are not live at
/// the same time: for each instruction but the last, the index of the
/// slot its result goes to, and per slot its width and element size.
///
/// A result is live from its instruction to its last reader; an
/// instruction writes a slot one of its own operands is in only when it is
/// one vector instruction per run (composites may read their operands after
/// writing), and slots are shared only between results of the same width
/// and element size.
///
/// Chunked (`chunked`), per-row values live across chunks and passes, so
/// each gets a slot of its own; full values are recomputed per chunk in
/// body order, so sharing them by liveness stays sound.
///
/// Transposed (`!elide`), every expansion is materialised.
pub fn temp_slots(
    body: &[RowsInst],
    chunked: bool,
    elide: bool,
) -> (Vec<usize>, Vec<(Width, usize)>) {
    let n = body.len().saturating_sub(1);
    let mut last_use = super::elementwise::last_uses(body.iter().map(|i| i.args.as_slice()));
    // An expansion's readers may read the per-row value itself (the
    // scalar-operand form loads it into a register where they run), so the
    // value stays live as long as its expansion.
    for (j, inst) in body.iter().enumerate().take(n) {
        if inst.op == RowsOp::Expand
            && let Some(&EwArg::Inst(a)) = inst.args.first()
            && a < n
        {
            last_use[a] = last_use[a].max(last_use[j]);
        }
    }
    let elided = if elide {
        elided(body)
    } else {
        vec![false; body.len()]
    };
    let mut slot_of = Vec::with_capacity(n);
    let mut slots: Vec<(Width, usize)> = Vec::new();
    // The instruction up to which each slot is busy.
    let mut busy_until: Vec<usize> = Vec::new();
    // Slots of per-row values of a chunked stage: never shared.
    let mut reserved: Vec<bool> = Vec::new();
    for (j, inst) in body.iter().take(n).enumerate() {
        // An elided expansion keeps only its per-row values.
        let width = if elided[j] { Width::Row } else { inst.width };
        let class = (width, inst.dtype.size_bytes());
        let shareable = !(chunked && width == Width::Row);
        // A one-instruction elementwise op may overwrite an operand it
        // reads last (each lane reads before it writes).
        let in_place = |s: usize| busy_until[s] == j && width == Width::Full && in_place_ok(inst);
        let free = (0..slots.len()).find(|&s| {
            shareable && slots[s] == class && (busy_until[s] < j || in_place(s)) && !reserved[s]
        });
        let s = match free {
            Some(s) => s,
            None => {
                slots.push(class);
                busy_until.push(0);
                reserved.push(false);
                slots.len() - 1
            }
        };
        busy_until[s] = last_use[j].max(j);
        if !shareable {
            reserved[s] = true;
        }
        slot_of.push(s);
    }
    (slot_of, slots)
}

/// Whether an instruction may overwrite an operand (see
/// [`super::elementwise::in_place_ok`]).
fn in_place_ok(inst: &RowsInst) -> bool {
    match &inst.op {
        RowsOp::Ew(e) => super::elementwise::in_place_ok(e),
        RowsOp::Reduce(_) | RowsOp::Expand => false,
    }
}

/// Copies of each streamed buffer (full inputs and the result) of a
/// chunked stage: three when pipelined, so that a step's loads run two
/// steps ahead (a pass's HBM reads overlap the other passes' work), else
/// two (ping-pong).
pub fn stream_copies(pipelined: bool) -> u32 {
    if pipelined { 3 } else { 2 }
}

/// Whether a chunked stage keeps one row per pass in flight (step s runs
/// pass s mod passes of the row that pass is on): when its first pass only
/// folds its inputs, or is an online softmax's ([`online`]), or an online
/// variance's of an input ([`online_variance`]). Such a pass is bound by
/// HBM reads, its last pass by HBM writes, and the passes of neighbouring
/// rows overlap the two (with [`stream_copies`], a pass's reads run two
/// steps ahead); a first pass that computes more (layer_norm's conversion
/// of an f16 row before its sums) makes the stage vector-bound, and the
/// pipeline's extra steps (and its smaller chunks) cost more than they
/// hide.
pub fn pipelines(body: &[RowsInst], inputs: &[Width]) -> bool {
    let passes = Passes::of(body, inputs);
    let first = passes.streamed(body, 0);
    passes.count > 1
        && (online(body, inputs).is_some()
            || online_variance(body, inputs)
                .is_some_and(|(m, _)| matches!(body[m].args.as_slice(), [EwArg::Input(_)]))
            || body.iter().zip(&first).all(|(inst, &on)| {
                !on || (matches!(inst.op, RowsOp::Reduce(_))
                    && inst.args.iter().all(|a| matches!(a, EwArg::Input(_))))
            }))
}

/// The online softmax of a chunked row stage: `(m, s)` when instruction
/// `m` is the `max` of a full value `x` computed in the first pass (an
/// input, or computed from inputs alone) and `s` the `sum` of
/// `exp(x − expand(m))`, through instructions `m + 1 … s` (the expansion,
/// the difference, the exponential), and the sum's pass streams nothing
/// else. Then `s` needs no pass of its own: each chunk's maximum raises the
/// running one, the sum's lanes are scaled by `exp(old − new)` (in f32) and
/// the chunk's exponentials, taken against the running maximum, are folded
/// in; `m` starts at the dtype's lowest finite value, so chunks of −∞ add
/// zeros rather than NaN.
pub fn online(body: &[RowsInst], inputs: &[Width]) -> Option<(usize, usize)> {
    folded_chain(body, inputs, Chain::Softmax)
}

/// The online variance of a chunked row stage: `(m, v)` when instruction
/// `m` is the `mean` of a full f32 value `x` computed in the first pass and
/// `v` the `mean` or `sum` of `d · d`, `d = x − expand(m)`, through
/// instructions `m + 1 … v` (the expansion, the difference, the square),
/// all f32, the squares' pass streams nothing else, and the stage has no
/// online softmax ([`online`]). Then `v` needs no pass of its own: both are
/// folded about a *shift* `K`, the mean of the row's first chunk (0 when
/// not finite), as `Σ (x − K)` and `Σ (x − K)²`; after the pass, with `a =
/// Σ (x − K) / n`, `m = K + a` and `e = m − K`, the variance about the
/// rounded `m` is `Σ (x − K)² / n − a² + (a − e)²` (the first two terms
/// clamped at zero).
///
/// The shifted sums cancel no worse than the chunks are many: the first
/// chunk alone gives the variance `σ²` at least `a² · c / n` (its `c`
/// elements' mean is `K`), so the subtraction loses at most a factor
/// `1 + n / c` of the sums' relative error.
pub fn online_variance(body: &[RowsInst], inputs: &[Width]) -> Option<(usize, usize)> {
    if online(body, inputs).is_some() {
        return None;
    }
    folded_chain(body, inputs, Chain::Variance)
}

/// The reduction chains a chunked stage folds into the pass before theirs.
#[derive(Copy, Clone, PartialEq)]
enum Chain {
    /// `max`, expand, `sub`, `exp`, `sum` ([`online`]).
    Softmax,
    /// `mean`, expand, `sub`, `mul` (a square), `mean` or `sum`, all f32
    /// ([`online_variance`]).
    Variance,
}

/// The first chain of kind `chain` a chunked stage folds: `(m, m + 4)`.
fn folded_chain(body: &[RowsInst], inputs: &[Width], chain: Chain) -> Option<(usize, usize)> {
    let plain = Passes::of_written(body, inputs);
    (0..body.len()).find_map(|m| {
        let first = match chain {
            Chain::Softmax => ReduceOp::Max,
            Chain::Variance => ReduceOp::Mean,
        };
        let x = match (&body[m].op, body[m].args.as_slice()) {
            (RowsOp::Reduce(op), [x]) if *op == first => *x,
            _ => return None,
        };
        let full_first = match x {
            EwArg::Input(k) => inputs.get(k) == Some(&Width::Full),
            EwArg::Inst(k) => body[k].width == Width::Full && plain.of[k] == 0,
        };
        let at = |j: usize, op: &RowsOp, args: &[EwArg]| {
            body.get(j).is_some_and(|i| i.op == *op && i.args == args)
        };
        let (d, sq) = (EwArg::Inst(m + 2), EwArg::Inst(m + 3));
        let tail = match chain {
            Chain::Softmax => {
                at(
                    m + 3,
                    &RowsOp::Ew(EwOp::Unary(crate::op::UnaryOp::Exp)),
                    &[d],
                ) && at(m + 4, &RowsOp::Reduce(ReduceOp::Sum), &[sq])
            }
            Chain::Variance => {
                // Every value f32 (`x` too: the difference's operand):
                // the shift and its correction are f32 arithmetic.
                (m..=m + 4).all(|j| body.get(j).is_some_and(|i| i.dtype == DType::F32))
                    && at(m + 3, &RowsOp::Ew(EwOp::Binary(BinaryOp::Mul)), &[d, d])
                    && (at(m + 4, &RowsOp::Reduce(ReduceOp::Mean), &[sq])
                        || at(m + 4, &RowsOp::Reduce(ReduceOp::Sum), &[sq]))
            }
        };
        let head = plain.of[m] == 0
            && full_first
            && at(m + 1, &RowsOp::Expand, &[EwArg::Inst(m)])
            && at(
                m + 2,
                &RowsOp::Ew(EwOp::Binary(BinaryOp::Sub)),
                &[x, EwArg::Inst(m + 1)],
            );
        // Nothing else may be streamed in the folded pass.
        let alone = (0..body.len()).all(|j| {
            plain.of[j] != 1
                || (m + 1..=m + 4).contains(&j)
                || (body[j].width == Width::Row && !matches!(body[j].op, RowsOp::Reduce(_)))
        });
        (head && tail && alone).then_some((m, m + 4))
    })
}

/// When each instruction of a chunked row stage runs: the pass that
/// computes a full value (chunk by chunk) or after which a per-row value is
/// known (−1: from per-row inputs alone, before the first pass).
///
/// A reduction is known after the pass that streams its operand; a full
/// value that reads a per-row value (through an expansion) runs in a later
/// pass. A full value needed in a later pass than its own is recomputed
/// there from the inputs, which are read again (each pass is one streaming
/// read of what it needs). The online softmax ([`online`]) folds the sum's
/// pass into the maximum's, and the online variance ([`online_variance`])
/// the squares' pass into the mean's, one pass fewer (their results are
/// then within the reduction tolerance of the whole-row form's); otherwise
/// the results are the same bits as the whole-row form's.
#[derive(Clone, Debug, PartialEq)]
pub struct Passes {
    /// Per instruction, its pass.
    pub of: Vec<i64>,
    /// Passes over each row (at least 1).
    pub count: u64,
}

impl Passes {
    /// The passes of a body over inputs of widths `inputs`, with the
    /// online softmax's sum ([`online`]) or the online variance's squares
    /// ([`online_variance`]) in the first pass.
    pub fn of(body: &[RowsInst], inputs: &[Width]) -> Passes {
        let plain = Passes::of_written(body, inputs);
        if online(body, inputs).is_none() && online_variance(body, inputs).is_none() {
            return plain;
        }
        let of = plain
            .of
            .iter()
            .map(|&p| if p >= 1 { p - 1 } else { p })
            .collect();
        Passes {
            of,
            count: (plain.count - 1).max(1),
        }
    }

    /// The passes of a body as written: each reduction known one pass
    /// after what it reads.
    fn of_written(body: &[RowsInst], inputs: &[Width]) -> Passes {
        let mut of: Vec<i64> = Vec::with_capacity(body.len());
        for inst in body {
            let arg = |a: &EwArg| match *a {
                EwArg::Input(k) => match inputs.get(k) {
                    Some(Width::Row) => -1,
                    _ => 0,
                },
                EwArg::Inst(k) => of.get(k).copied().unwrap_or(0),
            };
            let deepest = inst.args.iter().map(arg).max().unwrap_or(-1);
            let p = match inst.op {
                // Spread a per-row value over its row in the pass after it
                // is known.
                RowsOp::Expand => deepest + 1,
                RowsOp::Reduce(_) => deepest.max(0),
                RowsOp::Ew(_) => match inst.width {
                    Width::Full => deepest.max(0),
                    Width::Row => deepest,
                },
            };
            of.push(p);
        }
        let count = of.last().map_or(1, |&p| (p + 1).max(1)) as u64;
        Passes { of, count }
    }

    /// Which full instructions pass `q` computes for each chunk: those the
    /// reductions known after `q` read, and on the last pass those the
    /// result reads (when it is full).
    pub fn streamed(&self, body: &[RowsInst], q: u64) -> Vec<bool> {
        let q = q as i64;
        let mut need = vec![false; body.len()];
        let last = body.len().saturating_sub(1);
        for (j, inst) in body.iter().enumerate().rev() {
            let root = match inst.op {
                RowsOp::Reduce(_) => self.of[j] == q,
                RowsOp::Ew(_) | RowsOp::Expand => {
                    j == last && inst.width == Width::Full && self.count as i64 == q + 1
                }
            };
            if root {
                need[j] = true;
            }
            if !need[j] {
                continue;
            }
            // Full operands are computed in this chunk too; per-row ones
            // are known already.
            let full_reader = inst.width == Width::Full || matches!(inst.op, RowsOp::Reduce(_));
            if !full_reader || inst.op == RowsOp::Expand {
                continue;
            }
            for a in &inst.args {
                if let EwArg::Inst(k) = *a
                    && body[k].width == Width::Full
                {
                    need[k] = true;
                }
            }
        }
        // Reductions are folded, not computed, chunk by chunk.
        need
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::UnaryOp;

    fn inst(op: RowsOp, args: &[EwArg], width: Width) -> RowsInst {
        RowsInst {
            op,
            args: args.to_vec(),
            dtype: DType::F32,
            width,
        }
    }

    /// softmax: `max`, expand, `sub`, `exp`, `sum`, expand, `div`.
    fn softmax() -> Vec<RowsInst> {
        use EwArg::{Input as In, Inst as At};
        vec![
            inst(RowsOp::Reduce(ReduceOp::Max), &[In(0)], Width::Row),
            inst(RowsOp::Expand, &[At(0)], Width::Full),
            inst(
                RowsOp::Ew(EwOp::Binary(BinaryOp::Sub)),
                &[In(0), At(1)],
                Width::Full,
            ),
            inst(RowsOp::Ew(EwOp::Unary(UnaryOp::Exp)), &[At(2)], Width::Full),
            inst(RowsOp::Reduce(ReduceOp::Sum), &[At(3)], Width::Row),
            inst(RowsOp::Expand, &[At(4)], Width::Full),
            inst(
                RowsOp::Ew(EwOp::Binary(BinaryOp::Div)),
                &[At(3), At(5)],
                Width::Full,
            ),
        ]
    }

    /// softmax with `min` for `max`: no online form, three passes.
    fn softmin_shifted() -> Vec<RowsInst> {
        let mut body = softmax();
        body[0].op = RowsOp::Reduce(ReduceOp::Min);
        body
    }

    fn streamed_on(p: &Passes, body: &[RowsInst], q: u64) -> Vec<usize> {
        p.streamed(body, q)
            .iter()
            .enumerate()
            .filter_map(|(j, &s)| s.then_some(j))
            .collect()
    }

    #[test]
    fn a_fold_then_its_use_streams_three_passes_and_recomputes() {
        let body = softmin_shifted();
        assert_eq!(online(&body, &[Width::Full]), None);
        let p = Passes::of(&body, &[Width::Full]);
        // min known after pass 0; sub/exp/sum in pass 1; the quotient in 2.
        assert_eq!(p.of, vec![0, 1, 1, 1, 1, 2, 2]);
        assert_eq!(p.count, 3);
        assert_eq!(streamed_on(&p, &body, 0), vec![0]);
        assert_eq!(streamed_on(&p, &body, 1), vec![1, 2, 3, 4]);
        // The last pass recomputes `exp(x - min)` (1, 2, 3) for the quotient.
        assert_eq!(streamed_on(&p, &body, 2), vec![1, 2, 3, 5, 6]);
    }

    #[test]
    fn softmax_is_online_in_two_passes() {
        let body = softmax();
        assert_eq!(online(&body, &[Width::Full]), Some((0, 4)));
        let p = Passes::of(&body, &[Width::Full]);
        // The running max and the sum together, then the quotient.
        assert_eq!(p.of, vec![0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(p.count, 2);
        assert_eq!(streamed_on(&p, &body, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(streamed_on(&p, &body, 1), vec![1, 2, 3, 5, 6]);
        // Not when the exponent is of another value than the maximum's.
        use EwArg::{Input as In, Inst as At};
        let mut other = softmax();
        other[2].args = vec![In(1), At(1)];
        assert_eq!(online(&other, &[Width::Full, Width::Full]), None);
        // Nor when the sum's pass streams something else as well.
        let mut more = softmax();
        more.push(inst(RowsOp::Reduce(ReduceOp::Sum), &[At(2)], Width::Row));
        assert_eq!(online(&more, &[Width::Full]), None);
    }

    /// layer_norm of `in0` (f16, converted) with eps `in1` (per row), `g`
    /// and `b` (`in2`, `in3`).
    fn layer_norm() -> Vec<RowsInst> {
        use EwArg::{Input as In, Inst as At};
        let bin = |op: BinaryOp, a: EwArg, b: EwArg, width: Width| {
            inst(RowsOp::Ew(EwOp::Binary(op)), &[a, b], width)
        };
        vec![
            inst(RowsOp::Ew(EwOp::Cast(DType::F32)), &[In(0)], Width::Full),
            inst(RowsOp::Reduce(ReduceOp::Mean), &[At(0)], Width::Row),
            inst(RowsOp::Expand, &[At(1)], Width::Full),
            bin(BinaryOp::Sub, At(0), At(2), Width::Full),
            bin(BinaryOp::Mul, At(3), At(3), Width::Full),
            inst(RowsOp::Reduce(ReduceOp::Mean), &[At(4)], Width::Row),
            bin(BinaryOp::Add, At(5), In(1), Width::Row),
            inst(
                RowsOp::Ew(EwOp::Unary(UnaryOp::Rsqrt)),
                &[At(6)],
                Width::Row,
            ),
            inst(RowsOp::Expand, &[At(7)], Width::Full),
            bin(BinaryOp::Mul, At(3), At(8), Width::Full),
            bin(BinaryOp::Mul, At(9), In(2), Width::Full),
            bin(BinaryOp::Add, At(10), In(3), Width::Full),
        ]
    }

    const LAYER_NORM_INPUTS: [Width; 4] = [Width::Full, Width::Row, Width::Full, Width::Full];

    #[test]
    fn layer_norm_folds_its_variance_into_the_means_pass() {
        use EwArg::{Input as In, Inst as At};
        let body = layer_norm();
        let w = &LAYER_NORM_INPUTS;
        assert_eq!(online(&body, w), None);
        assert_eq!(online_variance(&body, w), Some((1, 5)));
        let p = Passes::of(&body, w);
        // Mean and squares (about the shift) in pass 0, with the per-row
        // statistics after it; the normalised row in pass 1.
        assert_eq!(p.of, vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(p.count, 2);
        assert_eq!(streamed_on(&p, &body, 0), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(streamed_on(&p, &body, 1), vec![0, 2, 3, 8, 9, 10, 11]);
        // Converted first, the first pass computes: rows one at a time; of
        // an f32 input, pipelined.
        assert!(!pipelines(&body, w));
        let mut f32_in = body[1..].to_vec();
        for i in &mut f32_in {
            for a in &mut i.args {
                *a = match *a {
                    At(0) => In(0),
                    At(k) => At(k - 1),
                    In(k) => In(k),
                };
            }
        }
        assert_eq!(online_variance(&f32_in, w), Some((0, 4)));
        assert!(pipelines(&f32_in, w));
        // Not in f16 (the shift's correction is f32 arithmetic), not of a
        // product that is not a square, not about a sum, and not when the
        // squares' pass streams another reduction.
        let mut narrow = layer_norm();
        narrow[4].dtype = DType::F16;
        assert_eq!(online_variance(&narrow, w), None);
        let mut product = layer_norm();
        product[4].args = vec![At(3), At(0)];
        assert_eq!(online_variance(&product, w), None);
        let mut summed = layer_norm();
        summed[1].op = RowsOp::Reduce(ReduceOp::Sum);
        assert_eq!(online_variance(&summed, w), None);
        let mut more = layer_norm();
        more.push(inst(RowsOp::Reduce(ReduceOp::Max), &[At(3)], Width::Row));
        assert_eq!(online_variance(&more, w), None);
        // A sum of squares folds as well.
        let mut sum_sq = layer_norm();
        sum_sq[5].op = RowsOp::Reduce(ReduceOp::Sum);
        assert_eq!(online_variance(&sum_sq, w), Some((1, 5)));
    }

    #[test]
    fn a_first_pass_that_only_folds_inputs_is_pipelined() {
        use EwArg::{Input as In, Inst as At};
        assert!(pipelines(&softmin_shifted(), &[Width::Full]));
        // The online softmax's first pass computes, but is bound by its HBM
        // reads as the quotient's pass is by its writes: pipelined as well.
        assert!(pipelines(&softmax(), &[Width::Full]));
        // A conversion before the first fold (layer_norm over f16 in f32):
        // the first pass computes, rows go one at a time.
        let mut converted = vec![inst(
            RowsOp::Ew(EwOp::Cast(DType::F32)),
            &[In(0)],
            Width::Full,
        )];
        for i in softmin_shifted() {
            let args: Vec<EwArg> = i
                .args
                .iter()
                .map(|a| match *a {
                    In(_) => At(0),
                    At(k) => At(k + 1),
                })
                .collect();
            converted.push(inst(i.op, &args, i.width));
        }
        assert!(!pipelines(&converted, &[Width::Full]));
        // One pass: nothing to overlap.
        let one = vec![inst(RowsOp::Reduce(ReduceOp::Sum), &[In(0)], Width::Row)];
        assert!(!pipelines(&one, &[Width::Full]));
    }

    #[test]
    fn a_per_row_result_and_per_row_inputs() {
        use EwArg::{Input as In, Inst as At};
        // sum(x) * r with r a per-row input: one pass, the product after it.
        let body = vec![
            inst(RowsOp::Reduce(ReduceOp::Sum), &[In(0)], Width::Row),
            inst(
                RowsOp::Ew(EwOp::Binary(BinaryOp::Mul)),
                &[At(0), In(1)],
                Width::Row,
            ),
        ];
        let p = Passes::of(&body, &[Width::Full, Width::Row]);
        assert_eq!(p.of, vec![0, 0]);
        assert_eq!(p.count, 1);
        // A per-row input expanded and added: known before the first pass.
        let body = vec![
            inst(RowsOp::Expand, &[In(1)], Width::Full),
            inst(
                RowsOp::Ew(EwOp::Binary(BinaryOp::Add)),
                &[In(0), At(0)],
                Width::Full,
            ),
        ];
        let p = Passes::of(&body, &[Width::Full, Width::Row]);
        assert_eq!(p.of, vec![0, 0]);
        assert_eq!(p.count, 1);
        assert_eq!(p.streamed(&body, 0), vec![true, true]);
    }

    #[test]
    fn chunked_per_row_values_never_share_slots() {
        use EwArg::{Input as In, Inst as At};
        // Two independent means, the first dead before the second is made.
        let body = vec![
            inst(RowsOp::Reduce(ReduceOp::Mean), &[In(0)], Width::Row),
            inst(RowsOp::Ew(EwOp::Unary(UnaryOp::Exp)), &[At(0)], Width::Row),
            inst(RowsOp::Reduce(ReduceOp::Mean), &[In(0)], Width::Row),
            inst(
                RowsOp::Ew(EwOp::Binary(BinaryOp::Add)),
                &[At(1), At(2)],
                Width::Row,
            ),
        ];
        let (whole, _) = temp_slots(&body, false, true);
        assert_eq!(whole, vec![0, 1, 0]);
        let (chunked, _) = temp_slots(&body, true, true);
        assert_eq!(chunked, vec![0, 1, 2]);
    }
}
