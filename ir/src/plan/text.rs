//! The plan's text form (`--emit plan`): stable, line-oriented, read by
//! people and by the parser (`parse.rs`, [`Plan::parse`]); print → parse →
//! print is the identity.
//!
//! ```text
//! plan gemm on 910b-like: 1 stage, workspace 0 B
//!   buffer a        param 0        f16[256, 384]
//!   buffer out0     result 0       f16[256, 512]
//! stage 0 matmul [%0, %1] on cube x24 (estimate 3513 cycles)
//!     a    a : f16[256, 384]
//!     b    b : f16[384, 512]
//!     out  out0 : f16[256, 512]
//!     schedule base_m=64 base_n=96 base_k=32 l1_k=96 tiles=24
//!     local l1   a_l1     @0       12288 B x2
//! ```
//!
//! A view is `BUFFER[+OFFSET] : DTYPE[SHAPE]`, with ` strides [..]` when
//! its strides are not exactly row-major, or `const VALUE : DTYPE[SHAPE]`.

use super::{
    BufKind, CubeSchedule, Elementwise, EwArg, EwOp, MatMul, MatMulSchedule, MatOperand, Plan,
    Reduce, Rows, RowsOp, Source, StageKind, Transpose, Unit, VecMatSchedule, View,
};
use crate::op::Scalar;
use std::fmt::{self, Write};

/// A constant as plan text: floats in their shortest f32 form.
struct ConstText<'a>(&'a Scalar);

impl fmt::Display for ConstText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Scalar::Float(x) if x.is_finite() => write!(f, "{:?}", *x as f32),
            other => write!(f, "{other}"),
        }
    }
}

fn dims(shape: &[u64]) -> String {
    let d: Vec<String> = shape.iter().map(u64::to_string).collect();
    d.join(", ")
}

/// `key=value` pairs of a schedule line, in print order.
fn schedule_params(kind: &StageKind) -> Vec<(&'static str, u64)> {
    match kind {
        StageKind::Elementwise(Elementwise { schedule: s, .. }) => vec![
            ("rows", s.rows),
            ("cols", s.cols),
            ("pitch", s.pitch),
            ("tiles", s.tiles),
        ],
        StageKind::Reduce(Reduce { schedule: s, .. }) => vec![
            ("rows", s.rows),
            ("pitch", s.pitch),
            ("chunk", s.chunk),
            ("chunks", s.chunks),
            ("tiles", s.tiles),
        ],
        StageKind::Transpose(Transpose { schedule: s, .. }) => {
            vec![("tp", s.tp), ("tq", s.tq), ("tiles", s.tiles)]
        }
        StageKind::Rows(Rows { schedule: s, .. }) if s.transposed => vec![
            ("rows", s.rows),
            ("pitch", s.pitch),
            ("transposed", 1),
            ("tiles", s.tiles),
        ],
        StageKind::Rows(Rows { schedule: s, .. }) if s.chunked() => {
            let mut p = vec![("rows", s.rows), ("pitch", s.pitch), ("chunks", s.chunks)];
            if s.pipelined {
                p.push(("pipelined", 1));
            }
            if s.blockwise {
                p.push(("blockwise", 1));
            }
            p.push(("tiles", s.tiles));
            p
        }
        StageKind::Rows(Rows { schedule: s, .. }) => {
            let mut p = vec![("rows", s.rows), ("pitch", s.pitch)];
            if s.blockwise {
                p.push(("blockwise", 1));
            }
            p.push(("tiles", s.tiles));
            p
        }
        StageKind::MatMul(MatMul {
            schedule: MatMulSchedule::Cube(c),
            ..
        }) => cube_params(c),
        StageKind::MatMul(MatMul {
            schedule: MatMulSchedule::Vector(v),
            ..
        }) => vector_params(v),
    }
}

