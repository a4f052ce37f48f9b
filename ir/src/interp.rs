//! The reference interpreter: the `ref` target and the oracle every backend
//! is checked against.
//!
//! It is written to be obviously right, not fast: each node is evaluated in
//! order into a fresh [`Tensor`], computing in `f64` and rounding once to the
//! node's dtype (`docs/language-notes.md`, "Numeric semantics"). Broadcasting,
//! transposes and slices are all expressed as one strided index map.

use crate::diag::Span;
use crate::graph::{Kernel, Value};
use crate::op::{BinaryOp, CompareOp, Op, ReduceOp, Scalar};
use crate::tensor::{Data, Tensor};
use crate::types::DType;
use std::fmt;

/// The most elements the interpreter holds at once: it keeps every value
/// of the kernel (parameters and nodes), as f64 (2^25: 256 MiB).
pub const MAX_VALUES: u64 = 1 << 25;
/// The most work it does: one unit per element an op produces, plus the
/// multiply-adds of matmuls and the elements reductions read (2^30, a few
/// seconds).
pub const MAX_WORK: u64 = 1 << 30;

/// Why a kernel could not be run.
#[derive(Clone, Debug, PartialEq)]
pub enum InterpError {
    /// The inputs do not match the parameters.
    Inputs(String),
    /// The kernel has symbolic dims or is otherwise not runnable.
    NotConcrete(String),
    /// A kernel past [`MAX_VALUES`] or [`MAX_WORK`].
    TooLarge {
        /// What is too large, with its figures.
        what: String,
    },
    /// Integer division by zero at a node.
    DivByZero {
        /// The node.
        node: usize,
        /// Its source span.
        span: Option<Span>,
    },
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::Inputs(m) | InterpError::NotConcrete(m) => f.write_str(m),
            InterpError::TooLarge { what } => {
                write!(
                    f,
                    "the reference interpreter cannot run this kernel: {what}"
                )
            }
            InterpError::DivByZero { node, .. } => {
                write!(f, "integer division by zero (node %{node})")
            }
        }
    }
}

/// Checks a kernel against [`MAX_VALUES`] and [`MAX_WORK`] before anything
/// is allocated (exact arithmetic: no size can overflow). [`run`] does it
/// first; a caller may ask before building inputs.
pub fn budget(k: &Kernel) -> Result<(), InterpError> {
    let elements = |v: Value| -> u128 {
        k.ty(v)
            .shape
            .dims()
            .iter()
            .map(|d| u128::from(d.fixed().unwrap_or(1)))
            .product()
    };
    let params: u128 = (0..k.params.len() as u32)
        .map(|p| elements(Value::Param(p)))
        .sum();
    let (mut held, mut work) = (params, 0u128);
    for (i, n) in k.nodes.iter().enumerate() {
        let out = elements(Value::Node(i as u32));
        held += out;
        work += out
            + match &n.op {
                // Each output element is a dot product over K.
                Op::MatMul => {
                    out * u128::from(
                        k.ty(n.args[0])
                            .shape
                            .dims()
                            .last()
                            .and_then(|d| d.fixed())
                            .unwrap_or(1),
                    )
                }
                Op::Reduce { .. } => elements(n.args[0]),
                Op::Full { .. }
                | Op::Unary(_)
                | Op::Binary(_)
                | Op::Compare(_)
                | Op::Select
                | Op::Cast(_)
                | Op::Reshape(_)
                | Op::Transpose(_)
                | Op::BroadcastTo(_)
                | Op::Concat { .. }
                | Op::Slice { .. } => 0,
            };
    }
    if held > u128::from(MAX_VALUES) {
        return Err(InterpError::TooLarge {
            what: format!(
                "it holds every value of `{}`, {held} elements in all, and its limit is {MAX_VALUES}",
                k.name
            ),
        });
    }
    if work > u128::from(MAX_WORK) {
        return Err(InterpError::TooLarge {
            what: format!(
                "`{}` takes {work} element operations and multiply-adds, and its limit is {MAX_WORK}",
                k.name
            ),
        });
    }
    Ok(())
}

