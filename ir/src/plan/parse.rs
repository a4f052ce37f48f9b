//! The plan text's parser ([`Plan::parse`]): line by line, each stage kind
//! read into its typed schedule and layout by the names the printer
//! (`text.rs`) gives them; every error names its line.

use super::{
    BroadcastBufs, BufKind, CubeLayout, CubeSchedule, Elementwise, EwArg, EwInputBufs, EwInst,
    EwLayout, EwOp, EwSchedule, LocalBuf, MatMul, MatMulSchedule, MatOperand, MemSpace, Plan,
    Reduce, ReduceLayout, ReduceSchedule, Rows, RowsInput, RowsInst, RowsLayout, RowsOp,
    RowsSchedule, Source, SplitBufs, StageKind, Transpose, TransposeLayout, TransposeSchedule,
    Unit, VecMatB, VecMatLayout, VecMatSchedule, View, Width,
};
use crate::op::{BinaryOp, CompareOp, ReduceOp, Scalar, UnaryOp};
use crate::types::DType;
use std::fmt;

/// A plan text that does not parse: what is wrong and on which line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PlanParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plan text, line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PlanParseError {}

type PResult<T> = Result<T, String>;

fn num<T: std::str::FromStr>(s: &str, what: &str) -> PResult<T> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected {what}, found `{}`", s.trim()))
}

fn dtype(s: &str) -> PResult<DType> {
    DType::from_name(s.trim()).ok_or_else(|| format!("unknown dtype `{}`", s.trim()))
}

/// `[1, 2, 3]` (brackets optional around an empty list).
fn list(s: &str) -> PResult<Vec<u64>> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected a `[..]` list, found `{s}`"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|d| num(d, "a number")).collect()
}

/// `f16[2, 3]`.
fn typed_shape(s: &str) -> PResult<(DType, Vec<u64>)> {
    let s = s.trim();
    let open = s
        .find('[')
        .ok_or_else(|| format!("expected `DTYPE[DIMS]`, found `{s}`"))?;
    Ok((dtype(&s[..open])?, list(&s[open..])?))
}

fn expect<'a>(s: &'a str, prefix: &str) -> PResult<&'a str> {
    s.strip_prefix(prefix)
        .ok_or_else(|| format!("expected `{}`, found `{s}`", prefix.trim_end()))
}

/// A constant's value in a dtype.
fn constant(text: &str, d: DType) -> PResult<Scalar> {
    let t = text.trim();
    Ok(match d {
        DType::Bool => match t {
            "true" => Scalar::Bool(true),
            "false" => Scalar::Bool(false),
            _ => return Err(format!("expected true or false, found `{t}`")),
        },
        DType::I8 | DType::I32 => Scalar::Int(num(t, "an integer")?),
        DType::F16 | DType::BF16 | DType::F32 => Scalar::Float(match t {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => f64::from(num::<f32>(t, "a float")?),
        }),
    })
}

struct Parser<'a> {
    lines: Vec<(usize, &'a str)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.pos).map(|(_, l)| *l)
    }

    /// The line the parser last read (where an error is).
    fn line_no(&self) -> usize {
        self.lines
            .get(self.pos.saturating_sub(1))
            .map_or(1, |(n, _)| *n)
    }

    fn next(&mut self, what: &str) -> PResult<&'a str> {
        let l = self
            .peek()
            .ok_or_else(|| format!("the text ends where {what} was expected"))?;
        self.pos += 1;
        Ok(l)
    }

    /// The next line, which must start with `prefix`; returns the rest.
    fn field(&mut self, prefix: &str) -> PResult<&'a str> {
        let l = self.next(&format!("`{}`", prefix.trim()))?;
        expect(l, prefix)
    }
}

