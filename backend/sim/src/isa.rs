//! The instruction set: one list ([`for_each_insn!`]) drives the encoder, the
//! decoder, the disassembler and the assembler.
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
//! # Adding an instruction
//! One entry here (the encoder, decoder, assembler and disassembler follow),
//! then the compiler lists the exhaustive matches that need an arm: the unit
//! and checks in this file, the semantics in `exec/`, the cost in `timing/`.

use crate::machine::{Machine, Organisation};
use std::collections::HashMap;
use std::fmt::Write as _;

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

/// Invokes `$m!` with every instruction: `Variant = "base" { field: Type, ... };`.
/// Suffix-typed fields come first. Each entry's doc comment is its semantics.
#[macro_export]
macro_rules! for_each_insn {
    ($m:ident) => {
        $m! {
            // ---- scalar (pipe S): executes at issue, in program order ----
            /// No operation.
            SNop = "s.nop" {};
            /// Ends this core's program: the core finishes once every pipe has drained.
            End = "end" {};
            /// `rd = imm` (64-bit).
            SLi = "s.li" { rd: Reg, imm: Imm64 };
            /// `rd = bits(imm)`: an f32 literal's bit pattern, zero-extended.
            SLif = "s.lif" { rd: Reg, imm: F32Imm };
            /// `rd = ra`.
            SMov = "s.mov" { rd: Reg, ra: Reg };
            /// `rd = ` a system register (`block_idx`, `block_dim`, `sub_block_idx`, ...).
            SSys = "s.sys" { rd: Reg, sr: SysReg };
            /// `rd = ` GM address of kernel argument `idx` (parameters, then results).
            SArg = "s.arg" { rd: Reg, idx: U8 };
            /// 64-bit integer ALU: `rd = ra <op> b` (`div`/`rem` signed, fault on zero).
            SAlu = "s" { op: AluOp, rd: Reg, ra: Reg, b: Val };
            /// f32 ALU on the low 32 bits: `rd = ra <op> rb` (`fadd fsub fmul fdiv fmax fmin`).
            SFop = "s" { op: FOp, rd: Reg, ra: Reg, rb: Reg };
            /// `rd = f32 bits of (ra as i64)`.
            SItof = "s.itof" { rd: Reg, ra: Reg };
            /// `rd = (f32 in ra) truncated toward zero, saturated to i64`.
            SFtoi = "s.ftoi" { rd: Reg, ra: Reg };
            /// Scalar load from GM or UB (sign- or zero-extended per type).
            SLd = "s.ld" { sp: ScalarSpace, ty: MemTy, rd: Reg, addr: Addr };
            /// Scalar store of the low bytes of `rs` to GM or UB.
            SSt = "s.st" { sp: ScalarSpace, ty: MemTy, rs: Reg, addr: Addr };
            /// Branch to `target` if `ra <cond> b` (signed).
            SBr = "s.br" { cond: Cond, ra: Reg, b: Val, target: Target };
            /// Jump to `target`.
            SJmp = "s.jmp" { target: Target };

            // ---- synchronisation ----
            /// Queued in `src`: once every earlier `src` instruction has completed, sets
            /// event (`src`→`dst`, `id`). Setting a set event again is a fault.
            SyncSet = "sync.set" { src: Pipe, dst: Pipe, id: U8 };
            /// Queued in `dst` (blocks the scalar unit when `dst` is `s`): waits for the
            /// event, then clears it.
            SyncWait = "sync.wait" { src: Pipe, dst: Pipe, id: U8 };
            /// Queued in `pipe`: later `pipe` instructions start after every earlier one
            /// has completed (results visible). `all`: the scalar unit waits for every pipe.
            SyncBarrier = "sync.barrier" { pipe: Pipe };
            /// Split machines: queued in `pipe`; once earlier `pipe` instructions completed,
            /// signals cross-core counter `id` (mode 0 all cores of this kind, 1 the AIV
            /// pair, 2 AIC ↔ its AIVs).
            XcoreSet = "xcore.set" { pipe: Pipe, mode: U8, id: U8 };
            /// Split machines: queued in `pipe`; waits until counter `id` is non-zero, then
            /// decrements it.
            XcoreWait = "xcore.wait" { pipe: Pipe, id: U8 };

            // ---- data movement ----
            /// MTE2: `n` bursts of `len` bytes, GM `src + i*src_stride` → UB `dst + i*dst_stride`.
            Mte2GmUb = "mte2.copy.gm.ub" { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
            /// MTE2: as `mte2.copy.gm.ub`, into L1.
            Mte2GmL1 = "mte2.copy.gm.l1" { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
            /// MTE2: a `rows` × `cols` row-major tile (GM row stride `src_stride` bytes) → L1 NZ
            /// with `dst_rows` rows per column block, zero-padded to whole fractals.
            Mte2Nd2nz = "mte2.nd2nz.gm.l1" { dt: Dt, dst: Addr, src: Addr, rows: Val, cols: Val, src_stride: Val, dst_rows: Val };
            /// MTE3: `n` bursts of `len` bytes, UB → GM; exactly `len` bytes per burst are written.
            Mte3UbGm = "mte3.copy.ub.gm" { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
            /// MTE3 (coupled machines): strided copy UB → L1.
            Mte3UbL1 = "mte3.copy.ub.l1" { dst: Addr, src: Addr, n: Val, len: Val, src_stride: Val, dst_stride: Val };
            /// MTE3 (coupled machines): row-major UB tile → L1 NZ, as `mte2.nd2nz.gm.l1`.
            Mte3Nd2nz = "mte3.nd2nz.ub.l1" { dt: Dt, dst: Addr, src: Addr, rows: Val, cols: Val, src_stride: Val, dst_rows: Val };
            /// MTE1: `m1` × `k1` fractals of A from L1 NZ (column-block stride `src_stride`) → L0A.
            Mte1L0a = "mte1.load.l0a" { dt: Dt, dst: Addr, src: Addr, m1: Val, k1: Val, src_stride: Val };
            /// MTE1: as `mte1.load.l0a`, the L1 matrix holding Aᵀ (each fractal transposed).
            Mte1L0aT = "mte1.load.l0a.t" { dt: Dt, dst: Addr, src: Addr, m1: Val, k1: Val, src_stride: Val };
            /// MTE1: `k1` × `n1` fractals of B from L1 NZ of Bᵀ → L0B.
            Mte1L0b = "mte1.load.l0b" { dt: Dt, dst: Addr, src: Addr, k1: Val, n1: Val, src_stride: Val };
            /// MTE1: as `mte1.load.l0b`, the L1 matrix holding B itself (row-major K × N source).
            Mte1L0bT = "mte1.load.l0b.t" { dt: Dt, dst: Addr, src: Addr, k1: Val, n1: Val, src_stride: Val };

            // ---- cube ----
            /// Cube: `C[m×n] (=|+=) A[m×k] · B[k×n]`; `init != 0` starts from zero.
            CubeMmad = "cube.mmad" { dt: Dt, dst: Addr, a: Addr, b: Addr, m: Val, k: Val, n: Val, init: Val };
            /// FixPipe (split machines): L0C NZ (`src_rows` rows per column block) → GM
            /// row-major `m` × `n` with row stride `dst_stride`, cast to `dt`, optional relu.
            FixL0cGm = "fix.copy.l0c.gm" { dt: Dt, dst: Addr, src: Addr, m: Val, n: Val, src_rows: Val, dst_stride: Val, relu: Val };

            // ---- vector (pipe V), all operands in UB ----
            /// Coupled machines, vector pipe: L0C NZ → UB row-major, cast to `dt`, optional relu.
            VecL0cUb = "vec.copy.l0c.ub" { dt: Dt, dst: Addr, src: Addr, m: Val, n: Val, src_rows: Val, dst_stride: Val, relu: Val };
            /// Tensor-tensor `dst = a <op> b` (`add sub mul div max min`).
            VBin = "vec" { op: BinOp, dt: Dt, dst: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
            /// Tensor-scalar `dst = a <op> s` (`adds muls maxs mins`).
            VSca = "vec" { op: ScaOp, dt: Dt, dst: Vop, a: Vop, s: Scal, rep: Val, mask: Mask };
            /// Unary `dst = op(a)` (`exp ln sqrt rsqrt rec abs relu`).
            VUn = "vec" { op: UnOp, dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
            /// `dst(b8) = a <cond> b`.
            VCmp = "vec.cmp" { cond: Cond, dt: Dt, dst: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
            /// `dst(b8) = a <cond> s`.
            VCmps = "vec.cmps" { cond: Cond, dt: Dt, dst: Vop, a: Vop, s: Scal, rep: Val, mask: Mask };
            /// `dst = c(b8) != 0 ? a : b`.
            VSel = "vec.sel" { dt: Dt, dst: Vop, c: Vop, a: Vop, b: Vop, rep: Val, mask: Mask };
            /// `dst(to) = convert(a(from))`.
            VCvt = "vec.cvt" { to: Dt, from: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
            /// Per-repeat reduction (`rsum rmax rmin`): result `r` at `dst + r * size`.
            VRedR = "vec" { op: RRed, dt: Dt, dst: Addr, a: Vop, rep: Val, mask: Mask };
            /// Per-block reduction (`bsum bmax bmin`): block `b` of repeat `r` at `dst + (8r + b) * size`.
            VRedB = "vec" { op: BRed, dt: Dt, dst: Addr, a: Vop, rep: Val, mask: Mask };
            /// Across-repeat reduction (`asum amax amin`): `dst[l] = reduce over r of a[r][l]`.
            VRedA = "vec" { op: ARed, dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
            /// `dst = s` in every active lane.
            VDup = "vec.dup" { dt: Dt, dst: Vop, s: Scal, rep: Val, mask: Mask };
            /// `dst = s + (r * lanes + l)` (i32 or f32).
            VIota = "vec.iota" { dt: Dt, dst: Vop, s: Scal, rep: Val, mask: Mask };
            /// Broadcast: element `8r + b` of `src` fills block `b` of repeat `r` of `dst`.
            VBrcb = "vec.brcb" { dt: Dt, dst: Vop, src: Addr, rep: Val };
            /// `dst = a` with strides.
            VCopy = "vec.copy" { dt: Dt, dst: Vop, a: Vop, rep: Val, mask: Mask };
            /// `dst[l] = *(src + idx[l])`, `idx` holding 4-byte byte offsets.
            VGather = "vec.gather" { dt: Dt, dst: Vop, src: Addr, idx: Vop, rep: Val, mask: Mask };
            /// Transposes `rep` consecutive 16 × 16 matrices of 16-bit elements (512 B each).
            VTrans = "vec.trans" { dt: Dt, dst: Addr, src: Addr, rep: Val };
        }
    };
}

// ---------------------------------------------------------------------------
// Field types.
// ---------------------------------------------------------------------------

/// Reading bytes for the decoder.
pub struct Reader<'a> {
    bytes: &'a [u8],
    /// Current position.
    pub pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    /// Whether every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| "truncated".to_string())?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    /// Little-endian u16.
    pub fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// Little-endian u32.
    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Little-endian u64.
    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Context for parsing operands.
pub struct ParseCtx<'a> {
    /// `.equ` constants.
    pub consts: &'a HashMap<String, i64>,
    /// Labels of the current section (instruction indices); `None` in the first pass.
    pub labels: Option<&'a HashMap<String, u32>>,
    /// The instruction's first dtype suffix (decides how scalar literals are read).
    pub dt: Option<Dt>,
}

/// One field of an instruction: encoding, decoding, printing and parsing.
pub trait Field: Sized + Copy {
    /// Whether the field is a mnemonic suffix rather than an operand.
    const SUFFIX: bool = false;
    /// Appends the encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads the encoding; any invalid value is an error.
    fn decode(r: &mut Reader) -> Result<Self, String>;
    /// Appends the text form (an operand, or a suffix without the dot).
    fn print(&self, dt: Option<Dt>, out: &mut String);
    /// Parses a suffix component.
    fn parse_suffix(_s: &str) -> Option<Self> {
        None
    }
    /// Parses an operand.
    fn parse(_s: &str, _ctx: &ParseCtx) -> Result<Self, String> {
        Err("not an operand".into())
    }
    /// The dtype, for dtype fields.
    fn as_dt(&self) -> Option<Dt> {
        None
    }
    /// The instruction index, for branch targets.
    fn as_target(&self) -> Option<u32> {
        None
    }
}

macro_rules! name_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $v:ident = $s:literal),* $(,)? } suffix = $sfx:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum $name { $($(#[$vdoc])* $v),* }
        impl $name {
            /// Every value, in encoding order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            /// The text name.
            pub fn name(self) -> &'static str { match self { $($name::$v => $s),* } }
            /// Parses a text name.
            pub fn from_name(s: &str) -> Option<Self> { match s { $($s => Some($name::$v),)* _ => None } }
        }
        impl Field for $name {
            const SUFFIX: bool = $sfx;
            fn encode(&self, out: &mut Vec<u8>) { out.push(*self as u8) }
            fn decode(r: &mut Reader) -> Result<Self, String> {
                let b = r.u8()?;
                $name::ALL.get(usize::from(b)).copied().ok_or_else(|| format!("invalid {} {}", stringify!($name), b))
            }
            fn print(&self, _dt: Option<Dt>, out: &mut String) { out.push_str(self.name()) }
            fn parse_suffix(s: &str) -> Option<Self> { if $sfx { Self::from_name(s) } else { None } }
            fn as_dt(&self) -> Option<Dt> { if stringify!($name) == "Dt" { Dt::from_name(self.name()) } else { None } }
            fn parse(s: &str, _ctx: &ParseCtx) -> Result<Self, String> {
                if $sfx { return Err("not an operand".into()) }
                Self::from_name(s.trim()).ok_or_else(|| format!("expected one of: {}", [$($s),*].join(", ")))
            }
        }
    };
}

name_enum! {
    /// Element types. `b8` is a bool stored as one byte (0 or 1); tensors name it `bool`.
    Dt { F16 = "f16", Bf16 = "bf16", F32 = "f32", I8 = "i8", I32 = "i32", B8 = "b8" } suffix = true
}

impl Dt {
    /// Element size in bytes.
    pub fn size(self) -> u64 {
        match self {
            Dt::F16 | Dt::Bf16 => 2,
            Dt::F32 | Dt::I32 => 4,
            Dt::I8 | Dt::B8 => 1,
        }
    }
    /// Whether the type is a float.
    pub fn is_float(self) -> bool {
        matches!(self, Dt::F16 | Dt::Bf16 | Dt::F32)
    }
    /// The name used in kernel signatures (`bool` for `b8`).
    pub fn tensor_name(self) -> &'static str {
        match self {
            Dt::B8 => "bool",
            d => d.name(),
        }
    }
    /// Parses a signature dtype name.
    pub fn from_tensor_name(s: &str) -> Option<Dt> {
        match s {
            "bool" => Some(Dt::B8),
            "b8" => None,
            s => Dt::from_name(s),
        }
    }
    /// Lanes of one 256-byte repeat.
    pub fn lanes(self) -> u64 {
        REPEAT_BYTES / self.size()
    }
}

name_enum! {
    /// Pipes. `all` is only an operand of `sync.barrier`.
    Pipe { S = "s", Mte1 = "mte1", Mte2 = "mte2", Mte3 = "mte3", M = "m", V = "v", Fix = "fix", All = "all" } suffix = false
}

impl Pipe {
    /// The report name of the pipe.
    pub fn report_name(self) -> &'static str {
        match self {
            Pipe::S => "SCALAR",
            Pipe::Mte1 => "MTE1",
            Pipe::Mte2 => "MTE2",
            Pipe::Mte3 => "MTE3",
            Pipe::M => "CUBE",
            Pipe::V => "VECTOR",
            Pipe::Fix => "FIX",
            Pipe::All => "ALL",
        }
    }
    /// Index 0..7 (`All` is 7).
    pub fn index(self) -> usize {
        self as usize
    }
    /// The seven real pipes.
    pub const REAL: [Pipe; 7] = [
        Pipe::S,
        Pipe::Mte1,
        Pipe::Mte2,
        Pipe::Mte3,
        Pipe::M,
        Pipe::V,
        Pipe::Fix,
    ];
}

name_enum! {
    /// Branch and comparison conditions (signed for integers; IEEE for floats).
    Cond { Eq = "eq", Ne = "ne", Lt = "lt", Le = "le", Gt = "gt", Ge = "ge" } suffix = true
}

name_enum! {
    /// Scalar integer ALU operations.
    AluOp {
        Add = "add", Sub = "sub", Mul = "mul", Div = "div", Rem = "rem", Min = "min", Max = "max",
        And = "and", Or = "or", Xor = "xor", Shl = "shl", Shr = "shr", Sra = "sra",
        Slt = "slt", Sle = "sle", Seq = "seq", Sne = "sne", Sltu = "sltu",
    } suffix = true
}

name_enum! {
    /// Scalar f32 operations.
    FOp { Add = "fadd", Sub = "fsub", Mul = "fmul", Div = "fdiv", Max = "fmax", Min = "fmin" } suffix = true
}

name_enum! {
    /// Vector tensor-tensor operations.
    BinOp { Add = "add", Sub = "sub", Mul = "mul", Div = "div", Max = "max", Min = "min" } suffix = true
}

name_enum! {
    /// Vector tensor-scalar operations.
    ScaOp { Adds = "adds", Muls = "muls", Maxs = "maxs", Mins = "mins" } suffix = true
}

name_enum! {
    /// Vector unary operations.
    UnOp { Exp = "exp", Ln = "ln", Sqrt = "sqrt", Rsqrt = "rsqrt", Rec = "rec", Abs = "abs", Relu = "relu" } suffix = true
}

name_enum! {
    /// Per-repeat reductions.
    RRed { Sum = "rsum", Max = "rmax", Min = "rmin" } suffix = true
}

name_enum! {
    /// Per-block reductions.
    BRed { Sum = "bsum", Max = "bmax", Min = "bmin" } suffix = true
}

name_enum! {
    /// Across-repeat reductions.
    ARed { Sum = "asum", Max = "amax", Min = "amin" } suffix = true
}

name_enum! {
    /// Memory reachable by scalar loads and stores.
    ScalarSpace { Gm = "gm", Ub = "ub" } suffix = true
}

name_enum! {
    /// Scalar load/store widths (loads sign-extend `i*`, zero-extend `u*`).
    MemTy { U8 = "u8", I8 = "i8", U16 = "u16", I16 = "i16", U32 = "u32", I32 = "i32", U64 = "u64" } suffix = true
}

impl MemTy {
    /// Width in bytes.
    pub fn size(self) -> u64 {
        match self {
            MemTy::U8 | MemTy::I8 => 1,
            MemTy::U16 | MemTy::I16 => 2,
            MemTy::U32 | MemTy::I32 => 4,
            MemTy::U64 => 8,
        }
    }
}

name_enum! {
    /// System registers readable with `s.sys`.
    SysReg {
        /// This block's index in 0..block_dim.
        BlockIdx = "block_idx",
        /// The launch's block count.
        BlockDim = "block_dim",
        /// Which AIV of the group (0 or 1); 0 on AIC and coupled cores.
        SubBlockIdx = "sub_block_idx",
        /// AIVs per group in this launch (1 or 2); 1 on AIC and coupled cores.
        SubBlockDim = "sub_block_dim",
        /// GM address of the workspace.
        Workspace = "workspace",
        /// Workspace size in bytes.
        WorkspaceSize = "workspace_size",
        /// Physical core index (for diagnostics only; not deterministic work splitting).
        CoreIdx = "core_idx",
    } suffix = false
}

/// A register: `r0`–`r31`, or `zr` (index 32, reads zero, writes are discarded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg(pub u8);

fn parse_reg(s: &str) -> Option<Reg> {
    let s = s.trim();
    if s == "zr" {
        return Some(Reg(ZR));
    }
    let n = s.strip_prefix('r')?;
    if n.is_empty()
        || n.len() > 2
        || !n.bytes().all(|b| b.is_ascii_digit())
        || (n.len() == 2 && n.starts_with('0'))
    {
        return None;
    }
    let v: u8 = n.parse().ok()?;
    (usize::from(v) < NUM_REGS).then_some(Reg(v))
}

fn print_reg(r: Reg, out: &mut String) {
    if r.0 == ZR {
        out.push_str("zr");
    } else {
        let _ = write!(out, "r{}", r.0);
    }
}

impl Field for Reg {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0)
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        let b = r.u8()?;
        if usize::from(b) < NUM_REGS || b == ZR {
            Ok(Reg(b))
        } else {
            Err(format!("invalid register {b}"))
        }
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        print_reg(*self, out)
    }
    fn parse(s: &str, _ctx: &ParseCtx) -> Result<Self, String> {
        parse_reg(s)
            .ok_or_else(|| format!("expected a register (r0-r31 or zr), found `{}`", s.trim()))
    }
}

/// An 8-bit immediate (argument index, event id, cross-core mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct U8(pub u8);

impl Field for U8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0)
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        Ok(U8(r.u8()?))
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        let _ = write!(out, "{}", self.0);
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        let v = crate::asm::eval_int(s, ctx.consts)?;
        u8::try_from(v)
            .map(U8)
            .map_err(|_| format!("{v} does not fit in 0..=255"))
    }
}

