//! The scalar unit: it executes scalar instructions in program order
//! (`scalar.insn_cycles` each, loads and stores at their own cost) and issues
//! every other instruction into its pipe's queue, stalling on a full queue;
//! synchronisation instructions that queue on the scalar unit itself run in
//! `sync.rs`.

use super::{Engine, MAX_SPIN, QEntry, SState, Wait};
use crate::exec;
use crate::fault::{FaultKind, Space, Trap};
use crate::isa::{CoreKind, Insn, Pipe, ScalarInsn, U8, ZR};
use crate::program::Launch;
use crate::race::Who;

impl<'a> Engine<'a> {
    pub(super) fn reg(&self, c: usize, r: crate::isa::Reg) -> u64 {
        if r.0 == ZR {
            0
        } else {
            self.cores[c].regs[usize::from(r.0)]
        }
    }

    pub(super) fn set_reg(&mut self, c: usize, r: crate::isa::Reg, v: u64) {
        if r.0 != ZR {
            self.cores[c].regs[usize::from(r.0)] = v;
        }
    }

    pub(super) fn val(&self, c: usize, v: crate::isa::Val) -> u64 {
        match v {
            crate::isa::Val::Reg(r) => self.reg(c, r),
            crate::isa::Val::Imm(i) => i64::from(i) as u64,
        }
    }

    pub(super) fn agent(&self, c: usize, p: Pipe) -> u8 {
        self.cores[c].agent_base + p.index() as u8
    }