fn cube_params(c: &CubeSchedule) -> Vec<(&'static str, u64)> {
    let mut p = vec![
        ("base_m", c.base_m),
        ("base_n", c.base_n),
        ("base_k", c.base_k),
        ("l1_k", c.l1_k),
    ];
    if c.a_stages != 1 {
        p.push(("a_stages", c.a_stages));
    }
    if c.b_stages != 1 {
        p.push(("b_stages", c.b_stages));
    }
    if c.epi_cols != 0 {
        p.push(("epi_cols", c.epi_cols));
    }
    if c.tail_parts != 1 {
        p.push(("tail_parts", c.tail_parts));
    }
    if c.group_m > 1 {
        p.push(("group_m", c.group_m));
    }
    if c.accumulators > 1 {
        p.push(("accumulators", c.accumulators));
    }
    if c.split_k > 1 {
        p.push(("split_k", c.split_k));
        p.push(("part_k", c.part_k));
        p.push(("partials", c.partials));
        p.push(("red_rows", c.red_rows));
        p.push(("red_cols", c.red_cols));
    }
    if c.prologue > 0 {
        p.push(("prologue", c.prologue));
    }
    if c.epilogue > 0 {
        p.push(("epilogue", c.epilogue));
    }
    if c.ring > 0 {
        p.push(("ring", c.ring));
    }
    if c.stagger {
        p.push(("stagger", 1));
    }
    if c.a_panel {
        p.push(("a_panel", 1));
    }
    if c.fold > 1 {
        p.push(("fold", c.fold));
    }
    if c.halves {
        p.push(("halves", 1));
    }
    p.push(("tiles", c.tiles));
    p
}

fn vector_params(v: &VecMatSchedule) -> Vec<(&'static str, u64)> {
    let mut p = vec![("rows", v.rows), ("cols", v.cols), ("k_chunk", v.k_chunk)];
    if v.dot {
        p.push(("dot", 1));
    }
    p.push(("tiles", v.tiles));
    p
}

/// The text of a row stage's op: an elementwise op's, a reduction's name
/// (`sum`, `mean`, `max`, `min`), or `expand`.
fn rows_op_text(op: &RowsOp) -> String {
    match op {
        RowsOp::Ew(e) => ew_op_text(e),
        RowsOp::Reduce(r) => r.name().to_string(),
        RowsOp::Expand => "expand".to_string(),
    }
}

fn arg_text(a: &EwArg) -> String {
    match a {
        EwArg::Input(k) => format!("in{k}"),
        EwArg::Inst(k) => format!("t{k}"),
    }
}

/// The text of an elementwise op (`add`, `cast.f16`, `copy`).
fn ew_op_text(op: &EwOp) -> String {
    match op {
        EwOp::Unary(u) => u.name().to_string(),
        EwOp::Binary(b) => b.name().to_string(),
        EwOp::Compare(c) => c.name().to_string(),
        EwOp::Select => "select".to_string(),
        EwOp::Cast(d) => format!("cast.{d}"),
        EwOp::Copy => "copy".to_string(),
    }
}

impl Plan {
    fn view_text(&self, v: &View) -> String {
        match &v.source {
            Source::Constant(c) => {
                format!("const {} : {}[{}]", ConstText(c), v.dtype, dims(&v.shape))
            }
            Source::Buffer(b) => {
                let name = self.buffers.get(*b).map_or("?", |b| b.name.as_str());
                let mut s = name.to_string();
                if v.offset != 0 {
                    let _ = write!(s, "+{}", v.offset);
                }
                let _ = write!(s, " : {}[{}]", v.dtype, dims(&v.shape));
                // Exactly the strides, whenever they are not row-major (a
                // dim of extent 1 may carry any stride, and a backend may
                // read it).
                if v.strides != super::row_major_strides(&v.shape) {
                    let _ = write!(s, " strides [{}]", dims(&v.strides));
                }
                s
            }
        }
    }

