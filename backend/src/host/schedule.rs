//! The host schedule: which values live in memory, which are strided views
//! of others, and which exist only in registers inside a fused loop; and the
//! stages, in order, each one loop nest compiled to its own function.
//!
//! - A **map** stage is a run of elementwise nodes over one index space:
//!   each element of every node is computed in registers, and only the
//!   values that leave the run are stored (the optimiser's fused
//!   elementwise groups become one loop nest, with no intermediate arrays).
//! - `transpose`, `slice` and `broadcast_to` of a value in memory are views:
//!   their consumers read through composed strides and nothing is copied;
//!   `reshape` of a packed value is the same bytes.
//! - A **reduce** or **matmul** stage computes one node, iterating over its
//!   result; a **place** stage copies a value into part of another (one per
//!   `concat` operand).
//!
//! Every stage's outermost axis can be split into ranges that run on
//! different threads: an element's value never depends on how its axis was
//! split, so results are the same bits for any number of threads.

use super::HostError;
use tessera_ir::{DType, Kernel, Op, Scalar, Value};

/// Where a packed value's bytes are.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum Place {
    Param(usize),
    Result(usize),
    /// A byte offset in the workspace.
    Work(u64),
    /// A byte offset in the scratch of a row stage: the current row of a
    /// value that no other stage reads (read with stride 0 over the rows).
    Scratch(u64),
}

/// A strided read of a packed value: element `offset + Σ idx_d · strides[d]`
/// of `place`, over the reader's own dims.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Access {
    pub place: Place,
    pub dtype: DType,
    pub strides: Vec<i64>,
    pub offset: i64,
}

/// What a value is at run time.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum State {
    /// Packed row-major at a place.
    Stored(Place),
    /// A strided read of a stored value (over this value's dims).
    View(Access),
    /// A constant (`full`).
    Const(Scalar),
    /// Computed in registers by map stage `stage`.
    Reg(usize),
}

/// A stage: one loop nest.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stage {
    /// Elementwise `nodes` over `dims`; `stores` are the values written.
    Map {
        dims: Vec<u64>,
        nodes: Vec<usize>,
        stores: Vec<usize>,
    },
    /// A reduction node.
    Reduce { node: usize },
    /// A matmul operand copied, per batch index of the result, to a packed
    /// matrix of f32 (i32 for integers) padded with zeros: element `idx`
    /// of `dst` (over `padded`) is `src[idx]` where `idx < valid`, else 0.
    Pack {
        src: Access,
        dst: Place,
        valid: Vec<u64>,
        padded: Vec<u64>,
        int: bool,
        /// B's layout: per batch index, each panel of `GEMM_COLS` columns
        /// whole (`[panel, k, GEMM_COLS]`), so that the product reads a
        /// panel's rows one after another, not a matrix row apart.
        panels: bool,
    },
    /// A matmul of packed operands (`a`: `[batch, m_pad, k]`, `b`: `[batch,
    /// n_pad / 8, k, 8]`) into the accumulator `c` (`[batch, m_pad, n_pad]`, f32 or
    /// i32), in blocks of 4 rows and 8 columns; each block of rows is then
    /// written to the node's result in its dtype.
    Gemm(Gemm),
    /// Stages over the same leading `rows` dims whose every part reads, of
    /// what the others write, only its own row: one loop over the rows
    /// that runs each part on a row in turn, so a row's intermediates are
    /// still in cache when the next part reads them (softmax, layer_norm).
    Rows {
        rows: Vec<u64>,
        parts: Vec<Stage>,
        /// Bytes of scratch (per thread, on its stack) for the rows of the
        /// values only its parts read.
        scratch: u64,
    },
    /// `dst[idx] = src[idx]` over `dims`: an output not computed in place,
    /// or one operand of a concat.
    Place {
        src: Access,
        dst: Access,
        dims: Vec<u64>,
    },
}

/// A blocked matmul's operands and sizes (see [`Stage::Gemm`]).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Gemm {
    pub node: usize,
    pub a: Place,
    pub b: Place,
    pub c: Place,
    pub batch: u64,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub m_pad: u64,
    pub n_pad: u64,
    pub int: bool,
}

