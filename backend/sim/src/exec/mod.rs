//! Functional semantics of pipe instructions, one file per unit.
//!
//! [`execute`] takes one queued instruction (with the register values captured
//! when the scalar unit issued it), checks every operand value, address,
//! alignment and capacity, computes the pipe cost class and the memory
//! footprint, and — in functional mode — performs the data effect. It never
//! panics: every violation is a [`Trap`]. The timing engine decides *when*
//! the effect happens (at the instruction's start) and what it costs.

pub mod cube;
pub mod mte;
pub mod numeric;
pub mod scalar;
pub mod vector;

use crate::fault::{FaultKind, Space, Trap};
use crate::isa::{Addr, Cost, Mask, PipeInsn, Reg, Scal, Val, ZR};
use crate::machine::{Machine, PathId};

/// Register file snapshot: `r0`–`r31` and `zr` (index 32, always 0).
pub type Regs = [u64; 33];

/// First GM address; regions (arguments, then the workspace) follow, 4 KiB aligned.
pub const GM_BASE: u64 = 0x1000_0000;

/// A 2-D byte pattern: `n` runs of `len` bytes, `stride` apart, from `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pat {
    /// First byte.
    pub addr: u64,
    /// Number of runs.
    pub n: u64,
    /// Bytes per run.
    pub len: u64,
    /// Bytes between run starts.
    pub stride: u64,
}

impl Pat {
    /// A single contiguous run.
    pub fn run(addr: u64, len: u64) -> Pat {
        Pat {
            addr,
            n: 1,
            len,
            stride: len,
        }
    }
    /// Whether it touches no byte.
    pub fn is_empty(&self) -> bool {
        self.n == 0 || self.len == 0
    }
    /// One past the last byte (saturating).
    pub fn hi(&self) -> u64 {
        if self.is_empty() {
            return self.addr;
        }
        self.addr
            .saturating_add((self.n - 1).saturating_mul(self.stride))
            .saturating_add(self.len)
    }
    /// One past the last byte, exactly (no saturation: a fault message
    /// names the range the instruction asked for).
    pub fn end(&self) -> u128 {
        if self.is_empty() {
            return u128::from(self.addr);
        }
        u128::from(self.addr)
            + u128::from(self.n - 1) * u128::from(self.stride)
            + u128::from(self.len)
    }
    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.n.saturating_mul(self.len)
    }
}

/// One memory access of an instruction (for the race detector).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Space.
    pub space: Space,
    /// Bytes.
    pub pat: Pat,
    /// Write (else read).
    pub write: bool,
}

/// A GM transfer for the bandwidth model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GmXfer {
    /// The GM side's bursts.
    pub pat: Pat,
    /// Path (rate cap and fixed cost).
    pub path: PathId,
}

/// What executing an instruction costs and touches.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Pipe cycles (vector instructions: without the head, which the engine adds).
    pub busy: u64,
    /// Cycles after `busy` until the result is visible.
    pub tail: u64,
    /// A vector-unit computation (eligible for the head cost).
    pub vector: bool,
    /// The GM side of a GM transfer (its time comes from the bandwidth model).
    pub gm: Option<GmXfer>,
    /// Path and bytes moved, for the report.
    pub moved: Option<(PathId, u64)>,
    /// Cube FLOPs (2 per MAC).
    pub cube_flops: u64,
    /// Vector FLOPs (one per active lane and operation).
    pub vec_flops: u64,
    /// Memory footprint (only when asked for).
    pub access: Vec<Access>,
}

/// One GM region (an argument or the workspace).
#[derive(Clone, Debug)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Name, for messages.
    pub name: String,
}

/// Global memory.
#[derive(Clone, Debug, Default)]
pub struct GmMem {
    /// Regions in address order.
    pub regions: Vec<Region>,
    /// Bytes from [`GM_BASE`] (None in timing-only mode).
    pub data: Option<Vec<u8>>,
}