    pub(super) fn run_scalar(&mut self, c: usize, t: u64) {
        {
            let core = &mut self.cores[c];
            if matches!(core.s_state, SState::Ended | SState::Idle) {
                return;
            }
            core.s_time = core.s_time.max(t);
            core.s_state = SState::Run;
        }
        let ic = u64::from(self.m.scalar.insn_cycles);
        let launch: &'a Launch = self.l;
        let code = &launch.sections[self.cores[c].section].insns;
        let mut budget = 100_000u32;
        loop {
            if self.fault.is_some() {
                return;
            }
            let now = self.cores[c].s_time;
            if now > self.limit {
                let pc = self.cores[c].pc as u32;
                let trap = self.limit_trap();
                self.raise(c, Pipe::S, Some(pc), now, trap);
                return;
            }
            if !self.step() {
                let pc = self.cores[c].pc as u32;
                let trap = self.step_trap();
                self.raise(c, Pipe::S, Some(pc), now, trap);
                return;
            }
            if let Some(next) = self.heap.peek_time()
                && (now > next || budget == 0)
            {
                self.sched_scalar(c, now);
                return;
            }
            budget = budget.saturating_sub(1);
            let pc = self.cores[c].pc;
            let Some(&insn) = code.get(pc) else {
                self.raise(
                    c,
                    Pipe::S,
                    Some(pc as u32),
                    now,
                    Trap::new(FaultKind::Illegal, "the program counter left the section"),
                );
                return;
            };
            let mut cost = ic;
            let mut next_pc = pc + 1;
            let core_kind = self.cores[c].kind;
            let sync_cost = u64::from(self.m.sync.sync_cycles).max(1);
            if insn.pipe() != Pipe::S {
                // An instruction for another pipe: issue it.
                self.cores[c].spin = 0;
                let p = insn.pipe();
                let depth = self.m.sync.queue_depth as usize;
                let core = &mut self.cores[c];
                let ps = &mut core.pipes[p.index()];
                if ps.q.len() >= depth {
                    core.s_state = SState::Wait(Wait::Queue(p));
                    return;
                }
                let mut know = core.s_know;
                know.c[usize::from(core.agent_base)] = core.s_count;
                ps.q.push_back(QEntry {
                    pc: pc as u32,
                    regs: core.regs,
                    arrive: now + ic,
                    know,
                });
                let at = (now + ic).max(ps.free_at);
                if ps.inflight.is_none() {
                    self.sched_pipe(c, p, at);
                }
            } else {
                match insn {
                    Insn::Sync(s) => {
                        self.cores[c].spin = 0;
                        if !self.scalar_sync(c, s, pc, now) {
                            return;
                        }
                        cost = sync_cost;
                    }
                    Insn::Scalar(s) => {
                        self.m_out.insns += 1;
                        self.cores[c].spin += 1;
                        if self.cores[c].spin > MAX_SPIN {
                            let trap = self.spin_trap();
                            self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                            return;
                        }
                        match s {
                            ScalarInsn::SNop {} => {}
                            ScalarInsn::End {} => {
                                let core = &mut self.cores[c];
                                core.s_state = SState::Ended;
                                core.s_busy += ic;
                                core.s_time = now + ic;
                                self.drained(c, now + ic);
                                return;
                            }
                            ScalarInsn::SLi { rd, imm } => self.set_reg(c, rd, imm.0 as u64),
                            ScalarInsn::SLif { rd, imm } => self.set_reg(c, rd, u64::from(imm.0)),
                            ScalarInsn::SMov { rd, ra } => {
                                let v = self.reg(c, ra);
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SSys { rd, sr } => {
                                use crate::isa::SysReg;
                                let core = &self.cores[c];
                                let v = match sr {
                                    SysReg::BlockIdx => u64::from(core.block),
                                    SysReg::BlockDim => u64::from(self.l.block_dim),
                                    SysReg::SubBlockIdx => {
                                        u64::from(if core_kind == CoreKind::Aiv {
                                            core.sub
                                        } else {
                                            0
                                        })
                                    }
                                    SysReg::SubBlockDim => {
                                        u64::from(if core_kind == CoreKind::Aiv && self.mix {
                                            self.m.aiv_per_core()
                                        } else {
                                            1
                                        })
                                    }
                                    SysReg::Workspace => {
                                        self.gm.regions.last().map_or(0, |r| r.start)
                                    }
                                    SysReg::WorkspaceSize => self.p.workspace,
                                    SysReg::CoreIdx => u64::from(core.index),
                                };
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SArg { rd, idx: U8(i) } => {
                                let n = self.p.params.len() + self.p.results.len();
                                if usize::from(i) >= n {
                                    self.raise(
                                        c,
                                        Pipe::S,
                                        Some(pc as u32),
                                        now,
                                        Trap::new(
                                            FaultKind::Illegal,
                                            format!(
                                                "argument {i} does not exist (the kernel has {n})"
                                            ),
                                        ),
                                    );
                                    return;
                                }
                                let v = self.gm.regions[usize::from(i)].start;
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SAlu { op, rd, ra, b } => {
                                let (x, y) = (self.reg(c, ra), self.val(c, b));
                                match exec::scalar::alu(op, x, y) {
                                    Ok(v) => self.set_reg(c, rd, v),
                                    Err(trap) => {
                                        self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                                        return;
                                    }
                                }
                            }
                            ScalarInsn::SFop { op, rd, ra, rb } => {
                                let v = exec::scalar::fop(op, self.reg(c, ra), self.reg(c, rb));
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SItof { rd, ra } => {
                                let v = u64::from((self.reg(c, ra) as i64 as f32).to_bits());
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SFtoi { rd, ra } => {
                                let v = f32::from_bits(self.reg(c, ra) as u32) as i64 as u64;
                                self.set_reg(c, rd, v)
                            }
                            ScalarInsn::SLd { sp, ty, rd, addr }
                            | ScalarInsn::SSt {
                                sp,
                                ty,
                                rs: rd,
                                addr,
                            } => {
                                let store = matches!(s, ScalarInsn::SSt { .. });
                                let a = self.reg(c, addr.base).wrapping_add(addr.off as i64 as u64);
                                match self.scalar_mem(c, pc as u32, sp, ty, a, store, rd) {
                                    Ok(cyc) => cost = cyc,
                                    Err(trap) => {
                                        self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                                        return;
                                    }
                                }
                            }
                            ScalarInsn::SBr {
                                cond,
                                ra,
                                b,
                                target,
                            } => {
                                if exec::scalar::cond(cond, self.reg(c, ra), self.val(c, b)) {
                                    next_pc = target.0 as usize;
                                }
                            }
                            ScalarInsn::SJmp { target } => next_pc = target.0 as usize,
                        }
                    }
                    Insn::Pipe(_) => {
                        self.raise(
                            c,
                            Pipe::S,
                            Some(pc as u32),
                            now,
                            Trap::new(FaultKind::Illegal, "not a scalar instruction"),
                        );
                        return;
                    }
                }
            }
            let core = &mut self.cores[c];
            core.s_busy += cost;
            core.s_time = now + cost;
            core.pc = next_pc;
            let block = core.block;
            let span = [now, now + cost, now + cost];
            self.record((c, Pipe::S, pc as u32, block), span, |_| insn.text());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn scalar_mem(
        &mut self,
        c: usize,
        pc: u32,
        sp: crate::isa::ScalarSpace,
        ty: crate::isa::MemTy,
        a: u64,
        store: bool,
        rd: crate::isa::Reg,
    ) -> Result<u64, Trap> {
        use crate::isa::{MemTy, ScalarSpace};
        let size = ty.size();
        let (space, cyc) = match sp {
            ScalarSpace::Gm => (Space::Gm, self.m.scalar.gm_load_cycles),
            ScalarSpace::Ub => (Space::Ub, self.m.scalar.ub_load_cycles),
        };
        if !a.is_multiple_of(size) {
            return Err(Trap::at(
                FaultKind::Misaligned,
                space,
                a,
                format!("a {size}-byte scalar access needs a multiple of {size}"),
            ));
        }
        let pat = exec::Pat::run(a, size);
        match space {
            Space::Gm => self.gm.check(&pat)?,
            _ => {
                let cap = self.m.memory.ub.bytes;
                if a.saturating_add(size) > cap {
                    return Err(Trap::at(
                        FaultKind::Capacity,
                        Space::Ub,
                        a,
                        format!(
                            "ub access [{a:#x}, {:#x}) exceeds the {cap}-byte UB",
                            u128::from(a) + u128::from(size)
                        ),
                    ));
                }
            }
        }
        if let Some(r) = self.race.as_mut() {
            // The scalar unit is synchronous: its earlier accesses are complete.
            let core = &mut self.cores[c];
            core.s_know.c[usize::from(core.agent_base)] = core.s_count;
            let core = &self.cores[c];
            let who = Who {
                block: core.block,
                agent: core.agent_base,
                n: core.s_count,
                epoch: core.s_know.epoch,
                core: c as u32,
                pipe: Pipe::S,
                pc,
            };
            let acc = [exec::Access {
                space,
                pat,
                write: store,
            }];
            if let Err(race) = r.access(c as u32, &acc, who, &core.s_know) {
                return Err(self.race_trap(&race, store, pc, c));
            }
        }
        self.cores[c].s_count += 1;
        if self.o.functional {
            let m = self.m;
            let v = self.reg(c, rd).to_le_bytes();
            let n = size as usize;
            let mem: Option<&mut [u8]> = match space {
                Space::Gm => {
                    let off = self.gm.off(a);
                    self.gm.data.as_mut().map(|d| &mut d[off..off + n])
                }
                _ => Some(&mut self.cores[c].local.buf(Space::Ub, m)[a as usize..a as usize + n]),
            };
            let mut b = [0u8; 8];
            if let Some(mem) = mem {
                if store {
                    mem.copy_from_slice(&v[..n]);
                } else {
                    b[..n].copy_from_slice(mem);
                }
            }
            if !store {
                let raw = u64::from_le_bytes(b);
                let v = match ty {
                    MemTy::I8 => raw as u8 as i8 as i64 as u64,
                    MemTy::I16 => raw as u16 as i16 as i64 as u64,
                    MemTy::I32 => raw as u32 as i32 as i64 as u64,
                    MemTy::U8 | MemTy::U16 | MemTy::U32 | MemTy::U64 => raw,
                };
                self.set_reg(c, rd, v);
            }
        } else if !store {
            self.set_reg(c, rd, 0);
        }
        Ok(u64::from(cyc))
    }

    pub(super) fn race_trap(
        &self,
        race: &crate::race::Race,
        _write: bool,
        _pc: u32,
        c: usize,
    ) -> Trap {
        let e = &race.earlier;
        let einsn = self.insn(e.core as usize, e.pc).text();
        let what = |w: bool| if w { "writes" } else { "reads" };
        let ecore = if e.core as usize == c {
            String::new()
        } else {
            format!(" on {}", self.cores[e.core as usize].name)
        };
        let msg = match race.kind {
            FaultKind::RawWithoutBarrier => format!(
                "it reads {} {:#x}, written by #{} `{einsn}` in the same pipe; a pipe has no read-after-write interlock: put `sync.barrier {}` between them",
                race.space.name(),
                race.addr,
                e.pc,
                e.pipe.name()
            ),
            _ => format!(
                "it {} {} {:#x}, which #{} `{einsn}` (pipe {}{ecore}) {}, with no happens-before between them (missing sync.set/sync.wait?)",
                what(race.write),
                race.space.name(),
                race.addr,
                e.pc,
                e.pipe.report_name(),
                if race.earlier_write { "wrote" } else { "read" }
            ),
        };
        Trap::at(race.kind, race.space, race.addr, msg)
    }
}