/// Rows and columns of a GEMM's register block.
pub(super) const GEMM_ROWS: u64 = 4;
/// Columns of a GEMM's register block (two vectors of four lanes).
pub(super) const GEMM_COLS: u64 = 8;

/// The schedule of a kernel.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Schedule {
    pub states: Vec<State>,
    /// The values that are constants (`full`, and its broadcasts and
    /// reshapes): a map stage computes them inline wherever it reads them,
    /// even when a stage stores one for other readers.
    pub consts: Vec<Option<Scalar>>,
    pub stages: Vec<Stage>,
    pub work_bytes: u64,
}

/// The index of a value among parameters then nodes.
pub(super) fn index(k: &Kernel, v: Value) -> usize {
    match v {
        Value::Param(p) => p as usize,
        Value::Node(n) => k.params.len() + n as usize,
    }
}

/// The value at index `v` among parameters then nodes (inverse of
/// [`index`]).
pub(super) fn value(k: &Kernel, v: usize) -> Value {
    match v.checked_sub(k.params.len()) {
        None => Value::Param(v as u32),
        Some(n) => Value::Node(n as u32),
    }
}

pub(super) fn dims(k: &Kernel, v: Value) -> Result<Vec<u64>, HostError> {
    k.ty(v).shape.as_fixed().ok_or_else(|| {
        HostError::Unsupported(format!("`{}` has symbolic dims; bind them first", k.name))
    })
}

/// Row-major strides of `dims`, in elements.
pub(super) fn contiguous(dims: &[u64]) -> Vec<i64> {
    let mut s = vec![1i64; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1] as i64;
    }
    s
}

/// Strides that read a value of `from` dims with `strides` as `to` dims
/// under numpy broadcasting (right-aligned; size-1 and missing axes repeat).
pub(super) fn broadcast(from: &[u64], strides: &[i64], to: &[u64]) -> Vec<i64> {
    let lead = to.len() - from.len();
    (0..to.len())
        .map(|d| {
            if d < lead || from[d - lead] == 1 {
                0
            } else {
                strides[d - lead]
            }
        })
        .collect()
}

struct Builder<'k> {
    k: &'k Kernel,
    states: Vec<State>,
    stages: Vec<Stage>,
    work: u64,
    /// The map stage still open for more nodes.
    open: Option<usize>,
}