impl GmMem {
    /// Checks that every byte of `pat` lies inside one region.
    pub fn check(&self, pat: &Pat) -> Result<(), Trap> {
        if pat.is_empty() {
            return Ok(());
        }
        let lo = pat.addr;
        let hi = pat.hi();
        let idx = self.regions.partition_point(|r| r.end <= lo);
        match self.regions.get(idx) {
            Some(r) if r.start <= lo && hi <= r.end => Ok(()),
            Some(r) if r.start <= lo => Err(Trap::at(
                FaultKind::OutOfBounds,
                Space::Gm,
                r.end,
                format!(
                    "GM access [{lo:#x}, {:#x}) runs past the end of `{}` [{:#x}, {:#x})",
                    pat.end(),
                    r.name,
                    r.start,
                    r.end
                ),
            )),
            _ => Err(Trap::at(
                FaultKind::OutOfBounds,
                Space::Gm,
                lo,
                format!(
                    "GM access [{lo:#x}, {:#x}) is outside every tensor and the workspace",
                    pat.end()
                ),
            )),
        }
    }
    /// Offset into `data` of an address (after [`GmMem::check`]).
    pub fn off(&self, addr: u64) -> usize {
        (addr - GM_BASE) as usize
    }
}

/// The local buffers of one core (allocated on first use in functional mode).
#[derive(Clone, Debug, Default)]
pub struct LocalMem {
    /// L1.
    pub l1: Vec<u8>,
    /// L0A.
    pub l0a: Vec<u8>,
    /// L0B.
    pub l0b: Vec<u8>,
    /// L0C.
    pub l0c: Vec<u8>,
    /// UB.
    pub ub: Vec<u8>,
}

impl LocalMem {
    /// A buffer, zero-filled to its capacity on first use.
    pub fn buf(&mut self, s: Space, m: &Machine) -> &mut Vec<u8> {
        let (v, cap) = match s {
            Space::L1 | Space::Gm => (&mut self.l1, m.memory.l1.bytes),
            Space::L0a => (&mut self.l0a, m.memory.l0a.bytes),
            Space::L0b => (&mut self.l0b, m.memory.l0b.bytes),
            Space::L0c => (&mut self.l0c, m.memory.l0c.bytes),
            Space::Ub => (&mut self.ub, m.memory.ub.bytes),
        };
        if v.is_empty() {
            v.resize(cap as usize, 0);
        }
        v
    }
    /// Takes a buffer out (allocated), to be given back with [`LocalMem::put`]; lets an
    /// instruction read one buffer while writing another.
    pub fn take(&mut self, s: Space, m: &Machine) -> Vec<u8> {
        std::mem::take(self.buf(s, m))
    }
    /// Gives back a buffer taken with [`LocalMem::take`].
    pub fn put(&mut self, s: Space, v: Vec<u8>) {
        match s {
            Space::L1 | Space::Gm => self.l1 = v,
            Space::L0a => self.l0a = v,
            Space::L0b => self.l0b = v,
            Space::L0c => self.l0c = v,
            Space::Ub => self.ub = v,
        }
    }
    /// Clears every buffer (a new block starts).
    pub fn reset(&mut self) {
        for v in [
            &mut self.l1,
            &mut self.l0a,
            &mut self.l0b,
            &mut self.l0c,
            &mut self.ub,
        ] {
            v.iter_mut().for_each(|b| *b = 0);
        }
    }
}

/// Everything an instruction may touch.
pub struct Env<'a> {
    /// The machine.
    pub m: &'a Machine,
    /// Registers captured at issue.
    pub regs: &'a Regs,
    /// This core's buffers.
    pub local: &'a mut LocalMem,
    /// Global memory.
    pub gm: &'a mut GmMem,
    /// Perform data effects.
    pub functional: bool,
    /// Record the footprint in [`Outcome::access`].
    pub footprint: bool,
}