impl Plan {
    /// Parses the text form ([`Plan::text`]). `//` comments and blank lines
    /// are ignored. Every plan parses back to one that prints the same.
    pub fn parse(text: &str) -> Result<Plan, PlanParseError> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end()))
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .collect();
        let mut p = Parser { lines, pos: 0 };
        parse_plan(&mut p).map_err(|message| PlanParseError {
            line: p.line_no(),
            message,
        })
    }

    fn buffer_id(&self, name: &str) -> PResult<usize> {
        let mut found = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| b.name == name);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Ok(i),
            (None, _) => Err(format!("no buffer named `{name}`")),
            (Some(_), Some(_)) => Err(format!("the buffer name `{name}` is ambiguous")),
        }
    }

    /// A view in the text form.
    fn parse_view(&self, s: &str) -> PResult<View> {
        let s = s.trim();
        let (head, ty) = s
            .split_once(" : ")
            .ok_or_else(|| format!("expected `BUFFER : DTYPE[SHAPE]`, found `{s}`"))?;
        let (ty, strides) = match ty.split_once(" strides ") {
            Some((t, st)) => (t, Some(list(st)?)),
            None => (ty, None),
        };
        let (dtype, shape) = typed_shape(ty)?;
        if let Some(value) = head.strip_prefix("const ") {
            if strides.is_some() {
                return Err("a constant view has no strides".into());
            }
            return Ok(View::constant(constant(value, dtype)?, dtype, &shape));
        }
        let (name, offset) = match head.split_once('+') {
            Some((n, o)) => (n, num(o, "an element offset")?),
            None => (head, 0),
        };
        let strides = strides.unwrap_or_else(|| super::row_major_strides(&shape));
        if strides.len() != shape.len() {
            return Err(format!(
                "{} strides for a view of rank {}",
                strides.len(),
                shape.len()
            ));
        }
        Ok(View {
            source: Source::Buffer(self.buffer_id(name.trim())?),
            dtype,
            offset,
            shape,
            strides,
        })
    }
}

fn parse_plan(p: &mut Parser<'_>) -> PResult<Plan> {
    let head = p.field("plan ")?;
    let (kernel, rest) = head
        .split_once(" on ")
        .ok_or("expected `plan KERNEL on MACHINE: …`")?;
    let (machine, rest) = rest
        .rsplit_once(": ")
        .ok_or("expected `…: N stages, workspace W B`")?;
    let (count, ws) = rest
        .split_once(", workspace ")
        .ok_or("expected `N stages, workspace W B`")?;
    let count = count
        .strip_suffix(" stages")
        .or_else(|| count.strip_suffix(" stage"))
        .ok_or("expected `N stages`")?;
    let count: usize = num(count, "a stage count")?;
    let workspace = num(
        ws.strip_suffix(" B").ok_or("expected `workspace W B`")?,
        "workspace bytes",
    )?;
    let mut plan = Plan {
        kernel: kernel.to_string(),
        machine: machine.to_string(),
        buffers: Vec::new(),
        workspace,
        stages: Vec::new(),
    };
    while let Some(l) = p.peek().filter(|l| l.starts_with("  buffer ")) {
        p.pos += 1;
        plan.buffers.push(parse_buffer(expect(l, "  buffer ")?)?);
    }
    while p.peek().is_some() {
        let stage = parse_stage(p, &plan)?;
        plan.stages.push(stage);
    }
    if plan.stages.len() != count {
        return Err(format!(
            "the header announces {count} stages, the text has {}",
            plan.stages.len()
        ));
    }
    Ok(plan)
}

/// The first whitespace-separated word of `s` and the rest.
fn word(s: &str) -> PResult<(&str, &str)> {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    if end == 0 {
        return Err("the line ends early".into());
    }
    Ok((&s[..end], &s[end..]))
}

