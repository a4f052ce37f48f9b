//! The kernel plan: the seam between planning (and, later, the optimiser)
//! and the code generators.
//!
//! A [`Plan`] is a sequence of [`Stage`]s that run one after another (on the
//! NPU, one SPMD launch each) and communicate through GM [`Buffer`]s: the
//! kernel's parameters and results and a zero-initialised workspace. Each
//! stage computes one or more IR nodes and carries every schedule decision as
//! types — which unit, how many blocks, tile sizes per level, buffering
//! depth, and the on-chip buffers with their addresses — so that a backend
//! only translates: it reads fields and never looks a decision up by name.
//! Tensors in GM are read and written through [`View`]s (offset, shape,
//! strides), so reshapes, slices, broadcasts and transposes of stored tensors
//! cost no stage. A plan is self-contained: its buffers carry their shapes,
//! so a backend needs nothing else (and a plan read back from its text,
//! [`Plan::parse`], compiles like the one printed).
//!
//! One module per stage kind holds what the stage computes, its typed
//! schedule and on-chip layout, and the geometry both the scheduler and the
//! backends derive from them: [`elementwise`], [`reduce`], [`transpose`],
//! [`matmul`], [`rows`]. The text form (`--emit plan`) is printed in `text.rs` and
//! parsed in `parse.rs`.
//!
//! Invariants (checked by the planner's tests and relied upon by backends):
//! every view stays inside its buffer; a stage's output views do not overlap
//! its input views; local buffers fit their memory space and respect its
//! alignment.

pub mod demand;
pub mod elementwise;
pub mod join;
pub mod matmul;
mod parse;
pub mod reduce;
pub mod rows;
mod text;
pub mod transpose;

pub use elementwise::{
    BroadcastBufs, Elementwise, EwArg, EwInputBufs, EwInst, EwLayout, EwOp, EwSchedule,
};
pub use matmul::{
    CubeLayout, CubeSchedule, Geometry, MatMul, MatMulSchedule, MatOperand, SplitBufs, Tail,
    VecMatB, VecMatLayout, VecMatSchedule,
};
pub use parse::PlanParseError;
pub use reduce::{Reduce, ReduceLayout, ReduceSchedule};
pub use rows::{Rows, RowsInput, RowsInst, RowsLayout, RowsOp, RowsSchedule, Width};
pub use transpose::{Plane, Transpose, TransposeLayout, TransposeSchedule};

use crate::op::Scalar;
use crate::types::DType;

/// Index of a buffer in [`Plan::buffers`].
pub type BufId = usize;

/// What backs a GM buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum BufKind {
    /// The i-th kernel parameter.
    Param(usize),
    /// The i-th kernel result.
    Result(usize),
    /// Scratch at this byte offset of the workspace.
    Workspace {
        /// Byte offset in the workspace.
        offset: u64,
    },
}

/// A GM tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// A name for listings (`x`, `out0`, `ws0`); parameters and results
    /// carry the kernel's names.
    pub name: String,
    /// What backs it.
    pub kind: BufKind,
    /// Element type.
    pub dtype: DType,
    /// Its shape (a parameter's or result's is the kernel signature's).
    pub shape: Vec<u64>,
}

impl Buffer {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.elements() * self.dtype.size_bytes() as u64
    }
}

/// A strided window on a GM buffer, or a constant.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Where the elements are.
    pub source: Source,
    /// Element type.
    pub dtype: DType,
    /// Element offset of index `[0, 0, …]`.
    pub offset: u64,
    /// Extents.
    pub shape: Vec<u64>,
    /// Element strides per dim (0 broadcasts).
    pub strides: Vec<u64>,
}

/// The elements of a view.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A GM buffer.
    Buffer(BufId),
    /// The same value everywhere (strides are all 0).
    Constant(Scalar),
}

impl View {
    /// A row-major view of a whole buffer.
    pub fn contiguous(buffer: BufId, dtype: DType, shape: &[u64]) -> View {
        View {
            source: Source::Buffer(buffer),
            dtype,
            offset: 0,
            shape: shape.to_vec(),
            strides: row_major_strides(shape),
        }
    }

    /// A constant of `shape`.
    pub fn constant(value: Scalar, dtype: DType, shape: &[u64]) -> View {
        View {
            source: Source::Constant(value),
            dtype,
            offset: 0,
            shape: shape.to_vec(),
            strides: vec![0; shape.len()],
        }
    }

    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Whether the view is row-major and dense (strides of a contiguous
    /// array; dims of extent 1 may have any stride).
    pub fn is_contiguous(&self) -> bool {
        matches!(self.source, Source::Buffer(_))
            && self
                .shape
                .iter()
                .zip(&self.strides)
                .zip(row_major_strides(&self.shape))
                .all(|((&d, &s), r)| d == 1 || s == r)
    }

    /// The buffer, if not a constant.
    pub fn buffer(&self) -> Option<BufId> {
        match self.source {
            Source::Buffer(b) => Some(b),
            Source::Constant(_) => None,
        }
    }

    /// The largest element offset reached, plus one (0 for constants).
    pub fn extent(&self) -> u64 {
        if self.buffer().is_none() {
            return 0;
        }
        self.offset
            + 1
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d.saturating_sub(1)) * s)
                .sum::<u64>()
    }
}