impl Env<'_> {
    /// A register's value.
    pub fn reg(&self, r: Reg) -> u64 {
        if r.0 == ZR {
            0
        } else {
            self.regs[usize::from(r.0)]
        }
    }
    /// An address operand.
    pub fn addr(&self, a: Addr) -> u64 {
        self.reg(a.base).wrapping_add(a.off as i64 as u64)
    }
    /// A count operand that must be in `0..=max`.
    pub fn count(&self, v: Val, what: &str, max: u64) -> Result<u64, Trap> {
        let x = match v {
            Val::Reg(r) => self.reg(r) as i64,
            Val::Imm(i) => i64::from(i),
        };
        if x < 0 || x as u64 > max {
            return Err(Trap::new(
                FaultKind::Illegal,
                format!("{what} = {x} is outside 0..={max}"),
            ));
        }
        Ok(x as u64)
    }
    /// The 32 bits of a scalar operand.
    pub fn scal(&self, s: Scal) -> u32 {
        match s {
            Scal::Reg(r) => self.reg(r) as u32,
            Scal::Imm(b) => b,
        }
    }
    /// The active lanes of a mask, as a 256-bit set, checked against `lanes`.
    pub fn mask(&self, m: Mask, lanes: u64) -> Result<[u64; 4], Trap> {
        match m {
            Mask::Count(v) => {
                let n = self.count(v, "mask", lanes)?;
                let mut bits = [0u64; 4];
                for (w, word) in bits.iter_mut().enumerate() {
                    let lo = w as u64 * 64;
                    *word = if n >= lo + 64 {
                        u64::MAX
                    } else if n > lo {
                        (1u64 << (n - lo)) - 1
                    } else {
                        0
                    };
                }
                Ok(bits)
            }
            Mask::Bits(lo, hi) => {
                if lanes > 128 {
                    return Err(Trap::new(
                        FaultKind::Illegal,
                        format!("a bit mask covers 128 lanes; this instruction has {lanes}"),
                    ));
                }
                let mut bits = [self.reg(lo), self.reg(hi), 0, 0];
                if lanes < 128 {
                    bits[1] &= if lanes <= 64 {
                        0
                    } else {
                        (1u64 << (lanes - 64)) - 1
                    };
                }
                if lanes < 64 {
                    bits[0] &= (1u64 << lanes) - 1;
                }
                Ok(bits)
            }
        }
    }
    /// Checks a local-buffer pattern against alignment and capacity.
    pub fn check_local(&self, space: Space, pat: &Pat) -> Result<(), Trap> {
        if pat.is_empty() {
            return Ok(());
        }
        let s = match space {
            Space::L1 => self.m.memory.l1,
            Space::L0a => self.m.memory.l0a,
            Space::L0b => self.m.memory.l0b,
            Space::L0c => self.m.memory.l0c,
            Space::Ub => self.m.memory.ub,
            Space::Gm => return self.gm.check(pat),
        };
        if !pat.addr.is_multiple_of(s.align) {
            return Err(Trap::at(
                FaultKind::Misaligned,
                space,
                pat.addr,
                format!(
                    "{} address {:#x} is not a multiple of {} bytes",
                    space.name(),
                    pat.addr,
                    s.align
                ),
            ));
        }
        let hi = pat.hi();
        if hi > s.bytes || pat.addr >= s.bytes {
            return Err(Trap::at(
                FaultKind::Capacity,
                space,
                pat.addr.max(s.bytes.min(hi)),
                format!(
                    "{} access [{:#x}, {:#x}) exceeds the {}-byte {}",
                    space.name(),
                    pat.addr,
                    pat.end(),
                    s.bytes,
                    space.name().to_uppercase()
                ),
            ));
        }
        Ok(())
    }
    /// Checks a pattern in any space.
    pub fn check(&self, space: Space, pat: &Pat) -> Result<(), Trap> {
        self.check_local(space, pat)
    }
}

/// Adds an access to the outcome's footprint (when recording).
pub fn note(env: &Env, out: &mut Outcome, space: Space, pat: Pat, write: bool) {
    if env.footprint && !pat.is_empty() {
        out.access.push(Access { space, pat, write });
    }
}

