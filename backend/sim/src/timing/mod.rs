//! The cycle model: a global discrete-event simulation of every core's scalar
//! unit and pipes, the shared GM bandwidth, flags and waves.
//!
//! Per core, the scalar unit executes scalar instructions in program order
//! (`scalar.insn_cycles` each) and issues every other instruction into its
//! pipe's in-order queue (depth `sync.queue_depth`; a full queue stalls the
//! scalar unit). A pipe starts its head instruction once the pipe is free and
//! the instruction's condition holds (`sync.wait`: the event is set;
//! `sync.barrier`: every earlier instruction of the pipe is visible). An
//! instruction's data effect happens at its start. Costs come only from the
//! machine description: vector `head + repeats × per_repeat` (head only when
//! the vector unit was idle) and a tail until the result is visible; `mmad`
//! `head + fractals × cycles`; local moves `fixed + bytes / rate`; GM
//! transfers `fixed` then streaming through the [`gm`] bandwidth model.
//!
//! Blocks are assigned to *slots* (a core, or an AIC with its AIVs for a mix
//! kernel): the first `slots` blocks start at cycle 0, and a slot that
//! finishes takes the next block `launch.wave_cycles` later. Events are
//! processed in (cycle, sequence) order, so a run is deterministic.
//!
//! An [`Engine`] simulates one launch of a program, from cycle 0 (after the
//! launch cost) until its last block ends. The driver runs the launches in
//! order, handing each the GM image and the L2 first-touch state ([`gm::Lines`])
//! the previous one left, so data written and lines warmed by one launch are
//! seen by the next; everything else (cores, queues, flags, cross-core
//! counters, the race detector, the bandwidth sharer) starts afresh.

pub mod gm;
pub mod trace;

use crate::exec::{self, Env, GmMem, LocalMem, Outcome, PathId, Regs};
use crate::fault::{Fault, FaultKind, Space, Trap};
use crate::isa::{CoreKind, Insn, Pipe, SyncOp, U8, ZR};
use crate::machine::Machine;
use crate::program::{Launch, Program};
use crate::race::{Clock, Detector, Who};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use trace::{Flow, Slice, Timeline};

/// Engine options.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Perform data effects.
    pub functional: bool,
    /// Run the race detector.
    pub races: bool,
    /// Fault when the spans of the program's launches so far pass this many cycles.
    pub cycle_limit: u64,
    /// Span cycles of the earlier launches, counted against `cycle_limit`.
    pub cycles_before: u64,
    /// Record the timeline.
    pub trace: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Slot(u32),
    Scalar(u32),
    Pipe(u32, u8),
    GmStart(u64),
    GmTick(u64),
    Xarrive(u64),
}

#[derive(Clone)]
struct QEntry {
    pc: u32,
    regs: Regs,
    arrive: u64,
    know: Clock,
}

#[derive(Clone)]
struct PipeSt {
    q: VecDeque<QEntry>,
    free_at: u64,
    complete_at: u64,
    busy: u64,
    started: u32,
    inflight: Option<(u64, u32, u32)>,
    sched: u64,
    vec_idle_at: Option<u64>,
    head_since: Option<u64>,
    know: Clock,
}

impl Default for PipeSt {
    fn default() -> Self {
        PipeSt {
            q: VecDeque::new(),
            free_at: 0,
            complete_at: 0,
            busy: 0,
            started: 0,
            inflight: None,
            sched: u64::MAX,
            vec_idle_at: None,
            head_since: None,
            know: Clock::default(),
        }
    }
}

