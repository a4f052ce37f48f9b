//! Synchronisation: events between the pipes of a core (`sync.set` /
//! `sync.wait`), barriers, and the cross-core flags of split machines. A
//! synchronisation instruction runs on the scalar unit ([`Engine::scalar_sync`])
//! or at the head of a pipe's queue ([`Engine::pipe_sync`]); either way the
//! race detector's vector clocks travel with the events.

use super::trace::Flow;
use super::{Engine, Ev, NPIPES, SState, Wait, XArrive};
use crate::fault::{FaultKind, Trap};
use crate::isa::{CoreKind, Insn, Pipe, SyncInsn, U8};
use crate::machine::Machine;
use crate::race::Clock;

/// The index of event (`src`, `dst`, `id`) in a core's flags.
pub(super) fn flag_index(m: &Machine, src: Pipe, dst: Pipe, id: u8) -> usize {
    (src.index() * NPIPES + dst.index()) * m.sync.event_ids as usize + usize::from(id)
}

impl Engine<'_> {
    /// Executes a synchronisation instruction that queues on the scalar unit
    /// (a wait for an event into `s`, a set out of it, `sync.barrier all`,
    /// cross-core flags on `s`). Returns `false` when the scalar unit blocks
    /// (or faulted) and the instruction must run again later.
    pub(super) fn scalar_sync(&mut self, c: usize, sync: SyncInsn, pc: usize, now: u64) -> bool {
        self.m_out.insns += 1;
        match sync {
            SyncInsn::SyncBarrier { .. } => {
                let core = &self.cores[c];
                let idle = core
                    .pipes
                    .iter()
                    .all(|p| p.q.is_empty() && p.inflight.is_none());
                let ready = core
                    .pipes
                    .iter()
                    .map(|p| p.complete_at)
                    .max()
                    .unwrap_or(now);
                if !idle || ready > now {
                    self.m_out.insns -= 1;
                    self.cores[c].s_state = SState::Wait(Wait::Barrier);
                    if idle {
                        self.sched_scalar(c, ready);
                    }
                    return false;
                }
                let core = &mut self.cores[c];
                let mut k = core.s_know;
                for p in Pipe::REAL.iter().skip(1) {
                    k.join(&core.pipes[p.index()].know);
                    k.c[usize::from(core.agent_base) + p.index()] = core.pipes[p.index()].started;
                }
                core.s_know = k;
            }
            SyncInsn::SyncWait {
                src,
                dst,
                id: U8(id),
            } => {
                let fi = flag_index(self.m, src, dst, id);
                match self.cores[c].flags[fi].set {
                    Some((ts, know, flow, from)) if ts <= now => {
                        let core = &mut self.cores[c];
                        core.flags[fi].set = None;
                        core.flags[fi].waiter = None;
                        core.s_know.join(&know);
                        if let Some(tl) = self.timeline.as_mut() {
                            tl.flows.push(Flow {
                                id: flow,
                                from,
                                to: (c as u32, Pipe::S, now),
                            });
                        }
                    }
                    Some((ts, ..)) => {
                        self.m_out.insns -= 1;
                        self.cores[c].s_state = SState::Wait(Wait::Flag(fi));
                        self.sched_scalar(c, ts);
                        return false;
                    }
                    None => {
                        self.m_out.insns -= 1;
                        let core = &mut self.cores[c];
                        core.flags[fi].waiter = Some(Pipe::S);
                        core.s_state = SState::Wait(Wait::Flag(fi));
                        return false;
                    }
                }
            }
            SyncInsn::SyncSet {
                dst, id: U8(id), ..
            } => {
                let ts = now + u64::from(self.m.sync.sync_cycles);
                let mut know = self.cores[c].s_know;
                know.c[usize::from(self.agent(c, Pipe::S))] = self.cores[c].s_count;
                if let Err(trap) = self.set_flag(c, Pipe::S, dst, id, [now, ts], know) {
                    self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                    return false;
                }
            }
            SyncInsn::XcoreWait { id: U8(id), .. } => {
                let core = &mut self.cores[c];
                let i = usize::from(id);
                if core.xcnt[i] > 0 {
                    core.xcnt[i] -= 1;
                    let k = core.xknow[i];
                    core.s_know.join(&k);
                } else {
                    self.m_out.insns -= 1;
                    core.x_waiter[i] |= 1 << Pipe::S.index();
                    core.s_state = SState::Wait(Wait::Xcore(id));
                    return false;
                }
            }
            SyncInsn::XcoreSet {
                mode: U8(mode),
                id: U8(id),
                ..
            } => {
                let mut know = self.cores[c].s_know;
                know.c[usize::from(self.agent(c, Pipe::S))] = self.cores[c].s_count;
                let ts = now
                    + u64::from(self.m.sync.sync_cycles)
                    + u64::from(self.m.sync.cross_core_latency);
                if let Err(trap) = self.xset(c, Pipe::S, pc as u32, mode, id, ts, know) {
                    self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                    return false;
                }
            }
        }
        true
    }

    /// Runs a synchronisation instruction at the head of pipe `p`'s queue:
    /// a wait completes once its event is set, a barrier once the pipe's
    /// earlier instructions are visible; sets signal after them.
    pub(super) fn pipe_sync(&mut self, c: usize, p: Pipe, t: u64, pc: u32, sync: SyncInsn) {
        let pi = p.index();
        let sync_cycles = u64::from(self.m.sync.sync_cycles);
        let insn = Insn::Sync(sync);
        let agent = self.agent(c, p);
        match sync {
            SyncInsn::SyncWait {
                src,
                dst,
                id: U8(id),
            } => {
                let fi = flag_index(self.m, src, dst, id);
                match self.cores[c].flags[fi].set {
                    Some((ts, know, flow, from)) if ts <= t => {
                        let core = &mut self.cores[c];
                        core.flags[fi].set = None;
                        let ps = &mut core.pipes[pi];
                        ps.know.join(&know);
                        if let Some(tl) = self.timeline.as_mut() {
                            tl.flows.push(Flow {
                                id: flow,
                                from,
                                to: (c as u32, p, t),
                            });
                        }
                        self.waited(c, p, pc, t, t + sync_cycles, insn);
                        self.finish_sync(c, p, t, t + sync_cycles, insn);
                    }
                    Some((ts, ..)) => self.sched_pipe(c, p, ts),
                    None => self.cores[c].flags[fi].waiter = Some(p),
                }
            }
            SyncInsn::SyncBarrier { .. } => {
                let ca = self.cores[c].pipes[pi].complete_at;
                if ca > t {
                    self.sched_pipe(c, p, ca);
                    return;
                }
                let ps = &mut self.cores[c].pipes[pi];
                ps.know.c[usize::from(agent)] = ps.started;
                self.finish_sync(c, p, t, t + sync_cycles, insn);
            }
            SyncInsn::SyncSet {
                dst, id: U8(id), ..
            } => {
                let ps = &self.cores[c].pipes[pi];
                let ts = (t + sync_cycles).max(ps.complete_at);
                let mut know = ps.know;
                know.join(&ps.q.front().map(|e| e.know).unwrap_or_default());
                know.c[usize::from(agent)] = ps.started;
                if let Err(trap) = self.set_flag(c, p, dst, id, [t, ts], know) {
                    self.raise(c, p, Some(pc), t, trap);
                    return;
                }
                self.finish_sync(c, p, t, t + sync_cycles, insn);
            }
            SyncInsn::XcoreSet {
                mode: U8(mode),
                id: U8(id),
                ..
            } => {
                let ps = &self.cores[c].pipes[pi];
                let ts = (t + sync_cycles).max(ps.complete_at)
                    + u64::from(self.m.sync.cross_core_latency);
                let mut know = ps.know;
                know.join(&ps.q.front().map(|e| e.know).unwrap_or_default());
                know.c[usize::from(agent)] = ps.started;
                if let Err(trap) = self.xset(c, p, pc, mode, id, ts, know) {
                    self.raise(c, p, Some(pc), t, trap);
                    return;
                }
                self.finish_sync(c, p, t, t + sync_cycles, insn);
            }
            SyncInsn::XcoreWait { id: U8(id), .. } => {
                let i = usize::from(id);
                let core = &mut self.cores[c];
                if core.xcnt[i] > 0 {
                    core.xcnt[i] -= 1;
                    let k = core.xknow[i];
                    core.pipes[pi].know.join(&k);
                    self.waited(c, p, pc, t, t + sync_cycles, insn);
                    self.finish_sync(c, p, t, t + sync_cycles, insn);
                } else {
                    core.x_waiter[i] |= 1 << p.index();
                }
            }
        }
    }

    /// Records on the timeline the time a wait at the head of pipe `p` spent
    /// waiting (from when it reached the head until `end`), if any.
    fn waited(&mut self, c: usize, p: Pipe, pc: u32, t: u64, end: u64, insn: Insn) {
        let core = &self.cores[c];
        let since = core.pipes[p.index()].head_since.unwrap_or(t);
        if since < t {
            let block = core.block;
            let text = |_: &Self| format!("wait {}", insn.text());
            self.record((c, p, pc, block), [since, end, end], text);
        } else {
            // A wait whose event was already set still occupies its pipe: a
            // slice of its own, where the flow from the set ends.
            let block = core.block;
            self.record((c, p, pc, block), [t, end, end], |_| insn.text());
        }
    }

    /// Pops the head after a synchronisation instruction.
    pub(super) fn finish_sync(&mut self, c: usize, p: Pipe, t: u64, end: u64, insn: Insn) {
        self.m_out.insns += 1;
        let core = &mut self.cores[c];
        let ps = &mut core.pipes[p.index()];
        let e = ps.q.pop_front();
        if let Some(e) = &e {
            ps.know.join(&e.know);
        }
        ps.started += 1;
        ps.head_since = None;
        ps.free_at = end;
        ps.busy += end - t;
        let block = core.block;
        let waits = matches!(
            insn,
            Insn::Sync(SyncInsn::SyncWait { .. } | SyncInsn::XcoreWait { .. })
        );
        if !waits {
            let pc = e.map_or(0, |e| e.pc);
            self.record((c, p, pc, block), [t, end, end], |_| insn.text());
        }
        self.after_pop(c, p, t);
    }

    // ---------------------------------------------------------------- flags

    /// Sets event `(src -> dst, id)` of core `c`: issued at `issued`, visible
    /// at `ts` (the trace's flow starts at the set's own slice, `issued`).
    pub(super) fn set_flag(
        &mut self,
        c: usize,
        src: Pipe,
        dst: Pipe,
        id: u8,
        [issued, ts]: [u64; 2],
        know: Clock,
    ) -> Result<(), Trap> {
        let fi = flag_index(self.m, src, dst, id);
        self.flow_id += 1;
        let flow = self.flow_id;
        let flag = &mut self.cores[c].flags[fi];
        if flag.set.is_some() {
            return Err(Trap::new(
                FaultKind::DoubleSet,
                format!(
                    "event ({} -> {}, id {id}) is set again before a sync.wait cleared it",
                    src.name(),
                    dst.name()
                ),
            ));
        }
        flag.set = Some((ts, know, flow, (c as u32, src, issued)));
        if let Some(w) = flag.waiter.take() {
            self.sched_pipe(c, w, ts);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn xset(
        &mut self,
        c: usize,
        pipe: Pipe,
        pc: u32,
        mode: u8,
        id: u8,
        ts: u64,
        know: Clock,
    ) -> Result<(), Trap> {
        let kind = self.cores[c].kind;
        let slot = self.cores[c].slot as usize;
        let sub = self.cores[c].sub;
        let targets: Vec<usize> = match mode {
            0 => vec![c],
            1 | 2 if !self.mix => {
                return Err(Trap::new(
                    FaultKind::Illegal,
                    format!(
                        "cross-core mode {mode} needs a mix kernel (both .aic and .aiv sections)"
                    ),
                ));
            }
            1 => vec![c],
            _ => match kind {
                CoreKind::Aic => self.slots[slot].cores[1..].to_vec(),
                _ => vec![self.slots[slot].cores[0]],
            },
        };
        for t in targets {
            self.next_id += 1;
            let id2 = self.next_id;
            self.xarrive.insert(
                id2,
                XArrive {
                    core: t,
                    id,
                    mode,
                    from_kind: kind,
                    from_sub: sub,
                    know,
                    src: (c, pipe, pc),
                },
            );
            self.push(ts, Ev::Xarrive(id2));
        }
        Ok(())
    }

    pub(super) fn arrive(&mut self, x: XArrive, t: u64) {
        let i = usize::from(x.id);
        let aivs = self.m.aiv_per_core().max(1) as usize;
        let mut raise: Vec<usize> = Vec::new();
        let mut know = x.know;
        match (x.mode, x.from_kind) {
            (0, kind) => {
                let need = self.participants.get(&kind).copied().unwrap_or(1);
                let e = self.x0.entry((kind, x.id)).or_insert((0, Clock::default()));
                e.0 += 1;
                e.1.join(&x.know);
                if e.0 >= need {
                    self.x0_epoch += 1;
                    let mut k = e.1;
                    k.epoch = self.x0_epoch;
                    *e = (0, Clock::default());
                    know = k;
                    raise = (0..self.cores.len())
                        .filter(|&c| {
                            self.cores[c].kind == kind
                                && self.cores[c].used
                                && self.cores[c].ended_at.is_none()
                        })
                        .collect();
                    // Generations are chip-wide: blocks differ, so only the epoch orders them.
                    know.c = [0; crate::race::AGENTS];
                }
            }
            (1, _) => {
                let slot = self.cores[x.core].slot as usize;
                let st = &mut self.slots[slot];
                st.pair[i][x.from_sub as usize % 2] += 1;
                st.pair_know[i].join(&x.know);
                if st.pair[i].iter().take(aivs).all(|&n| n > 0) {
                    for s in 0..aivs.min(2) {
                        st.pair[i][s] -= 1;
                    }
                    know = st.pair_know[i];
                    raise = st.cores[1..].to_vec();
                }
            }
            (_, CoreKind::Aic) => raise = vec![x.core],
            (_, _) => {
                let core = &mut self.cores[x.core];
                core.xpend[i][x.from_sub as usize % 2] += 1;
                core.xpend_know[i].join(&x.know);
                if core.xpend[i].iter().take(aivs).all(|&n| n > 0) {
                    for s in 0..aivs.min(2) {
                        core.xpend[i][s] -= 1;
                    }
                    know = core.xpend_know[i];
                    raise = vec![x.core];
                }
            }
        }
        let max = self.m.sync.cross_core_max_count;
        for c in raise {
            let core = &mut self.cores[c];
            core.xcnt[i] += 1;
            core.xknow[i].join(&know);
            if core.xcnt[i] > max {
                let (sc, sp, spc) = x.src;
                self.raise(
                    sc,
                    sp,
                    Some(spc),
                    t,
                    Trap::new(
                        FaultKind::CrossCoreOverflow,
                        format!(
                            "cross-core flag {} of {} exceeds {max} pending sets",
                            x.id, self.cores[c].name
                        ),
                    ),
                );
                return;
            }
            let waiters = std::mem::take(&mut self.cores[c].x_waiter[i]);
            for p in Pipe::REAL {
                if waiters & (1 << p.index()) != 0 {
                    self.sched_pipe(c, p, t);
                }
            }
        }
    }
}
