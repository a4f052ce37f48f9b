//! Elementwise stages: `out = body(inputs)` over tiles of the output, on the
//! vector unit.
//!
//! The iteration space is the output's shape with dims coalesced
//! ([`space`]); a tile is `rows × cols` elements of its last two dims,
//! stored in UB with a row pitch of `pitch` elements and handed out
//! round-robin to the blocks. Each input is read by its [`Pattern`]:
//! row-major inputs stream in bursts; a column or a scalar is staged, spread
//! into 32-byte blocks and expanded over the tile; a constant is filled once.

use super::{LocalBuf, Pattern, Source, View, coalesce, pattern};
use crate::op::{BinaryOp, CompareOp, UnaryOp};
use crate::types::DType;

/// One instruction of an elementwise body: applied per element of a tile.
#[derive(Clone, Debug, PartialEq)]
pub enum EwOp {
    /// An elementwise op of one operand.
    Unary(UnaryOp),
    /// An elementwise op of two operands.
    Binary(BinaryOp),
    /// A comparison (result bool).
    Compare(CompareOp),
    /// `select(c, a, b)`.
    Select,
    /// Dtype conversion.
    Cast(DType),
    /// The operand itself (a copy).
    Copy,
}

impl EwOp {
    /// Whether the op rounds its exact result once (see `Op::is_exact`).
    pub fn is_exact(&self) -> bool {
        match self {
            EwOp::Unary(u) => u.is_exact(),
            EwOp::Binary(b) => b.is_exact(),
            EwOp::Compare(_) | EwOp::Select | EwOp::Cast(_) | EwOp::Copy => true,
        }
    }
}

/// An operand of an elementwise instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EwArg {
    /// The i-th input view of the stage.
    Input(usize),
    /// The result of the i-th instruction of the body.
    Inst(usize),
}

/// An elementwise instruction with its result dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct EwInst {
    /// The op.
    pub op: EwOp,
    /// Operands.
    pub args: Vec<EwArg>,
    /// Result dtype.
    pub dtype: DType,
}

/// `out = body(inputs)` elementwise; every input view has the output's
/// shape (broadcasts are strides of 0); the last instruction is the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Elementwise {
    /// Input views.
    pub inputs: Vec<View>,
    /// The per-element computation.
    pub body: Vec<EwInst>,
    /// Where the result goes.
    pub out: View,
    /// Further results (a multi-output stage): an instruction of the body
    /// before the last whose value the kernel also needs, and where it
    /// goes (the output's shape). Its temporary is a buffer of its own,
    /// double-buffered like `out`, stored tile by tile.
    pub also: Vec<(usize, View)>,
    /// Tiles and buffers.
    pub schedule: EwSchedule,
}

/// How an elementwise stage is tiled.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EwSchedule {
    /// Rows of a tile (of the coalesced space's second-to-last dim).
    pub rows: u64,
    /// Columns of a tile (of its last dim).
    pub cols: u64,
    /// Row pitch of a tile in UB, in elements ([`pitch`]).
    pub pitch: u64,
    /// Tiles of the whole output.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: EwLayout,
}

/// The UB buffers of an elementwise stage (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EwLayout {
    /// Per input: its tile (`in{i}`; two copies, one for a constant) and,
    /// for a column or a scalar, its broadcast buffers.
    pub inputs: Vec<EwInputBufs>,
    /// The results of every body instruction but the last (`t{j}`).
    pub temps: Vec<LocalBuf>,
    /// The output tile (`out`, two copies).
    pub out: LocalBuf,
    /// f32 scratch tiles of composite ops (`scr{k}`, [`scratch`]).
    pub scratch: Vec<LocalBuf>,
}

/// The buffers of one elementwise input.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EwInputBufs {
    /// The operand's tile, as the body reads it (`in{i}`; `row{i}` when
    /// held).
    pub tile: LocalBuf,
    /// A repeated row that is the same in every tile a block computes
    /// ([`held`]): loaded once, before the tile loop, into one copy.
    pub held: bool,
    /// For a column or a scalar input: where it is staged and spread.
    pub broadcast: Option<BroadcastBufs>,
}