/// Executes one pipe instruction. Its data path (and so its memory spaces)
/// and its cost class come from the instruction list ([`PipeInsn::cost`]).
pub fn execute(insn: &PipeInsn, env: &mut Env) -> Result<Outcome, Trap> {
    use mte::L0;
    let m = env.m;
    let (path, class) = match insn.cost() {
        Cost::Dma(p) => (Some(p), None),
        Cost::Vector(c) => (None, Some(c)),
        Cost::Cube => (None, None),
    };
    let dma = || path.ok_or_else(|| Trap::new(FaultKind::Illegal, "not a data movement"));
    let vcost = || {
        class
            .map(|c| m.vector.ops.get(c))
            .ok_or_else(|| Trap::new(FaultKind::Illegal, "not a vector instruction"))
    };
    match *insn {
        PipeInsn::Mte2GmUb {
            dst,
            src,
            n,
            len,
            src_stride,
            dst_stride,
        }
        | PipeInsn::Mte2GmL1 {
            dst,
            src,
            n,
            len,
            src_stride,
            dst_stride,
        }
        | PipeInsn::Mte3UbGm {
            dst,
            src,
            n,
            len,
            src_stride,
            dst_stride,
        }
        | PipeInsn::Mte3UbL1 {
            dst,
            src,
            n,
            len,
            src_stride,
            dst_stride,
        } => copy(env, dma()?, dst, src, n, len, src_stride, dst_stride),
        PipeInsn::Mte2Nd2nz {
            dt,
            dst,
            src,
            rows,
            cols,
            src_stride,
            dst_rows,
        }
        | PipeInsn::Mte3Nd2nz {
            dt,
            dst,
            src,
            rows,
            cols,
            src_stride,
            dst_rows,
        } => nd2nz(env, dma()?, dt, dst, src, rows, cols, src_stride, dst_rows),
        PipeInsn::Mte1L0a {
            dt,
            dst,
            src,
            m1: d1,
            k1: d2,
            src_stride,
        }
        | PipeInsn::Mte1L0aT {
            dt,
            dst,
            src,
            m1: d1,
            k1: d2,
            src_stride,
        }
        | PipeInsn::Mte1L0b {
            dt,
            dst,
            src,
            k1: d1,
            n1: d2,
            src_stride,
        }
        | PipeInsn::Mte1L0bT {
            dt,
            dst,
            src,
            k1: d1,
            n1: d2,
            src_stride,
        } => {
            let which = if dma()? == PathId::L1ToL0a {
                L0::A
            } else {
                L0::B
            };
            let t = matches!(insn, PipeInsn::Mte1L0aT { .. } | PipeInsn::Mte1L0bT { .. });
            load(env, which, t, dt, dst, src, d1, d2, src_stride)
        }
        PipeInsn::CubeMmad {
            dt,
            dst,
            a,
            b,
            m,
            k,
            n,
            init,
        } => {
            let (m, k, n) = (
                env.count(m, "m", cube::MAX_MKN)?,
                env.count(k, "k", cube::MAX_MKN)?,
                env.count(n, "n", cube::MAX_MKN)?,
            );
            let init = env.count(init, "init", u64::MAX >> 1)? != 0;
            let (c, a, b) = (env.addr(dst), env.addr(a), env.addr(b));
            cube::mmad(env, dt, c, a, b, m, k, n, init)
        }
        PipeInsn::FixL0cGm {
            dt,
            dst,
            src,
            m,
            n,
            src_rows,
            dst_stride,
            relu,
        }
        | PipeInsn::VecL0cUb {
            dt,
            dst,
            src,
            m,
            n,
            src_rows,
            dst_stride,
            relu,
        } => {
            let (_, to) = dma()?.spaces();
            l0c_out(env, to, dt, dst, src, m, n, src_rows, dst_stride, relu)
        }
        PipeInsn::VBin {
            op,
            dt,
            dst,
            a,
            b,
            rep,
            mask,
        } => vector::bin(env, vcost()?, op, dt, dst, a, b, rep, mask),
        PipeInsn::VSca {
            op,
            dt,
            dst,
            a,
            s,
            rep,
            mask,
        } => {
            let s = env.scal(s);
            vector::sca(env, vcost()?, op, dt, dst, a, s, rep, mask)
        }
        PipeInsn::VUn {
            op,
            dt,
            dst,
            a,
            rep,
            mask,
        } => vector::un(env, vcost()?, op, dt, dst, a, rep, mask),
        PipeInsn::VCmp {
            cond,
            dt,
            dst,
            a,
            b,
            rep,
            mask,
        } => vector::cmp(env, vcost()?, cond, dt, dst, a, Some(b), 0, rep, mask),
        PipeInsn::VCmps {
            cond,
            dt,
            dst,
            a,
            s,
            rep,
            mask,
        } => {
            let s = env.scal(s);
            vector::cmp(env, vcost()?, cond, dt, dst, a, None, s, rep, mask)
        }
        PipeInsn::VSel {
            dt,
            dst,
            c,
            a,
            b,
            rep,
            mask,
        } => vector::sel(env, vcost()?, dt, dst, c, a, b, rep, mask),
        PipeInsn::VCvt {
            to,
            from,
            dst,
            a,
            rep,
            mask,
        } => vector::cvt(env, vcost()?, to, from, dst, a, rep, mask),
        PipeInsn::VRedR {
            op,
            dt,
            dst,
            a,
            rep,
            mask,
        } => {
            let d = env.addr(dst);
            vector::red_r(env, vcost()?, op, dt, d, a, rep, mask)
        }
        PipeInsn::VRedB {
            op,
            dt,
            dst,
            a,
            rep,
            mask,
        } => {
            let d = env.addr(dst);
            vector::red_b(env, vcost()?, op, dt, d, a, rep, mask)
        }
        PipeInsn::VRedA {
            op,
            dt,
            dst,
            a,
            rep,
            mask,
        } => vector::red_a(env, vcost()?, op, dt, dst, a, rep, mask),
        PipeInsn::VDup {
            dt,
            dst,
            s,
            rep,
            mask,
        } => {
            let s = env.scal(s);
            vector::dup(env, vcost()?, dt, dst, s, rep, mask, false)
        }
        PipeInsn::VIota {
            dt,
            dst,
            s,
            rep,
            mask,
        } => {
            let s = env.scal(s);
            vector::dup(env, vcost()?, dt, dst, s, rep, mask, true)
        }
        PipeInsn::VBrcb { dt, dst, src, rep } => {
            let s = env.addr(src);
            vector::brcb(env, vcost()?, dt, dst, s, rep)
        }
        PipeInsn::VCopy {
            dt,
            dst,
            a,
            rep,
            mask,
        } => vector::copy(env, vcost()?, dt, dst, a, rep, mask),
        PipeInsn::VGather {
            dt,
            dst,
            src,
            idx,
            rep,
            mask,
        } => {
            let s = env.addr(src);
            vector::gather(env, vcost()?, dt, dst, s, idx, rep, mask)
        }
        PipeInsn::VTrans { dt, dst, src, rep } => {
            let (d, s) = (env.addr(dst), env.addr(src));
            vector::trans(env, vcost()?, dt, d, s, rep)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn copy(
    env: &mut Env,
    path: PathId,
    dst: Addr,
    src: Addr,
    n: Val,
    len: Val,
    sst: Val,
    dst_stride: Val,
) -> Result<Outcome, Trap> {
    let n = env.count(n, "burst count", mte::MAX_BURSTS)?;
    let len = env.count(len, "burst length", mte::MAX_BURST_LEN)?;
    let sst = env.count(sst, "source stride", mte::MAX_STRIDE)?;
    let dst_stride = env.count(dst_stride, "destination stride", mte::MAX_STRIDE)?;
    let (d, s) = (env.addr(dst), env.addr(src));
    let (ss, ds) = path.spaces();
    mte::copy(env, path, ds, d, ss, s, n, len, sst, dst_stride)
}

#[allow(clippy::too_many_arguments)]
fn nd2nz(
    env: &mut Env,
    path: PathId,
    dt: crate::isa::Dt,
    dst: Addr,
    src: Addr,
    rows: Val,
    cols: Val,
    sst: Val,
    dst_rows: Val,
) -> Result<Outcome, Trap> {
    let rows = env.count(rows, "rows", mte::MAX_TILE_DIM)?;
    let cols = env.count(cols, "cols", mte::MAX_TILE_DIM)?;
    let sst = env.count(sst, "source row stride", mte::MAX_STRIDE)?;
    let dst_rows = env.count(dst_rows, "dst_rows", mte::MAX_TILE_DIM + 16)?;
    let (d, s) = (env.addr(dst), env.addr(src));
    let (ss, _) = path.spaces();
    mte::nd2nz(env, path, ss, dt, d, s, rows, cols, sst, dst_rows)
}

#[allow(clippy::too_many_arguments)]
fn load(
    env: &mut Env,
    which: mte::L0,
    t: bool,
    dt: crate::isa::Dt,
    dst: Addr,
    src: Addr,
    d1: Val,
    d2: Val,
    stride: Val,
) -> Result<Outcome, Trap> {
    let d1 = mte::fractals(env, d1, "fractal count")?;
    let d2 = mte::fractals(env, d2, "fractal count")?;
    let stride = env.count(stride, "column-block stride", mte::MAX_STRIDE)?;
    let (d, s) = (env.addr(dst), env.addr(src));
    mte::load_l0(env, which, t, dt, d, s, d1, d2, stride)
}

#[allow(clippy::too_many_arguments)]
fn l0c_out(
    env: &mut Env,
    space: Space,
    dt: crate::isa::Dt,
    dst: Addr,
    src: Addr,
    m: Val,
    n: Val,
    rows: Val,
    stride: Val,
    relu: Val,
) -> Result<Outcome, Trap> {
    let m = env.count(m, "m", mte::MAX_TILE_DIM)?;
    let n = env.count(n, "n", mte::MAX_TILE_DIM)?;
    let rows = env.count(rows, "src_rows", mte::MAX_TILE_DIM + 16)?;
    let stride = env.count(stride, "destination row stride", mte::MAX_STRIDE)?;
    let relu = env.count(relu, "relu", u64::MAX >> 1)? != 0;
    let (d, s) = (env.addr(dst), env.addr(src));
    cube::l0c_out(env, space, dt, d, s, m, n, rows, stride, relu)
}
