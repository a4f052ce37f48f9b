//! The kernel plan: the seam between planning (and, later, the optimiser)
//! and the code generators.
//!
//! A [`Plan`] is a sequence of [`Stage`]s that run one after another (on the
//! NPU, one SPMD launch each) and communicate through GM [`Buffer`]s: the
//! kernel's parameters and results and a zero-initialised workspace. Each
//! stage computes one or more IR nodes and carries every schedule decision —
//! which unit, how many blocks, tile sizes per level, buffering depth, and the
//! on-chip buffers with their addresses — so that a backend only translates.
//! Tensors in GM are read and written through [`View`]s (offset, shape,
//! strides), so reshapes, slices, broadcasts and transposes of stored tensors
//! cost no stage.
//!
//! Invariants (checked by the planner's tests and relied upon by backends):
//! every view stays inside its buffer; a stage's output views do not overlap
//! its input views; local buffers fit their memory space and respect its
//! alignment.

use crate::op::{BinaryOp, CompareOp, ReduceOp, Scalar, UnaryOp};
use crate::types::DType;
use std::fmt::{self, Write};

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
    /// A name for listings (`x`, `out0`, `ws0`).
    pub name: String,
    /// What backs it.
    pub kind: BufKind,
    /// Element type.
    pub dtype: DType,
    /// Number of elements.
    pub elements: u64,
}

impl Buffer {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.elements * self.dtype.size_bytes() as u64
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
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    Ub,
}

impl MemSpace {
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

/// A statically allocated on-chip buffer of a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalBuf {
    /// What it holds (`a`, `out`, `tmp0`, …).
    pub name: String,
    /// Where.
    pub space: MemSpace,
    /// Byte offset of copy 0.
    pub offset: u64,
    /// Bytes of one copy.
    pub bytes: u64,
    /// Copies (2 = double buffered); copy `i` is at `offset + i * bytes`.
    pub copies: u32,
}

/// The unit a stage runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Cube cores (split machines) or AI cores (coupled).
    Cube,
    /// Vector cores (split machines) or AI cores (coupled).
    Vector,
}

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

/// What a stage computes.
#[derive(Clone, Debug, PartialEq)]
pub enum StageKind {
    /// `out = body(inputs)` elementwise; every input view has the output's
    /// shape (broadcasts are strides of 0), the last instruction is the
    /// result.
    Elementwise {
        /// Input views.
        inputs: Vec<View>,
        /// The per-element computation.
        body: Vec<EwInst>,
        /// Where the result goes.
        out: View,
    },
    /// `out[o, i] = reduce over r of input[o, r, i]` on a contiguous input
    /// seen as `[outer, reduced, inner]`.
    Reduce {
        /// The reduction (`mean` divides by `reduced` at the end).
        op: ReduceOp,
        /// The input, contiguous.
        input: View,
        /// The output, contiguous, `outer × inner` elements.
        out: View,
        /// Extent of the kept leading dims.
        outer: u64,
        /// Extent of the reduced dims.
        reduced: u64,
        /// Extent of the kept trailing dims.
        inner: u64,
        /// The accumulation dtype (f32 for floats, i32 for integers).
        acc: DType,
        /// The result is the reduction divided by this (the element count
        /// for a `mean`, else 1).
        divisor: u64,
    },
    /// `out = a @ b` with batch broadcasting, then the epilogue.
    MatMul {
        /// Left operand `[batch…, m, k]`.
        a: MatOperand,
        /// Right operand `[batch…, k, n]`.
        b: MatOperand,
        /// The result `[batch…, m, n]`.
        out: View,
        /// `relu` applied to the accumulator before the cast.
        relu: bool,
    },
    /// `out = input` where the input's innermost contiguous dim is not the
    /// output's: a transpose through on-chip tiles.
    Transpose {
        /// The input view (same shape as the output).
        input: View,
        /// The output view.
        out: View,
        /// The output dim along which the input is contiguous.
        row_dim: usize,
    },
}

/// Schedule choices of a stage.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schedule {
    /// Named tile sizes and loop parameters, in a stable order.
    pub params: Vec<(String, u64)>,
}

