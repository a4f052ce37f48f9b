//! The typed instruction builder, generated from the simulator's one
//! instruction list (`tessera_sim::for_each_insn!`), as Cranelift's meta
//! crate generates its `InstBuilder`.
//!
//! Templates build [`Inst`]s: the simulator's instructions before
//! legalisation, whose integer operands may be any immediate ([`Operand`]),
//! whose addresses may be any offset ([`Address`], [`VecOperand`]) and whose
//! branch targets are [`Label`]s. Every instruction has a builder method on
//! [`InstBuilder`] named in the list (`mte2_gm_ub`, `vec_bin`, …), taking its
//! fields in order. [`Inst::legalize`] turns one into a `tessera_sim::Insn`:
//! an immediate wider than the encoding's 32 bits goes through the scratch
//! register [`SCRATCH`] (`s.li r31, imm` before the instruction; registers
//! are read at issue, so this works for every unit), labels resolve to
//! instruction indices, and anything that cannot be encoded is an error —
//! a generator bug, caught when the program is built.

use tessera_sim::isa::{
    ARed, Addr, AluOp, BRed, BinOp, Class, Cond, Dt, F32Imm, FOp, Imm64, Insn, Mask, MemTy, Opcode,
    Pipe, PipeInsn, RRed, Reg, ScaOp, Scal, ScalarInsn, ScalarSpace, SyncInsn, SysReg, Target, U8,
    UnOp, Val, Vop, ZR,
};

/// The register that carries an immediate too wide for its operand (`r31`;
/// templates allocate `r0`–`r30`).
pub const SCRATCH: Reg = Reg(31);

/// An integer operand before legalisation: a register or any immediate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A register's value.
    Reg(Reg),
    /// An immediate (legalised through [`SCRATCH`] when wider than 32 bits).
    Imm(i128),
}

impl From<Reg> for Operand {
    fn from(r: Reg) -> Self {
        Operand::Reg(r)
    }
}

macro_rules! imm_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Operand {
            fn from(v: $t) -> Self {
                Operand::Imm(i128::from(v))
            }
        }
    )*};
}
imm_from!(u64, i64, u32, i32, u8);

/// A memory address before legalisation: a base register plus any offset.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The base register (`zr` for an absolute address).
    pub base: Reg,
    /// Byte offset.
    pub off: i128,
}

impl Address {
    /// `[base + off]`.
    pub fn at(base: Reg, off: u64) -> Address {
        Address {
            base,
            off: i128::from(off),
        }
    }
}

impl From<Reg> for Address {
    fn from(base: Reg) -> Self {
        Address { base, off: 0 }
    }
}

impl From<u64> for Address {
    /// An absolute address (`[imm]`, on-chip buffers).
    fn from(off: u64) -> Self {
        Address {
            base: Reg(ZR),
            off: i128::from(off),
        }
    }
}

/// A vector operand before legalisation: an address with its block and
/// repeat strides (in 32-byte blocks).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VecOperand {
    /// Start address.
    pub addr: Address,
    /// Blocks between consecutive blocks of one repeat.
    pub blk: u64,
    /// Blocks between the starts of consecutive repeats.
    pub rep: u64,
}

impl VecOperand {
    /// `[addr, blk, rep]`.
    pub fn new(addr: impl Into<Address>, blk: u64, rep: u64) -> VecOperand {
        VecOperand {
            addr: addr.into(),
            blk,
            rep,
        }
    }
}

/// A branch target, resolved when the program is laid out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub u32);

/// A mask of the first `n` lanes.
pub fn lanes(n: u64) -> Mask {
    Mask::Count(Val::Imm(i32::try_from(n).unwrap_or(i32::MAX)))
}

/// A vector scalar operand of a float dtype: the f32 bits of `x` (the unit
/// rounds it to the instruction's dtype).
pub fn float_scalar(x: f64) -> Scal {
    Scal::Imm((x as f32).to_bits())
}

/// A vector scalar operand of an integer dtype (two's complement, 32 bits).
pub fn int_scalar(x: i64) -> Scal {
    Scal::Imm(x as u32)
}

/// What legalising one instruction carries: the label resolver and the one
/// wide immediate the instruction may load through [`SCRATCH`].
pub struct Cx<'a> {
    labels: &'a dyn Fn(Label) -> Option<u32>,
    wide: Option<i64>,
}