/// A 64-bit immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Imm64(pub i64);

impl Field for Imm64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes())
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        Ok(Imm64(r.u64()? as i64))
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        let _ = write!(out, "{}", self.0);
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        crate::asm::eval_int(s, ctx.consts).map(Imm64)
    }
}

/// An f32 literal, stored as its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct F32Imm(pub u32);

fn print_f32(bits: u32, out: &mut String) {
    let f = f32::from_bits(bits);
    if f.is_nan() {
        if bits == f32::NAN.to_bits() {
            out.push_str("nan");
        } else {
            let _ = write!(out, "0x{bits:08x}");
        }
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else {
        let s = format!("{f:?}");
        out.push_str(&s);
    }
}

impl Field for F32Imm {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes())
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        Ok(F32Imm(r.u32()?))
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        print_f32(self.0, out)
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        crate::asm::eval_scalar(s, ctx.consts, true).map(F32Imm)
    }
}

/// A register or a 32-bit immediate (counts, lengths, strides; registers are read at issue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Val {
    /// A register's value.
    Reg(Reg),
    /// A sign-extended immediate.
    Imm(i32),
}

impl Field for Val {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Val::Reg(r) => {
                out.push(0);
                out.extend_from_slice(&u32::from(r.0).to_le_bytes());
            }
            Val::Imm(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        match r.u8()? {
            0 => {
                let v = r.u32()?;
                let b = u8::try_from(v).map_err(|_| format!("invalid register {v}"))?;
                Ok(Val::Reg(Reg::decode(&mut Reader::new(&[b]))?))
            }
            1 => Ok(Val::Imm(r.u32()? as i32)),
            t => Err(format!("invalid value tag {t}")),
        }
    }
    fn print(&self, dt: Option<Dt>, out: &mut String) {
        match self {
            Val::Reg(r) => r.print(dt, out),
            Val::Imm(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        if let Some(r) = parse_reg(s) {
            return Ok(Val::Reg(r));
        }
        let v = crate::asm::eval_int(s, ctx.consts)?;
        i32::try_from(v)
            .map(Val::Imm)
            .map_err(|_| format!("{v} does not fit in 32 bits"))
    }
}

/// A scalar operand of a vector instruction: a register or an immediate holding
/// an f32 (float ops; rounded to the op's dtype) or an i32 (integer ops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scal {
    /// The low 32 bits of a register.
    Reg(Reg),
    /// Immediate bits.
    Imm(u32),
}

impl Field for Scal {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Scal::Reg(r) => {
                out.push(0);
                out.extend_from_slice(&u32::from(r.0).to_le_bytes());
            }
            Scal::Imm(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        match Val::decode(r)? {
            Val::Reg(x) => Ok(Scal::Reg(x)),
            Val::Imm(i) => Ok(Scal::Imm(i as u32)),
        }
    }
    fn print(&self, dt: Option<Dt>, out: &mut String) {
        match self {
            Scal::Reg(r) => r.print(dt, out),
            Scal::Imm(b) => {
                if dt.is_some_and(Dt::is_float) {
                    print_f32(*b, out)
                } else {
                    let _ = write!(out, "{}", *b as i32);
                }
            }
        }
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        if let Some(r) = parse_reg(s) {
            return Ok(Scal::Reg(r));
        }
        crate::asm::eval_scalar(s, ctx.consts, ctx.dt.is_some_and(Dt::is_float)).map(Scal::Imm)
    }
}

/// A memory address: register plus byte offset, `[rN + imm]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Addr {
    /// Base register (`zr` for an absolute address).
    pub base: Reg,
    /// Byte offset.
    pub off: i32,
}