impl Schedule {
    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Sets a parameter (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: u64) {
        match self.params.iter_mut().find(|(n, _)| n == name) {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }
}

/// One stage: a launch on the NPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The IR nodes it computes (`%3`, …), for listings and diagnostics.
    pub nodes: Vec<usize>,
    /// What it computes.
    pub kind: StageKind,
    /// Which unit runs it.
    pub unit: Unit,
    /// Number of blocks.
    pub block_dim: u32,
    /// Tiles and loops.
    pub schedule: Schedule,
    /// On-chip buffers.
    pub local: Vec<LocalBuf>,
    /// The planner's estimate of the stage's cycles (launch excluded).
    pub estimate: u64,
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

/// A constant as plan text: floats in their shortest f32 form.
struct Scalar2<'a>(&'a Scalar);

impl fmt::Display for Scalar2<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Scalar::Float(x) if x.is_finite() => write!(f, "{:?}", *x as f32),
            other => write!(f, "{other}"),
        }
    }
}

impl Plan {
    fn view_text(&self, v: &View) -> String {
        let dims: Vec<String> = v.shape.iter().map(u64::to_string).collect();
        match &v.source {
            Source::Constant(c) => {
                format!("const {} : {}[{}]", Scalar2(c), v.dtype, dims.join(", "))
            }
            Source::Buffer(b) => {
                let name = self.buffers.get(*b).map_or("?", |b| b.name.as_str());
                let mut s = name.to_string();
                if v.offset != 0 {
                    let _ = write!(s, "+{}", v.offset);
                }
                let _ = write!(s, " : {}[{}]", v.dtype, dims.join(", "));
                if !v.is_contiguous() {
                    let st: Vec<String> = v.strides.iter().map(u64::to_string).collect();
                    let _ = write!(s, " strides [{}]", st.join(", "));
                }
                s
            }
        }
    }