impl<'a> Cx<'a> {
    /// A context resolving labels with `labels`.
    pub fn new(labels: &'a dyn Fn(Label) -> Option<u32>) -> Cx<'a> {
        Cx { labels, wide: None }
    }

    /// The wide immediate the last legalised instruction needs in
    /// [`SCRATCH`] first, if any (taken).
    pub fn take_wide(&mut self) -> Option<i64> {
        self.wide.take()
    }
}

/// A field type of the instruction list with its pre-legalisation form.
pub trait Legal: Sized {
    /// The form templates build.
    type Pre: Copy + std::fmt::Debug + PartialEq;
    /// The encodable field, or why it cannot be encoded.
    fn legalize(pre: Self::Pre, cx: &mut Cx) -> Result<Self, String>;
}

macro_rules! legal_as_is {
    ($($t:ty),*) => {$(
        impl Legal for $t {
            type Pre = $t;
            fn legalize(pre: $t, _: &mut Cx) -> Result<$t, String> {
                Ok(pre)
            }
        }
    )*};
}
legal_as_is!(
    Reg,
    Dt,
    Pipe,
    Cond,
    AluOp,
    FOp,
    BinOp,
    ScaOp,
    UnOp,
    RRed,
    BRed,
    ARed,
    ScalarSpace,
    MemTy,
    SysReg,
    F32Imm,
    Scal,
    Mask
);

fn fit<T: TryFrom<i128>>(v: i128, what: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{what} {v} does not fit its field"))
}

impl Legal for Val {
    type Pre = Operand;
    fn legalize(pre: Operand, cx: &mut Cx) -> Result<Val, String> {
        match pre {
            Operand::Reg(r) => Ok(Val::Reg(r)),
            Operand::Imm(v) => match i32::try_from(v) {
                Ok(i) => Ok(Val::Imm(i)),
                Err(_) => {
                    if cx.wide.is_some() {
                        return Err("two wide immediates in one instruction".into());
                    }
                    cx.wide = Some(fit(v, "immediate")?);
                    Ok(Val::Reg(SCRATCH))
                }
            },
        }
    }
}

impl Legal for Imm64 {
    type Pre = i128;
    fn legalize(pre: i128, _: &mut Cx) -> Result<Imm64, String> {
        fit(pre, "immediate").map(Imm64)
    }
}

impl Legal for U8 {
    type Pre = u64;
    fn legalize(pre: u64, _: &mut Cx) -> Result<U8, String> {
        fit(i128::from(pre), "8-bit field").map(U8)
    }
}

impl Legal for Addr {
    type Pre = Address;
    fn legalize(pre: Address, _: &mut Cx) -> Result<Addr, String> {
        Ok(Addr {
            base: pre.base,
            off: fit(pre.off, "address offset")?,
        })
    }
}

impl Legal for Vop {
    type Pre = VecOperand;
    fn legalize(pre: VecOperand, cx: &mut Cx) -> Result<Vop, String> {
        Ok(Vop {
            addr: Addr::legalize(pre.addr, cx)?,
            blk: fit(i128::from(pre.blk), "block stride")?,
            rep: fit(i128::from(pre.rep), "repeat stride")?,
        })
    }
}

impl Legal for Target {
    type Pre = Label;
    fn legalize(pre: Label, cx: &mut Cx) -> Result<Target, String> {
        (cx.labels)(pre)
            .map(Target)
            .ok_or_else(|| format!("label {} is not placed", pre.0))
    }
}

macro_rules! define_builder {
    (
        scalar { $( $(#[$sdoc:meta])* $sname:ident = $smn:literal $sb:ident { $($sf:ident : $st:ident),* $(,)? } ; )* }
        sync { $( $(#[$ydoc:meta])* $yname:ident = $ymn:literal $yb:ident { $($yf:ident : $yt:ident),* $(,)? } ; )* }
        pipe { $( $(#[$pdoc:meta])* $pname:ident = $pmn:literal $pb:ident [$($attr:tt)*] { $($pf:ident : $pt:ident),* $(,)? } ; )* }
    ) => {
        /// An instruction before legalisation (see the module docs).
        #[derive(Copy, Clone, Debug, PartialEq)]
        #[allow(missing_docs)]
        pub enum Inst {
            $( $sname { $($sf: <$st as Legal>::Pre),* }, )*
            $( $yname { $($yf: <$yt as Legal>::Pre),* }, )*
            $( $pname { $($pf: <$pt as Legal>::Pre),* }, )*
        }

        impl Inst {
            /// The opcode.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $( Inst::$sname { .. } => Opcode::$sname, )*
                    $( Inst::$yname { .. } => Opcode::$yname, )*
                    $( Inst::$pname { .. } => Opcode::$pname, )*
                }
            }

            /// The encodable instruction; a wide immediate is left in `cx`
            /// for the caller to load into [`SCRATCH`] first.
            #[allow(unused_variables)]
            pub fn legalize(&self, cx: &mut Cx) -> Result<Insn, String> {
                Ok(match *self {
                    $( Inst::$sname { $($sf),* } => Insn::Scalar(ScalarInsn::$sname {
                        $($sf: <$st as Legal>::legalize($sf, cx)?),*
                    }), )*
                    $( Inst::$yname { $($yf),* } => Insn::Sync(SyncInsn::$yname {
                        $($yf: <$yt as Legal>::legalize($yf, cx)?),*
                    }), )*
                    $( Inst::$pname { $($pf),* } => Insn::Pipe(PipeInsn::$pname {
                        $($pf: <$pt as Legal>::legalize($pf, cx)?),*
                    }), )*
                })
            }
        }

        /// Builds instructions: one method per entry of the instruction list,
        /// taking its fields in order; [`InstBuilder::build`] decides where
        /// the instruction goes.
        #[allow(clippy::too_many_arguments)]
        pub trait InstBuilder: Sized {
            /// Places a built instruction.
            fn build(self, inst: Inst);
            $(
                $(#[$sdoc])*
                fn $sb(self, $($sf: impl Into<<$st as Legal>::Pre>),*) {
                    self.build(Inst::$sname { $($sf: $sf.into()),* })
                }
            )*
            $(
                $(#[$ydoc])*
                fn $yb(self, $($yf: impl Into<<$yt as Legal>::Pre>),*) {
                    self.build(Inst::$yname { $($yf: $yf.into()),* })
                }
            )*
            $(
                $(#[$pdoc])*
                fn $pb(self, $($pf: impl Into<<$pt as Legal>::Pre>),*) {
                    self.build(Inst::$pname { $($pf: $pf.into()),* })
                }
            )*
        }
    };
}

tessera_sim::for_each_insn!(define_builder);

impl Inst {
    /// The pipe whose queue executes the instruction.
    pub fn pipe(&self) -> Pipe {
        match self.opcode().class() {
            Class::Scalar => Pipe::S,
            Class::Pipe(p) => p,
            // Synchronisation fields (pipes, ids) need no labels.
            Class::Sync => self
                .legalize(&mut Cx::new(&|_| Some(0)))
                .map_or(Pipe::S, |i| i.pipe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect<'a>(&'a mut Vec<Inst>);

    impl InstBuilder for Collect<'_> {
        fn build(self, inst: Inst) {
            self.0.push(inst);
        }
    }

    #[test]
    fn wide_immediates_go_through_the_scratch_register() {
        let mut v = Vec::new();
        Collect(&mut v).s_alu(AluOp::Add, Reg(3), Reg(3), 2_147_483_648u64);
        Collect(&mut v).s_alu(AluOp::Add, Reg(3), Reg(3), 2_147_483_647u64);
        Collect(&mut v).s_br(Cond::Ge, Reg(2), -4_294_967_296i64, Label(0));
        let labels = |l: Label| Some(l.0 + 7);
        let mut cx = Cx::new(&labels);
        let texts: Vec<(String, Option<i64>)> = v
            .iter()
            .map(|i| {
                let insn = i.legalize(&mut cx).unwrap();
                (insn.text(), cx.take_wide())
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                ("s.add r3, r3, r31".to_string(), Some(2_147_483_648)),
                ("s.add r3, r3, 2147483647".to_string(), None),
                ("s.br.ge r2, r31, .L7".to_string(), Some(-4_294_967_296)),
            ]
        );
        // Two in one instruction cannot share the register.
        let mut v = Vec::new();
        Collect(&mut v).mte2_gm_ub(0u64, Reg(1), 1u64 << 33, 1u64 << 34, 0u64, 0u64);
        assert!(v[0].legalize(&mut Cx::new(&labels)).is_err());
        // Fields that cannot take a register refuse what does not fit.
        let mut v = Vec::new();
        Collect(&mut v).s_arg(Reg(0), 300u64);
        assert!(v[0].legalize(&mut Cx::new(&labels)).is_err());
    }

    #[test]
    fn pipes_come_from_the_list() {
        let mut v = Vec::new();
        Collect(&mut v).sync_set(Pipe::Mte2, Pipe::V, 0u64);
        Collect(&mut v).cube_mmad(Dt::F16, 0u64, 0u64, 0u64, Reg(1), Reg(2), Reg(3), 1u64);
        Collect(&mut v).s_mov(Reg(1), Reg(2));
        let pipes: Vec<Pipe> = v.iter().map(Inst::pipe).collect();
        assert_eq!(pipes, vec![Pipe::Mte2, Pipe::M, Pipe::S]);
    }
}