fn print_addr(a: Addr, out: &mut String) {
    out.push('[');
    if a.base.0 == ZR {
        let _ = write!(out, "{}", a.off);
    } else {
        print_reg(a.base, out);
        if a.off > 0 {
            let _ = write!(out, " + {}", a.off);
        } else if a.off < 0 {
            let _ = write!(out, " - {}", i64::from(a.off).abs());
        }
    }
    out.push(']');
}

fn parse_addr_inner(s: &str, ctx: &ParseCtx) -> Result<Addr, String> {
    let s = s.trim();
    // `rN`, `rN + expr`, `rN - expr`, or `expr`.
    let (head, rest) = match s.find(['+', '-']) {
        Some(i) => (s[..i].trim(), Some(&s[i..])),
        None => (s, None),
    };
    if let Some(r) = parse_reg(head) {
        let off = match rest {
            None => 0,
            Some(rest) => crate::asm::eval_int(rest, ctx.consts)?,
        };
        let off =
            i32::try_from(off).map_err(|_| format!("offset {off} does not fit in 32 bits"))?;
        return Ok(Addr { base: r, off });
    }
    let v = crate::asm::eval_int(s, ctx.consts)?;
    let off = i32::try_from(v)
        .map_err(|_| format!("address {v} does not fit in 32 bits; use a register"))?;
    Ok(Addr { base: Reg(ZR), off })
}