fn parse_buffer(s: &str) -> PResult<super::Buffer> {
    let (name, rest) = word(s)?;
    let (kind, rest) = word(rest)?;
    let (arg, ty) = word(rest)?;
    let kind = match kind {
        "param" => BufKind::Param(num(arg, "a parameter index")?),
        "result" => BufKind::Result(num(arg, "a result index")?),
        "workspace" => BufKind::Workspace {
            offset: num(expect(arg, "+")?, "a workspace offset")?,
        },
        other => return Err(format!("unknown buffer kind `{other}`")),
    };
    // A ring's bytes follow from its writer's schedule: skipped.
    let ty = match ty.trim().split_once("] ring ") {
        Some((t, bytes)) => {
            let bytes = bytes.trim();
            let bytes = bytes
                .strip_suffix(" B")
                .ok_or_else(|| format!("expected `ring N B`, found `ring {bytes}`"))?;
            num::<u64>(bytes, "a ring's bytes")?;
            format!("{t}]")
        }
        None => ty.to_string(),
    };
    let (dtype, shape) = typed_shape(&ty)?;
    Ok(super::Buffer {
        name: name.to_string(),
        kind,
        dtype,
        shape,
    })
}

/// `[%1, %2]`.
fn nodes(s: &str) -> PResult<Vec<usize>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected `[%N, …]`, found `{s}`"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|n| num(expect(n.trim(), "%")?, "a node number"))
        .collect()
}

fn parse_stage(p: &mut Parser<'_>, plan: &Plan) -> PResult<super::Stage> {
    let head = p.field("stage ")?;
    let (index, rest) = head.split_once(' ').ok_or("expected `stage N KIND …`")?;
    let index: usize = num(index, "a stage index")?;
    if index != plan.stages.len() {
        return Err(format!(
            "stage {index} where stage {} was expected",
            plan.stages.len()
        ));
    }
    let (kind, rest) = rest.split_once(' ').ok_or("expected a stage kind")?;
    let close = rest.find(']').ok_or("expected the stage's `[%N, …]`")?;
    let node_list = nodes(&rest[..=close])?;
    let rest = expect(&rest[close + 1..], " on ")?;
    let (unit, rest) = rest.split_once(" x").ok_or("expected `on UNIT xBLOCKS`")?;
    let (block_dim, rest) = rest
        .split_once(" (estimate ")
        .ok_or("expected `(estimate N cycles)`")?;
    let block_dim: u32 = num(block_dim, "a block count")?;
    let estimate: u64 = num(
        rest.strip_suffix(" cycles)")
            .ok_or("expected `(estimate N cycles)`")?,
        "an estimate",
    )?;
    let unit = match unit {
        "cube" => Unit::Cube,
        "vector" => Unit::Vector,
        other => return Err(format!("unknown unit `{other}`")),
    };
    let what = match kind {
        "elementwise" => parse_elementwise(p, plan)?,
        "reduce" => parse_reduce(p, plan)?,
        "matmul" => parse_matmul(p, plan)?,
        "transpose" => parse_transpose(p, plan)?,
        "rows" => parse_rows(p, plan)?,
        other => return Err(format!("unknown stage kind `{other}`")),
    };
    let params = parse_schedule(p.field("    schedule ")?)?;
    let mut locals = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    local ")) {
        p.pos += 1;
        locals.push(parse_local(expect(l, "    local ")?)?);
    }
    let kind = what.scheduled(
        unit,
        Named::new(params, "schedule parameter"),
        Named::new(locals, "local buffer"),
    )?;
    let stage = super::Stage {
        nodes: node_list,
        kind,
        block_dim,
        estimate,
    };
    if stage.unit() != unit {
        return Err(format!(
            "a {} stage runs on the vector unit",
            stage.kind.name()
        ));
    }
    Ok(stage)
}

/// `k=v k=v`.
fn parse_schedule(s: &str) -> PResult<Vec<(String, u64)>> {
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("expected `key=value`, found `{kv}`"))?;
            Ok((k.to_string(), num(v, "a number")?))
        })
        .collect()
}