#[derive(Clone, Default)]
struct FlagSt {
    set: Option<(u64, Clock, u64, u32, Pipe)>,
    waiter: Option<Pipe>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Queue(Pipe),
    Flag(usize),
    Barrier,
    Xcore(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SState {
    Idle,
    Run,
    Wait(Wait),
    Ended,
}

struct Core {
    kind: CoreKind,
    name: String,
    slot: u32,
    sub: u32,
    agent_base: u8,
    section: usize,
    block: u32,
    pc: usize,
    regs: Regs,
    s_time: u64,
    s_state: SState,
    s_sched: u64,
    s_know: Clock,
    s_count: u32,
    s_busy: u64,
    pipes: [PipeSt; 7],
    flags: Vec<FlagSt>,
    xcnt: [u32; 16],
    xknow: [Clock; 16],
    x_waiter: [u8; 16],
    xpend: [[u32; 2]; 16],
    xpend_know: [Clock; 16],
    local: LocalMem,
    ended_at: Option<u64>,
    used: bool,
    index: u32,
}

struct Slot {
    cores: Vec<usize>,
    pair: [[u32; 2]; 16],
    pair_know: [Clock; 16],
    next_block: Option<u32>,
}

struct XArrive {
    core: usize,
    id: u8,
    mode: u8,
    from_kind: CoreKind,
    from_sub: u32,
    know: Clock,
    src: (usize, Pipe, u32),
}

struct PendingGm {
    core: usize,
    pipe: Pipe,
    cost: f64,
    cap: f64,
    hbm: f64,
}

/// What the engine measured.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Kernel span (cycles after launch until the last core finished).
    pub span: u64,
    /// Waves.
    pub waves: u32,
    /// Busy cycles per pipe (index = `Pipe::index`), summed over cores.
    pub busy: [u64; 7],
    /// Cores that ran a block and have the pipe.
    pub cores_with: [u32; 7],
    /// Bytes per path.
    pub bytes: HashMap<PathId, u64>,
    /// HBM bytes.
    pub hbm: u64,
    /// Cube FLOPs.
    pub cube_flops: u64,
    /// Vector FLOPs.
    pub vec_flops: u64,
    /// Instructions executed.
    pub insns: u64,
    /// Timeline (when traced).
    pub timeline: Option<Timeline>,
    /// Core names by global index.
    pub core_names: Vec<String>,
}

/// The simulator state for one launch.
pub struct Engine<'a> {
    m: &'a Machine,
    p: &'a Program,
    /// The launch being simulated, and its index.
    l: &'a Launch,
    li: usize,
    /// Cycles this launch may run before the cycle limit is passed.
    limit: u64,
    o: EngineOptions,
    cores: Vec<Core>,
    slots: Vec<Slot>,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    /// Global memory (public so the driver can load inputs and read outputs).
    pub gm: GmMem,
    lines: gm::Lines,
    bw: gm::Bandwidth,
    pending: HashMap<u64, PendingGm>,
    next_id: u64,
    xarrive: HashMap<u64, XArrive>,
    x0: HashMap<(CoreKind, u8), (u32, Clock)>,
    x0_epoch: u32,
    participants: HashMap<CoreKind, u32>,
    mix: bool,
    race: Option<Detector>,
    timeline: Option<Timeline>,
    flow_id: u64,
    fault: Option<Fault>,
    next_block: u32,
    m_out: Measured,
    end: u64,
}

const NPIPES: usize = 7;

fn flag_index(m: &Machine, src: Pipe, dst: Pipe, id: u8) -> usize {
    (src.index() * NPIPES + dst.index()) * m.sync.event_ids as usize + usize::from(id)
}

impl<'a> Engine<'a> {
    /// Builds the chip for launch `li` of a validated program. `gm` holds the
    /// regions (and data), `lines` the GM lines earlier launches touched
    /// (a fresh [`gm::Lines`] for the first).
    pub fn new(
        m: &'a Machine,
        p: &'a Program,
        li: usize,
        o: EngineOptions,
        gm: GmMem,
        lines: gm::Lines,
    ) -> Engine<'a> {
        static NO_LAUNCH: Launch = Launch {
            block_dim: 0,
            sections: Vec::new(),
        };
        let l = p.launches.get(li).unwrap_or(&NO_LAUNCH);
        let has = |k| l.section(k).is_some();
        let sec = |k| l.sections.iter().position(|s| s.kind == k).unwrap_or(0);
        let mut cores: Vec<Core> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let aivs = m.aiv_per_core().max(1);
        let mk = |kind: CoreKind,
                  name: String,
                  slot: u32,
                  sub: u32,
                  pos: u8,
                  section: usize,
                  index: u32| Core {
            kind,
            name,
            slot,
            sub,
            agent_base: pos * NPIPES as u8,
            section,
            block: 0,
            pc: 0,
            regs: [0; 33],
            s_time: 0,
            s_state: SState::Idle,
            s_sched: u64::MAX,
            s_know: Clock::default(),
            s_count: 0,
            s_busy: 0,
            pipes: Default::default(),
            flags: vec![FlagSt::default(); NPIPES * NPIPES * m.sync.event_ids as usize],
            xcnt: [0; 16],
            xknow: [Clock::default(); 16],
            x_waiter: [0; 16],
            xpend: [[0; 2]; 16],
            xpend_know: [Clock::default(); 16],
            local: LocalMem::default(),
            ended_at: None,
            used: false,
            index,
        };
        let n = m.cores.ai_cores;
        let mix = has(CoreKind::Aic) && has(CoreKind::Aiv);
        let mut participants = HashMap::new();
        if has(CoreKind::Core) {
            for i in 0..n {
                cores.push(mk(
                    CoreKind::Core,
                    format!("core {i}"),
                    i,
                    0,
                    0,
                    sec(CoreKind::Core),
                    i,
                ));
                slots.push(Slot {
                    cores: vec![i as usize],
                    pair: [[0; 2]; 16],
                    pair_know: [Clock::default(); 16],
                    next_block: None,
                });
            }
            participants.insert(CoreKind::Core, 1);
        } else if mix {
            for g in 0..n {
                let mut members = vec![cores.len()];
                cores.push(mk(
                    CoreKind::Aic,
                    format!("AIC {g}"),
                    g,
                    0,
                    0,
                    sec(CoreKind::Aic),
                    g,
                ));
                for s in 0..aivs {
                    let j = g * aivs + s;
                    members.push(cores.len());
                    cores.push(mk(
                        CoreKind::Aiv,
                        format!("AIV {j}"),
                        g,
                        s,
                        (s + 1) as u8,
                        sec(CoreKind::Aiv),
                        j,
                    ));
                }
                slots.push(Slot {
                    cores: members,
                    pair: [[0; 2]; 16],
                    pair_know: [Clock::default(); 16],
                    next_block: None,
                });
            }
            participants.insert(CoreKind::Aic, 1);
            participants.insert(CoreKind::Aiv, aivs);
        } else if has(CoreKind::Aic) {
            for g in 0..n {
                cores.push(mk(
                    CoreKind::Aic,
                    format!("AIC {g}"),
                    g,
                    0,
                    0,
                    sec(CoreKind::Aic),
                    g,
                ));
                slots.push(Slot {
                    cores: vec![g as usize],
                    pair: [[0; 2]; 16],
                    pair_know: [Clock::default(); 16],
                    next_block: None,
                });
            }
            participants.insert(CoreKind::Aic, 1);
        } else {
            for j in 0..n * aivs {
                cores.push(mk(
                    CoreKind::Aiv,
                    format!("AIV {j}"),
                    j,
                    0,
                    0,
                    sec(CoreKind::Aiv),
                    j,
                ));
                slots.push(Slot {
                    cores: vec![j as usize],
                    pair: [[0; 2]; 16],
                    pair_know: [Clock::default(); 16],
                    next_block: None,
                });
            }
            participants.insert(CoreKind::Aiv, 1);
        }
        let used_slots = (l.block_dim as usize).min(slots.len()) as u32;
        for v in participants.values_mut() {
            *v *= used_slots;
        }
        let core_names = cores.iter().map(|c| c.name.clone()).collect();
        Engine {
            m,
            p,
            l,
            li,
            limit: o.cycle_limit.saturating_sub(o.cycles_before),
            lines,
            bw: gm::Bandwidth::new(m.gm.chip_bytes_per_cycle),
            race: o.races.then(Detector::default),
            timeline: o.trace.then(Timeline::default),
            o,
            cores,
            slots,
            heap: BinaryHeap::new(),
            seq: 0,
            gm,
            pending: HashMap::new(),
            next_id: 0,
            xarrive: HashMap::new(),
            x0: HashMap::new(),
            x0_epoch: 0,
            participants,
            mix,
            flow_id: 0,
            fault: None,
            next_block: 0,
            m_out: Measured {
                core_names,
                ..Default::default()
            },
            end: 0,
        }
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    fn sched_scalar(&mut self, c: usize, t: u64) {
        if self.cores[c].s_sched <= t {
            return;
        }
        self.cores[c].s_sched = t;
        self.push(t, Ev::Scalar(c as u32));
    }

