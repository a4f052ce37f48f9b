//! The instruction set: one list (`for_each_insn!`) declares every
//! instruction with its mnemonic, its builder name, its class (scalar,
//! synchronisation, or a pipe instruction with its pipe and cost class) and
//! its fields. The encoder, the decoder, the disassembler, the assembler,
//! the class enums ([`ScalarInsn`], [`SyncInsn`], [`PipeInsn`]), the pipe
//! and cost of each instruction and the compiler's typed instruction builder
//! (`tessera-backend`, `npu/inst.rs`) all derive from it.
//!
//! # Mnemonic grammar
//!
//! ```text
//!   vec.add.f32   [r1], [r2], [r3], 64, 64
//!   ^^^ ^^^ ^^^   ^^^^^^^^^^^^^^^^^^^^^^^^^
//!   |   |   |     operands, destination first
//!   |   |   suffix fields (dtype, condition, ...) in declaration order
//!   |   verb (for `vec` and `s`, the verb is itself a suffix field: an op enum)
//!   unit: s (scalar), sync, xcore, mte1, mte2, mte3, cube, fix, vec; `end` alone
//! ```
//!
//! A mnemonic is `<base>(.<suffix>)*`: the base is the string in the list and
//! each field whose type is a *suffix* type ([`Dt`], [`Cond`], the op enums,
//! [`ScalarSpace`], [`MemTy`]) adds one `.`-separated component, in the order
//! the fields are declared (suffix fields come first). Every other field is an
//! operand, printed in declaration order, separated by commas. Two entries may
//! share a base when their suffix enums are disjoint (`vec.add.f32` and
//! `vec.exp.f32` are different entries with base `vec`).
//!
//! Operand syntax: registers `r0`–`r31` and `zr` (always zero); immediates are
//! constant expressions; `[rN + imm]` is a memory address (register plus
//! byte offset; `[imm]` means `zr`); vector operands add optional block and
//! repeat strides in 32-byte blocks, `[rN + imm, blk, rep]` (default `1, 8`).
//! The full reference is `docs/assembly.md`.
//!
//! Submodules: `fields` (the operand and suffix types), `check` (the
//! validity checks that do not depend on register values).
//!
//! # Adding an instruction
//! One entry in the list (in its class's group), then the compiler lists the
//! exhaustive matches that need an arm: the checks in `check.rs`, the
//! semantics in `exec/` (pipe instructions) or `timing/scalar.rs` (scalar
//! ones). `docs/adding-an-instruction.md` is a worked example.

mod check;
mod fields;

pub use fields::*;

use crate::machine::{PathId, VecCost};

/// Bytes in a data block (the unit of UB/L1 alignment and of vector strides).
pub const BLOCK_BYTES: u64 = 32;
/// Bytes processed per vector repeat (8 blocks).
pub const REPEAT_BYTES: u64 = 256;
/// Maximum repeat count of one vector instruction.
pub const MAX_REPEAT: u64 = 255;
/// Rows of a cube fractal (and columns of an L0C fractal).
pub const FRACTAL_ROWS: u64 = 16;
/// Bytes of an L0A/L0B fractal (16 rows × 32 bytes).
pub const FRACTAL_BYTES: u64 = 512;
/// Number of general registers (`r0`–`r31`); index 32 is `zr`.
pub const NUM_REGS: usize = 32;
/// The register index of `zr`.
pub const ZR: u8 = 32;

// ---------------------------------------------------------------------------
// The instruction list.
// ---------------------------------------------------------------------------

