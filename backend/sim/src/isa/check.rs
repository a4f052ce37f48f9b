//! The static checks of an instruction: everything that does not depend on
//! register values (dtypes, pipes and spaces present on the core kind, paths
//! present on the machine, event ids in range). The assembler and the
//! bytecode loader both call [`Insn::check`]; values are checked when the
//! instruction executes (`exec/`).

use super::{
    Cond, CoreKind, Dt, Insn, Pipe, PipeInsn, ScalarInsn, ScalarSpace, SyncInsn, U8, UnOp,
};
use crate::machine::{Machine, Organisation};

fn need(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn pipe_on(p: Pipe, kind: CoreKind) -> Result<(), String> {
    if p == Pipe::All || !kind.has_pipe(p) {
        Err(format!(
            "pipe `{}` does not exist on {} cores",
            p.name(),
            kind.name().to_uppercase()
        ))
    } else {
        Ok(())
    }
}

impl Insn {
    /// Checks everything about the instruction that does not depend on register
    /// values: dtypes, pipes and spaces present on `kind`, paths present on the
    /// machine, event ids in range. The assembler and the loader both call it.
    pub fn check(&self, m: &Machine, kind: CoreKind) -> Result<(), String> {
        let p = self.pipe();
        if p != Pipe::S {
            pipe_on(p, kind)?;
        }
        match self {
            Insn::Scalar(s) => check_scalar(s, kind),
            Insn::Sync(s) => check_sync(s, m, kind),
            Insn::Pipe(p) => check_pipe(p, m, kind),
        }
    }
}

fn check_scalar(s: &ScalarInsn, kind: CoreKind) -> Result<(), String> {
    match *s {
        ScalarInsn::SNop {}
        | ScalarInsn::End {}
        | ScalarInsn::SLi { .. }
        | ScalarInsn::SLif { .. }
        | ScalarInsn::SMov { .. }
        | ScalarInsn::SSys { .. }
        | ScalarInsn::SArg { .. }
        | ScalarInsn::SAlu { .. }
        | ScalarInsn::SFop { .. }
        | ScalarInsn::SItof { .. }
        | ScalarInsn::SFtoi { .. }
        | ScalarInsn::SBr { .. }
        | ScalarInsn::SJmp { .. } => Ok(()),
        ScalarInsn::SLd { sp, .. } | ScalarInsn::SSt { sp, .. } => match sp {
            ScalarSpace::Gm => Ok(()),
            ScalarSpace::Ub => need(kind.has_ub(), "an AIC core has no UB"),
        },
    }
}

fn check_sync(s: &SyncInsn, m: &Machine, kind: CoreKind) -> Result<(), String> {
    let cross_core = |id: u8| {
        need(
            m.organisation == Organisation::Split,
            "cross-core flags exist only on split machines",
        )?;
        need(
            u32::from(id) < m.sync.cross_core_flags,
            &format!(
                "cross-core flag {id} is out of range 0..{}",
                m.sync.cross_core_flags
            ),
        )
    };
    match *s {
        SyncInsn::SyncSet {
            src,
            dst,
            id: U8(id),
        }
        | SyncInsn::SyncWait {
            src,
            dst,
            id: U8(id),
        } => {
            pipe_on(src, kind)?;
            pipe_on(dst, kind)?;
            need(
                src != dst,
                "an event needs two different pipes (use sync.barrier within a pipe)",
            )?;
            need(
                u32::from(id) < m.sync.event_ids,
                &format!("event id {id} is out of range 0..{}", m.sync.event_ids),
            )
        }
        SyncInsn::SyncBarrier { pipe } => {
            if pipe == Pipe::All {
                Ok(())
            } else if pipe == Pipe::S {
                Err("`sync.barrier s` is illegal: the scalar unit is already in order (use `sync.barrier all`)".into())
            } else {
                pipe_on(pipe, kind)
            }
        }
        SyncInsn::XcoreSet {
            mode: U8(mode),
            id: U8(id),
            ..
        } => {
            cross_core(id)?;
            match mode {
                0 | 2 => Ok(()),
                1 => need(
                    kind == CoreKind::Aiv,
                    "mode 1 (AIV pair) is only for AIV cores",
                ),
                _ => Err(format!("cross-core mode {mode} is not 0, 1 or 2")),
            }
        }
        SyncInsn::XcoreWait { id: U8(id), .. } => cross_core(id),
    }
}

fn check_pipe(p: &PipeInsn, m: &Machine, kind: CoreKind) -> Result<(), String> {
    use Dt::*;
    let numeric = |d: Dt| -> Result<(), String> {
        if d == B8 {
            Err("b8 (bool) supports only cmp.eq/ne, sel, cvt, copy, dup and gather".into())
        } else {
            Ok(())
        }
    };
    let float = |d: Dt| -> Result<(), String> {
        if d.is_float() {
            Ok(())
        } else {
            Err(format!("{} is not a float type", d.name()))
        }
    };
    match *p {
        PipeInsn::Mte2GmUb { .. } | PipeInsn::Mte3UbGm { .. } => {
            need(kind.has_ub(), "this core has no UB")
        }
        PipeInsn::Mte2GmL1 { .. } => need(kind.has_l1(), "an AIV core has no L1"),
        PipeInsn::Mte2Nd2nz { dt, .. } => {
            need(kind.has_l1(), "an AIV core has no L1")?;
            need(dt != B8, "nd2nz takes f16, bf16, f32, i8 or i32")
        }
        PipeInsn::Mte3UbL1 { .. } => need(
            m.dma.ub_to_l1.is_some() && kind == CoreKind::Core,
            "UB → L1 exists only on coupled machines",
        ),
        PipeInsn::Mte3Nd2nz { dt, .. } => {
            need(
                m.dma.ub_to_l1.is_some() && kind == CoreKind::Core,
                "UB → L1 exists only on coupled machines",
            )?;
            need(dt != B8, "nd2nz takes f16, bf16, f32, i8 or i32")
        }
        PipeInsn::Mte1L0a { dt, .. }
        | PipeInsn::Mte1L0aT { dt, .. }
        | PipeInsn::Mte1L0b { dt, .. }
        | PipeInsn::Mte1L0bT { dt, .. } => need(
            matches!(dt, F16 | Bf16 | F32 | I8),
            "cube loads take f16, bf16, f32 or i8",
        ),
        PipeInsn::CubeMmad { dt, .. } => {
            need(
                matches!(dt, F16 | Bf16 | F32 | I8),
                "mmad takes f16, bf16, f32 or i8 inputs",
            )?;
            need(
                m.cube_dtype(dt).is_some(),
                &format!(
                    "the cube of `{}` does not support {} inputs",
                    m.name,
                    dt.name()
                ),
            )
        }
        PipeInsn::FixL0cGm { dt, .. } => {
            need(
                m.dma.l0c_to_gm.is_some(),
                "FixPipe exists only on split machines",
            )?;
            need(
                matches!(dt, F32 | F16 | Bf16 | I32),
                "FixPipe writes f32, f16, bf16 (from f32) or i32",
            )
        }
        PipeInsn::VecL0cUb { dt, .. } => {
            need(
                m.dma.l0c_to_ub.is_some() && kind == CoreKind::Core,
                "L0C → UB exists only on coupled machines",
            )?;
            need(
                matches!(dt, F32 | F16 | Bf16 | I32),
                "L0C → UB writes f32, f16, bf16 (from f32) or i32",
            )
        }
        PipeInsn::VBin { dt, .. } => numeric(dt),
        PipeInsn::VSca { dt, .. } => numeric(dt),
        PipeInsn::VUn { op, dt, .. } => match op {
            UnOp::Abs | UnOp::Relu => need(
                matches!(dt, F16 | Bf16 | F32 | I8 | I32),
                "abs/relu take a numeric type",
            ),
            UnOp::Exp | UnOp::Ln | UnOp::Sqrt | UnOp::Rsqrt | UnOp::Rec => float(dt),
        },
        PipeInsn::VCmp { cond, dt, .. } | PipeInsn::VCmps { cond, dt, .. } => need(
            dt != B8 || matches!(cond, Cond::Eq | Cond::Ne),
            "b8 compares only with eq and ne",
        ),
        PipeInsn::VSel { .. }
        | PipeInsn::VCopy { .. }
        | PipeInsn::VDup { .. }
        | PipeInsn::VGather { .. } => Ok(()),
        PipeInsn::VCvt { to, from, .. } => need(to != from, "cvt needs two different types"),
        PipeInsn::VRedR { dt, .. } | PipeInsn::VRedB { dt, .. } | PipeInsn::VRedA { dt, .. } => {
            need(
                matches!(dt, F16 | Bf16 | F32 | I32),
                "reductions take f16, bf16, f32 or i32",
            )
        }
        PipeInsn::VIota { dt, .. } => need(matches!(dt, I32 | F32), "iota takes i32 or f32"),
        PipeInsn::VBrcb { dt, .. } => need(
            matches!(dt, F16 | Bf16 | F32 | I32),
            "brcb takes 16- or 32-bit types",
        ),
        PipeInsn::VTrans { dt, .. } => need(matches!(dt, F16 | Bf16), "trans takes 16-bit types"),
    }
}