impl Builder<'_> {
    fn ty_bytes(&self, v: usize) -> u64 {
        let ty = self.ty(v);
        ty.shape.num_elements().unwrap_or(0) * ty.dtype.size_bytes() as u64
    }

    fn value(&self, v: usize) -> Value {
        value(self.k, v)
    }

    fn ty(&self, v: usize) -> &tessera_ir::TensorType {
        self.k.ty(self.value(v))
    }

    fn dims(&self, v: usize) -> Result<Vec<u64>, HostError> {
        dims(self.k, self.value(v))
    }

    /// A new place for value `v`: its result slot when the kernel returns
    /// it (and no other value took that slot), else workspace.
    fn place_for(&mut self, v: usize) -> Place {
        let value = self.value(v);
        let taken = |j: usize| {
            self.states
                .iter()
                .any(|s| matches!(s, State::Stored(Place::Result(r)) if *r == j))
        };
        if let Some(j) =
            (0..self.k.outputs.len()).find(|&j| self.k.outputs[j].value == value && !taken(j))
        {
            return Place::Result(j);
        }
        self.work(self.ty_bytes(v))
    }

    /// How value `v` is read from memory; stores it first when it is not
    /// in memory (a register value is written by its stage, which then
    /// closes; a constant or a view gets a stage of its own).
    fn readable(&mut self, v: usize) -> Result<Access, HostError> {
        let dtype = self.ty(v).dtype;
        match self.states[v].clone() {
            State::Stored(place) => Ok(Access {
                place,
                dtype,
                strides: contiguous(&self.dims(v)?),
                offset: 0,
            }),
            State::View(a) => Ok(a),
            State::Reg(stage) => {
                let place = self.place_for(v);
                if let Some(Stage::Map { stores, .. }) = self.stages.get_mut(stage) {
                    stores.push(v);
                }
                self.states[v] = State::Stored(place);
                // Read from memory, it is there only once its loop is done:
                // that loop takes no more nodes (one that joined it would
                // read an element before the loop stores it).
                if self.open == Some(stage) {
                    self.open = None;
                }
                self.readable(v)
            }
            State::Const(_) => {
                // A stage of its own that writes it.
                self.open = None;
                let d = self.dims(v)?;
                self.stages.push(Stage::Map {
                    dims: d,
                    nodes: vec![v - self.k.params.len()],
                    stores: Vec::new(),
                });
                let stage = self.stages.len() - 1;
                self.states[v] = State::Reg(stage);
                self.readable(v)
            }
        }
    }

    /// The stored (packed) form of `v` for reshape `me`: where `v` is
    /// stored, or, for a view, a copy into `me`'s own buffer. The view
    /// stays a view: stages scheduled before read it as one.
    fn packed(&mut self, v: usize, me: usize) -> Result<Place, HostError> {
        if let State::View(a) = self.states[v].clone() {
            let place = self.place_for(me);
            let d = self.dims(v)?;
            self.open = None;
            self.stages.push(Stage::Place {
                src: a,
                dst: Access {
                    place,
                    dtype: self.ty(v).dtype,
                    strides: contiguous(&d),
                    offset: 0,
                },
                dims: d,
            });
            return Ok(place);
        }
        Ok(self.readable(v)?.place)
    }

    /// Workspace for `bytes`.
    fn work(&mut self, bytes: u64) -> Place {
        let at = self.work;
        self.work = (self.work + bytes).next_multiple_of(64);
        Place::Work(at)
    }

    /// The stages of matmul node `i` (operands read through `a` and `b`,
    /// result dims `out`): both operands packed, then the blocked product.
    fn matmul(&mut self, i: usize, a: Access, b: Access, out: &[u64]) -> Result<(), HostError> {
        let n = &self.k.nodes[i];
        let (ad, bd) = (dims(self.k, n.args[0])?, dims(self.k, n.args[1])?);
        let (ra, rb, ro) = (ad.len(), bd.len(), out.len());
        let batch_dims = &out[..ro - 2];
        let batch: u64 = batch_dims.iter().product();
        let (m, k, nn) = (ad[ra - 2], ad[ra - 1], bd[rb - 1]);
        let m_pad = m.div_ceil(GEMM_ROWS) * GEMM_ROWS;
        let n_pad = nn.div_ceil(GEMM_COLS) * GEMM_COLS;
        let int = a.dtype.is_int();
        // Each operand per batch index of the result: its batch strides
        // broadcast, then its row and column strides.
        let pack = |acc: &Access, d: &[u64], rows: u64, cols: u64, pad: (u64, u64)| {
            let r = d.len();
            let mut strides = broadcast(&d[..r - 2], &acc.strides[..r - 2], batch_dims);
            strides.extend([acc.strides[r - 2], acc.strides[r - 1]]);
            let mut valid = batch_dims.to_vec();
            valid.extend([rows, cols]);
            let mut padded = batch_dims.to_vec();
            padded.extend([pad.0, pad.1]);
            (
                Access {
                    strides,
                    ..acc.clone()
                },
                valid,
                padded,
            )
        };
        let (sa, va, pa) = pack(&a, &ad, m, k, (m_pad, k));
        let (sb, vb, pb) = pack(&b, &bd, k, nn, (k, n_pad));
        let pa_place = self.work(batch * m_pad * k * 4);
        let pb_place = self.work(batch * k * n_pad * 4);
        let c = self.work(batch * m_pad * n_pad * 4);
        self.stages.push(Stage::Pack {
            src: sa,
            dst: pa_place,
            valid: va,
            padded: pa,
            int,
            panels: false,
        });
        self.stages.push(Stage::Pack {
            src: sb,
            dst: pb_place,
            valid: vb,
            padded: pb,
            int,
            panels: true,
        });
        self.stages.push(Stage::Gemm(Gemm {
            node: i,
            a: pa_place,
            b: pb_place,
            c,
            batch,
            m,
            n: nn,
            k,
            m_pad,
            n_pad,
            int,
        }));
        Ok(())
    }

    fn node(&mut self, i: usize) -> Result<(), HostError> {
        let k = self.k;
        let n = &k.nodes[i];
        let me = k.params.len() + i;
        let args: Vec<usize> = n.args.iter().map(|&a| index(k, a)).collect();
        let my_dims = self.dims(me)?;
        match &n.op {
            Op::Full { value, .. } => {
                self.states.push(State::Const(*value));
            }
            Op::Transpose(perm) => {
                let a = self.readable(args[0])?;
                let strides = perm.iter().map(|&p| a.strides[p]).collect();
                self.states.push(State::View(Access { strides, ..a }));
            }
            Op::Slice { axis, start, .. } => {
                let a = self.readable(args[0])?;
                let offset = a.offset + *start as i64 * a.strides[*axis];
                self.states.push(State::View(Access { offset, ..a }));
            }
            Op::BroadcastTo(_) => {
                if let State::Const(c) = self.states[args[0]] {
                    self.states.push(State::Const(c));
                } else {
                    let from = self.dims(args[0])?;
                    let a = self.readable(args[0])?;
                    let strides = broadcast(&from, &a.strides, &my_dims);
                    self.states.push(State::View(Access { strides, ..a }));
                }
            }
            Op::Reshape(_) => {
                if let State::Const(c) = self.states[args[0]] {
                    self.states.push(State::Const(c));
                } else {
                    let p = self.packed(args[0], me)?;
                    self.states.push(State::Stored(p));
                }
            }
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_) => {
                // Operands computed in another loop, or over other dims,
                // are read from memory.
                let open = self.open.filter(
                    |&s| matches!(&self.stages[s], Stage::Map { dims, .. } if *dims == my_dims),
                );
                for &a in &args {
                    if let State::Reg(s) = self.states[a]
                        && (Some(s) != open || self.dims(a)? != my_dims)
                    {
                        self.readable(a)?;
                    }
                }
                let stage = match self.open.filter(|&s| Some(s) == open) {
                    Some(s) => s,
                    None => {
                        self.stages.push(Stage::Map {
                            dims: my_dims,
                            nodes: Vec::new(),
                            stores: Vec::new(),
                        });
                        self.stages.len() - 1
                    }
                };
                if let Some(Stage::Map { nodes, .. }) = self.stages.get_mut(stage) {
                    nodes.push(i);
                }
                self.open = Some(stage);
                self.states.push(State::Reg(stage));
            }
            Op::Reduce { .. } => {
                self.readable(args[0])?;
                self.open = None;
                self.stages.push(Stage::Reduce { node: i });
                let p = self.place_for(me);
                self.states.push(State::Stored(p));
            }
            Op::MatMul => {
                let (a, b) = (self.readable(args[0])?, self.readable(args[1])?);
                self.open = None;
                self.matmul(i, a, b, &my_dims)?;
                let p = self.place_for(me);
                self.states.push(State::Stored(p));
            }
            Op::Concat { axis } => {
                let srcs: Vec<Access> = args
                    .iter()
                    .map(|&a| self.readable(a))
                    .collect::<Result<_, _>>()?;
                self.open = None;
                let place = self.place_for(me);
                let out = contiguous(&my_dims);
                let mut at = 0i64;
                for (src, &a) in srcs.into_iter().zip(&args) {
                    let d = self.dims(a)?;
                    self.stages.push(Stage::Place {
                        src,
                        dst: Access {
                            place,
                            dtype: n.ty.dtype,
                            strides: out.clone(),
                            offset: at * out[*axis],
                        },
                        dims: d.clone(),
                    });
                    at += d[*axis] as i64;
                }
                self.states.push(State::Stored(place));
            }
        }
        Ok(())
    }
}