/// `ub   in0      @0       1024 B x2`.
fn parse_local(s: &str) -> PResult<(String, LocalBuf)> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let (space, name, offset, bytes, copies) = match words[..] {
        [space, name, offset, bytes, "B"] => (space, name, offset, bytes, "x1"),
        [space, name, offset, bytes, "B", copies] => (space, name, offset, bytes, copies),
        _ => {
            return Err(format!(
                "expected `local SPACE NAME @OFFSET BYTES B [xCOPIES]`, found `{s}`"
            ));
        }
    };
    let space = MemSpace::ALL
        .into_iter()
        .find(|m| m.name() == space)
        .ok_or_else(|| format!("unknown memory space `{space}`"))?;
    let copies: u32 = num(expect(copies, "x")?, "a copy count")?;
    if copies == 0 {
        return Err("a local buffer needs at least one copy".into());
    }
    Ok((
        name.to_string(),
        LocalBuf {
            space,
            offset: num(expect(offset, "@")?, "a byte offset")?,
            bytes: num(bytes, "a byte count")?,
            copies,
        },
    ))
}

/// Named items (schedule parameters, local buffers) taken one by one; any
/// left over or missing is an error.
struct Named<T> {
    items: Vec<(String, T)>,
    what: &'static str,
}

impl<T: Copy> Named<T> {
    fn new(items: Vec<(String, T)>, what: &'static str) -> Named<T> {
        Named { items, what }
    }

    fn take(&mut self, name: &str) -> Option<T> {
        let i = self.items.iter().position(|(n, _)| n == name)?;
        Some(self.items.remove(i).1)
    }

    fn need(&mut self, name: &str) -> PResult<T> {
        self.take(name)
            .ok_or_else(|| format!("missing {} `{name}`", self.what))
    }

    fn done(self) -> PResult<()> {
        match self.items.first() {
            None => Ok(()),
            Some((n, _)) => Err(format!("unexpected {} `{n}`", self.what)),
        }
    }
}

/// A stage's text before its schedule: what it computes.
enum What {
    Elementwise(Vec<View>, Vec<EwInst>, View, Vec<(usize, View)>),
    Reduce(Box<Reduce>),
    MatMul(MatOperand, MatOperand, View, bool, Option<f32>),
    Transpose(View, View, usize),
    Rows(Box<Rows>),
}