/// How a column (one value per row) or a scalar input reaches its tile:
/// loaded into `staging`, replicated into 32-byte blocks (`blocks`, one
/// 256-byte repeat per eight rows) by `vec.brcb`, then copied along the rows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BroadcastBufs {
    /// The loaded values (`st{i}`, two copies).
    pub staging: LocalBuf,
    /// The values spread to 32-byte blocks (`bc{i}`, two copies).
    pub blocks: LocalBuf,
    /// 1-byte values widened to i32 first (`wd{i}`, two copies).
    pub widened: Option<LocalBuf>,
}

impl EwLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        let mut out = Vec::new();
        for (i, b) in self.inputs.iter().enumerate() {
            let name = if b.held { "row" } else { "in" };
            out.push((format!("{name}{i}"), b.tile));
            if let Some(bc) = &b.broadcast {
                out.push((format!("st{i}"), bc.staging));
                out.push((format!("bc{i}"), bc.blocks));
                if let Some(w) = bc.widened {
                    out.push((format!("wd{i}"), w));
                }
            }
        }
        for (j, t) in self.temps.iter().enumerate() {
            out.push((format!("t{j}"), *t));
        }
        out.push(("out".to_string(), self.out));
        for (k, s) in self.scratch.iter().enumerate() {
            out.push((format!("scr{k}"), *s));
        }
        out
    }
}

/// The coalesced iteration space of an elementwise stage: extents and the
/// strides of each input, then of the output.
///
/// Rows move as bursts, so the output must be contiguous along the last dim,
/// and every input must be row-major, a column or a scalar there. When that
/// fails (a column written into a wider row, a view with no unit stride at
/// all), the space gains a trailing unit dim instead: bursts of one element,
/// slow but general. (True transposes get their own stage.)
pub fn space(inputs: &[View], out: &View) -> (Vec<u64>, Vec<Vec<u64>>) {
    let mut strides: Vec<&[u64]> = inputs.iter().map(|v| v.strides.as_slice()).collect();
    strides.push(&out.strides);
    let (mut dims, mut st) = coalesce(&out.shape, &strides);
    let strided_input = st[..st.len() - 1]
        .iter()
        .any(|s| pattern(s) == Pattern::Strided);
    if st.last().and_then(|o| o.last()) != Some(&1) || strided_input {
        dims.push(1);
        for s in &mut st {
            s.push(1);
        }
    }
    (dims, st)
}

/// The pattern of each input (constants are `Scalar`).
pub fn patterns(inputs: &[View], out: &View) -> Vec<Pattern> {
    let (_, strides) = space(inputs, out);
    inputs
        .iter()
        .zip(&strides)
        .map(|(v, s)| match v.source {
            Source::Constant(_) => Pattern::Scalar,
            Source::Buffer(_) => pattern(s),
        })
        .collect()
}

/// Which UB slot holds each temporary of a body (every instruction but the
/// last, whose result is the output tile), and each slot's element size and
/// whether it holds a stored result.
///
/// A result is live from its instruction to its last reader. Slots are
/// shared only between results of the same element size; an instruction
/// writes a slot one of its operands is in only when [`in_place_ok`] says
/// it may (composites read their operands after writing their scratch, not
/// their result, but a slot freed at the instruction itself is not reused
/// for them).
///
/// A result that leaves the stage (`stored`, see [`Elementwise::also`]) gets
/// a slot of its own, never shared (its slot's flag is `true`).
pub fn temp_slots(body: &[EwInst], stored: &[usize]) -> (Vec<usize>, Vec<(usize, bool)>) {
    let n = body.len().saturating_sub(1);
    let last_use = last_uses(body.iter().map(|i| i.args.as_slice()));
    let mut slot_of = Vec::with_capacity(n);
    let mut slots: Vec<(usize, bool)> = Vec::new();
    // The instruction up to which each slot is busy.
    let mut busy_until: Vec<usize> = Vec::new();
    for (j, inst) in body.iter().take(n).enumerate() {
        let size = inst.dtype.size_bytes();
        let own = stored.contains(&j);
        let free = (0..slots.len()).filter(|_| !own).find(|&s| {
            slots[s] == (size, false)
                && (busy_until[s] < j || busy_until[s] == j && in_place_ok(&inst.op))
        });
        let s = free.unwrap_or_else(|| {
            slots.push((size, own));
            busy_until.push(0);
            slots.len() - 1
        });
        busy_until[s] = if own { usize::MAX } else { last_use[j].max(j) };
        slot_of.push(s);
    }
    (slot_of, slots)
}