/// Row-major strides of a shape.
pub fn row_major_strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Merges adjacent dims that every view walks the same way (`stride[d] ==
/// stride[d+1] · extent[d+1]` for all of them) and drops dims of extent 1.
/// Returns the merged extents and each view's strides over them; a rank-0
/// iteration space becomes `[1]`.
pub fn coalesce(shape: &[u64], strides: &[&[u64]]) -> (Vec<u64>, Vec<Vec<u64>>) {
    let keep: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] != 1).collect();
    let mut dims: Vec<u64> = Vec::new();
    let mut out: Vec<Vec<u64>> = vec![Vec::new(); strides.len()];
    for &d in &keep {
        let mergeable = !dims.is_empty()
            && strides.iter().zip(&out).all(|(s, o)| {
                let prev = *o.last().unwrap_or(&0);
                prev == s[d] * shape[d]
            });
        if mergeable {
            let last = dims.len() - 1;
            dims[last] *= shape[d];
            for (o, s) in out.iter_mut().zip(strides) {
                let l = o.len() - 1;
                o[l] = s[d];
            }
        } else {
            dims.push(shape[d]);
            for (o, s) in out.iter_mut().zip(strides) {
                o.push(s[d]);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        for o in &mut out {
            o.push(0);
        }
    }
    (dims, out)
}

/// How an elementwise operand is read over the last two dims of its
/// (coalesced) iteration space.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Contiguous along the last dim (any row stride, including 0).
    RowMajor,
    /// One value per row: contiguous along the rows, broadcast along them.
    Column,
    /// One value for the whole tile.
    Scalar,
    /// Anything else (needs a transpose or a copy first).
    Strided,
}

/// The pattern of strides `[.., row, col]` over a coalesced space.
pub fn pattern(strides: &[u64]) -> Pattern {
    let n = strides.len();
    let col = strides[n - 1];
    let row = if n >= 2 { strides[n - 2] } else { 0 };
    match (row, col) {
        (_, 1) => Pattern::RowMajor,
        (0, 0) => Pattern::Scalar,
        (1, 0) => Pattern::Column,
        _ => Pattern::Strided,
    }
}

/// An on-chip memory space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum MemSpace {
    /// L1 (cube staging).
    L1,
    /// L0A (cube left operand).
    L0a,
    /// L0B (cube right operand).
    L0b,
    /// L0C (cube accumulator).
    L0c,
    /// The vector unit's unified buffer.
    #[default]
    Ub,
}

impl MemSpace {
    /// Every space.
    pub const ALL: [MemSpace; 5] = [
        MemSpace::L1,
        MemSpace::L0a,
        MemSpace::L0b,
        MemSpace::L0c,
        MemSpace::Ub,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            MemSpace::L1 => "l1",
            MemSpace::L0a => "l0a",
            MemSpace::L0b => "l0b",
            MemSpace::L0c => "l0c",
            MemSpace::Ub => "ub",
        }
    }
}

/// A statically allocated on-chip buffer of a stage. Stage layouts hold
/// them in named fields; the names in listings (`in0`, `a_l1`, …) come from
/// the layout types.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct LocalBuf {
    /// Where.
    pub space: MemSpace,
    /// Byte offset of copy 0.
    pub offset: u64,
    /// Bytes of one copy.
    pub bytes: u64,
    /// Copies (2 = double buffered); copy `i` is at `offset + i * bytes`.
    pub copies: u32,
}

impl LocalBuf {
    /// The byte offset of copy `i` (the last copy when `i` is past it).
    pub fn copy(&self, i: u32) -> u64 {
        self.offset + u64::from(i.min(self.copies.saturating_sub(1))) * self.bytes
    }

    /// One past the last byte of the last copy.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes * u64::from(self.copies)
    }
}

/// The unit a stage runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Cube cores (split machines) or AI cores (coupled).
    Cube,
    /// Vector cores (split machines) or AI cores (coupled).
    Vector,
}

/// What a stage computes, with its typed schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum StageKind {
    /// Elementwise ops (and copies) over tiles of the output.
    Elementwise(Elementwise),
    /// A reduction of the middle of `[outer, reduced, inner]`.
    Reduce(Reduce),
    /// `a @ b` with an epilogue.
    MatMul(MatMul),
    /// A copy whose input is contiguous along another dim than the output.
    Transpose(Transpose),
    /// A fused group over whole rows: elementwise ops, row reductions and
    /// their expansions back over the rows.
    Rows(Rows),
}

impl StageKind {
    /// The kind's name in listings.
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Elementwise(_) => "elementwise",
            StageKind::Reduce(_) => "reduce",
            StageKind::MatMul(_) => "matmul",
            StageKind::Transpose(_) => "transpose",
            StageKind::Rows(_) => "rows",
        }
    }
}