/// Checks that `inputs` match a concrete kernel's parameters, in order: their
/// number, and each one's dtype, shape and element count (what every target
/// that runs a kernel on host tensors checks first).
pub fn check_inputs(k: &Kernel, inputs: &[Tensor]) -> Result<(), String> {
    if inputs.len() != k.params.len() {
        return Err(format!(
            "`{}` takes {} inputs, {} given",
            k.name,
            k.params.len(),
            inputs.len()
        ));
    }
    for (p, t) in k.params.iter().zip(inputs) {
        let want = p.ty.shape.as_usize().unwrap_or_default();
        if p.ty.dtype != t.dtype
            || want != t.shape
            || t.len() != Tensor::count(&t.shape).unwrap_or(0)
        {
            return Err(format!(
                "input `{}` is {}{:?}, the parameter is {}",
                p.name, t.dtype, t.shape, p.ty
            ));
        }
    }
    Ok(())
}

/// Runs a kernel on inputs given in parameter order.
pub fn run(k: &Kernel, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    crate::verify::verify_concrete(k).map_err(|e| InterpError::NotConcrete(e.to_string()))?;
    check_inputs(k, inputs).map_err(InterpError::Inputs)?;
    budget(k)?;
    let mut values: Vec<Tensor> = Vec::with_capacity(k.nodes.len());
    for (i, n) in k.nodes.iter().enumerate() {
        let shape = n.ty.shape.as_usize().unwrap_or_default();
        let get = |v: Value| -> &Tensor {
            match v {
                Value::Param(p) => &inputs[p as usize],
                Value::Node(j) => &values[j as usize],
            }
        };
        let args: Vec<&Tensor> = n.args.iter().map(|&a| get(a)).collect();
        let out = eval(&n.op, &args, n.ty.dtype, shape).map_err(|_| InterpError::DivByZero {
            node: i,
            span: n.span,
        })?;
        values.push(out);
    }
    Ok(k.outputs
        .iter()
        .map(|o| match o.value {
            Value::Param(p) => inputs[p as usize].clone(),
            Value::Node(j) => values[j as usize].clone(),
        })
        .collect())
}

struct DivZero;

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// For every element of `out_shape` (row-major), the index `offset + Σ
/// idx_d · strides[d]` into a source.
fn index_map(out_shape: &[usize], strides: &[usize], offset: usize) -> Vec<usize> {
    let n = Tensor::count(out_shape).unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_shape.len()];
    let mut at = offset;
    for _ in 0..n {
        out.push(at);
        for d in (0..out_shape.len()).rev() {
            idx[d] += 1;
            at += strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            at -= strides[d] * out_shape[d];
            idx[d] = 0;
        }
    }
    out
}

/// The index map that broadcasts a tensor of `in_shape` to `out_shape`.
fn broadcast_map(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let in_strides = strides(in_shape);
    let lead = out_shape.len() - in_shape.len();
    let s: Vec<usize> = (0..out_shape.len())
        .map(|d| {
            if d < lead || in_shape[d - lead] == 1 {
                0
            } else {
                in_strides[d - lead]
            }
        })
        .collect();
    index_map(out_shape, &s, 0)
}

fn gather(t: &Tensor, map: &[usize], shape: Vec<usize>) -> Tensor {
    let data = match &t.data {
        Data::Float(v) => Data::Float(map.iter().map(|&i| v[i]).collect()),
        Data::Int(v) => Data::Int(map.iter().map(|&i| v[i]).collect()),
        Data::Bool(v) => Data::Bool(map.iter().map(|&i| v[i]).collect()),
    };
    Tensor {
        dtype: t.dtype,
        shape,
        data,
    }
}

fn cast_value(from: &Data, i: usize, to: DType) -> ScalarValue {
    match (from, to.is_float(), to.is_int()) {
        (Data::Float(v), true, _) => ScalarValue::F(to.round_float(v[i])),
        (Data::Float(v), _, true) => ScalarValue::I(to.float_to_int(v[i])),
        (Data::Float(v), _, _) => ScalarValue::B(v[i] != 0.0),
        (Data::Int(v), true, _) => ScalarValue::F(to.round_float(v[i] as f64)),
        (Data::Int(v), _, true) => ScalarValue::I(to.saturate_int(v[i])),
        (Data::Int(v), _, _) => ScalarValue::B(v[i] != 0),
        (Data::Bool(v), true, _) => ScalarValue::F(f64::from(u8::from(v[i]))),
        (Data::Bool(v), _, true) => ScalarValue::I(i64::from(v[i])),
        (Data::Bool(v), _, _) => ScalarValue::B(v[i]),
    }
}