fn strip_brackets(s: &str) -> Result<&str, String> {
    let s = s.trim();
    s.strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected a memory operand `[reg + offset]`, found `{s}`"))
}

impl Field for Addr {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.base.0);
        out.extend_from_slice(&self.off.to_le_bytes());
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        let base = Reg::decode(r)?;
        Ok(Addr {
            base,
            off: r.u32()? as i32,
        })
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        print_addr(*self, out)
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        let inner = strip_brackets(s)?;
        if inner.contains(',') {
            return Err("this operand takes no strides".into());
        }
        parse_addr_inner(inner, ctx)
    }
}

/// A vector operand: address plus block stride and repeat stride in 32-byte blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vop {
    /// Start address.
    pub addr: Addr,
    /// Blocks between consecutive blocks of one repeat.
    pub blk: u16,
    /// Blocks between the starts of consecutive repeats.
    pub rep: u16,
}

impl Field for Vop {
    fn encode(&self, out: &mut Vec<u8>) {
        self.addr.encode(out);
        out.extend_from_slice(&self.blk.to_le_bytes());
        out.extend_from_slice(&self.rep.to_le_bytes());
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        let addr = Addr::decode(r)?;
        Ok(Vop {
            addr,
            blk: r.u16()?,
            rep: r.u16()?,
        })
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        print_addr(self.addr, out);
        if (self.blk, self.rep) != (1, 8) {
            out.pop();
            let _ = write!(out, ", {}, {}]", self.blk, self.rep);
        }
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        let inner = strip_brackets(s)?;
        let parts: Vec<&str> = inner.split(',').collect();
        let addr = parse_addr_inner(parts[0], ctx)?;
        let (blk, rep) = match parts.len() {
            1 => (1, 8),
            3 => {
                let b = crate::asm::eval_int(parts[1], ctx.consts)?;
                let r = crate::asm::eval_int(parts[2], ctx.consts)?;
                let b = u16::try_from(b)
                    .map_err(|_| format!("block stride {b} does not fit in 0..=65535"))?;
                let r = u16::try_from(r)
                    .map_err(|_| format!("repeat stride {r} does not fit in 0..=65535"))?;
                (b, r)
            }
            _ => {
                return Err(
                    "a vector operand is `[addr]` or `[addr, block_stride, repeat_stride]`".into(),
                );
            }
        };
        Ok(Vop { addr, blk, rep })
    }
}

