//! The plan parser's unit tests.

use super::*;

/// A two-stage plan written by hand: a column-broadcast add, then a
/// cube matmul with deep A loads.
const TEXT: &str = "plan k on 910b-like: 2 stages, workspace 512 B
  buffer x        param 0        f32[4, 8]
  buffer c        param 1        f32[4, 1]
  buffer w        param 2        f16[8, 16]
  buffer out0     result 0       f32[4, 16]
  buffer ws0      workspace +0   f16[4, 8]
// a comment, and a blank line

stage 0 elementwise [%0, %1] on vector x1 (estimate 10 cycles)
    in0  x : f32[4, 8]
    in1  c : f32[4, 8] strides [1, 0]
    in2  const 0.5 : f32[4, 8]
    t0 = add in0, in1 : f32
    t1 = mul t0, in2 : f32
    t2 = cast.f16 t1 : f16
    out  ws0 : f16[4, 8]
    schedule rows=4 cols=8 pitch=16 tiles=1
    local ub   in0      @0       256 B x2
    local ub   in1      @512     256 B x2
    local ub   st1      @1024    32 B x2
    local ub   bc1      @1088    256 B x2
    local ub   in2      @1600    256 B
    local ub   t0       @1856    256 B
    local ub   t1       @2112    256 B
    local ub   out      @2368    128 B x2
stage 1 matmul [%2] on cube x1 (estimate 20 cycles)
    a    ws0 : f16[4, 8]
    b    w : f16[8, 16]
    out  out0 : f32[4, 16] (relu)
    schedule base_m=16 base_n=16 base_k=16 l1_k=16 a_stages=2 group_m=3 accumulators=2 tiles=1
    local l1   a_l1     @0       512 B x2
    local l1   b_l1     @1024    512 B x2
    local l0a  a_l0     @0       512 B x2
    local l0b  b_l0     @0       512 B x2
    local l0c  acc      @0       1024 B
";

#[test]
fn a_handwritten_plan_parses_into_its_types() {
    let p = Plan::parse(TEXT).unwrap();
    assert_eq!((p.kernel.as_str(), p.machine.as_str()), ("k", "910b-like"));
    assert_eq!(p.buffers[4].kind, BufKind::Workspace { offset: 0 });
    assert_eq!(p.buffers[2].shape, vec![8, 16]);
    let StageKind::Elementwise(e) = &p.stages[0].kind else {
        panic!("not elementwise")
    };
    assert_eq!(e.inputs[1].strides, vec![1, 0]);
    assert_eq!(e.inputs[2].source, Source::Constant(Scalar::Float(0.5)));
    assert_eq!(e.body[2].op, EwOp::Cast(DType::F16));
    assert_eq!(e.body[1].args, vec![EwArg::Inst(0), EwArg::Input(2)]);
    let bc = e.schedule.layout.inputs[1].broadcast.as_ref().unwrap();
    assert_eq!((bc.staging.offset, bc.blocks.offset), (1024, 1088));
    assert_eq!(e.schedule.layout.inputs[2].tile.copies, 1);
    let StageKind::MatMul(m) = &p.stages[1].kind else {
        panic!("not a matmul")
    };
    assert!(m.relu);
    let MatMulSchedule::Cube(c) = &m.schedule else {
        panic!("not on the cube")
    };
    assert_eq!(
        (
            c.a_stages,
            c.b_stages,
            c.tail_parts,
            c.epi_cols,
            c.group_m,
            c.accumulators
        ),
        (2, 1, 1, 0, 3, 2)
    );
    assert_eq!(c.layout.acc.space, MemSpace::L0c);
    assert_eq!(c.layout.out, None);
    // Printing drops the comment and blank line, and reads back the same.
    let text = p.text();
    assert_eq!(Plan::parse(&text).unwrap(), p);
    assert!(!text.contains("comment"));
}

#[test]
fn a_scale_parses_back_and_needs_an_f32_result_without_relu() {
    let scaled = TEXT.replace("out0 : f32[4, 16] (relu)", "out0 : f32[4, 16] (scale 0.1)");
    let p = Plan::parse(&scaled).unwrap();
    let StageKind::MatMul(m) = &p.stages[1].kind else {
        panic!("a matmul second")
    };
    assert_eq!((m.scale, m.relu), (Some(0.1f32), false));
    assert_eq!(Plan::parse(&p.text()).unwrap(), p);
    let e = Plan::parse(&TEXT.replace("(relu)", "(scale 0.1) (relu)")).unwrap_err();
    assert!(e.message.contains("f32 result without relu"), "{e}");
    let e = Plan::parse(&TEXT.replace("(relu)", "(scale x)")).unwrap_err();
    assert!(e.message.contains("expected a scale"), "{e}");
}

#[test]
fn errors_name_the_line() {
    let err = |t: &str| Plan::parse(t).unwrap_err();
    // The header counts its stages.
    let e = err(&TEXT.replace("2 stages", "3 stages"));
    assert!(e.message.contains("announces 3 stages"), "{e}");
    // An unknown buffer in a view, on the line of the view (10).
    let e = err(&TEXT.replace("    in0  x :", "    in0  y :"));
    assert_eq!(e.line, 10, "{e}");
    assert!(e.message.contains("no buffer named `y`"), "{e}");
    // A schedule key the stage kind does not have.
    let e = err(&TEXT.replace("pitch=16 tiles=1", "pitch=16 tiles=1 chunk=4"));
    assert!(
        e.message.contains("unexpected schedule parameter `chunk`"),
        "{e}"
    );
    // A missing buffer of the layout.
    let e = err(&TEXT.replace("    local ub   bc1      @1088    256 B x2\n", ""));
    assert!(e.message.contains("missing local buffer `bc1`"), "{e}");
    // A forward reference in the body.
    let e = err(&TEXT.replace("t1 = mul t0, in2", "t1 = mul t2, in2"));
    assert!(e.message.contains("not an earlier instruction"), "{e}");
    // An elementwise stage cannot run on the cube.
    let e = err(&TEXT.replace("[%0, %1] on vector", "[%0, %1] on cube"));
    assert!(e.message.contains("runs on the vector unit"), "{e}");
    // Two buffers of one name make a view ambiguous.
    let e = err(&TEXT.replace("buffer c ", "buffer x "));
    assert!(e.message.contains("ambiguous"), "{e}");
    assert!(err("").message.contains("ends"));
}
