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
    /// The view: `[rows, n]` for a full input (column stride 1), `[rows]`
    /// for a per-row one (stride 1), or a constant.
    pub view: View,
    /// Its width.
    pub width: Width,
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
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RowsSchedule {
    /// Rows of a tile.
    pub rows: u64,
    /// Elements between rows in UB (a multiple of [`ROW_ALIGN`]).
    pub pitch: u64,
    /// Tiles of the whole stage.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: RowsLayout,
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
        for (name, b) in [
            ("wide", self.wide),
            ("lanes", self.lanes),
            ("acc", self.acc),
            ("blocks", self.blocks),
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
/// instruction never writes a slot one of its own operands is in (so
/// composites may read their operands after writing), and slots are
/// shared only between results of the same width and element size.
pub fn temp_slots(body: &[RowsInst]) -> (Vec<usize>, Vec<(Width, usize)>) {
    let n = body.len().saturating_sub(1);
    let mut last_use = vec![0usize; n];
    for (j, inst) in body.iter().enumerate() {
        for a in &inst.args {
            if let EwArg::Inst(k) = *a
                && k < n
            {
                last_use[k] = last_use[k].max(j);
            }
        }
    }
    let elided = elided(body);
    let mut slot_of = Vec::with_capacity(n);
    let mut slots: Vec<(Width, usize)> = Vec::new();
    // The instruction up to which each slot is busy.
    let mut busy_until: Vec<usize> = Vec::new();
    for (j, inst) in body.iter().take(n).enumerate() {
        // An elided expansion keeps only its per-row values.
        let width = if elided[j] { Width::Row } else { inst.width };
        let class = (width, inst.dtype.size_bytes());
        let free = (0..slots.len()).find(|&s| slots[s] == class && busy_until[s] < j);
        let s = match free {
            Some(s) => s,
            None => {
                slots.push(class);
                busy_until.push(0);
                slots.len() - 1
            }
        };
        busy_until[s] = last_use[j].max(j);
        slot_of.push(s);
    }
    (slot_of, slots)
}