/// The lane mask of a vector instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mask {
    /// The first `n` lanes of every repeat.
    Count(Val),
    /// Lane `l` is active when bit `l` of `lo` (l < 64) or `hi` (64 ≤ l < 128) is set.
    Bits(Reg, Reg),
}

impl Field for Mask {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Mask::Count(v) => v.encode(out),
            Mask::Bits(lo, hi) => {
                out.push(2);
                out.extend_from_slice(&[lo.0, hi.0, 0, 0]);
            }
        }
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        let save = r.pos;
        let tag = r.u8()?;
        if tag == 2 {
            let b = r.take(4)?;
            let lo = Reg::decode(&mut Reader::new(&b[0..1]))?;
            let hi = Reg::decode(&mut Reader::new(&b[1..2]))?;
            if b[2] != 0 || b[3] != 0 {
                return Err("invalid mask padding".into());
            }
            return Ok(Mask::Bits(lo, hi));
        }
        r.pos = save;
        Ok(Mask::Count(Val::decode(r)?))
    }
    fn print(&self, dt: Option<Dt>, out: &mut String) {
        match self {
            Mask::Count(v) => v.print(dt, out),
            Mask::Bits(lo, hi) => {
                out.push('{');
                print_reg(*lo, out);
                out.push_str(", ");
                print_reg(*hi, out);
                out.push('}');
            }
        }
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        let t = s.trim();
        if let Some(inner) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let parts: Vec<&str> = inner.split(',').collect();
            if parts.len() != 2 {
                return Err("a bit mask is `{rLo, rHi}`".into());
            }
            let lo = parse_reg(parts[0]).ok_or("a bit mask is `{rLo, rHi}` (registers)")?;
            let hi = parse_reg(parts[1]).ok_or("a bit mask is `{rLo, rHi}` (registers)")?;
            return Ok(Mask::Bits(lo, hi));
        }
        Val::parse(s, ctx).map(Mask::Count)
    }
}