impl What {
    fn scheduled(
        self,
        unit: Unit,
        mut p: Named<u64>,
        mut l: Named<LocalBuf>,
    ) -> PResult<StageKind> {
        let kind = match self {
            What::Elementwise(inputs, body, out, also) => {
                let mut bufs = Vec::new();
                for i in 0..inputs.len() {
                    let (tile, held) = match l.take(&format!("row{i}")) {
                        Some(t) => (t, true),
                        None => (l.need(&format!("in{i}"))?, false),
                    };
                    let broadcast = match l.take(&format!("st{i}")) {
                        None => None,
                        Some(staging) => Some(BroadcastBufs {
                            staging,
                            blocks: l.need(&format!("bc{i}"))?,
                            widened: l.take(&format!("wd{i}")),
                        }),
                    };
                    bufs.push(EwInputBufs {
                        tile,
                        held,
                        broadcast,
                    });
                }
                let temps = (0..body.len().saturating_sub(1))
                    .map(|j| l.need(&format!("t{j}")))
                    .collect::<PResult<_>>()?;
                let out_buf = l.need("out")?;
                let scratch = (0..).map_while(|k| l.take(&format!("scr{k}"))).collect();
                StageKind::Elementwise(Elementwise {
                    inputs,
                    body,
                    out,
                    also,
                    schedule: EwSchedule {
                        rows: p.need("rows")?,
                        cols: p.need("cols")?,
                        pitch: p.need("pitch")?,
                        tiles: p.need("tiles")?,
                        layout: EwLayout {
                            inputs: bufs,
                            temps,
                            out: out_buf,
                            scratch,
                        },
                    },
                })
            }
            What::Reduce(r) => StageKind::Reduce(Reduce {
                schedule: ReduceSchedule {
                    rows: p.need("rows")?,
                    pitch: p.need("pitch")?,
                    chunk: p.need("chunk")?,
                    chunks: p.need("chunks")?,
                    tiles: p.need("tiles")?,
                    layout: ReduceLayout {
                        input: l.need("in")?,
                        wide: l.take("wide"),
                        lanes: l.take("lanes"),
                        part: l.need("part")?,
                        acc: l.need("acc")?,
                        out: l.need("out")?,
                    },
                },
                ..*r
            }),
            What::MatMul(a, b, out, relu, scale) => {
                let schedule = match unit {
                    Unit::Cube => MatMulSchedule::Cube(CubeSchedule {
                        base_m: p.need("base_m")?,
                        base_n: p.need("base_n")?,
                        base_k: p.need("base_k")?,
                        l1_k: p.need("l1_k")?,
                        a_stages: p.take("a_stages").unwrap_or(1),
                        b_stages: p.take("b_stages").unwrap_or(1),
                        epi_cols: p.take("epi_cols").unwrap_or(0),
                        tail_parts: p.take("tail_parts").unwrap_or(1),
                        group_m: p.take("group_m").unwrap_or(1),
                        accumulators: p.take("accumulators").unwrap_or(1),
                        split_k: p.take("split_k").unwrap_or(1),
                        part_k: p.take("part_k").unwrap_or(0),
                        partials: p.take("partials").unwrap_or(0),
                        red_rows: p.take("red_rows").unwrap_or(0),
                        red_cols: p.take("red_cols").unwrap_or(0),
                        prologue: p.take("prologue").unwrap_or(0),
                        epilogue: p.take("epilogue").unwrap_or(0),
                        ring: p.take("ring").unwrap_or(0),
                        stagger: p.take("stagger").unwrap_or(0) == 1,
                        a_panel: p.take("a_panel").unwrap_or(0) == 1,
                        fold: p.take("fold").unwrap_or(0),
                        halves: p.take("halves").unwrap_or(0) == 1,
                        tiles: p.need("tiles")?,
                        layout: CubeLayout {
                            a_l1: l.need("a_l1")?,
                            b_l1: l.need("b_l1")?,
                            a_l0: l.need("a_l0")?,
                            b_l0: l.need("b_l0")?,
                            acc: l.need("acc")?,
                            out: l.take("out"),
                            reduce: match l.take("r_acc") {
                                Some(acc) => Some(SplitBufs {
                                    acc,
                                    part: l.need("r_part")?,
                                    out: l.take("r_out"),
                                }),
                                None => None,
                            },
                        },
                    }),
                    Unit::Vector => {
                        let a_buf = l.need("a")?;
                        let a_wide = l.take("a32");
                        let dot = p.take("dot").unwrap_or(0) == 1;
                        let b_buf = match if dot { None } else { l.take("bt") } {
                            _ if dot => VecMatB::Columns {
                                b: l.need("b")?,
                                widened: l.take("b32"),
                                gather: match l.take("idx") {
                                    Some(idx) => Some((idx, l.need("cols")?)),
                                    None => None,
                                },
                            },
                            Some(bt) => VecMatB::Transposed {
                                bt,
                                widened: l.take("bt32"),
                                idx: l.need("idx")?,
                                gathered: l.need("b32")?,
                            },
                            None => VecMatB::RowMajor {
                                b: l.need("b")?,
                                widened: l.take("b32"),
                            },
                        };
                        MatMulSchedule::Vector(VecMatSchedule {
                            rows: p.need("rows")?,
                            cols: p.need("cols")?,
                            k_chunk: p.need("k_chunk")?,
                            dot,
                            tiles: p.need("tiles")?,
                            layout: VecMatLayout {
                                a: a_buf,
                                a_wide,
                                b: b_buf,
                                prod: l.need("prod")?,
                                acc: l.need("acc")?,
                                out: l.need("out")?,
                            },
                        })
                    }
                };
                StageKind::MatMul(MatMul {
                    a,
                    b,
                    out,
                    relu,
                    scale,
                    schedule,
                })
            }
            What::Rows(r) => {
                let inputs = (0..r.inputs.len())
                    .map(|i| l.need(&format!("in{i}")))
                    .collect::<PResult<_>>()?;
                let temps = (0..r.body.len().saturating_sub(1))
                    .map(|j| l.need(&format!("t{j}")))
                    .collect::<PResult<_>>()?;
                let out = l.need("out")?;
                let scratch = (0..).map_while(|k| l.take(&format!("scr{k}"))).collect();
                // The three forms: whole rows, chunked (optionally
                // pipelined) or transposed.
                let chunks = p.take("chunks").unwrap_or(1);
                let flag = |v: Option<u64>, name: &str| match v {
                    None => Ok(false),
                    Some(1) => Ok(true),
                    Some(_) => Err(format!("`{name}` is 1 when present")),
                };
                let transposed = flag(p.take("transposed"), "transposed")?;
                let pipelined = flag(p.take("pipelined"), "pipelined")?;
                let blockwise = flag(p.take("blockwise"), "blockwise")?;
                if blockwise && transposed {
                    return Err("a transposed row stage does not fold block by block".into());
                }
                if chunks == 0 {
                    return Err("`chunks` is at least 1".into());
                }
                if transposed && chunks > 1 {
                    return Err("a transposed row stage is not chunked".into());
                }
                if pipelined && chunks < 2 {
                    return Err("only a chunked row stage is pipelined".into());
                }
                StageKind::Rows(Rows {
                    schedule: RowsSchedule {
                        rows: p.need("rows")?,
                        pitch: p.need("pitch")?,
                        chunks,
                        transposed,
                        pipelined,
                        blockwise,
                        tiles: p.need("tiles")?,
                        layout: RowsLayout {
                            inputs,
                            temps,
                            out,
                            scratch,
                            wide: l.take("wide"),
                            lanes: l.take("lanes"),
                            acc: l.take("acc"),
                            blocks: l.take("blocks"),
                            raw: (0..r.inputs.len())
                                .map(|k| l.take(&format!("raw{k}")))
                                .collect(),
                            cols: l.take("cols"),
                            idx: l.take("idx"),
                            part: l.take("part"),
                        },
                    },
                    ..*r
                })
            }
            What::Transpose(input, out, row_dim) => StageKind::Transpose(Transpose {
                input,
                out,
                row_dim,
                schedule: TransposeSchedule {
                    tp: p.need("tp")?,
                    tq: p.need("tq")?,
                    tiles: p.need("tiles")?,
                    layout: TransposeLayout {
                        a: l.need("a")?,
                        b: l.need("b")?,
                        idx: l.need("idx")?,
                    },
                },
            }),
        };
        p.done()?;
        l.done()?;
        Ok(kind)
    }
}