enum ScalarValue {
    F(f64),
    I(i64),
    B(bool),
}

fn collect(dtype: DType, shape: Vec<usize>, values: impl Iterator<Item = ScalarValue>) -> Tensor {
    let data = match dtype {
        DType::F16 | DType::BF16 | DType::F32 => Data::Float(
            values
                .map(|v| match v {
                    ScalarValue::F(x) => x,
                    ScalarValue::I(i) => i as f64,
                    ScalarValue::B(b) => f64::from(u8::from(b)),
                })
                .collect(),
        ),
        DType::I8 | DType::I32 => Data::Int(
            values
                .map(|v| match v {
                    ScalarValue::I(i) => i,
                    ScalarValue::F(x) => x as i64,
                    ScalarValue::B(b) => i64::from(b),
                })
                .collect(),
        ),
        DType::Bool => Data::Bool(
            values
                .map(|v| match v {
                    ScalarValue::B(b) => b,
                    ScalarValue::F(x) => x != 0.0,
                    ScalarValue::I(i) => i != 0,
                })
                .collect(),
        ),
    };
    Tensor { dtype, shape, data }
}

fn eval(op: &Op, args: &[&Tensor], dtype: DType, shape: Vec<usize>) -> Result<Tensor, DivZero> {
    let n = Tensor::count(&shape).unwrap_or(0);
    Ok(match op {
        Op::Full { value, .. } => {
            let v = match *value {
                Scalar::Float(x) => ScalarValue::F(x),
                Scalar::Int(i) => ScalarValue::I(i),
                Scalar::Bool(b) => ScalarValue::B(b),
            };
            let data = match v {
                ScalarValue::F(x) => Data::Float(vec![x; n]),
                ScalarValue::I(i) => Data::Int(vec![i; n]),
                ScalarValue::B(b) => Data::Bool(vec![b; n]),
            };
            Tensor { dtype, shape, data }
        }
        Op::Unary(u) => {
            let x = args[0];
            match &x.data {
                Data::Float(v) => Tensor {
                    dtype,
                    shape,
                    data: Data::Float(
                        v.iter()
                            .map(|&a| dtype.round_float(u.eval_float(a)))
                            .collect(),
                    ),
                },
                Data::Int(v) => Tensor {
                    dtype,
                    shape,
                    data: Data::Int(
                        v.iter()
                            .map(|&a| dtype.wrap_int(u.eval_int(a).unwrap_or(a)))
                            .collect(),
                    ),
                },
                Data::Bool(_) => x.clone(),
            }
        }
        Op::Binary(b) => {
            let ma = broadcast_map(&args[0].shape, &shape);
            let mb = broadcast_map(&args[1].shape, &shape);
            binary(*b, args[0], args[1], &ma, &mb, dtype, shape)?
        }
        Op::Compare(c) => {
            let ma = broadcast_map(&args[0].shape, &shape);
            let mb = broadcast_map(&args[1].shape, &shape);
            let out: Vec<bool> = match (&args[0].data, &args[1].data) {
                (Data::Float(a), Data::Float(b)) => {
                    (0..n).map(|i| c.eval(a[ma[i]], b[mb[i]])).collect()
                }
                (Data::Int(a), Data::Int(b)) => {
                    (0..n).map(|i| c.eval(a[ma[i]], b[mb[i]])).collect()
                }
                (Data::Bool(a), Data::Bool(b)) => (0..n)
                    .map(|i| compare_bool(*c, a[ma[i]], b[mb[i]]))
                    .collect(),
                _ => vec![false; n],
            };
            Tensor {
                dtype,
                shape,
                data: Data::Bool(out),
            }
        }
        Op::Select => {
            let mc = broadcast_map(&args[0].shape, &shape);
            let ma = broadcast_map(&args[1].shape, &shape);
            let mb = broadcast_map(&args[2].shape, &shape);
            let Data::Bool(c) = &args[0].data else {
                return Ok(args[1].clone());
            };
            let pick: Vec<(usize, usize)> = (0..n)
                .map(|i| if c[mc[i]] { (1, ma[i]) } else { (2, mb[i]) })
                .collect();
            let data = match (&args[1].data, &args[2].data) {
                (Data::Float(a), Data::Float(b)) => Data::Float(
                    pick.iter()
                        .map(|&(w, j)| if w == 1 { a[j] } else { b[j] })
                        .collect(),
                ),
                (Data::Int(a), Data::Int(b)) => Data::Int(
                    pick.iter()
                        .map(|&(w, j)| if w == 1 { a[j] } else { b[j] })
                        .collect(),
                ),
                (Data::Bool(a), Data::Bool(b)) => Data::Bool(
                    pick.iter()
                        .map(|&(w, j)| if w == 1 { a[j] } else { b[j] })
                        .collect(),
                ),
                _ => args[1].data.clone(),
            };
            Tensor { dtype, shape, data }
        }
        Op::Cast(to) => collect(
            *to,
            shape,
            (0..n).map(|i| cast_value(&args[0].data, i, *to)),
        ),
        Op::Reduce { op: r, axes } => reduce(*r, axes, args[0], dtype, shape),
        Op::MatMul => matmul(args[0], args[1], dtype, shape),
        Op::Reshape(_) => Tensor {
            dtype,
            shape,
            data: args[0].data.clone(),
        },
        Op::BroadcastTo(_) => {
            let m = broadcast_map(&args[0].shape, &shape);
            gather(args[0], &m, shape)
        }
        Op::Transpose(perm) => {
            let s = strides(&args[0].shape);
            let ps: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
            let m = index_map(&shape, &ps, 0);
            gather(args[0], &m, shape)
        }
        Op::Slice { axis, start, .. } => {
            let s = strides(&args[0].shape);
            let m = index_map(&shape, &s, *start as usize * s[*axis]);
            gather(args[0], &m, shape)
        }
        Op::Concat { axis } => concat(args, *axis, dtype, shape),
    })
}

