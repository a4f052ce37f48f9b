//! The pipes: each starts its queue's head once the pipe is free, runs
//! synchronisation instructions through `sync.rs` and every other
//! instruction through `exec::execute`, and charges its cost — vector
//! `head + repeats × per_repeat` plus a tail until the result is visible,
//! `mmad` `head + fractals × cycles`, local moves `fixed + bytes / rate`, GM
//! transfers `fixed` then streaming through the bandwidth model.

use super::{Engine, Ev, PendingGm, SState, Wait, gm};
use crate::exec::{self, Env, Outcome};
use crate::fault::{FaultKind, Trap};
use crate::isa::{Insn, Pipe, PipeInsn};
use crate::race::Who;

impl Engine<'_> {
    pub(super) fn try_pipe(&mut self, c: usize, p: Pipe, t: u64) {
        let pi = p.index();
        let (pc, arrive) = {
            let ps = &self.cores[c].pipes[pi];
            if ps.inflight.is_some() {
                return;
            }
            let Some(e) = ps.q.front() else { return };
            (e.pc, e.arrive)
        };
        let start = t.max(self.cores[c].pipes[pi].free_at).max(arrive);
        if start > t {
            self.sched_pipe(c, p, start);
            return;
        }
        if self.cores[c].pipes[pi].head_since.is_none() {
            self.cores[c].pipes[pi].head_since = Some(t);
        }
        let insn = self.insn(c, pc);
        match insn {
            Insn::Sync(s) => self.pipe_sync(c, p, t, pc, s),
            Insn::Pipe(op) => self.start_op(c, p, t, pc, op),
            Insn::Scalar(_) => self.raise(
                c,
                p,
                Some(pc),
                t,
                Trap::new(FaultKind::Illegal, "not a pipe instruction"),
            ),
        }
    }

    pub(super) fn after_pop(&mut self, c: usize, p: Pipe, t: u64) {
        if self.cores[c].s_state == SState::Wait(Wait::Queue(p)) {
            self.sched_scalar(c, t);
        }
        let ps = &self.cores[c].pipes[p.index()];
        if !ps.q.is_empty() {
            let at = ps.free_at.max(t);
            if ps.inflight.is_none() {
                self.sched_pipe(c, p, at);
            }
        } else {
            self.drained(c, t);
        }
    }

    fn start_op(&mut self, c: usize, p: Pipe, t: u64, pc: u32, op: PipeInsn) {
        let insn = Insn::Pipe(op);
        let pi = p.index();
        let m = self.m;
        let footprint = self.race.is_some();
        // The queue's head runs in place (its register snapshot is large),
        // and leaves the queue once it has run.
        let result = {
            let core = &mut self.cores[c];
            let Some(entry) = core.pipes[pi].q.front() else {
                return;
            };
            self.m_out.insns += 1;
            let know = entry.know;
            let mut env = Env {
                m,
                regs: &entry.regs,
                local: &mut core.local,
                gm: &mut self.gm,
                functional: self.o.functional,
                footprint,
            };
            let result = exec::execute(&op, &mut env);
            let ps = &mut core.pipes[pi];
            if result.is_ok() {
                ps.know.join(&know);
            }
            ps.q.pop_front();
            result
        };
        let out: Outcome = match result {
            Ok(o) => o,
            Err(trap) => {
                self.raise(c, p, Some(pc), t, trap);
                return;
            }
        };
        // A transfer's GM runs each take the host time (its L2 lines are
        // marked run by run): each counts as a step, so that a loop of long
        // strided copies meets the step limit as soon as a loop of short ones.
        if let Some(g) = &out.gm {
            self.m_out.steps = self.m_out.steps.saturating_add(g.pat.n.saturating_sub(1));
        }
        if self.o.functional {
            let moved = out.moved.map_or(0, |(_, b)| b);
            self.m_out.work += out.cube_flops / 2 + out.vec_flops + moved / 16;
            if self.m_out.work > self.o.work_limit {
                let trap = Trap::new(
                    FaultKind::WorkLimit,
                    format!(
                        "the functional simulation passed {} units of work (multiply-adds, vector lane operations, bytes moved / 16); by default the limit is 2^26 plus 4096 per byte of the program's tensors and workspace, at most 2^37; `--timing-only` or `tessera bench` measure larger kernels",
                        self.o.work_limit
                    ),
                );
                self.raise(c, p, Some(pc), t, trap);
                return;
            }
        }
        let agent = self.agent(c, p);
        if let Some(r) = self.race.as_mut() {
            let core = &self.cores[c];
            let ps = &core.pipes[pi];
            let who = Who {
                block: core.block,
                agent,
                n: ps.started,
                epoch: ps.know.epoch,
                core: c as u32,
                pipe: p,
                pc,
            };
            if let Err(race) = r.access(c as u32, &out.access, who, &ps.know) {
                let trap = self.race_trap(&race, race.write, pc, c);
                self.raise(c, p, Some(pc), t, trap);
                return;
            }
        }
        if let Some((path, bytes)) = out.moved {
            *self.m_out.bytes.entry(path).or_default() += bytes;
        }
        self.m_out.cube_flops += out.cube_flops;
        self.m_out.vec_flops += out.vec_flops;
        let block = self.cores[c].block;
        match out.gm {
            Some(x) => {
                let (cost, hbm) = gm::cost(&m.gm, &mut self.lines, &x.pat);
                let params = x.path.params(m);
                let (cap, fixed_miss) =
                    params.map_or((1.0, 0), |q| (q.bytes_per_cycle, u64::from(q.fixed_cycles)));
                let fixed = if hbm > 0.0 {
                    fixed_miss
                } else {
                    u64::from(m.gm.l2_hit_fixed_cycles)
                };
                self.m_out.hbm += hbm as u64;
                let ps = &mut self.cores[c].pipes[pi];
                ps.started += 1;
                ps.head_since = None;
                if cost <= 0.0 {
                    ps.free_at = t + fixed;
                    ps.complete_at = ps.complete_at.max(t + fixed);
                    ps.busy += fixed;
                    let span = [t, t + fixed, t + fixed];
                    self.record((c, p, pc, block), span, |_| insn.text());
                } else {
                    self.next_id += 1;
                    let id = self.next_id;
                    ps.inflight = Some((t, pc, block));
                    self.pending.insert(
                        id,
                        PendingGm {
                            core: c,
                            pipe: p,
                            cost,
                            cap,
                            hbm,
                        },
                    );
                    self.push(t + fixed, Ev::GmStart(id));
                }
            }
            None => {
                let head = if out.vector {
                    let idle = self.cores[c].pipes[pi].vec_idle_at.is_none_or(|v| t > v);
                    if idle {
                        u64::from(m.vector.head_cycles)
                    } else {
                        0
                    }
                } else {
                    0
                };
                let busy = head + out.busy;
                let ps = &mut self.cores[c].pipes[pi];
                ps.started += 1;
                ps.head_since = None;
                ps.free_at = t + busy;
                ps.complete_at = ps.complete_at.max(t + busy + out.tail);
                ps.busy += busy;
                if out.vector {
                    ps.vec_idle_at = Some(t + busy);
                }
                let span = [t, t + busy, t + busy + out.tail];
                self.record((c, p, pc, block), span, |_| insn.text());
            }
        }
        self.after_pop(c, p, t);
    }

    pub(super) fn finish_dma(&mut self, c: usize, p: Pipe, t: u64) {
        let ps = &mut self.cores[c].pipes[p.index()];
        let Some((start, pc, block)) = ps.inflight.take() else {
            return;
        };
        ps.free_at = t;
        ps.complete_at = ps.complete_at.max(t);
        ps.busy += t - start;
        self.record((c, p, pc, block), [start, t, t], |e| {
            e.l.sections[e.cores[c].section]
                .insns
                .get(pc as usize)
                .map(Insn::text)
                .unwrap_or_default()
        });
        self.after_pop(c, p, t);
    }
}