/// An elementwise op from its text (`add`, `cast.f16`, `copy`).
fn ew_op(s: &str) -> PResult<EwOp> {
    if let Some(d) = s.strip_prefix("cast.") {
        return Ok(EwOp::Cast(dtype(d)?));
    }
    Ok(match s {
        "select" => EwOp::Select,
        "copy" => EwOp::Copy,
        _ => {
            if let Some(u) = UnaryOp::from_name(s) {
                EwOp::Unary(u)
            } else if let Some(b) = BinaryOp::from_name(s) {
                EwOp::Binary(b)
            } else if let Some(c) = CompareOp::from_name(s) {
                EwOp::Compare(c)
            } else {
                return Err(format!("unknown elementwise op `{s}`"));
            }
        }
    })
}

/// `inA, tB, …`: operands naming the stage's inputs or earlier
/// instructions.
fn parse_args(args: &str, inputs: usize, earlier: usize) -> PResult<Vec<EwArg>> {
    args.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            if let Some(k) = a.strip_prefix("in") {
                let k: usize = num(k, "an input number")?;
                if k >= inputs {
                    return Err(format!("`{a}` is not an input of the stage"));
                }
                Ok(EwArg::Input(k))
            } else if let Some(k) = a.strip_prefix('t') {
                let k: usize = num(k, "an instruction number")?;
                if k >= earlier {
                    return Err(format!("`{a}` is not an earlier instruction"));
                }
                Ok(EwArg::Inst(k))
            } else {
                Err(format!("expected `inN` or `tN`, found `{a}`"))
            }
        })
        .collect()
}