/// Per instruction of a body but the last (given by its operands, in
/// order): the last instruction that reads its result (0 when none does).
pub fn last_uses<'a>(args: impl ExactSizeIterator<Item = &'a [EwArg]>) -> Vec<usize> {
    let n = args.len().saturating_sub(1);
    let mut last_use = vec![0usize; n];
    for (j, args) in args.enumerate() {
        for a in args {
            if let EwArg::Inst(k) = *a
                && k < n
            {
                last_use[k] = last_use[k].max(j);
            }
        }
    }
    last_use
}

/// Whether an op is one vector instruction per run that reads each lane
/// before writing it (or, for f16/bf16, converts its operands to f32
/// scratch first), so its result may overwrite an operand it reads last.
pub fn in_place_ok(op: &EwOp) -> bool {
    matches!(
        op,
        EwOp::Unary(
            UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Relu
                | UnaryOp::Exp
                | UnaryOp::Log
                | UnaryOp::Sqrt
                | UnaryOp::Rsqrt
                | UnaryOp::Reciprocal
        ) | EwOp::Binary(
            BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Maximum
                | BinaryOp::Minimum
        )
    )
}

/// Which inputs are held: a row repeated over every other dim (strides 0
/// but along the last), when each block computes tiles of one column range
/// only — there is one range (`col_tiles == 1`), or the blocks, handed
/// tiles round-robin, are a multiple of the ranges. Such an input's tile
/// (its row, once per tile row) is the same in every tile of a block.
pub fn held(inputs: &[View], out: &View, col_tiles: u64, blocks: u64) -> Vec<bool> {
    let (_, strides) = space(inputs, out);
    let fixed = col_tiles == 1 || (col_tiles > 0 && blocks.is_multiple_of(col_tiles));
    inputs
        .iter()
        .zip(&strides)
        .map(|(v, s)| {
            let repeated =
                s.len() > 1 && s[s.len() - 1] == 1 && s[..s.len() - 1].iter().all(|&x| x == 0);
            fixed && repeated && matches!(v.source, Source::Buffer(_))
        })
        .collect()
}

/// The smallest row pitch (in elements) that keeps every operand's rows on
/// 32-byte boundaries, for tiles `cols` wide.
pub fn pitch(inputs: &[View], body: &[EwInst], cols: u64) -> u64 {
    let min = inputs
        .iter()
        .map(|v| v.dtype.size_bytes())
        .chain(body.iter().map(|i| i.dtype.size_bytes()))
        .min()
        .unwrap_or(4) as u64;
    cols.div_ceil(32 / min) * (32 / min)
}

/// The bytes of a scratch tile that holds a table (constants a composite
/// reads with a gather): when an instruction of the body needs one, every
/// scratch tile has at least these.
pub const SCRATCH_TABLE_BYTES: u64 = 256;

/// What the vector lowering of one instruction needs besides its operands.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Scratch {
    /// f32 tile-sized runs: composites compute in f32, and for f16/bf16
    /// they also need an f32 copy of the operand(s) and an f32 result.
    pub tiles: usize,
    /// The first of them holds a table ([`SCRATCH_TABLE_BYTES`]).
    pub table: bool,
}

/// The scratch of an instruction whose result dtype is `dtype`. The
/// scheduler allocates the most any instruction of the body needs; the
/// backend's lowering must stay within it.
pub fn scratch(op: &EwOp, dtype: DType) -> Scratch {
    let narrow = usize::from(dtype.is_float() && dtype != DType::F32);
    let tiles = |n: usize| Scratch {
        tiles: n + 2 * narrow,
        table: false,
    };
    match op {
        EwOp::Unary(u) => match u {
            UnaryOp::Sigmoid | UnaryOp::Silu => tiles(1),
            UnaryOp::Tanh => tiles(4),
            UnaryOp::Erf => tiles(5),
            UnaryOp::Gelu => tiles(2),
            UnaryOp::GeluTanh => tiles(1),
            // The table: 2/π in chunks.
            UnaryOp::Sin | UnaryOp::Cos => Scratch {
                table: true,
                ..tiles(12)
            },
            UnaryOp::Neg
            | UnaryOp::Abs
            | UnaryOp::Relu
            | UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal => Scratch::default(),
        },
        EwOp::Binary(BinaryOp::Pow) => tiles(9),
        EwOp::Binary(
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Maximum
            | BinaryOp::Minimum,
        )
        | EwOp::Compare(_)
        | EwOp::Select
        | EwOp::Cast(_)
        | EwOp::Copy => Scratch::default(),
    }
}
