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
mod pipes;
mod queue;
mod scalar;
mod sync;
pub mod trace;

use crate::exec::{GmMem, LocalMem, Regs};
use crate::fault::{Fault, FaultKind, Trap};
use crate::isa::{CoreKind, Insn, Pipe, ScalarInsn, SyncInsn, U8};
use crate::machine::Machine;
use crate::machine::PathId;
use crate::program::{Launch, Program};
use crate::race::{Clock, Detector};
use std::collections::{HashMap, VecDeque};
use trace::Timeline;

/// Engine options.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Perform data effects.
    pub functional: bool,
    /// Run the race detector.
    pub races: bool,
    /// Fault when the program's cycles so far (launch overheads and spans)
    /// pass this many.
    pub cycle_limit: u64,
    /// The program's cycles before this launch's first block: the earlier
    /// launches' and this one's overhead, counted against `cycle_limit`.
    pub cycles_before: u64,
    /// Record the timeline.
    pub trace: bool,
    /// Fault once this launch takes more steps (scalar instructions and
    /// pipe events); `u64::MAX`: no limit.
    pub step_limit: u64,
    /// Steps of the earlier launches: with `step_limit`, the program's
    /// limit, which the fault names.
    pub steps_before: u64,
    /// Fault once this launch's functional work (multiply-adds, vector
    /// lane operations, bytes moved / 16) passes this.
    pub work_limit: u64,
    /// A caller's request to stop (see `RunOptions::interrupt`).
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The most scalar instructions a core runs in a row without issuing pipe
/// work or synchronising (2^16). Compiled code issues work every few dozen
/// scalar instructions; a core past this loops without progress, and
/// faults (`E0711`) after a fraction of a second whatever the `block_dim`.
pub const MAX_SPIN: u64 = 1 << 16;

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

/// Who set an event: core, pipe and issue cycle (where its trace flow starts).
type Setter = (u32, Pipe, u64);

#[derive(Clone, Default)]
struct FlagSt {
    /// When set: visible at, the setter's knowledge, the flow id, the setter.
    set: Option<(u64, Clock, u64, Setter)>,
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
    /// Scalar instructions run since the core last issued pipe work or
    /// synchronised ([`MAX_SPIN`]).
    spin: u64,
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
    /// Steps taken (counted against the step limit).
    pub steps: u64,
    /// Functional work done (counted against the work limit).
    pub work: u64,
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
    heap: queue::EventQueue<Ev>,
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
            spin: 0,
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
            heap: queue::EventQueue::default(),
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
        self.heap.push(t, self.seq, ev);
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
            .unwrap_or(Insn::Scalar(ScalarInsn::End {}))
    }

    fn raise(&mut self, c: usize, pipe: Pipe, pc: Option<u32>, t: u64, trap: Trap) {
        if self.fault.is_some() {
            return;
        }
        // A fault no instruction raised (the step limit, met on a DMA or
        // flag event) names where the core's scalar unit stands.
        let pc = pc.or_else(|| {
            (pipe == Pipe::S && c < self.cores.len() && self.cores[c].used)
                .then(|| self.cores[c].pc as u32)
        });
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

    /// Counts a step; `false` once past the step limit.
    fn step(&mut self) -> bool {
        self.m_out.steps += 1;
        if self.m_out.steps.is_multiple_of(4096) && self.interrupted() {
            return false;
        }
        self.m_out.steps <= self.o.step_limit
    }

    fn interrupted(&self) -> bool {
        self.o
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The step-limit fault (or the interrupt that stopped the steps).
    fn step_trap(&self) -> Trap {
        if self.interrupted() {
            return Trap::new(
                FaultKind::Interrupted,
                "the run was interrupted by its caller".to_string(),
            );
        }
        Trap::new(
            FaultKind::StepLimit,
            format!(
                "the simulation took more than {} steps (scalar instructions and pipe events); by default the limit is 2^24 plus 64 per byte of the program's tensors and workspace",
                self.o.steps_before.saturating_add(self.o.step_limit)
            ),
        )
    }

    /// The fault of a core that spins: [`MAX_SPIN`] scalar instructions
    /// without issuing pipe work or synchronising.
    fn spin_trap(&self) -> Trap {
        Trap::new(
            FaultKind::StepLimit,
            format!(
                "the core ran {MAX_SPIN} scalar instructions in a row without issuing pipe work or synchronising: it loops without progress"
            ),
        )
    }

    /// The cycle-limit fault.
    fn limit_trap(&self) -> Trap {
        let lim = self.o.cycle_limit;
        let before = if self.o.cycles_before > 0 {
            format!(
                " ({} of them before this launch's blocks began)",
                self.o.cycles_before
            )
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
        while let Some((t, _, ev)) = self.heap.pop() {
            if t > self.limit {
                let (c, pipe, pc) = self.unit_of(ev);
                let trap = self.limit_trap();
                self.raise(c, pipe, pc, t, trap);
                break;
            }
            if !self.step() {
                let (c, pipe, pc) = self.unit_of(ev);
                let trap = self.step_trap();
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
                    let what = match self.insn(c, e.pc) {
                        Insn::Sync(SyncInsn::SyncWait {
                            src,
                            dst,
                            id: U8(id),
                        }) => format!(
                            "event ({} -> {}, id {id}), which is never set",
                            src.name(),
                            dst.name()
                        ),
                        Insn::Sync(SyncInsn::XcoreWait { id: U8(id), .. }) => {
                            format!("cross-core flag {id}, which is never raised")
                        }
                        Insn::Sync(
                            SyncInsn::SyncSet { .. }
                            | SyncInsn::SyncBarrier { .. }
                            | SyncInsn::XcoreSet { .. },
                        )
                        | Insn::Scalar(_)
                        | Insn::Pipe(_) => "its turn".to_string(),
                    };
                    return Some((c, *p, Some(e.pc), what));
                }
            }
            let what = match core.s_state {
                SState::Wait(Wait::Flag(_)) => match self.insn(c, core.pc as u32) {
                    Insn::Sync(SyncInsn::SyncWait {
                        src,
                        dst,
                        id: U8(id),
                    }) => format!(
                        "event ({} -> {}, id {id}), which is never set",
                        src.name(),
                        dst.name()
                    ),
                    Insn::Sync(
                        SyncInsn::SyncSet { .. }
                        | SyncInsn::SyncBarrier { .. }
                        | SyncInsn::XcoreSet { .. }
                        | SyncInsn::XcoreWait { .. },
                    )
                    | Insn::Scalar(_)
                    | Insn::Pipe(_) => "an event".into(),
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
            core.spin = 0;
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