/// The row dims a stage can run under in a row stage: a map's dims but
/// the last, a reduction over its operand's last axis its result's dims.
fn row_dims(k: &Kernel, st: &Stage) -> Option<Vec<u64>> {
    match st {
        Stage::Map { dims, .. } if dims.len() >= 2 => Some(dims[..dims.len() - 1].to_vec()),
        Stage::Reduce { node } => {
            let n = &k.nodes[*node];
            let rank = k.ty(n.args[0]).shape.rank();
            let last = matches!(&n.op, Op::Reduce { axes, .. } if axes == &[rank - 1]);
            let out = dims(k, Value::Node(*node as u32)).ok()?;
            (last && !out.is_empty()).then_some(out)
        }
        Stage::Map { .. }
        | Stage::Pack { .. }
        | Stage::Gemm(_)
        | Stage::Rows { .. }
        | Stage::Place { .. } => None,
    }
}

/// The places a stage writes.
fn writes(k: &Kernel, states: &[State], st: &Stage) -> Vec<Place> {
    let place = |v: usize| match &states[v] {
        State::Stored(p) => Some(*p),
        State::View(_) | State::Const(_) | State::Reg(_) => None,
    };
    match st {
        Stage::Map { stores, .. } => stores.iter().filter_map(|&v| place(v)).collect(),
        Stage::Reduce { node } => place(k.params.len() + node).into_iter().collect(),
        Stage::Gemm(g) => vec![g.c],
        Stage::Pack { dst, .. } => vec![*dst],
        Stage::Place { dst, .. } => vec![dst.place],
        Stage::Rows { parts, .. } => parts.iter().flat_map(|p| writes(k, states, p)).collect(),
    }
}

