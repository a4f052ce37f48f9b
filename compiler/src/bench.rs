//! `tessera bench`: compile a kernel, simulate it (timing only) and measure
//! it against the roofline of machine.md.
//!
//! The bound is `launch + max(cube, vector, GM)`: cube MACs per dtype over
//! every matmul of the IR; the minimal vector work — each vector op of the
//! IR once over its elements at full 256-byte repeats and its per-repeat
//! cost class; and GM bytes for reading each input once and writing each
//! output once. `efficiency = bound / simulated cycles`.

use crate::driver::{self, Failure, Source};
use serde::Serialize;
use std::time::Instant;
use tessera_ir::{BinaryOp, DType, Kernel, Op, ReduceOp, UnaryOp};
use tessera_sim::Machine;

/// What `bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Kernel name.
    pub kernel: String,
    /// Machine name.
    pub machine: String,
    /// Simulated cycles.
    pub cycles: u64,
    /// Simulated time at the machine's clock.
    pub micros: f64,
    /// The roofline bound in cycles.
    pub bound: f64,
    /// Which term bounds it: `cube`, `vector` or `gm`.
    pub bound_by: String,
    /// `bound / cycles`.
    pub efficiency: f64,
    /// Cube MACs of the kernel.
    pub cube_macs: u64,
    /// Minimal vector cycles (all cores together).
    pub vector_cycles_min: f64,
    /// Minimal GM bytes.
    pub gm_bytes_min: u64,
    /// Number of stages (launches).
    pub stages: usize,
    /// Host time to plan and generate, in milliseconds.
    pub compile_ms: f64,
    /// The simulator's report.
    pub report: tessera_sim::Report,
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
            UnaryOp::Erf | UnaryOp::Gelu | UnaryOp::GeluTanh => {
                c(&v.exp) * 2.0 + c(&v.binary) * 6.0
            }
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
        Op::Reduce { op, .. } => match op {
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min => c(&v.binary),
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

/// The roofline inputs of a kernel: cube MACs per dtype, minimal vector
/// cycles, minimal GM bytes.
pub fn roofline_inputs(k: &Kernel, m: &Machine) -> (Vec<(tessera_sim::Dt, u64)>, f64, u64) {
    let mut macs: Vec<(tessera_sim::Dt, u64)> = Vec::new();
    let mut vector = 0.0;
    for n in &k.nodes {
        if let Op::MatMul = n.op {
            let a = k.ty(n.args[0]);
            let kdim = a.shape.dims().last().and_then(|d| d.fixed()).unwrap_or(0);
            let out = n.ty.shape.num_elements().unwrap_or(0);
            let dt = crate::simulate::dt(a.dtype);
            if m.cube_macs_per_cycle(dt).is_none() {
                // The cube lacks the dtype, so the vector unit does the
                // MACs: at least a multiply and an add per MAC, 64 lanes
                // (f32 or i32 accumulation) per 256-byte repeat.
                let v = &m.vector.ops;
                let per_repeat = f64::from(v.scalar.per_repeat) + f64::from(v.binary.per_repeat);
                vector += (out * kdim).div_ceil(64) as f64 * per_repeat;
                continue;
            }
            match macs.iter_mut().find(|(d, _)| *d == dt) {
                Some(e) => e.1 += out * kdim,
                None => macs.push((dt, out * kdim)),
            }
            continue;
        }
        // Work over the larger of input and output elements (reductions read
        // more than they write), in 256-byte repeats of the widest dtype.
        let elems = n
            .args
            .iter()
            .map(|&a| k.ty(a))
            .chain(std::iter::once(&n.ty))
            .map(|t| t.shape.num_elements().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let widest = n
            .args
            .iter()
            .map(|&a| k.ty(a).dtype)
            .chain(std::iter::once(n.ty.dtype))
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
        vector += repeats as f64 * repeat_cost(&n.op, m);
    }
    let gm: u64 = k
        .params
        .iter()
        .map(|p| p.ty.shape.num_elements().unwrap_or(0) * p.ty.dtype.size_bytes() as u64)
        .chain(
            k.outputs
                .iter()
                .map(|o| k.ty(o.value))
                .map(|t| t.shape.num_elements().unwrap_or(0) * t.dtype.size_bytes() as u64),
        )
        .sum();
    (macs, vector, gm)
}

/// Compiles and simulates (timing only, race detection off) one kernel.
pub fn bench(kernel: &Kernel, machine: &Machine, src: &Source) -> Result<BenchResult, Failure> {
    let start = Instant::now();
    let code = driver::compile_npu(kernel, machine, src)?;
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let opts = tessera_sim::RunOptions {
        timing_only: true,
        race_detection: false,
        ..tessera_sim::RunOptions::default()
    };
    let out =
        tessera_sim::run(machine, &code.program, &[], &opts).map_err(crate::simulate::run_error)?;
    let (macs, vector, gm) = roofline_inputs(kernel, machine);
    let bound = machine.roofline(&macs, vector, gm);
    let cube_only = machine.roofline(&macs, 0.0, 0);
    let vec_only = machine.roofline(&[], vector, 0);
    let gm_only = machine.roofline(&[], 0.0, gm);
    let bound_by = if cube_only >= vec_only && cube_only >= gm_only {
        "cube"
    } else if vec_only >= gm_only {
        "vector"
    } else {
        "gm"
    };
    let cycles = out.report.cycles;
    Ok(BenchResult {
        kernel: kernel.name.clone(),
        machine: machine.name.clone(),
        cycles,
        micros: out.report.micros,
        bound,
        bound_by: bound_by.to_string(),
        efficiency: bound / cycles.max(1) as f64,
        cube_macs: macs.iter().map(|(_, m)| m).sum(),
        vector_cycles_min: vector,
        gm_bytes_min: gm,
        stages: code.plan.stages.len(),
        compile_ms,
        report: out.report,
    })
}

impl BenchResult {
    /// The result as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "bench {} on {}: {} stage{}, compiled in {:.1} ms\n",
            self.kernel,
            self.machine,
            self.stages,
            if self.stages == 1 { "" } else { "s" },
            self.compile_ms
        ));
        s.push_str(&format!(
            "cycles {}  ({:.3} us)\nbound  {:.0} ({}-bound: cube MACs {}, vector cycles {:.0}, GM bytes {})\nefficiency {:.3}\n",
            self.cycles, self.micros, self.bound, self.bound_by, self.cube_macs, self.vector_cycles_min, self.gm_bytes_min, self.efficiency
        ));
        s.push_str(&self.report.table());
        s
    }
}