    fn sched_pipe(&mut self, c: usize, p: Pipe, t: u64) {
        if p == Pipe::S {
            return self.sched_scalar(c, t);
        }
        let ps = &mut self.cores[c].pipes[p.index()];
        if ps.sched <= t {
            return;
        }
        ps.sched = t;
        self.push(t, Ev::Pipe(c as u32, p.index() as u8));
    }

    fn core_label(&self, c: usize) -> String {
        let core = &self.cores[c];
        match core.kind {
            CoreKind::Aiv if self.mix => format!(
                "{} (block {}, sub-block {})",
                core.name, core.block, core.sub
            ),
            _ => format!("{} (block {})", core.name, core.block),
        }
    }

    fn insn(&self, c: usize, pc: u32) -> Insn {
        let core = &self.cores[c];
        self.l.sections[core.section]
            .insns
            .get(pc as usize)
            .copied()
            .unwrap_or(Insn::End {})
    }

    fn raise(&mut self, c: usize, pipe: Pipe, pc: Option<u32>, t: u64, trap: Trap) {
        if self.fault.is_some() {
            return;
        }
        let insn = pc.map(|pc| self.insn(c, pc).text()).unwrap_or_default();
        self.fault = Some(Fault {
            kind: trap.kind,
            launch: self.li as u32,
            launches: self.p.launches.len() as u32,
            core: self.core_label(c),
            pipe,
            pc,
            insn,
            address: trap.address,
            cycle: t,
            message: trap.message,
        });
    }

    /// The cycle-limit fault.
    fn limit_trap(&self) -> Trap {
        let lim = self.o.cycle_limit;
        let before = if self.o.cycles_before > 0 {
            format!(" ({} of them in earlier launches)", self.o.cycles_before)
        } else {
            String::new()
        };
        Trap::new(
            FaultKind::CycleLimit,
            format!("the simulation passed the cycle limit of {lim} cycles{before}"),
        )
    }