    /// The plan as stable text (`--emit plan`).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan {} on {}: {} stage{}, workspace {} B",
            self.kernel,
            self.machine,
            self.stages.len(),
            if self.stages.len() == 1 { "" } else { "s" },
            self.workspace
        );
        for b in &self.buffers {
            let kind = match &b.kind {
                BufKind::Param(i) => format!("param {i}"),
                BufKind::Result(i) => format!("result {i}"),
                BufKind::Workspace { offset } => format!("workspace +{offset}"),
            };
            let _ = writeln!(
                out,
                "  buffer {:<8} {:<14} {} x {}",
                b.name, kind, b.elements, b.dtype
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            let nodes: Vec<String> = s.nodes.iter().map(|n| format!("%{n}")).collect();
            let unit = match s.unit {
                Unit::Cube => "cube",
                Unit::Vector => "vector",
            };
            let kind = match &s.kind {
                StageKind::Elementwise { .. } => "elementwise",
                StageKind::Reduce { .. } => "reduce",
                StageKind::MatMul { .. } => "matmul",
                StageKind::Transpose { .. } => "transpose",
            };
            let _ = writeln!(
                out,
                "stage {i} {kind} [{}] on {unit} x{} (estimate {} cycles)",
                nodes.join(", "),
                s.block_dim,
                s.estimate
            );
            match &s.kind {
                StageKind::Elementwise {
                    inputs,
                    body,
                    out: o,
                } => {
                    for (j, v) in inputs.iter().enumerate() {
                        let _ = writeln!(out, "    in{j}  {}", self.view_text(v));
                    }
                    for (j, inst) in body.iter().enumerate() {
                        let args: Vec<String> = inst
                            .args
                            .iter()
                            .map(|a| match a {
                                EwArg::Input(k) => format!("in{k}"),
                                EwArg::Inst(k) => format!("t{k}"),
                            })
                            .collect();
                        let op = match &inst.op {
                            EwOp::Unary(u) => u.name().to_string(),
                            EwOp::Binary(b) => b.name().to_string(),
                            EwOp::Compare(c) => c.name().to_string(),
                            EwOp::Select => "select".to_string(),
                            EwOp::Cast(d) => format!("cast.{d}"),
                            EwOp::Copy => "copy".to_string(),
                        };
                        let _ =
                            writeln!(out, "    t{j} = {op} {} : {}", args.join(", "), inst.dtype);
                    }
                    let _ = writeln!(out, "    out  {}", self.view_text(o));
                }
                StageKind::Reduce {
                    op,
                    input,
                    out: o,
                    outer,
                    reduced,
                    inner,
                    acc,
                    divisor,
                } => {
                    let _ = writeln!(out, "    in   {}", self.view_text(input));
                    let _ = writeln!(
                        out,
                        "    {} over [outer {outer}, reduced {reduced}, inner {inner}] accumulating {acc}{}",
                        op.name(),
                        if *divisor > 1 {
                            format!(", divided by {divisor}")
                        } else {
                            String::new()
                        }
                    );
                    let _ = writeln!(out, "    out  {}", self.view_text(o));
                }
                StageKind::MatMul { a, b, out: o, relu } => {
                    let t = |m: &MatOperand| if m.transposed { " (transposed)" } else { "" };
                    let _ = writeln!(out, "    a    {}{}", self.view_text(&a.view), t(a));
                    let _ = writeln!(out, "    b    {}{}", self.view_text(&b.view), t(b));
                    let _ = writeln!(
                        out,
                        "    out  {}{}",
                        self.view_text(o),
                        if *relu { " (relu)" } else { "" }
                    );
                }
                StageKind::Transpose {
                    input,
                    out: o,
                    row_dim,
                } => {
                    let _ = writeln!(out, "    in   {}", self.view_text(input));
                    let _ = writeln!(
                        out,
                        "    out  {} (tiles along dim {row_dim})",
                        self.view_text(o)
                    );
                }
            }
            if !s.schedule.params.is_empty() {
                let p: Vec<String> = s
                    .schedule
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = writeln!(out, "    schedule {}", p.join(" "));
            }
            for l in &s.local {
                let copies = if l.copies > 1 {
                    format!(" x{}", l.copies)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "    local {:<4} {:<8} @{:<7} {} B{copies}",
                    l.space.name(),
                    l.name,
                    l.offset,
                    l.bytes
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_merges_what_every_view_walks_alike() {
        // a + b with a: [2, 3, 4] contiguous, b: [4] broadcast as [2, 3, 4].
        let (dims, st) = coalesce(&[2, 3, 4], &[&[12, 4, 1], &[0, 0, 1]]);
        assert_eq!(dims, vec![6, 4]);
        assert_eq!(st, vec![vec![4, 1], vec![0, 1]]);
        assert_eq!(pattern(&st[1]), Pattern::RowMajor);
        // Fully contiguous views become one dim.
        let (dims, st) = coalesce(&[2, 3, 4], &[&[12, 4, 1], &[12, 4, 1]]);
        assert_eq!((dims, st), (vec![24], vec![vec![1], vec![1]]));
        // A column broadcast keeps two dims; unit dims vanish.
        let (dims, st) = coalesce(&[5, 1, 8], &[&[8, 8, 1], &[1, 1, 0]]);
        assert_eq!(
            (dims, st.clone()),
            (vec![5, 8], vec![vec![8, 1], vec![1, 0]])
        );
        assert_eq!(pattern(&st[1]), Pattern::Column);
        assert_eq!(coalesce(&[], &[&[]]), (vec![1], vec![vec![0]]));
    }

    #[test]
    fn contiguity_and_extent() {
        let v = View::contiguous(0, DType::F32, &[4, 8]);
        assert!(v.is_contiguous());
        assert_eq!(v.extent(), 32);
        let t = View {
            strides: vec![1, 4],
            shape: vec![4, 8],
            ..v.clone()
        };
        assert!(!t.is_contiguous());
        assert_eq!(t.extent(), 1 + 3 + 28);
        let b = View {
            strides: vec![0, 1],
            ..v
        };
        assert!(!b.is_contiguous());
        assert_eq!(b.extent(), 8);
    }
}