fn compare_bool(c: CompareOp, a: bool, b: bool) -> bool {
    c.eval(a, b)
}

fn binary(
    b: BinaryOp,
    x: &Tensor,
    y: &Tensor,
    ma: &[usize],
    mb: &[usize],
    dtype: DType,
    shape: Vec<usize>,
) -> Result<Tensor, DivZero> {
    let data = match (&x.data, &y.data) {
        (Data::Float(a), Data::Float(c)) => Data::Float(
            ma.iter()
                .zip(mb)
                .map(|(&i, &j)| dtype.round_float(b.eval_float(a[i], c[j])))
                .collect(),
        ),
        (Data::Int(a), Data::Int(c)) => Data::Int(
            ma.iter()
                .zip(mb)
                .map(|(&i, &j)| b.eval_int(a[i], c[j]).map(|v| dtype.wrap_int(v)))
                .collect::<Result<_, _>>()
                .map_err(|_| DivZero)?,
        ),
        _ => x.data.clone(),
    };
    Ok(Tensor { dtype, shape, data })
}

fn reduce(r: ReduceOp, axes: &[usize], x: &Tensor, dtype: DType, shape: Vec<usize>) -> Tensor {
    let n_out = Tensor::count(&shape).unwrap_or(0);
    let out_strides = strides(&shape);
    // Map every input element to its output element: kept axes advance by
    // the output's strides, reduced axes by 0.
    let mut s = Vec::with_capacity(x.shape.len());
    let mut kept = 0;
    for d in 0..x.shape.len() {
        if axes.contains(&d) {
            s.push(0);
        } else {
            s.push(out_strides[kept]);
            kept += 1;
        }
    }
    let map = index_map(&x.shape, &s, 0);
    let count = (x.len() / n_out.max(1)).max(1);
    match &x.data {
        Data::Float(v) => {
            let mut acc: Vec<f64> = match r {
                ReduceOp::Sum | ReduceOp::Mean => vec![0.0; n_out],
                ReduceOp::Max => vec![f64::NEG_INFINITY; n_out],
                ReduceOp::Min => vec![f64::INFINITY; n_out],
            };
            for (&o, &a) in map.iter().zip(v) {
                let slot = &mut acc[o];
                *slot = match r {
                    ReduceOp::Sum | ReduceOp::Mean => *slot + a,
                    ReduceOp::Max => BinaryOp::Maximum.eval_float(*slot, a),
                    ReduceOp::Min => BinaryOp::Minimum.eval_float(*slot, a),
                };
            }
            if r == ReduceOp::Mean {
                for a in &mut acc {
                    *a /= count as f64;
                }
            }
            Tensor {
                dtype,
                shape,
                data: Data::Float(acc.into_iter().map(|a| dtype.round_float(a)).collect()),
            }
        }
        Data::Int(v) => {
            let mut acc: Vec<i64> = match r {
                ReduceOp::Sum | ReduceOp::Mean => vec![0; n_out],
                ReduceOp::Max => vec![i64::MIN; n_out],
                ReduceOp::Min => vec![i64::MAX; n_out],
            };
            for (&o, &a) in map.iter().zip(v) {
                let slot = &mut acc[o];
                *slot = match r {
                    // The accumulator is i32, wrapping.
                    ReduceOp::Sum | ReduceOp::Mean => DType::I32.wrap_int(slot.wrapping_add(a)),
                    ReduceOp::Max => (*slot).max(a),
                    ReduceOp::Min => (*slot).min(a),
                };
            }
            Tensor {
                dtype,
                shape,
                data: Data::Int(acc.into_iter().map(|a| dtype.saturate_int(a)).collect()),
            }
        }
        Data::Bool(_) => x.clone(),
    }
}