    /// Runs the launch to completion or to a fault; returns what it measured,
    /// the GM image and the GM lines touched so far (for the next launch).
    pub fn run(mut self) -> Result<(Measured, GmMem, gm::Lines), Box<Fault>> {
        let first = (self.l.block_dim as usize).min(self.slots.len());
        for s in 0..first {
            self.slots[s].next_block = Some(s as u32);
            self.push(0, Ev::Slot(s as u32));
        }
        self.next_block = first as u32;
        self.m_out.waves = self.l.block_dim.div_ceil(self.slots.len().max(1) as u32);
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            if t > self.limit {
                let (c, pipe, pc) = self.unit_of(ev);
                let trap = self.limit_trap();
                self.raise(c, pipe, pc, t, trap);
                break;
            }
            match ev {
                Ev::Slot(s) => self.start_slot(s as usize, t),
                Ev::Scalar(c) => {
                    let c = c as usize;
                    if self.cores[c].s_sched == t {
                        self.cores[c].s_sched = u64::MAX;
                        self.run_scalar(c, t);
                    }
                }
                Ev::Pipe(c, p) => {
                    let (c, p) = (c as usize, Pipe::REAL[p as usize]);
                    if self.cores[c].pipes[p.index()].sched == t {
                        self.cores[c].pipes[p.index()].sched = u64::MAX;
                        self.try_pipe(c, p, t);
                    }
                }
                Ev::GmStart(id) => {
                    if let Some(x) = self.pending.get(&id) {
                        let (cost, cap, hbm) = (x.cost, x.cap, x.hbm);
                        self.bw.start(t, id, cost, cap, hbm);
                        self.sched_gm(t);
                    }
                }
                Ev::GmTick(generation) => {
                    if generation == self.bw.generation {
                        let done = self.bw.finish(t);
                        for id in done {
                            if let Some(x) = self.pending.remove(&id) {
                                self.finish_dma(x.core, x.pipe, t);
                            }
                        }
                        self.sched_gm(t);
                    }
                }
                Ev::Xarrive(id) => {
                    if let Some(x) = self.xarrive.remove(&id) {
                        self.arrive(x, t);
                    }
                }
            }
            if self.fault.is_some() {
                break;
            }
        }
        if let Some(f) = self.fault.take() {
            return Err(Box::new(f));
        }
        if let Some((c, pipe, pc, what)) = self.blocked_unit() {
            let t = self.cores[c].s_time.max(self.end);
            self.raise(
                c,
                pipe,
                pc,
                t,
                Trap::new(
                    FaultKind::Deadlock,
                    format!("no unit can make progress; this one waits for {what}"),
                ),
            );
            return Err(Box::new(
                self.fault.take().unwrap_or_else(unreachable_fault),
            ));
        }
        self.m_out.span = self.end;
        for core in &self.cores {
            if !core.used {
                continue;
            }
            self.m_out.busy[Pipe::S.index()] += core.s_busy;
            self.m_out.cores_with[Pipe::S.index()] += 1;
            for p in Pipe::REAL.iter().skip(1) {
                if core.kind.has_pipe(*p) {
                    self.m_out.busy[p.index()] += core.pipes[p.index()].busy;
                    self.m_out.cores_with[p.index()] += 1;
                }
            }
        }
        self.m_out.timeline = self.timeline.take();
        Ok((self.m_out, self.gm, self.lines))
    }

    fn unit_of(&self, ev: Ev) -> (usize, Pipe, Option<u32>) {
        match ev {
            Ev::Scalar(c) => (c as usize, Pipe::S, Some(self.cores[c as usize].pc as u32)),
            Ev::Pipe(c, p) => {
                let ps = &self.cores[c as usize].pipes[p as usize];
                (
                    c as usize,
                    Pipe::REAL[p as usize],
                    ps.q.front().map(|e| e.pc),
                )
            }
            Ev::GmStart(id) => self.pending.get(&id).map_or((0, Pipe::S, None), |x| {
                (
                    x.core,
                    x.pipe,
                    self.cores[x.core].pipes[x.pipe.index()]
                        .inflight
                        .map(|i| i.1),
                )
            }),
            Ev::GmTick(_) | Ev::Slot(_) | Ev::Xarrive(_) => (0, Pipe::S, None),
        }
    }

    fn blocked_unit(&self) -> Option<(usize, Pipe, Option<u32>, String)> {
        for (c, core) in self.cores.iter().enumerate() {
            if !core.used || core.ended_at.is_some() {
                continue;
            }
            for p in Pipe::REAL.iter().skip(1) {
                let ps = &core.pipes[p.index()];
                if let Some(e) = ps.q.front() {
                    let what = match self.insn(c, e.pc).sync() {
                        Some(SyncOp::Wait { src, dst, id }) => format!(
                            "event ({} -> {}, id {id}), which is never set",
                            src.name(),
                            dst.name()
                        ),
                        Some(SyncOp::XWait { id, .. }) => {
                            format!("cross-core flag {id}, which is never raised")
                        }
                        Some(SyncOp::Set { .. } | SyncOp::Barrier { .. } | SyncOp::XSet { .. })
                        | None => "its turn".to_string(),
                    };
                    return Some((c, *p, Some(e.pc), what));
                }
            }
            let what = match core.s_state {
                SState::Wait(Wait::Flag(_)) => match self.insn(c, core.pc as u32).sync() {
                    Some(SyncOp::Wait { src, dst, id }) => format!(
                        "event ({} -> {}, id {id}), which is never set",
                        src.name(),
                        dst.name()
                    ),
                    Some(
                        SyncOp::Set { .. }
                        | SyncOp::Barrier { .. }
                        | SyncOp::XSet { .. }
                        | SyncOp::XWait { .. },
                    )
                    | None => "an event".into(),
                },
                SState::Wait(Wait::Xcore(id)) => {
                    format!("cross-core flag {id}, which is never raised")
                }
                SState::Wait(Wait::Queue(p)) => format!("room in the {} queue", p.report_name()),
                SState::Wait(Wait::Barrier) => "every pipe to drain".into(),
                SState::Run | SState::Idle | SState::Ended => "its turn".into(),
            };
            return Some((c, Pipe::S, Some(core.pc as u32), what));
        }
        None
    }

    fn sched_gm(&mut self, t: u64) {
        if let Some(n) = self.bw.next() {
            let g = self.bw.generation;
            self.push(n.max(t), Ev::GmTick(g));
        }
    }

    // ---------------------------------------------------------------- blocks

    fn start_slot(&mut self, s: usize, t: u64) {
        let Some(block) = self.slots[s].next_block.take() else {
            return;
        };
        self.slots[s].pair = [[0; 2]; 16];
        self.slots[s].pair_know = [Clock::default(); 16];
        let members = self.slots[s].cores.clone();
        for c in members {
            let functional = self.o.functional;
            let core = &mut self.cores[c];
            core.block = block;
            core.pc = 0;
            core.regs = [0; 33];
            core.s_time = t;
            core.s_state = SState::Run;
            core.s_know = Clock::default();
            core.s_count = 0;
            for p in core.pipes.iter_mut() {
                let busy = p.busy;
                *p = PipeSt {
                    busy,
                    free_at: t,
                    complete_at: t,
                    ..PipeSt::default()
                };
            }
            core.flags.iter_mut().for_each(|f| *f = FlagSt::default());
            core.xcnt = [0; 16];
            core.xknow = [Clock::default(); 16];
            core.x_waiter = [0; 16];
            core.xpend = [[0; 2]; 16];
            core.xpend_know = [Clock::default(); 16];
            core.ended_at = None;
            if functional && core.used {
                core.local.reset();
            }
            core.used = true;
            let idx = c as u32;
            if let Some(r) = self.race.as_mut() {
                r.reset_core(idx);
            }
            self.sched_scalar(c, t);
        }
    }

    fn core_done(&mut self, c: usize, t: u64) {
        let core = &mut self.cores[c];
        if core.ended_at.is_some() {
            return;
        }
        let end = core
            .pipes
            .iter()
            .map(|p| p.complete_at)
            .max()
            .unwrap_or(t)
            .max(core.s_time)
            .max(t);
        core.ended_at = Some(end);
        let s = core.slot as usize;
        let members = &self.slots[s].cores;
        if members.iter().all(|&m| self.cores[m].ended_at.is_some()) {
            let fin = members
                .iter()
                .filter_map(|&m| self.cores[m].ended_at)
                .max()
                .unwrap_or(end);
            self.end = self.end.max(fin);
            if self.next_block < self.l.block_dim {
                self.slots[s].next_block = Some(self.next_block);
                self.next_block += 1;
                let at = fin + self.m.launch.wave_cycles;
                self.push(at, Ev::Slot(s as u32));
            }
        }
    }

    /// Called when a pipe's queue may have emptied.
    fn drained(&mut self, c: usize, t: u64) {
        let core = &self.cores[c];
        let idle = core
            .pipes
            .iter()
            .all(|p| p.q.is_empty() && p.inflight.is_none());
        if !idle {
            return;
        }
        match core.s_state {
            SState::Wait(Wait::Barrier) => {
                let ready = core
                    .pipes
                    .iter()
                    .map(|p| p.complete_at)
                    .max()
                    .unwrap_or(t)
                    .max(t);
                self.sched_scalar(c, ready);
            }
            SState::Ended => self.core_done(c, t),
            SState::Idle | SState::Run | SState::Wait(_) => {}
        }
    }

    // ---------------------------------------------------------------- scalar

    fn reg(&self, c: usize, r: crate::isa::Reg) -> u64 {
        if r.0 == ZR {
            0
        } else {
            self.cores[c].regs[usize::from(r.0)]
        }
    }

    fn set_reg(&mut self, c: usize, r: crate::isa::Reg, v: u64) {
        if r.0 != ZR {
            self.cores[c].regs[usize::from(r.0)] = v;
        }
    }

    fn val(&self, c: usize, v: crate::isa::Val) -> u64 {
        match v {
            crate::isa::Val::Reg(r) => self.reg(c, r),
            crate::isa::Val::Imm(i) => i64::from(i) as u64,
        }
    }

    fn agent(&self, c: usize, p: Pipe) -> u8 {
        self.cores[c].agent_base + p.index() as u8
    }

    fn run_scalar(&mut self, c: usize, t: u64) {
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
            if let Some(Reverse((next, _, _))) = self.heap.peek()
                && (now > *next || budget == 0)
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
            } else if let Some(sync) = insn.sync() {
                self.m_out.insns += 1;
                match sync {
                    SyncOp::Barrier { .. } => {
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
                            return;
                        }
                        let core = &mut self.cores[c];
                        let mut k = core.s_know;
                        for p in Pipe::REAL.iter().skip(1) {
                            k.join(&core.pipes[p.index()].know);
                            k.c[usize::from(core.agent_base) + p.index()] =
                                core.pipes[p.index()].started;
                        }
                        core.s_know = k;
                        cost = sync_cost;
                    }
                    SyncOp::Wait { src, dst, id } => {
                        let fi = flag_index(self.m, src, dst, id);
                        match self.cores[c].flags[fi].set {
                            Some((ts, know, flow, fc, fp)) if ts <= now => {
                                let core = &mut self.cores[c];
                                core.flags[fi].set = None;
                                core.flags[fi].waiter = None;
                                core.s_know.join(&know);
                                if let Some(tl) = self.timeline.as_mut() {
                                    tl.flows.push(Flow {
                                        id: flow,
                                        from: (fc, fp, ts),
                                        to: (c as u32, Pipe::S, now),
                                    });
                                }
                                cost = sync_cost;
                            }
                            Some((ts, ..)) => {
                                self.m_out.insns -= 1;
                                self.cores[c].s_state = SState::Wait(Wait::Flag(fi));
                                self.sched_scalar(c, ts);
                                return;
                            }
                            None => {
                                self.m_out.insns -= 1;
                                let core = &mut self.cores[c];
                                core.flags[fi].waiter = Some(Pipe::S);
                                core.s_state = SState::Wait(Wait::Flag(fi));
                                return;
                            }
                        }
                    }
                    SyncOp::Set { dst, id, .. } => {
                        let ts = now + u64::from(self.m.sync.sync_cycles);
                        let mut know = self.cores[c].s_know;
                        know.c[usize::from(self.agent(c, Pipe::S))] = self.cores[c].s_count;
                        if let Err(trap) = self.set_flag(c, Pipe::S, dst, id, ts, know) {
                            self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                            return;
                        }
                        cost = sync_cost;
                    }
                    SyncOp::XWait { id, .. } => {
                        let core = &mut self.cores[c];
                        let i = usize::from(id);
                        if core.xcnt[i] > 0 {
                            core.xcnt[i] -= 1;
                            let k = core.xknow[i];
                            core.s_know.join(&k);
                            cost = sync_cost;
                        } else {
                            self.m_out.insns -= 1;
                            core.x_waiter[i] |= 1 << Pipe::S.index();
                            core.s_state = SState::Wait(Wait::Xcore(id));
                            return;
                        }
                    }
                    SyncOp::XSet { mode, id, .. } => {
                        let mut know = self.cores[c].s_know;
                        know.c[usize::from(self.agent(c, Pipe::S))] = self.cores[c].s_count;
                        let ts = now
                            + u64::from(self.m.sync.sync_cycles)
                            + u64::from(self.m.sync.cross_core_latency);
                        if let Err(trap) = self.xset(c, Pipe::S, pc as u32, mode, id, ts, know) {
                            self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                            return;
                        }
                        cost = sync_cost;
                    }
                }
            } else {
                self.m_out.insns += 1;
                match insn {
                    Insn::SNop {} => {}
                    Insn::End {} => {
                        let core = &mut self.cores[c];
                        core.s_state = SState::Ended;
                        core.s_busy += ic;
                        core.s_time = now + ic;
                        self.drained(c, now + ic);
                        return;
                    }
                    Insn::SLi { rd, imm } => self.set_reg(c, rd, imm.0 as u64),
                    Insn::SLif { rd, imm } => self.set_reg(c, rd, u64::from(imm.0)),
                    Insn::SMov { rd, ra } => {
                        let v = self.reg(c, ra);
                        self.set_reg(c, rd, v)
                    }
                    Insn::SSys { rd, sr } => {
                        use crate::isa::SysReg;
                        let core = &self.cores[c];
                        let v = match sr {
                            SysReg::BlockIdx => u64::from(core.block),
                            SysReg::BlockDim => u64::from(self.l.block_dim),
                            SysReg::SubBlockIdx => u64::from(if core_kind == CoreKind::Aiv {
                                core.sub
                            } else {
                                0
                            }),
                            SysReg::SubBlockDim => {
                                u64::from(if core_kind == CoreKind::Aiv && self.mix {
                                    self.m.aiv_per_core()
                                } else {
                                    1
                                })
                            }
                            SysReg::Workspace => self.gm.regions.last().map_or(0, |r| r.start),
                            SysReg::WorkspaceSize => self.p.workspace,
                            SysReg::CoreIdx => u64::from(core.index),
                        };
                        self.set_reg(c, rd, v)
                    }
                    Insn::SArg { rd, idx: U8(i) } => {
                        let n = self.p.params.len() + self.p.results.len();
                        if usize::from(i) >= n {
                            self.raise(
                                c,
                                Pipe::S,
                                Some(pc as u32),
                                now,
                                Trap::new(
                                    FaultKind::Illegal,
                                    format!("argument {i} does not exist (the kernel has {n})"),
                                ),
                            );
                            return;
                        }
                        let v = self.gm.regions[usize::from(i)].start;
                        self.set_reg(c, rd, v)
                    }
                    Insn::SAlu { op, rd, ra, b } => {
                        let (x, y) = (self.reg(c, ra), self.val(c, b));
                        match exec::scalar::alu(op, x, y) {
                            Ok(v) => self.set_reg(c, rd, v),
                            Err(trap) => {
                                self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                                return;
                            }
                        }
                    }
                    Insn::SFop { op, rd, ra, rb } => {
                        let v = exec::scalar::fop(op, self.reg(c, ra), self.reg(c, rb));
                        self.set_reg(c, rd, v)
                    }
                    Insn::SItof { rd, ra } => {
                        let v = u64::from((self.reg(c, ra) as i64 as f32).to_bits());
                        self.set_reg(c, rd, v)
                    }
                    Insn::SFtoi { rd, ra } => {
                        let v = f32::from_bits(self.reg(c, ra) as u32) as i64 as u64;
                        self.set_reg(c, rd, v)
                    }
                    Insn::SLd { sp, ty, rd, addr }
                    | Insn::SSt {
                        sp,
                        ty,
                        rs: rd,
                        addr,
                    } => {
                        let store = matches!(insn, Insn::SSt { .. });
                        let a = self.reg(c, addr.base).wrapping_add(addr.off as i64 as u64);
                        match self.scalar_mem(c, pc as u32, sp, ty, a, store, rd) {
                            Ok(cyc) => cost = cyc,
                            Err(trap) => {
                                self.raise(c, Pipe::S, Some(pc as u32), now, trap);
                                return;
                            }
                        }
                    }
                    Insn::SBr {
                        cond,
                        ra,
                        b,
                        target,
                    } => {
                        if exec::scalar::cond(cond, self.reg(c, ra), self.val(c, b)) {
                            next_pc = target.0 as usize;
                        }
                    }
                    Insn::SJmp { target } => next_pc = target.0 as usize,
                    Insn::SyncSet { .. }
                    | Insn::SyncWait { .. }
                    | Insn::SyncBarrier { .. }
                    | Insn::XcoreSet { .. }
                    | Insn::XcoreWait { .. }
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
                    | Insn::VTrans { .. } => {
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
            if let Some(tl) = self.timeline.as_mut() {
                tl.slices.push(Slice {
                    core: c as u32,
                    pipe: Pipe::S,
                    pc: pc as u32,
                    block: core.block,
                    launch: self.li as u32,
                    start: now,
                    end: now + cost,
                    visible: now + cost,
                    text: insn.text(),
                });
            }
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
                            a + size
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

    fn race_trap(&self, race: &crate::race::Race, _write: bool, _pc: u32, c: usize) -> Trap {
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

    // ---------------------------------------------------------------- flags

    fn set_flag(
        &mut self,
        c: usize,
        src: Pipe,
        dst: Pipe,
        id: u8,
        ts: u64,
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
        flag.set = Some((ts, know, flow, c as u32, src));
        if let Some(w) = flag.waiter.take() {
            self.sched_pipe(c, w, ts);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn xset(
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

    fn arrive(&mut self, x: XArrive, t: u64) {
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

    // ---------------------------------------------------------------- pipes

    fn try_pipe(&mut self, c: usize, p: Pipe, t: u64) {
        let pi = p.index();
        let sync = u64::from(self.m.sync.sync_cycles);
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
        let agent = self.agent(c, p);
        match insn.sync() {
            Some(SyncOp::Wait { src, dst, id }) => {
                let fi = flag_index(self.m, src, dst, id);
                match self.cores[c].flags[fi].set {
                    Some((ts, know, flow, fc, fp)) if ts <= t => {
                        let core = &mut self.cores[c];
                        core.flags[fi].set = None;
                        let ps = &mut core.pipes[pi];
                        ps.know.join(&know);
                        let since = ps.head_since.unwrap_or(t);
                        if let Some(tl) = self.timeline.as_mut() {
                            tl.flows.push(Flow {
                                id: flow,
                                from: (fc, fp, ts),
                                to: (c as u32, p, t),
                            });
                            if since < t {
                                tl.slices.push(Slice {
                                    core: c as u32,
                                    pipe: p,
                                    pc,
                                    block: core.block,
                                    launch: self.li as u32,
                                    start: since,
                                    end: t + sync,
                                    visible: t + sync,
                                    text: format!("wait {}", insn.text()),
                                });
                            }
                        }
                        self.finish_sync(c, p, t, t + sync, insn);
                    }
                    Some((ts, ..)) => self.sched_pipe(c, p, ts),
                    None => self.cores[c].flags[fi].waiter = Some(p),
                }
            }
            Some(SyncOp::Barrier { .. }) => {
                let ca = self.cores[c].pipes[pi].complete_at;
                if ca > t {
                    self.sched_pipe(c, p, ca);
                    return;
                }
                let ps = &mut self.cores[c].pipes[pi];
                ps.know.c[usize::from(agent)] = ps.started;
                self.finish_sync(c, p, t, t + sync, insn);
            }
            Some(SyncOp::Set { dst, id, .. }) => {
                let ps = &self.cores[c].pipes[pi];
                let ts = (t + sync).max(ps.complete_at);
                let mut know = ps.know;
                know.join(&ps.q.front().map(|e| e.know).unwrap_or_default());
                know.c[usize::from(agent)] = ps.started;
                if let Err(trap) = self.set_flag(c, p, dst, id, ts, know) {
                    self.raise(c, p, Some(pc), t, trap);
                    return;
                }
                self.finish_sync(c, p, t, t + sync, insn);
            }
            Some(SyncOp::XSet { mode, id, .. }) => {
                let ps = &self.cores[c].pipes[pi];
                let ts = (t + sync).max(ps.complete_at) + u64::from(self.m.sync.cross_core_latency);
                let mut know = ps.know;
                know.join(&ps.q.front().map(|e| e.know).unwrap_or_default());
                know.c[usize::from(agent)] = ps.started;
                if let Err(trap) = self.xset(c, p, pc, mode, id, ts, know) {
                    self.raise(c, p, Some(pc), t, trap);
                    return;
                }
                self.finish_sync(c, p, t, t + sync, insn);
            }
            Some(SyncOp::XWait { id, .. }) => {
                let i = usize::from(id);
                let core = &mut self.cores[c];
                if core.xcnt[i] > 0 {
                    core.xcnt[i] -= 1;
                    let k = core.xknow[i];
                    core.pipes[pi].know.join(&k);
                    let since = core.pipes[pi].head_since.unwrap_or(t);
                    if let Some(tl) = self.timeline.as_mut()
                        && since < t
                    {
                        tl.slices.push(Slice {
                            core: c as u32,
                            pipe: p,
                            pc,
                            block: core.block,
                            launch: self.li as u32,
                            start: since,
                            end: t + sync,
                            visible: t + sync,
                            text: format!("wait {}", insn.text()),
                        });
                    }
                    self.finish_sync(c, p, t, t + sync, insn);
                } else {
                    core.x_waiter[i] |= 1 << p.index();
                }
            }
            None => self.start_op(c, p, t, pc, insn),
        }
    }

    /// Pops the head after a synchronisation instruction.
    fn finish_sync(&mut self, c: usize, p: Pipe, t: u64, end: u64, insn: Insn) {
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
        if let Some(tl) = self.timeline.as_mut()
            && !matches!(insn, Insn::SyncWait { .. } | Insn::XcoreWait { .. })
        {
            tl.slices.push(Slice {
                core: c as u32,
                pipe: p,
                pc: e.map_or(0, |e| e.pc),
                block,
                launch: self.li as u32,
                start: t,
                end,
                visible: end,
                text: insn.text(),
            });
        }
        self.after_pop(c, p, t);
    }

    fn after_pop(&mut self, c: usize, p: Pipe, t: u64) {
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

    fn start_op(&mut self, c: usize, p: Pipe, t: u64, pc: u32, insn: Insn) {
        let pi = p.index();
        let Some(entry) = self.cores[c].pipes[pi].q.pop_front() else {
            return;
        };
        self.m_out.insns += 1;
        let m = self.m;
        let footprint = self.race.is_some();
        let result = {
            let core = &mut self.cores[c];
            let mut env = Env {
                m,
                regs: &entry.regs,
                local: &mut core.local,
                gm: &mut self.gm,
                functional: self.o.functional,
                footprint,
            };
            exec::execute(&insn, &mut env)
        };
        let out: Outcome = match result {
            Ok(o) => o,
            Err(trap) => {
                self.raise(c, p, Some(pc), t, trap);
                return;
            }
        };
        let agent = self.agent(c, p);
        {
            let core = &mut self.cores[c];
            let ps = &mut core.pipes[pi];
            ps.know.join(&entry.know);
        }
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
                    if let Some(tl) = self.timeline.as_mut() {
                        tl.slices.push(Slice {
                            core: c as u32,
                            pipe: p,
                            pc,
                            block,
                            launch: self.li as u32,
                            start: t,
                            end: t + fixed,
                            visible: t + fixed,
                            text: insn.text(),
                        });
                    }
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
                if let Some(tl) = self.timeline.as_mut() {
                    tl.slices.push(Slice {
                        core: c as u32,
                        pipe: p,
                        pc,
                        block,
                        launch: self.li as u32,
                        start: t,
                        end: t + busy,
                        visible: t + busy + out.tail,
                        text: insn.text(),
                    });
                }
            }
        }
        self.after_pop(c, p, t);
    }

    fn finish_dma(&mut self, c: usize, p: Pipe, t: u64) {
        let ps = &mut self.cores[c].pipes[p.index()];
        let Some((start, pc, block)) = ps.inflight.take() else {
            return;
        };
        ps.free_at = t;
        ps.complete_at = ps.complete_at.max(t);
        ps.busy += t - start;
        if let Some(tl) = self.timeline.as_mut() {
            let text = self.l.sections[self.cores[c].section]
                .insns
                .get(pc as usize)
                .map(Insn::text)
                .unwrap_or_default();
            tl.slices.push(Slice {
                core: c as u32,
                pipe: p,
                pc,
                block,
                launch: self.li as u32,
                start,
                end: t,
                visible: t,
                text,
            });
        }
        self.after_pop(c, p, t);
    }
}

fn unreachable_fault() -> Fault {
    Fault {
        kind: FaultKind::Deadlock,
        launch: 0,
        launches: 1,
        core: String::new(),
        pipe: Pipe::S,
        pc: None,
        insn: String::new(),
        address: None,
        cycle: 0,
        message: String::new(),
    }
}
