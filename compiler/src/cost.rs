//! The work of IR ops on a machine: what the roofline of `tessera bench`
//! and the optimiser's cost model both count.
//!
//! An op's minimal work is its cube MACs (per dtype) and its minimal vector
//! cycles: each vector op once over its elements at full 256-byte repeats
//! and its per-repeat cost class. A stage costs `launch + max(cube, vector,
//! GM bytes / bandwidth)` ([`Machine::roofline`]).

use tessera_ir::{BinaryOp, DType, Op, ReduceOp, TensorType, UnaryOp};
use tessera_sim::Machine;

/// Cube MACs per dtype and minimal vector cycles (all cores together).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Work {
    /// MACs per operand dtype on the cube.
    pub macs: Vec<(tessera_sim::Dt, u64)>,
    /// Minimal vector cycles.
    pub vector: f64,
}

impl Work {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Work) {
        for &(dt, n) in &other.macs {
            match self.macs.iter_mut().find(|(d, _)| *d == dt) {
                Some(e) => e.1 += n,
                None => self.macs.push((dt, n)),
            }
        }
        self.vector += other.vector;
    }
}

/// Bytes of a tensor of type `ty`.
pub fn bytes(ty: &TensorType) -> u64 {
    ty.shape.num_elements().unwrap_or(0) * ty.dtype.size_bytes() as u64
}

/// The per-repeat cost class of an op's minimal vector work (0 when the op
/// does no vector arithmetic: layout ops, matmul).
fn repeat_cost(op: &Op, m: &Machine) -> f64 {
    let v = &m.vector.ops;
    let c = |cost: &tessera_sim::machine::OpCost| f64::from(cost.per_repeat);
    match op {
        Op::Unary(u) => match u {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Rsqrt | UnaryOp::Reciprocal => {
                c(&v.unary)
            }
            UnaryOp::Exp => c(&v.exp),
            UnaryOp::Log => c(&v.ln),
            UnaryOp::Sqrt => c(&v.sqrt),
            // Composites: their minimal primitive sequences.
            UnaryOp::Sigmoid | UnaryOp::Silu => c(&v.scalar) * 2.0 + c(&v.exp) + c(&v.unary),
            UnaryOp::Tanh => c(&v.exp) + c(&v.div) + c(&v.scalar) * 3.0,
            UnaryOp::Erf | UnaryOp::Gelu => c(&v.exp) * 2.0 + c(&v.binary) * 6.0,
            // x·sigmoid(2w): three products, four scalar ops, exp, rec.
            UnaryOp::GeluTanh => c(&v.exp) + c(&v.unary) + c(&v.binary) * 3.0 + c(&v.scalar) * 4.0,
            // The full-range reduction (six gathered chunks of 2/π, eleven
            // exact products, their residues and fractions summed exactly),
            // two polynomials, the quadrant's choice and sign.
            UnaryOp::Sin | UnaryOp::Cos => {
                c(&v.unary) * 2.0
                    + c(&v.scalar) * 41.0
                    + c(&v.binary) * 63.0
                    + c(&v.div) * 3.0
                    + c(&v.gather) * 6.0
                    + c(&v.cast) * 2.0
                    + c(&v.compare) * 5.0
                    + c(&v.select) * 5.0
            }
        },
        Op::Binary(b) => match b {
            BinaryOp::Div => c(&v.div),
            BinaryOp::Pow => c(&v.ln) + c(&v.exp) + c(&v.binary),
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Maximum
            | BinaryOp::Minimum => c(&v.binary),
        },
        Op::Compare(_) => c(&v.compare),
        Op::Select => c(&v.select),
        Op::Cast(_) => c(&v.cast),
        // Block by block (one block reduction a repeat), then the partials
        // across repeats: an eighth of the repeats at the binary class.
        Op::Reduce { op, .. } => match op {
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min => {
                c(&v.block_reduce) + c(&v.binary) / 8.0
            }
        },
        Op::Full { .. }
        | Op::MatMul
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::BroadcastTo(_)
        | Op::Concat { .. }
        | Op::Slice { .. } => 0.0,
    }
}

/// The minimal work of one op with operands of types `args` and result
/// type `ty`.
pub fn node_work(op: &Op, args: &[&TensorType], ty: &TensorType, m: &Machine) -> Work {
    if let Op::MatMul = op {
        let Some(a) = args.first() else {
            return Work::default();
        };
        let kdim = a.shape.dims().last().and_then(|d| d.fixed()).unwrap_or(0);
        let out = ty.shape.num_elements().unwrap_or(0);
        let dt = crate::simulate::dt(a.dtype);
        if m.cube_macs_per_cycle(dt).is_none() {
            // The cube lacks the dtype, so the vector unit does the MACs: at
            // least a multiply and an add per MAC, 64 lanes (f32 or i32
            // accumulation) per 256-byte repeat.
            let v = &m.vector.ops;
            let per_repeat = f64::from(v.scalar.per_repeat) + f64::from(v.binary.per_repeat);
            return Work {
                macs: Vec::new(),
                vector: (out * kdim).div_ceil(64) as f64 * per_repeat,
            };
        }
        return Work {
            macs: vec![(dt, out * kdim)],
            vector: 0.0,
        };
    }
    // Work over the larger of input and output elements (reductions read
    // more than they write), in 256-byte repeats of the widest dtype.
    let elems = args
        .iter()
        .copied()
        .chain(std::iter::once(ty))
        .map(|t| t.shape.num_elements().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let widest = args
        .iter()
        .map(|a| a.dtype)
        .chain(std::iter::once(ty.dtype))
        .map(|d| {
            if d.is_float() && d != DType::F32 {
                2
            } else {
                d.size_bytes().max(1)
            }
        })
        .max()
        .unwrap_or(4) as u64;
    let repeats = (elems * widest).div_ceil(256);
    Work {
        macs: Vec::new(),
        vector: repeats as f64 * repeat_cost(op, m),
    }
}