fn matmul(a: &Tensor, b: &Tensor, dtype: DType, shape: Vec<usize>) -> Tensor {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
    let n = b.shape[rb - 1];
    let batch = &shape[..shape.len() - 2];
    // Batch index maps: which matrix of `a` and of `b` each output batch uses.
    let batch_of = |s: &[usize]| -> Vec<usize> {
        let bs = &s[..s.len() - 2];
        broadcast_map(bs, batch)
    };
    let (ba, bb) = (batch_of(&a.shape), batch_of(&b.shape));
    let nb = ba.len().max(1);
    match (&a.data, &b.data) {
        (Data::Float(x), Data::Float(y)) => {
            let mut out = Vec::with_capacity(nb * m * n);
            for bi in 0..nb {
                let (xa, yb) = (
                    ba.get(bi).copied().unwrap_or(0) * m * k,
                    bb.get(bi).copied().unwrap_or(0) * k * n,
                );
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0.0f64;
                        for l in 0..k {
                            acc += x[xa + i * k + l] * y[yb + l * n + j];
                        }
                        out.push(dtype.round_float(acc));
                    }
                }
            }
            Tensor {
                dtype,
                shape,
                data: Data::Float(out),
            }
        }
        (Data::Int(x), Data::Int(y)) => {
            let mut out = Vec::with_capacity(nb * m * n);
            for bi in 0..nb {
                let (xa, yb) = (
                    ba.get(bi).copied().unwrap_or(0) * m * k,
                    bb.get(bi).copied().unwrap_or(0) * k * n,
                );
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0i64;
                        for l in 0..k {
                            acc = DType::I32.wrap_int(acc + x[xa + i * k + l] * y[yb + l * n + j]);
                        }
                        out.push(acc);
                    }
                }
            }
            Tensor {
                dtype,
                shape,
                data: Data::Int(out),
            }
        }
        _ => a.clone(),
    }
}