/// A branch target: an instruction index in the same section (a label in assembly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target(pub u32);

impl Field for Target {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes())
    }
    fn decode(r: &mut Reader) -> Result<Self, String> {
        Ok(Target(r.u32()?))
    }
    fn print(&self, _dt: Option<Dt>, out: &mut String) {
        let _ = write!(out, ".L{}", self.0);
    }
    fn as_target(&self) -> Option<u32> {
        Some(self.0)
    }
    fn parse(s: &str, ctx: &ParseCtx) -> Result<Self, String> {
        let s = s.trim();
        if !crate::asm::is_label(s) {
            return Err(format!("expected a label, found `{s}`"));
        }
        match ctx.labels {
            None => Ok(Target(0)),
            Some(labels) => labels
                .get(s)
                .copied()
                .map(Target)
                .ok_or_else(|| format!("unknown label `{s}`")),
        }
    }
}

// ---------------------------------------------------------------------------
// The generated instruction enum and its table.
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
    ($( $(#[$doc:meta])* $name:ident = $mn:literal { $($f:ident : $t:ty),* $(,)? } ; )*) => {
        /// One instruction (see [`for_each_insn!`] for the list and its semantics).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Insn { $( $(#[$doc])* $name { $($f: $t),* }, )* }

        /// Opcodes, in list order (the encoding's first byte).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        #[repr(u8)]
        pub enum Opcode { $($name),* }

        const OPCODES: &[Opcode] = &[$(Opcode::$name),*];

        impl Insn {
            /// The opcode.
            pub fn opcode(&self) -> Opcode {
                match self { $(Insn::$name { .. } => Opcode::$name),* }
            }
            /// The base mnemonic.
            pub fn base(&self) -> &'static str {
                match self { $(Insn::$name { .. } => $mn),* }
            }
            /// Appends the encoding: opcode byte, then each field in order.
            #[allow(unused_variables)]
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $(Insn::$name { $($f),* } => {
                        out.push(Opcode::$name as u8);
                        $( Field::encode($f, out); )*
                    })*
                }
            }
            /// Decodes one instruction.
            pub fn decode(r: &mut Reader) -> Result<Insn, String> {
                let op = r.u8()?;
                let code = OPCODES.get(usize::from(op)).copied().ok_or_else(|| format!("invalid opcode {op}"))?;
                match code {
                    $(Opcode::$name => Ok(Insn::$name { $($f: <$t as Field>::decode(r)?),* }),)*
                }
            }
            /// The first dtype suffix, if any.
            #[allow(unused_variables, unused_mut)]
            pub fn dtype(&self) -> Option<Dt> {
                match self {
                    $(Insn::$name { $($f),* } => {
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
                    $(Insn::$name { $($f),* } => {
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
                    $(Insn::$name { $($f),* } => {
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
                    Ok(Insn::$name { $($f),* })
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

// ---------------------------------------------------------------------------
// Static facts about instructions: the pipe and the validity checks.
// ---------------------------------------------------------------------------

/// A synchronisation instruction, as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SyncOp {
    Set { src: Pipe, dst: Pipe, id: u8 },
    Wait { src: Pipe, dst: Pipe, id: u8 },
    Barrier { pipe: Pipe },
    XSet { pipe: Pipe, mode: u8, id: u8 },
    XWait { pipe: Pipe, id: u8 },
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
    /// Whether the kind exists on an organisation.
    pub fn on(self, org: Organisation) -> bool {
        match org {
            Organisation::Split => matches!(self, CoreKind::Aic | CoreKind::Aiv),
            Organisation::Coupled => matches!(self, CoreKind::Core),
        }
    }
}

impl Insn {
    /// The pipe whose queue executes the instruction (`S` for scalar ones).
    pub fn pipe(&self) -> Pipe {
        match *self {
            Insn::SNop {}
            | Insn::End {}
            | Insn::SLi { .. }
            | Insn::SLif { .. }
            | Insn::SMov { .. }
            | Insn::SSys { .. }
            | Insn::SArg { .. }
            | Insn::SAlu { .. }
            | Insn::SFop { .. }
            | Insn::SItof { .. }
            | Insn::SFtoi { .. }
            | Insn::SLd { .. }
            | Insn::SSt { .. }
            | Insn::SBr { .. }
            | Insn::SJmp { .. } => Pipe::S,
            Insn::SyncSet { src, .. } => src,
            Insn::SyncWait { dst, .. } => dst,
            Insn::SyncBarrier { pipe } => match pipe {
                Pipe::All => Pipe::S,
                p => p,
            },
            Insn::XcoreSet { pipe, .. } | Insn::XcoreWait { pipe, .. } => pipe,
            Insn::Mte2GmUb { .. } | Insn::Mte2GmL1 { .. } | Insn::Mte2Nd2nz { .. } => Pipe::Mte2,
            Insn::Mte3UbGm { .. } | Insn::Mte3UbL1 { .. } | Insn::Mte3Nd2nz { .. } => Pipe::Mte3,
            Insn::Mte1L0a { .. }
            | Insn::Mte1L0aT { .. }
            | Insn::Mte1L0b { .. }
            | Insn::Mte1L0bT { .. } => Pipe::Mte1,
            Insn::CubeMmad { .. } => Pipe::M,
            Insn::FixL0cGm { .. } => Pipe::Fix,
            Insn::VecL0cUb { .. }
            | Insn::VBin { .. }
            | Insn::VSca { .. }
            | Insn::VUn { .. }
            | Insn::VCmp { .. }
            | Insn::VCmps { .. }
            | Insn::VSel { .. }
            | Insn::VCvt { .. }
            | Insn::VRedR { .. }
            | Insn::VRedB { .. }
            | Insn::VRedA { .. }
            | Insn::VDup { .. }
            | Insn::VIota { .. }
            | Insn::VBrcb { .. }
            | Insn::VCopy { .. }
            | Insn::VGather { .. }
            | Insn::VTrans { .. } => Pipe::V,
        }
    }

    /// The synchronisation an instruction performs, if it is one.
    pub fn sync(&self) -> Option<SyncOp> {
        match *self {
            Insn::SyncSet { src, dst, id } => Some(SyncOp::Set { src, dst, id: id.0 }),
            Insn::SyncWait { src, dst, id } => Some(SyncOp::Wait { src, dst, id: id.0 }),
            Insn::SyncBarrier { pipe } => Some(SyncOp::Barrier { pipe }),
            Insn::XcoreSet { pipe, mode, id } => Some(SyncOp::XSet {
                pipe,
                mode: mode.0,
                id: id.0,
            }),
            Insn::XcoreWait { pipe, id } => Some(SyncOp::XWait { pipe, id: id.0 }),
            Insn::SNop {}
            | Insn::End {}
            | Insn::SLi { .. }
            | Insn::SLif { .. }
            | Insn::SMov { .. }
            | Insn::SSys { .. }
            | Insn::SArg { .. }
            | Insn::SAlu { .. }
            | Insn::SFop { .. }
            | Insn::SItof { .. }
            | Insn::SFtoi { .. }
            | Insn::SLd { .. }
            | Insn::SSt { .. }
            | Insn::SBr { .. }
            | Insn::SJmp { .. }
            | Insn::Mte2GmUb { .. }
            | Insn::Mte2GmL1 { .. }
            | Insn::Mte2Nd2nz { .. }
            | Insn::Mte3UbGm { .. }
            | Insn::Mte3UbL1 { .. }
            | Insn::Mte3Nd2nz { .. }
            | Insn::Mte1L0a { .. }
            | Insn::Mte1L0aT { .. }
            | Insn::Mte1L0b { .. }
            | Insn::Mte1L0bT { .. }
            | Insn::CubeMmad { .. }
            | Insn::FixL0cGm { .. }
            | Insn::VecL0cUb { .. }
            | Insn::VBin { .. }
            | Insn::VSca { .. }
            | Insn::VUn { .. }
            | Insn::VCmp { .. }
            | Insn::VCmps { .. }
            | Insn::VSel { .. }
            | Insn::VCvt { .. }
            | Insn::VRedR { .. }
            | Insn::VRedB { .. }
            | Insn::VRedA { .. }
            | Insn::VDup { .. }
            | Insn::VIota { .. }
            | Insn::VBrcb { .. }
            | Insn::VCopy { .. }
            | Insn::VGather { .. }
            | Insn::VTrans { .. } => None,
        }
    }

    /// Checks everything about the instruction that does not depend on register
    /// values: dtypes, pipes and spaces present on `kind`, paths present on the
    /// machine, event ids in range. The assembler and the loader both call it.
    pub fn check(&self, m: &Machine, kind: CoreKind) -> Result<(), String> {
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
        let pipe_ok = |p: Pipe| -> Result<(), String> {
            if p == Pipe::All || !kind.has_pipe(p) {
                Err(format!(
                    "pipe `{}` does not exist on {} cores",
                    p.name(),
                    kind.name().to_uppercase()
                ))
            } else {
                Ok(())
            }
        };
        let need = |ok: bool, what: &str| -> Result<(), String> {
            if ok { Ok(()) } else { Err(what.to_string()) }
        };
        let p = self.pipe();
        if p != Pipe::S {
            pipe_ok(p)?;
        }
        match *self {
            Insn::SNop {}
            | Insn::End {}
            | Insn::SLi { .. }
            | Insn::SLif { .. }
            | Insn::SMov { .. }
            | Insn::SSys { .. }
            | Insn::SArg { .. }
            | Insn::SAlu { .. }
            | Insn::SFop { .. }
            | Insn::SItof { .. }
            | Insn::SFtoi { .. }
            | Insn::SBr { .. }
            | Insn::SJmp { .. } => Ok(()),
            Insn::SLd { sp, .. } | Insn::SSt { sp, .. } => match sp {
                ScalarSpace::Gm => Ok(()),
                ScalarSpace::Ub => need(kind.has_ub(), "an AIC core has no UB"),
            },
            Insn::SyncSet {
                src,
                dst,
                id: U8(id),
            }
            | Insn::SyncWait {
                src,
                dst,
                id: U8(id),
            } => {
                pipe_ok(src)?;
                pipe_ok(dst)?;
                need(
                    src != dst,
                    "an event needs two different pipes (use sync.barrier within a pipe)",
                )?;
                need(
                    u32::from(id) < m.sync.event_ids,
                    &format!("event id {id} is out of range 0..{}", m.sync.event_ids),
                )
            }
            Insn::SyncBarrier { pipe } => {
                if pipe == Pipe::All {
                    Ok(())
                } else if pipe == Pipe::S {
                    Err("`sync.barrier s` is illegal: the scalar unit is already in order (use `sync.barrier all`)".into())
                } else {
                    pipe_ok(pipe)
                }
            }
            Insn::XcoreSet {
                mode: U8(mode),
                id: U8(id),
                ..
            } => {
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
                )?;
                match mode {
                    0 | 2 => Ok(()),
                    1 => need(
                        kind == CoreKind::Aiv,
                        "mode 1 (AIV pair) is only for AIV cores",
                    ),
                    _ => Err(format!("cross-core mode {mode} is not 0, 1 or 2")),
                }
            }
            Insn::XcoreWait { id: U8(id), .. } => {
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
            }
            Insn::Mte2GmUb { .. } | Insn::Mte3UbGm { .. } => {
                need(kind.has_ub(), "this core has no UB")
            }
            Insn::Mte2GmL1 { .. } => Ok(()),
            Insn::Mte2Nd2nz { dt, .. } => need(dt != B8, "nd2nz takes f16, bf16, f32, i8 or i32"),
            Insn::Mte3UbL1 { .. } => need(
                m.dma.ub_to_l1.is_some() && kind == CoreKind::Core,
                "UB → L1 exists only on coupled machines",
            ),
            Insn::Mte3Nd2nz { dt, .. } => {
                need(
                    m.dma.ub_to_l1.is_some() && kind == CoreKind::Core,
                    "UB → L1 exists only on coupled machines",
                )?;
                need(dt != B8, "nd2nz takes f16, bf16, f32, i8 or i32")
            }
            Insn::Mte1L0a { dt, .. }
            | Insn::Mte1L0aT { dt, .. }
            | Insn::Mte1L0b { dt, .. }
            | Insn::Mte1L0bT { dt, .. } => need(
                matches!(dt, F16 | Bf16 | F32 | I8),
                "cube loads take f16, bf16, f32 or i8",
            ),
            Insn::CubeMmad { dt, .. } => {
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
            Insn::FixL0cGm { dt, .. } => {
                need(
                    m.dma.l0c_to_gm.is_some(),
                    "FixPipe exists only on split machines",
                )?;
                need(
                    matches!(dt, F32 | F16 | Bf16 | I32),
                    "FixPipe writes f32, f16, bf16 (from f32) or i32",
                )
            }
            Insn::VecL0cUb { dt, .. } => {
                need(
                    m.dma.l0c_to_ub.is_some() && kind == CoreKind::Core,
                    "L0C → UB exists only on coupled machines",
                )?;
                need(
                    matches!(dt, F32 | F16 | Bf16 | I32),
                    "L0C → UB writes f32, f16, bf16 (from f32) or i32",
                )
            }
            Insn::VBin { dt, .. } => numeric(dt),
            Insn::VSca { dt, .. } => numeric(dt),
            Insn::VUn { op, dt, .. } => match op {
                UnOp::Abs | UnOp::Relu => need(
                    matches!(dt, F16 | Bf16 | F32 | I8 | I32),
                    "abs/relu take a numeric type",
                ),
                UnOp::Exp | UnOp::Ln | UnOp::Sqrt | UnOp::Rsqrt | UnOp::Rec => float(dt),
            },
            Insn::VCmp { cond, dt, .. } | Insn::VCmps { cond, dt, .. } => need(
                dt != B8 || matches!(cond, Cond::Eq | Cond::Ne),
                "b8 compares only with eq and ne",
            ),
            Insn::VSel { .. } | Insn::VCopy { .. } | Insn::VDup { .. } | Insn::VGather { .. } => {
                Ok(())
            }
            Insn::VCvt { to, from, .. } => need(to != from, "cvt needs two different types"),
            Insn::VRedR { dt, .. } | Insn::VRedB { dt, .. } | Insn::VRedA { dt, .. } => need(
                matches!(dt, F16 | Bf16 | F32 | I32),
                "reductions take f16, bf16, f32 or i32",
            ),
            Insn::VIota { dt, .. } => need(matches!(dt, I32 | F32), "iota takes i32 or f32"),
            Insn::VBrcb { dt, .. } => need(
                matches!(dt, F16 | Bf16 | F32 | I32),
                "brcb takes 16- or 32-bit types",
            ),
            Insn::VTrans { dt, .. } => need(matches!(dt, F16 | Bf16), "trans takes 16-bit types"),
        }
    }
}