fn width(s: &str) -> PResult<Width> {
    match s {
        "full" => Ok(Width::Full),
        "row" => Ok(Width::Row),
        other => Err(format!("expected `full` or `row`, found `{other}`")),
    }
}

fn parse_rows(p: &mut Parser<'_>, plan: &Plan) -> PResult<What> {
    let head = p.field("    rows ")?;
    let (outer, n) = head.split_once(" of ").ok_or("expected `rows N of N`")?;
    let (outer, n) = (num(outer, "a row count")?, num(n, "a row length")?);
    let mut inputs = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    in")) {
        p.pos += 1;
        let rest = expect(l, &format!("    in{} ", inputs.len()))?;
        let (view, w) = rest
            .rsplit_once(" (")
            .and_then(|(v, w)| Some((v, w.strip_suffix(')')?)))
            .ok_or("expected `inN VIEW (full|row)`")?;
        inputs.push(RowsInput {
            view: plan.parse_view(view.trim_start())?,
            width: width(w)?,
        });
    }
    let mut body: Vec<RowsInst> = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    t")) {
        p.pos += 1;
        let rest = expect(l, &format!("    t{} = ", body.len()))?;
        let (inst, ty) = rest
            .rsplit_once(" : ")
            .ok_or("expected `tN = OP ARGS : DTYPE WIDTH`")?;
        let (dt, w) = ty.split_once(' ').ok_or("expected `DTYPE WIDTH`")?;
        let (op, args) = inst.split_once(' ').unwrap_or((inst, ""));
        let op = if op == "expand" {
            RowsOp::Expand
        } else if let Some(r) = ReduceOp::from_name(op) {
            RowsOp::Reduce(r)
        } else {
            RowsOp::Ew(ew_op(op)?)
        };
        body.push(RowsInst {
            op,
            args: parse_args(args, inputs.len(), body.len())?,
            dtype: dtype(dt)?,
            width: width(w)?,
        });
    }
    if body.is_empty() {
        return Err("a rows stage needs at least one instruction".into());
    }
    let out = plan.parse_view(p.field("    out  ")?)?;
    Ok(What::Rows(Box::new(Rows {
        outer,
        n,
        inputs,
        body,
        out,
        schedule: Default::default(),
    })))
}

fn parse_elementwise(p: &mut Parser<'_>, plan: &Plan) -> PResult<What> {
    let mut inputs = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    in")) {
        p.pos += 1;
        let rest = expect(l, &format!("    in{} ", inputs.len()))?;
        inputs.push(plan.parse_view(rest)?);
    }
    let mut body: Vec<EwInst> = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    t")) {
        p.pos += 1;
        let rest = expect(l, &format!("    t{} = ", body.len()))?;
        let (inst, dtype_text) = rest
            .rsplit_once(" : ")
            .ok_or("expected `tN = OP ARGS : DTYPE`")?;
        let (op, args) = inst.split_once(' ').unwrap_or((inst, ""));
        let args = parse_args(args, inputs.len(), body.len())?;
        body.push(EwInst {
            op: ew_op(op)?,
            args,
            dtype: dtype(dtype_text)?,
        });
    }
    if body.is_empty() {
        return Err("an elementwise stage needs at least one instruction".into());
    }
    let out = plan.parse_view(p.field("    out  ")?)?;
    let mut also = Vec::new();
    while let Some(l) = p.peek().filter(|l| l.starts_with("    also t")) {
        p.pos += 1;
        let rest = expect(l, "    also t")?;
        let (j, view) = rest.split_once(' ').ok_or("expected `also tN VIEW`")?;
        let j: usize = num(j, "an instruction")?;
        if j + 1 >= body.len() || also.iter().any(|(k, _)| *k == j) {
            return Err(format!("`also t{j}` must name an earlier instruction once"));
        }
        let view = plan.parse_view(view)?;
        if view.shape != out.shape {
            return Err(format!("`also t{j}` must have the output's shape"));
        }
        also.push((j, view));
    }
    Ok(What::Elementwise(inputs, body, out, also))
}