fn concat(args: &[&Tensor], axis: usize, dtype: DType, shape: Vec<usize>) -> Tensor {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut map: Vec<(usize, usize)> = Vec::with_capacity(Tensor::count(&shape).unwrap_or(0));
    for o in 0..outer {
        for (t, a) in args.iter().enumerate() {
            let chunk = a.shape[axis] * inner;
            map.extend((0..chunk).map(|j| (t, o * chunk + j)));
        }
    }
    let data = match dtype {
        DType::F16 | DType::BF16 | DType::F32 => Data::Float(
            map.iter()
                .map(|&(t, j)| match &args[t].data {
                    Data::Float(v) => v[j],
                    _ => 0.0,
                })
                .collect(),
        ),
        DType::I8 | DType::I32 => Data::Int(
            map.iter()
                .map(|&(t, j)| match &args[t].data {
                    Data::Int(v) => v[j],
                    _ => 0,
                })
                .collect(),
        ),
        DType::Bool => Data::Bool(
            map.iter()
                .map(|&(t, j)| match &args[t].data {
                    Data::Bool(v) => v[j],
                    _ => false,
                })
                .collect(),
        ),
    };
    Tensor { dtype, shape, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse_module;

    fn run_text(src: &str, inputs: &[Tensor]) -> Vec<Tensor> {
        let m = parse_module(src).unwrap();
        run(&m.kernels[0], inputs).unwrap()
    }

    fn f32s(shape: Vec<usize>, v: &[f64]) -> Tensor {
        Tensor::from_f64(DType::F32, shape, v.to_vec())
    }

    #[test]
    fn softmax_rows_by_hand() {
        let src = "kernel k(%x: f32[1, 2]) -> (out0: f32[1, 2]) {
  %0 = max %x axes=[1] : f32[1]
  %1 = reshape %0 : f32[1, 1]
  %2 = sub %x, %1 : f32[1, 2]
  %3 = exp %2 : f32[1, 2]
  %4 = sum %3 axes=[1] : f32[1]
  %5 = reshape %4 : f32[1, 1]
  %6 = div %3, %5 : f32[1, 2]
  return %6
}
";
        let out = run_text(src, &[f32s(vec![1, 2], &[0.0, 2f64.ln()])]);
        // softmax([0, ln 2]) = [1/3, 2/3]
        assert_eq!(out[0], f32s(vec![1, 2], &[1.0 / 3.0, 2.0 / 3.0]));
    }

    #[test]
    fn matmul_transpose_slice_concat_by_hand() {
        let src = "kernel k(%a: f32[2, 3], %b: f32[3, 2]) -> (p: f32[2, 2], t: f32[3, 2], s: f32[2, 2], c: f32[2, 5]) {
  %0 = matmul %a, %b : f32[2, 2]
  %1 = transpose %a perm=[1, 0] : f32[3, 2]
  %2 = slice %a axis=1 start=1 end=3 : f32[2, 2]
  %3 = concat %a, %0 axis=1 : f32[2, 5]
  return %0, %1, %2, %3
}
";
        let a = f32s(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = f32s(vec![3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let out = run_text(src, &[a, b]);
        assert_eq!(out[0], f32s(vec![2, 2], &[4.0, 5.0, 10.0, 11.0]));
        assert_eq!(out[1], f32s(vec![3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
        assert_eq!(out[2], f32s(vec![2, 2], &[2.0, 3.0, 5.0, 6.0]));
        assert_eq!(
            out[3],
            f32s(
                vec![2, 5],
                &[1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 5.0, 6.0, 10.0, 11.0]
            )
        );
    }

    #[test]
    fn integer_division_by_zero_is_an_error() {
        let src = "kernel k(%a: i32[2], %b: i32[2]) -> (out0: i32[2]) {\n  %0 = div %a, %b : i32[2]\n  return %0\n}\n";
        let m = parse_module(src).unwrap();
        let a = Tensor::from_f64(DType::I32, vec![2], vec![7.0, -7.0]);
        let ok = Tensor::from_f64(DType::I32, vec![2], vec![2.0, 2.0]);
        assert_eq!(
            run(&m.kernels[0], &[a.clone(), ok]).unwrap()[0],
            Tensor::from_f64(DType::I32, vec![2], vec![3.0, -3.0])
        );
        let zero = Tensor::from_f64(DType::I32, vec![2], vec![1.0, 0.0]);
        assert!(matches!(
            run(&m.kernels[0], &[a, zero]),
            Err(InterpError::DivByZero { node: 0, .. })
        ));
    }

    #[test]
    fn i8_sum_accumulates_wide_and_saturates() {
        let src = "kernel k(%a: i8[4]) -> (out0: i8[]) {\n  %0 = sum %a axes=[0] : i8[]\n  return %0\n}\n";
        let a = Tensor::from_f64(DType::I8, vec![4], vec![100.0, 100.0, -50.0, 10.0]);
        let out = run_text(src, &[a]);
        // 160 saturates to 127.
        assert_eq!(out[0], Tensor::from_f64(DType::I8, vec![], vec![127.0]));
    }

    #[test]
    fn f16_reduction_rounds_once() {
        // 2048 + 1 + 1 in f16 step by step gives 2048 (ties to even twice);
        // accumulated wide and rounded once it is 2050.
        let src = "kernel k(%a: f16[3]) -> (out0: f16[]) {\n  %0 = sum %a axes=[0] : f16[]\n  return %0\n}\n";
        let a = Tensor::from_f64(DType::F16, vec![3], vec![2048.0, 1.0, 1.0]);
        assert_eq!(
            run_text(src, &[a])[0],
            Tensor::from_f64(DType::F16, vec![], vec![2050.0])
        );
    }
}