/// Whether `st` reads, of the `written` places, only packed values of dims
/// `rows ++ [x]` (so, broadcast or not, only the row it runs on).
fn row_local(k: &Kernel, states: &[State], st: &Stage, rows: &[u64], written: &[Place]) -> bool {
    let np = k.params.len();
    let operands: Vec<usize> = match st {
        Stage::Map { nodes, .. } => nodes
            .iter()
            .flat_map(|&i| k.nodes[i].args.iter().map(|&a| index(k, a)))
            .filter(|&v| v < np || !nodes.contains(&(v - np)))
            .collect(),
        Stage::Reduce { node } => vec![index(k, k.nodes[*node].args[0])],
        Stage::Pack { .. } | Stage::Gemm(_) | Stage::Rows { .. } | Stage::Place { .. } => {
            return false;
        }
    };
    operands.iter().all(|&v| match &states[v] {
        State::Const(_) | State::Reg(_) => true,
        State::View(a) => !written.contains(&a.place),
        State::Stored(p) => {
            !written.contains(p) || {
                let d = dims(k, value(k, v)).unwrap_or_default();
                d.len() == rows.len() + 1 && d[..rows.len()] == *rows
            }
        }
    })
}

/// Groups runs of stages into row stages (see [`Stage::Rows`]): a run
/// over the same row dims, holding a reduction, each stage row-local to
/// what the earlier ones write.
fn fuse_rows(k: &Kernel, states: &[State], stages: Vec<Stage>) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::with_capacity(stages.len());
    let mut i = 0;
    while i < stages.len() {
        let Some(rows) = row_dims(k, &stages[i]) else {
            out.push(stages[i].clone());
            i += 1;
            continue;
        };
        let mut written = writes(k, states, &stages[i]);
        let mut j = i + 1;
        while j < stages.len()
            && row_dims(k, &stages[j]).as_ref() == Some(&rows)
            && row_local(k, states, &stages[j], &rows, &written)
        {
            written.extend(writes(k, states, &stages[j]));
            j += 1;
        }
        let run = &stages[i..j];
        if run.len() >= 2 && run.iter().any(|s| matches!(s, Stage::Reduce { .. })) {
            out.push(Stage::Rows {
                rows,
                parts: run.to_vec(),
                scratch: 0,
            });
        } else {
            out.extend(run.iter().cloned());
        }
        i = j;
    }
    out
}

/// The places a stage reads.
fn reads(k: &Kernel, states: &[State], st: &Stage) -> Vec<Place> {
    let np = k.params.len();
    let of = |v: usize| match &states[v] {
        State::Stored(p) => Some(*p),
        State::View(a) => Some(a.place),
        State::Const(_) | State::Reg(_) => None,
    };
    match st {
        Stage::Map { nodes, .. } => nodes
            .iter()
            .flat_map(|&i| k.nodes[i].args.iter().map(|&a| index(k, a)))
            .filter(|&v| v < np || !nodes.contains(&(v - np)))
            .filter_map(of)
            .collect(),
        Stage::Reduce { node } => of(index(k, k.nodes[*node].args[0])).into_iter().collect(),
        Stage::Pack { src, .. } | Stage::Place { src, .. } => vec![src.place],
        Stage::Gemm(g) => vec![g.a, g.b, g.c],
        Stage::Rows { parts, .. } => parts.iter().flat_map(|p| reads(k, states, p)).collect(),
    }
}