fn parse_reduce(p: &mut Parser<'_>, plan: &Plan) -> PResult<What> {
    let input = plan.parse_view(p.field("    in   ")?)?;
    let line = p.field("    ")?;
    let (op, rest) = line
        .split_once(" over [outer ")
        .ok_or("expected `OP over [outer N, reduced N, inner N] accumulating DTYPE`")?;
    let op = ReduceOp::from_name(op).ok_or_else(|| format!("unknown reduction `{op}`"))?;
    let (outer, rest) = rest
        .split_once(", reduced ")
        .ok_or("expected `, reduced N`")?;
    let (reduced, rest) = rest.split_once(", inner ").ok_or("expected `, inner N`")?;
    let (inner, rest) = rest
        .split_once("] accumulating ")
        .ok_or("expected `] accumulating DTYPE`")?;
    let (acc, divisor) = match rest.split_once(", divided by ") {
        Some((a, d)) => (a, num(d, "a divisor")?),
        None => (rest, 1),
    };
    let out = plan.parse_view(p.field("    out  ")?)?;
    Ok(What::Reduce(Box::new(Reduce {
        op,
        input,
        out,
        outer: num(outer, "an extent")?,
        reduced: num(reduced, "an extent")?,
        inner: num(inner, "an extent")?,
        acc: dtype(acc)?,
        divisor,
        schedule: Default::default(),
    })))
}

fn parse_matmul(p: &mut Parser<'_>, plan: &Plan) -> PResult<What> {
    let operand = |s: &str| -> PResult<MatOperand> {
        let (s, transposed) = match s.strip_suffix(" (transposed)") {
            Some(s) => (s, true),
            None => (s, false),
        };
        Ok(MatOperand {
            view: plan.parse_view(s)?,
            transposed,
        })
    };
    let a = operand(p.field("    a    ")?)?;
    let b = operand(p.field("    b    ")?)?;
    let out = p.field("    out  ")?;
    let (out, relu) = match out.strip_suffix(" (relu)") {
        Some(o) => (o, true),
        None => (out, false),
    };
    // `… (scale C)`: C an f32 in Rust's round-trip notation.
    let (out, scale) = match out
        .strip_suffix(')')
        .and_then(|o| o.rsplit_once(" (scale "))
    {
        Some((o, c)) => {
            let c: f32 = num(c, "a scale")?;
            (o, Some(c))
        }
        None => (out, None),
    };
    let out = plan.parse_view(out)?;
    if scale.is_some() && (relu || out.dtype != DType::F32) {
        return Err("a matmul's scale needs an f32 result without relu".into());
    }
    Ok(What::MatMul(a, b, out, relu, scale))
}

fn parse_transpose(p: &mut Parser<'_>, plan: &Plan) -> PResult<What> {
    let input = plan.parse_view(p.field("    in   ")?)?;
    let out = p.field("    out  ")?;
    let (out, dim) = out
        .rsplit_once(" (tiles along dim ")
        .ok_or("expected `(tiles along dim N)`")?;
    let dim = num(dim.strip_suffix(')').ok_or("expected `)`")?, "a dim")?;
    Ok(What::Transpose(input, plan.parse_view(out)?, dim))
}

#[cfg(test)]
mod tests;