    fn operand_text(&self, m: &MatOperand) -> String {
        let t = if m.transposed { " (transposed)" } else { "" };
        format!("{}{t}", self.view_text(&m.view))
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
        for (id, b) in self.buffers.iter().enumerate() {
            let kind = match &b.kind {
                BufKind::Param(i) => format!("param {i}"),
                BufKind::Result(i) => format!("result {i}"),
                BufKind::Workspace { offset } => format!("workspace +{offset}"),
            };
            // A ring's bytes (derived from its writer's schedule; the
            // parser skips them).
            let footprint = self.footprint(id);
            let ring = if footprint < b.bytes() {
                format!(" ring {footprint} B")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  buffer {:<8} {:<14} {}[{}]{ring}",
                b.name,
                kind,
                b.dtype,
                dims(&b.shape)
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            let nodes: Vec<String> = s.nodes.iter().map(|n| format!("%{n}")).collect();
            let unit = match s.unit() {
                Unit::Cube => "cube",
                Unit::Vector => "vector",
            };
            let _ = writeln!(
                out,
                "stage {i} {} [{}] on {unit} x{} (estimate {} cycles)",
                s.kind.name(),
                nodes.join(", "),
                s.block_dim,
                s.estimate
            );
            match &s.kind {
                StageKind::Elementwise(e) => {
                    for (j, v) in e.inputs.iter().enumerate() {
                        let _ = writeln!(out, "    in{j}  {}", self.view_text(v));
                    }
                    for (j, inst) in e.body.iter().enumerate() {
                        let args: Vec<String> = inst.args.iter().map(arg_text).collect();
                        let _ = writeln!(
                            out,
                            "    t{j} = {} {} : {}",
                            ew_op_text(&inst.op),
                            args.join(", "),
                            inst.dtype
                        );
                    }
                    let _ = writeln!(out, "    out  {}", self.view_text(&e.out));
                    for (j, v) in &e.also {
                        let _ = writeln!(out, "    also t{j} {}", self.view_text(v));
                    }
                }
                StageKind::Reduce(r) => {
                    let _ = writeln!(out, "    in   {}", self.view_text(&r.input));
                    let _ = writeln!(
                        out,
                        "    {} over [outer {}, reduced {}, inner {}] accumulating {}{}",
                        r.op.name(),
                        r.outer,
                        r.reduced,
                        r.inner,
                        r.acc,
                        if r.divisor > 1 {
                            format!(", divided by {}", r.divisor)
                        } else {
                            String::new()
                        }
                    );
                    let _ = writeln!(out, "    out  {}", self.view_text(&r.out));
                }
                StageKind::MatMul(m) => {
                    let _ = writeln!(out, "    a    {}", self.operand_text(&m.a));
                    let _ = writeln!(out, "    b    {}", self.operand_text(&m.b));
                    let scale = m.scale.map(|c| format!(" (scale {c:?})"));
                    let _ = writeln!(
                        out,
                        "    out  {}{}{}",
                        self.view_text(&m.out),
                        scale.unwrap_or_default(),
                        if m.relu { " (relu)" } else { "" }
                    );
                }
                StageKind::Rows(r) => {
                    let _ = writeln!(out, "    rows {} of {}", r.outer, r.n);
                    for (j, v) in r.inputs.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "    in{j}  {} ({})",
                            self.view_text(&v.view),
                            v.width.name()
                        );
                    }
                    for (j, inst) in r.body.iter().enumerate() {
                        let args: Vec<String> = inst.args.iter().map(arg_text).collect();
                        let _ = writeln!(
                            out,
                            "    t{j} = {} {} : {} {}",
                            rows_op_text(&inst.op),
                            args.join(", "),
                            inst.dtype,
                            inst.width.name()
                        );
                    }
                    let _ = writeln!(out, "    out  {}", self.view_text(&r.out));
                }
                StageKind::Transpose(t) => {
                    let _ = writeln!(out, "    in   {}", self.view_text(&t.input));
                    let _ = writeln!(
                        out,
                        "    out  {} (tiles along dim {})",
                        self.view_text(&t.out),
                        t.row_dim
                    );
                }
            }
            let p: Vec<String> = schedule_params(&s.kind)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "    schedule {}", p.join(" "));
            for (name, l) in s.local() {
                let copies = if l.copies > 1 {
                    format!(" x{}", l.copies)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "    local {:<4} {:<8} @{:<7} {} B{copies}",
                    l.space.name(),
                    name,
                    l.offset,
                    l.bytes
                );
            }
        }
        out
    }
}
