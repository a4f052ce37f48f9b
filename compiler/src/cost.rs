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
        // The cheapest of: block by block (one block reduction a repeat),
        // then the partials across repeats, an eighth of the repeats at the
        // binary class; repeats folded into one by binary ops; a whole-
        // repeat reduction each. (On the built-in machines the first; a
        // description with a slow block reduction makes another the least.)
        Op::Reduce { op, .. } => match op {
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min => (c(&v.block_reduce)
                + c(&v.binary) / 8.0)
                .min(c(&v.binary))
                .min(c(&v.reduce)),
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

/// Whether an op is a tensor-scalar one (machine.md's per-repeat class
/// of 1): `+`, `·`, `maximum` or `minimum` of a tensor and a one-element
/// operand either way, or a tensor minus one (`vec.adds` of its negation).
/// The backend computes a constant operand so (`vector::constant_form`).
fn tensor_scalar(op: &Op, args: &[&TensorType]) -> bool {
    let one = |k: usize| {
        args.get(k)
            .and_then(|t| t.shape.num_elements())
            .is_some_and(|n| n == 1)
    };
    let (Op::Binary(b), [_, _]) = (op, args) else {
        return false;
    };
    match b {
        BinaryOp::Add | BinaryOp::Mul | BinaryOp::Maximum | BinaryOp::Minimum => one(0) != one(1),
        BinaryOp::Sub => one(1) && !one(0),
        BinaryOp::Div | BinaryOp::Pow => false,
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
    let per_repeat = if tensor_scalar(op, args) {
        f64::from(m.vector.ops.scalar.per_repeat)
    } else {
        repeat_cost(op, m)
    };
    Work {
        macs: Vec::new(),
        vector: repeats as f64 * per_repeat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::Shape;

    fn f32_of(dims: &[u64]) -> TensorType {
        TensorType::new(DType::F32, Shape::fixed(dims))
    }

    #[test]
    fn a_tensor_and_a_scalar_cost_the_tensor_scalar_class() {
        // machine.md: per repeat 1 cycle tensor-scalar, 2 tensor-tensor.
        // f32 [1024, 1024] is 16 384 repeats of 256 bytes.
        let m = crate::simulate::machine(Some("910b-like")).expect("built-in");
        let (x, s) = (f32_of(&[1024, 1024]), f32_of(&[]));
        let one = f32_of(&[1, 1]);
        let work =
            |b: BinaryOp, args: &[&TensorType]| node_work(&Op::Binary(b), args, &x, &m).vector;
        for b in [
            BinaryOp::Add,
            BinaryOp::Mul,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
        ] {
            assert_eq!(work(b, &[&x, &s]), 16_384.0, "{b:?}");
            assert_eq!(work(b, &[&one, &x]), 16_384.0, "{b:?}");
            assert_eq!(work(b, &[&x, &x]), 32_768.0, "{b:?}");
        }
        // A tensor minus a scalar adds its negation; a scalar minus a
        // tensor, and a division, are not one tensor-scalar instruction.
        assert_eq!(work(BinaryOp::Sub, &[&x, &s]), 16_384.0);
        assert_eq!(work(BinaryOp::Sub, &[&s, &x]), 32_768.0);
        assert_eq!(work(BinaryOp::Div, &[&x, &s]), 16_384.0 * 4.0);
    }

    /// A reduction's minimal work is its cheapest form on the machine: on
    /// 910b-like block reductions (1 a repeat) and an eighth of the repeats
    /// at the binary class (2); with block reductions at 1024 a repeat,
    /// binary folds of the repeats (2 each) — else the bound could exceed
    /// what the simulator runs.
    #[test]
    fn a_reduction_costs_its_cheapest_form() {
        use tessera_ir::ReduceOp;
        let m = crate::simulate::machine(Some("910b-like")).expect("built-in");
        let (x, row) = (f32_of(&[1024, 1024]), f32_of(&[1024]));
        let sum = Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
        };
        assert_eq!(node_work(&sum, &[&x], &row, &m).vector, 16_384.0 * 1.25);
        let text = m.to_toml();
        let old = "[vector.ops.block_reduce]\nper_repeat = 1\n";
        assert!(text.contains(old), "the machine description changed");
        let slow = tessera_sim::Machine::from_toml(
            &text.replace(old, "[vector.ops.block_reduce]\nper_repeat = 1024\n"),
        )
        .expect("a valid machine");
        assert_eq!(node_work(&sum, &[&x], &row, &slow).vector, 16_384.0 * 2.0);
    }
}