/// Invokes `$m!` with every instruction, in three groups (in opcode order):
///
/// ```text
/// scalar { Variant = "base" builder { field: Type, ... }; ... }
/// sync   { Variant = "base" builder { field: Type, ... }; ... }
/// pipe   { Variant = "base" builder [Pipe, cost] { field: Type, ... }; ... }
/// ```
///
/// Scalar instructions execute on the scalar unit at issue; synchronisation
/// instructions queue in the pipe their fields name ([`SyncInsn::pipe`]);
/// pipe instructions queue in the pipe their entry names. A pipe entry's
/// cost is `dma PATH` (a data-movement path of the machine description),
/// `cube` (`mmad`), `vector CLASS` (a `[vector.ops]` class) or `by op` (the
/// class of its `op` field). Suffix-typed fields come first. Each entry's
/// doc comment is its semantics; `builder` names its method in the
/// compiler's instruction builder.
#[macro_export]
macro_rules! for_each_insn {
    ($m:ident) => {
        $m! {
            scalar {
                /// No operation.
                SNop = "s.nop" s_nop {};
                /// Ends this core's program: the core finishes once every pipe has drained.
                End = "end" end {};
                /// `rd = imm` (64-bit).
                SLi = "s.li" s_li { rd: Reg, imm: Imm64 };
                /// `rd = bits(imm)`: an f32 literal's bit pattern, zero-extended.
                SLif = "s.lif" s_lif { rd: Reg, imm: F32Imm };
                /// `rd = ra`.
                SMov = "s.mov" s_mov { rd: Reg, ra: Reg };
                /// `rd = ` a system register (`block_idx`, `block_dim`, `sub_block_idx`, ...).
                SSys = "s.sys" s_sys { rd: Reg, sr: SysReg };
                /// `rd = ` GM address of kernel argument `idx` (parameters, then results).
                SArg = "s.arg" s_arg { rd: Reg, idx: U8 };
                /// 64-bit integer ALU: `rd = ra <op> b` (`div`/`rem` signed, fault on zero).
                SAlu = "s" s_alu { op: AluOp, rd: Reg, ra: Reg, b: Val };
                /// f32 ALU on the low 32 bits: `rd = ra <op> rb` (`fadd fsub fmul fdiv fmax fmin`).
                SFop = "s" s_fop { op: FOp, rd: Reg, ra: Reg, rb: Reg };
                /// `rd = f32 bits of (ra as i64)`.
                SItof = "s.itof" s_itof { rd: Reg, ra: Reg };
                /// `rd = (f32 in ra) truncated toward zero, saturated to i64`.
                SFtoi = "s.ftoi" s_ftoi { rd: Reg, ra: Reg };
                /// Scalar load from GM or UB (sign- or zero-extended per type).
                SLd = "s.ld" s_ld { sp: ScalarSpace, ty: MemTy, rd: Reg, addr: Addr };
                /// Scalar store of the low bytes of `rs` to GM or UB.
                SSt = "s.st" s_st { sp: ScalarSpace, ty: MemTy, rs: Reg, addr: Addr };
                /// Branch to `target` if `ra <cond> b` (signed).
                SBr = "s.br" s_br { cond: Cond, ra: Reg, b: Val, target: Target };
                /// Jump to `target`.
                SJmp = "s.jmp" s_jmp { target: Target };
            }
            sync {
                /// Queued in `src`: once every earlier `src` instruction has completed, sets
                /// event (`src`→`dst`, `id`). Setting a set event again is a fault.
                SyncSet = "sync.set" sync_set { src: Pipe, dst: Pipe, id: U8 };
                /// Queued in `dst` (blocks the scalar unit when `dst` is `s`): waits for the
                /// event, then clears it.
                SyncWait = "sync.wait" sync_wait { src: Pipe, dst: Pipe, id: U8 };
                /// Queued in `pipe`: later `pipe` instructions start after every earlier one
                /// has completed (results visible). `all`: the scalar unit waits for every pipe.
                SyncBarrier = "sync.barrier" sync_barrier { pipe: Pipe };
                /// Split machines: queued in `pipe`; once earlier `pipe` instructions completed,
                /// signals cross-core counter `id` (mode 0 all cores of this kind, 1 the AIV
                /// pair, 2 AIC ↔ its AIVs).
                XcoreSet = "xcore.set" xcore_set { pipe: Pipe, mode: U8, id: U8 };
                /// Split machines: queued in `pipe`; waits until counter `id` is non-zero, then
                /// decrements it.
                XcoreWait = "xcore.wait" xcore_wait { pipe: Pipe, id: U8 };
            }
            pipe {
                // ---- data movement ----
                /// MTE2: `n` bursts of `len` bytes, GM `src + i*src_stride` → UB `dst + i*dst_stride`.
                Mte2GmUb = "mte2.copy.gm.ub" mte2_gm_ub [Mte2, dma GmToUb] { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
                /// MTE2: as `mte2.copy.gm.ub`, into L1.
                Mte2GmL1 = "mte2.copy.gm.l1" mte2_gm_l1 [Mte2, dma GmToL1] { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
                /// MTE2: a `rows` × `cols` row-major tile (GM row stride `src_stride` bytes) → L1 NZ
                /// with `dst_rows` rows per column block, zero-padded to whole fractals.
                Mte2Nd2nz = "mte2.nd2nz.gm.l1" mte2_nd2nz [Mte2, dma GmToL1] { dt: Dt, dst: Addr, src: Addr, rows: Val, cols: Val, src_stride: Val, dst_rows: Val };
                /// MTE3: `n` bursts of `len` bytes, UB → GM; exactly `len` bytes per burst are written.
                Mte3UbGm = "mte3.copy.ub.gm" mte3_ub_gm [Mte3, dma UbToGm] { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
                /// MTE3 (coupled machines): strided copy UB → L1.
                Mte3UbL1 = "mte3.copy.ub.l1" mte3_ub_l1 [Mte3, dma UbToL1] { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
                /// MTE3 (coupled machines): row-major UB tile → L1 NZ, as `mte2.nd2nz.gm.l1`.
                Mte3Nd2nz = "mte3.nd2nz.ub.l1" mte3_nd2nz [Mte3, dma UbToL1] { dt: Dt, dst: Addr, src: Addr, rows: Val, cols: Val, src_stride: Val, dst_rows: Val };
                /// MTE1: `m1` × `k1` fractals of A from L1 NZ (column-block stride `src_stride`) → L0A.
                Mte1L0a = "mte1.load.l0a" mte1_l0a [Mte1, dma L1ToL0a] { dt: Dt, dst: Addr, src: Addr, m1: Val, k1: Val, src_stride: Val };
                /// MTE1: as `mte1.load.l0a`, the L1 matrix holding Aᵀ (each fractal transposed).
                Mte1L0aT = "mte1.load.l0a.t" mte1_l0a_t [Mte1, dma L1ToL0a] { dt: Dt, dst: Addr, src: Addr, m1: Val, k1: Val, src_stride: Val };
                /// MTE1: `k1` × `n1` fractals of B from L1 NZ of Bᵀ → L0B.
                Mte1L0b = "mte1.load.l0b" mte1_l0b [Mte1, dma L1ToL0b] { dt: Dt, dst: Addr, src: Addr, k1: Val, n1: Val, src_stride: Val };
                /// MTE1: as `mte1.load.l0b`, the L1 matrix holding B itself (row-major K × N source).
                Mte1L0bT = "mte1.load.l0b.t" mte1_l0b_t [Mte1, dma L1ToL0b] { dt: Dt, dst: Addr, src: Addr, k1: Val, n1: Val, src_stride: Val };

                // ---- cube ----
                /// Cube: `C[m×n] (=|+=) A[m×k] · B[k×n]`; `init != 0` starts from zero.
                CubeMmad = "cube.mmad" cube_mmad [M, cube] { dt: Dt, dst: Addr, a: Addr, b: Addr, m: Val, k: Val, n: Val, init: Val };
                /// FixPipe (split machines): L0C NZ (`src_rows` rows per column block) → GM
                /// row-major `m` × `n` with row stride `dst_stride`, cast to `dt`, optional relu.
                FixL0cGm = "fix.copy.l0c.gm" fix_l0c_gm [Fix, dma L0cToGm] { dt: Dt, dst: Addr, src: Addr, m: Val, n: Val, src_rows: Val, dst_stride: Val, relu: Val };

                // ---- vector (pipe V), all operands in UB ----
                /// Coupled machines, vector pipe: L0C NZ → UB row-major, cast to `dt`, optional relu.
                VecL0cUb = "vec.copy.l0c.ub" vec_l0c_ub [V, dma L0cToUb] { dt: Dt, dst: Addr, src: Addr, m: Val, n: Val, src_rows: Val, dst_stride: Val, relu: Val };
                /// Tensor-tensor `dst = a <op> b` (`add sub mul div max min`).
                VBin = "vec" vec_bin [V, by op] { op: BinOp, dt: Dt, dst: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
                /// Tensor-scalar `dst = a <op> s` (`adds muls maxs mins`).
                VSca = "vec" vec_sca [V, vector Scalar] { op: ScaOp, dt: Dt, dst: Vop, a: Vop, s: Scal, rep: Val, mask: Mask };
                /// Unary `dst = op(a)` (`exp ln sqrt rsqrt rec abs relu`).
                VUn = "vec" vec_un [V, by op] { op: UnOp, dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
                /// `dst(b8) = a <cond> b`.
                VCmp = "vec.cmp" vec_cmp [V, vector Compare] { cond: Cond, dt: Dt, dst: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
                /// `dst(b8) = a <cond> s`.
                VCmps = "vec.cmps" vec_cmps [V, vector Compare] { cond: Cond, dt: Dt, dst: Vop, a: Vop, s: Scal, rep: Val, mask: Mask };
                /// `dst = c(b8) != 0 ? a : b`.
                VSel = "vec.sel" vec_sel [V, vector Select] { dt: Dt, dst: Vop, c: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
                /// `dst(to) = convert(a(from))`.
                VCvt = "vec.cvt" vec_cvt [V, vector Cast] { to: Dt, from: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
                /// Per-repeat reduction (`rsum rmax rmin`): result `r` at `dst + r * size`.
                VRedR = "vec" vec_red_r [V, vector Reduce] { op: RRed, dt: Dt, dst: Addr, a: Vop, rep: Val, mask: Mask };
                /// Per-block reduction (`bsum bmax bmin`): block `b` of repeat `r` at `dst + (8r + b) * size`.
                VRedB = "vec" vec_red_b [V, vector BlockReduce] { op: BRed, dt: Dt, dst: Addr, a: Vop, rep: Val, mask: Mask };
                /// Across-repeat reduction (`asum amax amin`): `dst[l] = reduce over r of a[r][l]`.
                VRedA = "vec" vec_red_a [V, vector Binary] { op: ARed, dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
                /// `dst = s` in every active lane.
                VDup = "vec.dup" vec_dup [V, vector Copy] { dt: Dt, dst: Vop, s: Scal, rep: Val, mask: Mask };
                /// `dst = s + (r * lanes + l)` (i32 or f32).
                VIota = "vec.iota" vec_iota [V, vector Unary] { dt: Dt, dst: Vop, s: Scal, rep: Val, mask: Mask };
                /// Broadcast: element `8r + b` of `src` fills block `b` of repeat `r` of `dst`.
                VBrcb = "vec.brcb" vec_brcb [V, vector Broadcast] { dt: Dt, dst: Vop, src: Addr, rep: Val };
                /// `dst = a` with strides.
                VCopy = "vec.copy" vec_copy [V, vector Copy] { dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
                /// `dst[l] = *(src + idx[l])`, `idx` holding 4-byte byte offsets.
                VGather = "vec.gather" vec_gather [V, vector Gather] { dt: Dt, dst: Vop, src: Addr, idx: Vop, rep: Val, mask: Mask };
                /// Transposes `rep` consecutive 16 × 16 matrices of 16-bit elements (512 B each).
                VTrans = "vec.trans" vec_trans [V, vector Transpose] { dt: Dt, dst: Addr, src: Addr, rep: Val };
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Classes and costs.
// ---------------------------------------------------------------------------

/// What an instruction's pipe work costs, by the machine description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cost {
    /// A transfer on a data-movement path (`[dma]`): `fixed + bytes / rate`.
    Dma(PathId),
    /// `mmad`: `head + fractal triples × cycles` (`[cube]`).
    Cube,
    /// A vector instruction of a cost class (`[vector.ops]`).
    Vector(VecCost),
}

/// The class of an opcode: where it executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Executes on the scalar unit, at issue.
    Scalar,
    /// Synchronisation, queued in the pipe its fields name.
    Sync,
    /// Queued in this pipe.
    Pipe(Pipe),
}

macro_rules! pipe_cost {
    (dma $p:ident) => {
        Cost::Dma(PathId::$p)
    };
    (cube) => {
        Cost::Cube
    };
    (vector $c:ident) => {
        Cost::Vector(VecCost::$c)
    };
    (by $f:ident) => {
        Cost::Vector($f.cost())
    };
}

// ---------------------------------------------------------------------------
// The generated instruction enums and the assembler's table.
// ---------------------------------------------------------------------------

/// Why an entry of the table did not accept a line.
pub enum ParseFail {
    /// The suffixes do not fit this entry.
    Mnemonic,
    /// Wrong operand count.
    Count(usize),
    /// Operand `i` is invalid.
    Operand(usize, String),
}

/// The parser of one table entry: (suffixes, operand texts, context).
pub type ParseFn = fn(&[&str], &[&str], &mut ParseCtx) -> Result<Insn, ParseFail>;

/// One table entry: its base mnemonic and a parser.
pub struct InsnDesc {
    /// Variant name.
    pub name: &'static str,
    /// Base mnemonic.
    pub base: &'static str,
    /// Parses the suffixes and operands of one line.
    pub parse: ParseFn,
    /// Operand count.
    pub operands: usize,
}

macro_rules! define_insn {
    (
        scalar { $( $(#[$sdoc:meta])* $sname:ident = $smn:literal $sb:ident { $($sf:ident : $st:ident),* $(,)? } ; )* }
        sync { $( $(#[$ydoc:meta])* $yname:ident = $ymn:literal $yb:ident { $($yf:ident : $yt:ident),* $(,)? } ; )* }
        pipe { $( $(#[$pdoc:meta])* $pname:ident = $pmn:literal $pb:ident [$pipe:ident, $($cost:tt)*] { $($pf:ident : $pt:ident),* $(,)? } ; )* }
    ) => {
        /// A scalar instruction (see `for_each_insn!` for the list and semantics).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum ScalarInsn { $( $(#[$sdoc])* $sname { $($sf: $st),* }, )* }

        /// A synchronisation instruction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum SyncInsn { $( $(#[$ydoc])* $yname { $($yf: $yt),* }, )* }

        /// An instruction for a pipe other than the scalar unit's.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum PipeInsn { $( $(#[$pdoc])* $pname { $($pf: $pt),* }, )* }

        impl PipeInsn {
            /// The pipe whose queue executes it.
            pub fn pipe(&self) -> Pipe {
                match self { $(PipeInsn::$pname { .. } => Pipe::$pipe),* }
            }
            /// What its work costs.
            #[allow(unused_variables)]
            pub fn cost(&self) -> Cost {
                match *self { $(PipeInsn::$pname { $($pf),* } => pipe_cost!($($cost)*)),* }
            }
        }

        /// Opcodes, in list order (the encoding's first byte).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        #[repr(u8)]
        pub enum Opcode { $($sname,)* $($yname,)* $($pname,)* }

        impl Opcode {
            /// Every opcode, in encoding order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$sname,)* $(Opcode::$yname,)* $(Opcode::$pname,)*];
            /// Where instructions of this opcode execute.
            pub fn class(self) -> Class {
                match self {
                    $(Opcode::$sname => Class::Scalar,)*
                    $(Opcode::$yname => Class::Sync,)*
                    $(Opcode::$pname => Class::Pipe(Pipe::$pipe),)*
                }
            }
            /// The builder method's name (`tessera-backend`'s instruction builder).
            pub fn builder(self) -> &'static str {
                match self {
                    $(Opcode::$sname => stringify!($sb),)*
                    $(Opcode::$yname => stringify!($yb),)*
                    $(Opcode::$pname => stringify!($pb),)*
                }
            }
        }

        define_insn! { @flat
            $( [Scalar ScalarInsn $sname $smn { $($sf : $st),* }] )*
            $( [Sync SyncInsn $yname $ymn { $($yf : $yt),* }] )*
            $( [Pipe PipeInsn $pname $pmn { $($pf : $pt),* }] )*
        }
    };
    (@flat $( [$wrap:ident $sub:ident $name:ident $mn:literal { $($f:ident : $t:ident),* }] )*) => {
        /// One instruction, by class (see `for_each_insn!` for the list).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Insn {
            /// Executes on the scalar unit.
            Scalar(ScalarInsn),
            /// Synchronisation.
            Sync(SyncInsn),
            /// Queued in a pipe.
            Pipe(PipeInsn),
        }

        impl Insn {
            /// The opcode.
            pub fn opcode(&self) -> Opcode {
                match self { $(Insn::$wrap($sub::$name { .. }) => Opcode::$name),* }
            }
            /// The base mnemonic.
            pub fn base(&self) -> &'static str {
                match self { $(Insn::$wrap($sub::$name { .. }) => $mn),* }
            }
            /// Appends the encoding: opcode byte, then each field in order.
            #[allow(unused_variables)]
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $(Insn::$wrap($sub::$name { $($f),* }) => {
                        out.push(Opcode::$name as u8);
                        $( Field::encode($f, out); )*
                    })*
                }
            }
            /// Decodes one instruction.
            pub fn decode(r: &mut Reader) -> Result<Insn, String> {
                let op = r.u8()?;
                let code = Opcode::ALL.get(usize::from(op)).copied().ok_or_else(|| format!("invalid opcode {op}"))?;
                match code {
                    $(Opcode::$name => Ok(Insn::$wrap($sub::$name { $($f: <$t as Field>::decode(r)?),* })),)*
                }
            }
            /// The first dtype suffix, if any.
            #[allow(unused_variables, unused_mut)]
            pub fn dtype(&self) -> Option<Dt> {
                match self {
                    $(Insn::$wrap($sub::$name { $($f),* }) => {
                        let mut d: Option<Dt> = None;
                        $( if d.is_none() { d = Field::as_dt($f); } )*
                        d
                    })*
                }
            }
            /// The branch target, if the instruction is a branch.
            #[allow(unused_variables, unused_mut)]
            pub fn target(&self) -> Option<u32> {
                match self {
                    $(Insn::$wrap($sub::$name { $($f),* }) => {
                        let mut t: Option<u32> = None;
                        $( if t.is_none() { t = Field::as_target($f); } )*
                        t
                    })*
                }
            }
            /// The assembly text (branch targets print as `.L<index>`).
            #[allow(unused_variables, unused_mut, unused_assignments)]
            pub fn text(&self) -> String {
                let dt = self.dtype();
                let mut out = String::new();
                match self {
                    $(Insn::$wrap($sub::$name { $($f),* }) => {
                        out.push_str($mn);
                        $( if <$t as Field>::SUFFIX { out.push('.'); Field::print($f, dt, &mut out); } )*
                        let mut first = true;
                        $( if !<$t as Field>::SUFFIX {
                            out.push_str(if first { " " } else { ", " });
                            first = false;
                            Field::print($f, dt, &mut out);
                        } )*
                    })*
                }
                out
            }
        }

        /// The instruction table, in opcode order.
        pub static TABLE: &[InsnDesc] = &[
            $(InsnDesc {
                name: stringify!($name),
                base: $mn,
                operands: 0 $(+ (!<$t as Field>::SUFFIX) as usize)*,
                parse: {
                #[allow(unused_variables, unused_mut, unused_assignments, clippy::absurd_extreme_comparisons)]
                fn parse(sfx: &[&str], ops: &[&str], ctx: &mut ParseCtx) -> Result<Insn, ParseFail> {
                    let n_sfx = 0 $(+ usize::from(<$t as Field>::SUFFIX))*;
                    let n_ops = 0 $(+ usize::from(!<$t as Field>::SUFFIX))*;
                    if sfx.len() != n_sfx { return Err(ParseFail::Mnemonic); }
                    let mut si = 0usize;
                    let mut oi = 0usize;
                    ctx.dt = None;
                    $(
                        let $f: $t = if <$t as Field>::SUFFIX {
                            let v = <$t as Field>::parse_suffix(sfx[si]).ok_or(ParseFail::Mnemonic)?;
                            si += 1;
                            if ctx.dt.is_none() { ctx.dt = Field::as_dt(&v); }
                            v
                        } else {
                            if ops.len() != n_ops { return Err(ParseFail::Count(n_ops)); }
                            let v = <$t as Field>::parse(ops[oi], ctx).map_err(|e| ParseFail::Operand(oi, e))?;
                            oi += 1;
                            v
                        };
                    )*
                    if ops.len() != n_ops { return Err(ParseFail::Count(n_ops)); }
                    Ok(Insn::$wrap($sub::$name { $($f),* }))
                }
                parse
                },
            },)*
        ];
    };
}

for_each_insn!(define_insn);

impl std::fmt::Display for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl SyncInsn {
    /// The pipe whose queue executes it: the event's source for a set, its
    /// destination for a wait, the named pipe otherwise (`all` → the scalar
    /// unit, which waits for every pipe).
    pub fn pipe(&self) -> Pipe {
        match *self {
            SyncInsn::SyncSet { src, .. } => src,
            SyncInsn::SyncWait { dst, .. } => dst,
            SyncInsn::SyncBarrier { pipe: Pipe::All } => Pipe::S,
            SyncInsn::SyncBarrier { pipe }
            | SyncInsn::XcoreSet { pipe, .. }
            | SyncInsn::XcoreWait { pipe, .. } => pipe,
        }
    }
}

impl Insn {
    /// The pipe whose queue executes the instruction (`S` for scalar ones).
    pub fn pipe(&self) -> Pipe {
        match self {
            Insn::Scalar(_) => Pipe::S,
            Insn::Sync(s) => s.pipe(),
            Insn::Pipe(p) => p.pipe(),
        }
    }

    /// Whether the instruction ends a section's control flow (`end`, `s.jmp`).
    pub fn ends_section(&self) -> bool {
        matches!(
            self,
            Insn::Scalar(ScalarInsn::End {} | ScalarInsn::SJmp { .. })
        )
    }
}

/// The kind of core a section of code runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoreKind {
    /// Cube core of a split machine.
    Aic,
    /// Vector core of a split machine.
    Aiv,
    /// Whole AI core of a coupled machine.
    Core,
}

impl CoreKind {
    /// Section directive name.
    pub fn name(self) -> &'static str {
        match self {
            CoreKind::Aic => "aic",
            CoreKind::Aiv => "aiv",
            CoreKind::Core => "core",
        }
    }
    /// The pipes a core of this kind has.
    pub fn has_pipe(self, p: Pipe) -> bool {
        match self {
            CoreKind::Aic => matches!(p, Pipe::S | Pipe::Mte1 | Pipe::Mte2 | Pipe::M | Pipe::Fix),
            CoreKind::Aiv => matches!(p, Pipe::S | Pipe::Mte2 | Pipe::V | Pipe::Mte3),
            CoreKind::Core => matches!(
                p,
                Pipe::S | Pipe::Mte1 | Pipe::Mte2 | Pipe::M | Pipe::V | Pipe::Mte3
            ),
        }
    }
    /// Whether a core of this kind has UB.
    pub fn has_ub(self) -> bool {
        !matches!(self, CoreKind::Aic)
    }
    /// Whether a core of this kind has L1 (a split machine's vector cores
    /// have UB only: they reach the cube's data through GM).
    pub fn has_l1(self) -> bool {
        !matches!(self, CoreKind::Aiv)
    }
    /// Whether the kind exists on an organisation.
    pub fn on(self, org: crate::machine::Organisation) -> bool {
        use crate::machine::Organisation;
        match org {
            Organisation::Split => matches!(self, CoreKind::Aic | CoreKind::Aiv),
            Organisation::Coupled => matches!(self, CoreKind::Core),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_groups_of_the_list() {
        // Opcode numbers are the encoding: scalar first, then sync, then pipes.
        assert_eq!(Opcode::SNop as u8, 0);
        assert_eq!(Opcode::SyncSet as u8, 15);
        assert_eq!(Opcode::Mte2GmUb as u8, 20);
        assert_eq!(Opcode::ALL.len(), TABLE.len());
        for (i, op) in Opcode::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
        }
        assert_eq!(Opcode::SBr.class(), Class::Scalar);
        assert_eq!(Opcode::XcoreWait.class(), Class::Sync);
        assert_eq!(Opcode::VecL0cUb.class(), Class::Pipe(Pipe::V));
        assert_eq!(Opcode::FixL0cGm.class(), Class::Pipe(Pipe::Fix));
        assert_eq!(Opcode::Mte2Nd2nz.builder(), "mte2_nd2nz");
    }

    #[test]
    fn costs_come_from_the_list_and_the_op_enums() {
        let v = |op| PipeInsn::VBin {
            op,
            dt: Dt::F32,
            dst: Vop {
                addr: Addr {
                    base: Reg(ZR),
                    off: 0,
                },
                blk: 1,
                rep: 8,
            },
            a: Vop {
                addr: Addr {
                    base: Reg(ZR),
                    off: 0,
                },
                blk: 1,
                rep: 8,
            },
            b: Vop {
                addr: Addr {
                    base: Reg(ZR),
                    off: 0,
                },
                blk: 1,
                rep: 8,
            },
            rep: Val::Imm(1),
            mask: Mask::Count(Val::Imm(64)),
        };
        assert_eq!(v(BinOp::Div).cost(), Cost::Vector(VecCost::Div));
        assert_eq!(v(BinOp::Max).cost(), Cost::Vector(VecCost::Binary));
        let t = PipeInsn::VTrans {
            dt: Dt::F16,
            dst: Addr {
                base: Reg(ZR),
                off: 0,
            },
            src: Addr {
                base: Reg(ZR),
                off: 0,
            },
            rep: Val::Imm(1),
        };
        assert_eq!(t.cost(), Cost::Vector(VecCost::Transpose));
        assert_eq!(t.pipe(), Pipe::V);
    }
}