/// One stage: a launch on the NPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The IR nodes it computes (`%3`, …), for listings and diagnostics.
    pub nodes: Vec<usize>,
    /// What it computes, and how.
    pub kind: StageKind,
    /// Number of blocks.
    pub block_dim: u32,
    /// The planner's estimate of the stage's cycles (launch excluded).
    pub estimate: u64,
}

impl Stage {
    /// A stage of `kind` computing `nodes`, not yet scheduled (one block,
    /// default tiles, no buffers).
    pub fn new(nodes: Vec<usize>, kind: StageKind) -> Stage {
        Stage {
            nodes,
            kind,
            block_dim: 1,
            estimate: 0,
        }
    }

    /// The views it reads.
    pub fn reads(&self) -> Vec<&View> {
        match &self.kind {
            StageKind::Elementwise(e) => e.inputs.iter().collect(),
            StageKind::Reduce(r) => vec![&r.input],
            StageKind::Transpose(t) => vec![&t.input],
            StageKind::MatMul(m) => vec![&m.a.view, &m.b.view],
            StageKind::Rows(r) => r.inputs.iter().map(|i| &i.view).collect(),
        }
    }

    /// The views it writes.
    pub fn writes(&self) -> Vec<&View> {
        match &self.kind {
            StageKind::Elementwise(e) => {
                let mut w = vec![&e.out];
                w.extend(e.also.iter().map(|(_, v)| v));
                w
            }
            StageKind::Reduce(r) => vec![&r.out],
            StageKind::Transpose(t) => vec![&t.out],
            StageKind::MatMul(m) => vec![&m.out],
            StageKind::Rows(r) => vec![&r.out],
        }
    }

    /// Which unit runs it.
    pub fn unit(&self) -> Unit {
        match &self.kind {
            StageKind::MatMul(MatMul {
                schedule: MatMulSchedule::Cube(_),
                ..
            }) => Unit::Cube,
            StageKind::MatMul(MatMul {
                schedule: MatMulSchedule::Vector(_),
                ..
            })
            | StageKind::Elementwise(_)
            | StageKind::Reduce(_)
            | StageKind::Transpose(_)
            | StageKind::Rows(_) => Unit::Vector,
        }
    }

    /// Its on-chip buffers with their listing names, in layout order.
    pub fn local(&self) -> Vec<(String, LocalBuf)> {
        match &self.kind {
            StageKind::Elementwise(e) => e.schedule.layout.named(),
            StageKind::Reduce(r) => r.schedule.layout.named(),
            StageKind::Transpose(t) => t.schedule.layout.named(),
            StageKind::Rows(r) => r.schedule.layout.named(),
            StageKind::MatMul(m) => match &m.schedule {
                MatMulSchedule::Cube(c) => c.layout.named(),
                MatMulSchedule::Vector(v) => v.layout.named(),
            },
        }
    }
}

/// A whole kernel's plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Kernel name.
    pub kernel: String,
    /// Machine name.
    pub machine: String,
    /// GM buffers: parameters, results, then workspace scratch.
    pub buffers: Vec<Buffer>,
    /// Bytes of workspace.
    pub workspace: u64,
    /// Stages in execution order.
    pub stages: Vec<Stage>,
}

impl Plan {
    /// The buffers of the kernel's parameters, in argument order.
    pub fn params(&self) -> impl Iterator<Item = &Buffer> {
        self.buffers
            .iter()
            .filter(|b| matches!(b.kind, BufKind::Param(_)))
    }

    /// The buffers of the kernel's results, in order.
    pub fn results(&self) -> impl Iterator<Item = &Buffer> {
        self.buffers
            .iter()
            .filter(|b| matches!(b.kind, BufKind::Result(_)))
    }

    /// The bytes buffer `b` occupies in GM: its size, or, for the product
    /// of a cube matmul that writes through a ring (`ring` rows of `n`,
    /// product row `r` at ring row `r mod ring`), the ring's.
    pub fn footprint(&self, b: BufId) -> u64 {
        let Some(buf) = self.buffers.get(b) else {
            return 0;
        };
        let ring = self.stages.iter().find_map(|s| {
            let StageKind::MatMul(mm) = &s.kind else {
                return None;
            };
            let MatMulSchedule::Cube(t) = &mm.schedule else {
                return None;
            };
            let n = mm.out.shape.last().copied()?;
            (t.ring > 0 && mm.out.buffer() == Some(b))
                .then(|| t.ring * n * mm.out.dtype.size_bytes() as u64)
        });
        ring.map_or(buf.bytes(), |r| r.min(buf.bytes()))
    }

    /// Lays the workspace buffers out one after another in buffer order,
    /// each at its [`footprint`](Plan::footprint) rounded up to 512 bytes,
    /// and sizes the workspace to hold them. Returns the bytes they take.
    /// Idempotent.
    pub fn lay_out_workspace(&mut self) -> u64 {
        let mut end = 0;
        for b in 0..self.buffers.len() {
            let size = self.footprint(b).div_ceil(512) * 512;
            if let BufKind::Workspace { offset } = &mut self.buffers[b].kind {
                *offset = end;
                end += size;
            }
        }
        self.workspace = end;
        end
    }
}
