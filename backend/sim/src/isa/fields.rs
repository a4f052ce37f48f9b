//! The field types of instructions: registers, immediates, addresses,
//! vector operands, masks, branch targets and the suffix enums (dtypes,
//! conditions, ops), each with its encoding, decoding, text form and parser
//! ([`Field`]). The instruction list in the parent module is made of these.

use super::{NUM_REGS, REPEAT_BYTES, ZR};
use crate::machine::VecCost;
use crate::syntax::{eval_int, eval_scalar};
use std::collections::HashMap;
use std::fmt::Write as _;

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

impl BinOp {
    /// The vector cost class of the op (`vec.<op>`).
    pub fn cost(self) -> VecCost {
        match self {
            BinOp::Div => VecCost::Div,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Max | BinOp::Min => VecCost::Binary,
        }
    }
}

impl UnOp {
    /// The vector cost class of the op (`vec.<op>`).
    pub fn cost(self) -> VecCost {
        match self {
            UnOp::Exp => VecCost::Exp,
            UnOp::Ln => VecCost::Ln,
            UnOp::Sqrt => VecCost::Sqrt,
            UnOp::Rsqrt | UnOp::Rec | UnOp::Abs | UnOp::Relu => VecCost::Unary,
        }
    }
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
        let v = eval_int(s, ctx.consts)?;
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
        eval_int(s, ctx.consts).map(Imm64)
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
            // Its sign and payload, which `nan(0x…)` reads back.
            let _ = write!(out, "nan(0x{bits:08x})");
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
        eval_scalar(s, ctx.consts, true).map(F32Imm)
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
        let v = eval_int(s, ctx.consts)?;
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
        eval_scalar(s, ctx.consts, ctx.dt.is_some_and(Dt::is_float)).map(Scal::Imm)
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
            Some(rest) => eval_int(rest, ctx.consts)?,
        };
        let off =
            i32::try_from(off).map_err(|_| format!("offset {off} does not fit in 32 bits"))?;
        return Ok(Addr { base: r, off });
    }
    let v = eval_int(s, ctx.consts)?;
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
                let b = eval_int(parts[1], ctx.consts)?;
                let r = eval_int(parts[2], ctx.consts)?;
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

/// Whether `s` is a label name: `[A-Za-z_.][A-Za-z0-9_.]*`.
pub fn is_label(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
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
        if !is_label(s) {
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