/// The most scratch a row stage takes on a thread's stack.
const MAX_SCRATCH: u64 = 128 * 1024;

/// Moves the rows of values that only one row stage reads (its own
/// intermediates) from the workspace to that stage's scratch: each row is
/// written and read back while it is in cache, and never goes to memory.
fn row_scratch(k: &Kernel, states: &mut [State], stages: &mut [Stage]) {
    for s in 0..stages.len() {
        let Stage::Rows { rows, parts, .. } = &stages[s] else {
            continue;
        };
        let rows = rows.clone();
        let mut mine: Vec<u64> = parts
            .iter()
            .flat_map(|p| writes(k, states, p))
            .filter_map(|p| match p {
                Place::Work(off) => Some(off),
                Place::Param(_) | Place::Result(_) | Place::Scratch(_) => None,
            })
            .collect();
        let later: Vec<Place> = stages[s + 1..]
            .iter()
            .flat_map(|st| reads(k, states, st))
            .collect();
        mine.retain(|off| !later.contains(&Place::Work(*off)));
        mine.sort_unstable();
        mine.dedup();
        let mut used = 0u64;
        for off in mine {
            let values: Vec<usize> = (0..states.len())
                .filter(|&v| states[v] == State::Stored(Place::Work(off)))
                .collect();
            let Some(&first) = values.first() else {
                continue;
            };
            let ty = k.ty(value(k, first));
            let row: u64 = ty.shape.as_fixed().unwrap_or_default()[rows.len()..]
                .iter()
                .product();
            let bytes = (row * ty.dtype.size_bytes() as u64).next_multiple_of(64);
            if used + bytes > MAX_SCRATCH {
                continue;
            }
            for v in values {
                let d = k.ty(value(k, v)).shape.as_fixed().unwrap_or_default();
                let mut strides = vec![0i64; rows.len()];
                strides.extend(contiguous(&d[rows.len()..]));
                states[v] = State::View(Access {
                    place: Place::Scratch(used),
                    dtype: k.ty(value(k, v)).dtype,
                    strides,
                    offset: 0,
                });
            }
            used += bytes;
        }
        if let Stage::Rows { scratch, .. } = &mut stages[s] {
            *scratch = used;
        }
    }
}

/// The constant value `v` is, if it is one.
fn constant(k: &Kernel, v: usize) -> Option<Scalar> {
    let i = v.checked_sub(k.params.len())?;
    let n = &k.nodes[i];
    match &n.op {
        Op::Full { value, .. } => Some(*value),
        Op::BroadcastTo(_) | Op::Reshape(_) => constant(k, index(k, n.args[0])),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast(_)
        | Op::Reduce { .. }
        | Op::MatMul
        | Op::Transpose(_)
        | Op::Concat { .. }
        | Op::Slice { .. } => None,
    }
}

/// Schedules a kernel with concrete dims.
pub(super) fn schedule(k: &Kernel) -> Result<Schedule, HostError> {
    let mut b = Builder {
        k,
        states: (0..k.params.len())
            .map(|p| State::Stored(Place::Param(p)))
            .collect(),
        stages: Vec::new(),
        work: 0,
        open: None,
    };
    for i in 0..k.nodes.len() {
        b.node(i)?;
    }
    // Every result in its slot: values still in registers are stored there
    // by their stage; anything else is copied in.
    for (j, o) in k.outputs.iter().enumerate() {
        let v = index(k, o.value);
        if let State::Reg(_) = b.states[v] {
            b.readable(v)?;
        }
        if b.states[v] == State::Stored(Place::Result(j)) {
            continue;
        }
        let src = b.readable(v)?;
        let d = b.dims(v)?;
        b.stages.push(Stage::Place {
            src,
            dst: Access {
                place: Place::Result(j),
                dtype: k.ty(o.value).dtype,
                strides: contiguous(&d),
                offset: 0,
            },
            dims: d,
        });
    }
    let mut stages = fuse_rows(k, &b.states, b.stages);
    row_scratch(k, &mut b.states, &mut stages);
    let consts = (0..b.states.len()).map(|v| constant(k, v)).collect();
    Ok(Schedule {
        consts,
        states: b.states,
        stages,
        work_bytes: b.work,
    })
}
