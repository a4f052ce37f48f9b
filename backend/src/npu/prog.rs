//! The structured program a stage template builds: micro-ops that know their
//! pipe and the on-chip bytes they read and write, scalar instructions,
//! loops and guarded blocks, all of typed instructions ([`Inst`]). The sync
//! pass (`sync.rs`) derives every event and barrier from the accesses;
//! [`lower`] lays the result out as a section's instructions (branches to
//! resolved targets, wide immediates legalised).

use super::inst::{Cx, Inst, InstBuilder, Label, Operand, SCRATCH};
use tessera_ir::plan::{LocalBuf, MemSpace};
use tessera_sim::Pipe;
use tessera_sim::isa::{AluOp, Cond, Insn, Reg};

/// A buffer copy: what synchronisation is keyed by. Buffers of one space do
/// not overlap, so a copy is its space and its first byte.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// The space.
    pub space: MemSpace,
    /// The copy's first byte.
    pub start: u64,
}

impl Slot {
    /// Copy `copy` of a buffer (its last copy when `copy` is past it).
    pub fn of(l: &LocalBuf, copy: u32) -> Slot {
        Slot {
            space: l.space,
            start: l.copy(copy),
        }
    }
}

/// Bytes of one copy of one local buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region {
    /// The space.
    pub space: MemSpace,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Which buffer copy this belongs to (keys event ids).
    pub slot: Slot,
}

impl Region {
    /// The whole of copy `copy` of a buffer.
    pub fn copy(l: &LocalBuf, copy: u32) -> Region {
        let start = l.copy(copy);
        Region {
            space: l.space,
            start,
            end: start + l.bytes,
            slot: Slot::of(l, copy),
        }
    }

    /// Bytes `off .. off + len` of this region, a slot of their own (so
    /// their events are their own).
    pub fn part(&self, off: u64, len: u64) -> Region {
        let start = self.start + off;
        Region {
            space: self.space,
            start,
            end: start + len,
            slot: Slot {
                space: self.space,
                start,
            },
        }
    }

    /// Whether two regions share a byte.
    pub fn overlaps(&self, o: &Region) -> bool {
        self.space == o.space && self.start < o.end && o.start < self.end
    }
}

/// How an access uses its region.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Accumulates in place (`mmad` into L0C): a write that needs no barrier
    /// after another accumulation on the same pipe.
    Accumulate,
}

/// An instruction with its on-chip accesses.
#[derive(Clone, Debug, PartialEq)]
pub struct MicroOp {
    /// The instruction.
    pub inst: Inst,
    /// The pipe it runs on (from the instruction list).
    pub pipe: Pipe,
    /// On-chip accesses (GM accesses never conflict inside a stage).
    pub accesses: Vec<(Access, Region)>,
}

/// A conditional branch out of a loop or past a guarded block: taken when
/// `ra <cond> b`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Branch {
    /// The condition.
    pub cond: Cond,
    /// The register compared.
    pub ra: Reg,
    /// What it is compared with.
    pub b: Operand,
}

impl Branch {
    /// Taken when `ra <cond> b`.
    pub fn new(cond: Cond, ra: Reg, b: impl Into<Operand>) -> Branch {
        Branch {
            cond,
            ra,
            b: b.into(),
        }
    }
}

/// A piece of a structured program.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// An instruction with on-chip accesses (any pipe, the scalar unit's
    /// loads and stores too).
    Op(MicroOp),
    /// A scalar instruction with no on-chip access.
    Scalar(Inst),
    /// `top: [exit branches]; body…; latch…; jump top; end:`.
    Loop {
        /// Branches that leave the loop (checked before each iteration).
        exit_if: Vec<Branch>,
        /// The body.
        body: Vec<Item>,
        /// Scalar instructions at the end of each iteration.
        latch: Vec<Item>,
    },
    /// `[skip branches]; body…; skip:` — the body runs when no branch is
    /// taken.
    Guard {
        /// Branches past the body.
        skip_if: Vec<Branch>,
        /// The body.
        body: Vec<Item>,
    },
    /// A synchronisation instruction (inserted by the sync pass).
    Sync(Sync),
}

/// A synchronisation instruction the sync pass inserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sync {
    /// Set event (`src` → `dst`, id).
    Set(Pipe, Pipe, u32),
    /// Wait for event (`src` → `dst`, id).
    Wait(Pipe, Pipe, u32),
    /// Order a pipe's later instructions after its earlier ones.
    Barrier(Pipe),
}

/// Places scalar instructions (no on-chip access) in a program.
pub struct ScalarAt<'a>(&'a mut Vec<Item>);

impl InstBuilder for ScalarAt<'_> {
    fn build(self, inst: Inst) {
        self.0.push(Item::Scalar(inst));
    }
}

/// Places an instruction with its on-chip accesses in a program.
pub struct OpAt<'a> {
    items: &'a mut Vec<Item>,
    accesses: Vec<(Access, Region)>,
}

impl InstBuilder for OpAt<'_> {
    fn build(self, inst: Inst) {
        self.items.push(Item::Op(MicroOp {
            pipe: inst.pipe(),
            inst,
            accesses: self.accesses,
        }));
    }
}

/// `while counter < bound { body; counter += 1 }`.
pub fn count_up(items: &mut Vec<Item>, counter: Reg, bound: impl Into<Operand>, body: Vec<Item>) {
    let mut latch = Vec::new();
    latch.ins().s_alu(AluOp::Add, counter, counter, 1u64);
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, counter, bound)],
        body,
        latch,
    });
}

/// Building a structured program.
pub trait Build {
    /// A scalar instruction with no on-chip access.
    fn ins(&mut self) -> ScalarAt<'_>;
    /// An instruction with these on-chip accesses.
    fn op(&mut self, accesses: Vec<(Access, Region)>) -> OpAt<'_>;
}

impl Build for Vec<Item> {
    fn ins(&mut self) -> ScalarAt<'_> {
        ScalarAt(self)
    }
    fn op(&mut self, accesses: Vec<(Access, Region)>) -> OpAt<'_> {
        OpAt {
            items: self,
            accesses,
        }
    }
}

/// Scalar registers for a template: `r0`–`r30`, handed out in order
/// ([`SCRATCH`] is the legaliser's).
#[derive(Debug, Default)]
pub struct Regs {
    next: u8,
}

impl Regs {
    /// How many registers are left.
    pub fn left(&self) -> u8 {
        SCRATCH.0.saturating_sub(self.next)
    }

    /// A fresh register.
    pub fn get(&mut self) -> Result<Reg, String> {
        if self.next >= SCRATCH.0 {
            return Err("the stage template ran out of scalar registers".to_string());
        }
        let r = Reg(self.next);
        self.next += 1;
        Ok(r)
    }
}

/// The linear form of a structured program, before legalisation.
#[derive(Default)]
struct Linear {
    insts: Vec<Inst>,
    /// Where each label stands (an index into `insts`).
    labels: Vec<Option<usize>>,
    /// Out-of-line blocks, laid out after the program's `end`: the
    /// synchronisation of a skipped guard body (entry label, the syncs, the
    /// label to return to).
    skipped: Vec<(Label, Vec<Item>, Label)>,
}

impl Linear {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() as u32 - 1)
    }

    fn place(&mut self, l: Label) {
        self.labels[l.0 as usize] = Some(self.insts.len());
    }

    fn branches(&mut self, bs: &[Branch], to: Label) {
        for b in bs {
            self.insts.push(Inst::SBr {
                cond: b.cond,
                ra: b.ra,
                b: b.b,
                target: to,
            });
        }
    }

    fn items(&mut self, items: &[Item]) -> Result<(), String> {
        for it in items {
            match it {
                Item::Op(op) => self.insts.push(op.inst),
                Item::Scalar(inst) => {
                    if inst.pipe() != Pipe::S {
                        return Err(format!(
                            "internal: {:?} is not a scalar instruction but declares no on-chip access",
                            inst.opcode()
                        ));
                    }
                    self.insts.push(*inst);
                }
                Item::Sync(s) => self.insts.push(match *s {
                    Sync::Set(src, dst, id) => Inst::SyncSet {
                        src,
                        dst,
                        id: u64::from(id),
                    },
                    Sync::Wait(src, dst, id) => Inst::SyncWait {
                        src,
                        dst,
                        id: u64::from(id),
                    },
                    Sync::Barrier(pipe) => Inst::SyncBarrier { pipe },
                }),
                Item::Loop {
                    exit_if,
                    body,
                    latch,
                } => {
                    let (top, end) = (self.label(), self.label());
                    self.place(top);
                    self.branches(exit_if, end);
                    self.items(body)?;
                    self.items(latch)?;
                    self.insts.push(Inst::SJmp { target: top });
                    self.place(end);
                }
                Item::Guard { skip_if, body } => {
                    // A skipped body still runs its synchronisation, in
                    // order: every pipe then sees the same sequence of
                    // events whether the guard runs or not, so the
                    // orderings a later event relies on (a producer
                    // rewriting a buffer only after its consumer released
                    // it) hold in both cases, and an event id shared by
                    // several events is never set twice. Those syncs stand
                    // out of line, so a body that runs pays nothing.
                    let end = self.label();
                    match guard_syncs(body).map(without_scalar_pairs) {
                        Some(syncs) if !syncs.is_empty() => {
                            let skipped = self.label();
                            self.branches(skip_if, skipped);
                            self.skipped.push((skipped, syncs, end));
                        }
                        _ => self.branches(skip_if, end),
                    }
                    self.items(body)?;
                    self.place(end);
                }
            }
        }
        Ok(())
    }
}

/// The events a guard's body sets and waits for, in program order (those
/// of nested guards included), or `None` when a loop inside has some: how
/// often it would run is not known without the body.
fn guard_syncs(body: &[Item]) -> Option<Vec<Item>> {
    let mut out = Vec::new();
    for it in body {
        match it {
            // A barrier orders a pipe's own instructions: with the body's
            // skipped there is nothing for it to order.
            Item::Sync(Sync::Barrier(_)) => {}
            Item::Sync(_) => out.push(it.clone()),
            Item::Guard { body, .. } => out.extend(guard_syncs(body)?),
            Item::Loop { body, latch, .. } => {
                if !guard_syncs(body)?.is_empty() || !guard_syncs(latch)?.is_empty() {
                    return None;
                }
            }
            Item::Op(_) | Item::Scalar(_) => {}
        }
    }
    Some(out)
}

/// A skipped body's syncs less each event into the scalar unit that the
/// body both sets and waits for: the pair leaves the event as it found it,
/// and the scalar unit's wait orders only the body's own scalar reads (no
/// other pipe's ordering rests on it: events cover needs of their own
/// container only, and scalar accesses need none). Running it would stall
/// the scalar unit, which issues every pipe's instructions, until the
/// setting pipe drains.
fn without_scalar_pairs(syncs: Vec<Item>) -> Vec<Item> {
    let mut keep = vec![true; syncs.len()];
    for (i, it) in syncs.iter().enumerate() {
        let Item::Sync(Sync::Set(src, Pipe::S, id)) = *it else {
            continue;
        };
        let next = (i + 1..syncs.len()).find(|&j| {
            matches!(syncs[j], Item::Sync(Sync::Set(a, Pipe::S, b) | Sync::Wait(a, Pipe::S, b))
                if (a, b) == (src, id))
        });
        if let Some(j) = next
            && matches!(syncs[j], Item::Sync(Sync::Wait(..)))
        {
            keep[i] = false;
            keep[j] = false;
        }
    }
    syncs
        .into_iter()
        .zip(keep)
        .filter_map(|(it, k)| k.then_some(it))
        .collect()
}

/// Lays out a structured program as a section's instructions, ending in
/// `end`: loops and guards become branches (a guard's skipped syncs
/// follow `end`), labels resolve to instruction
/// indices, and an immediate too wide for its field is loaded into
/// [`SCRATCH`] by an `s.li` just before its instruction.
pub fn lower(items: &[Item]) -> Result<Vec<Insn>, String> {
    let mut lin = Linear::default();
    lin.items(items)?;
    lin.insts.push(Inst::End {});
    for (entry, syncs, back) in std::mem::take(&mut lin.skipped) {
        lin.place(entry);
        lin.items(&syncs)?;
        lin.insts.push(Inst::SJmp { target: back });
    }
    // Where each linear instruction lands once the wide immediates have
    // their `s.li` (positions do not depend on label values).
    let mut at = Vec::with_capacity(lin.insts.len() + 1);
    let mut n = 0u32;
    let any = |_: Label| Some(0);
    for inst in &lin.insts {
        at.push(n);
        let mut cx = Cx::new(&any);
        inst.legalize(&mut cx)?;
        n += 1 + u32::from(cx.take_wide().is_some());
    }
    at.push(n);
    let labels = |l: Label| {
        lin.labels
            .get(l.0 as usize)
            .copied()
            .flatten()
            .map(|i| at[i])
    };
    let mut out = Vec::with_capacity(n as usize);
    for inst in &lin.insts {
        let mut cx = Cx::new(&labels);
        let insn = inst.legalize(&mut cx)?;
        if let Some(v) = cx.take_wide() {
            out.push(
                Inst::SLi {
                    rd: SCRATCH,
                    imm: i128::from(v),
                }
                .legalize(&mut Cx::new(&labels))?,
            );
        }
        out.push(insn);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: Pipe, b: Pipe, id: u32) -> Item {
        Item::Sync(Sync::Set(a, b, id))
    }

    fn wait(a: Pipe, b: Pipe, id: u32) -> Item {
        Item::Sync(Sync::Wait(a, b, id))
    }

    #[test]
    fn a_skipped_body_drops_only_its_own_scalar_pairs() {
        let syncs = vec![
            // Set and waited for inside the body: dropped.
            set(Pipe::V, Pipe::S, 2),
            set(Pipe::Mte3, Pipe::V, 1),
            wait(Pipe::V, Pipe::S, 2),
            // Between two other pipes: kept.
            wait(Pipe::Mte3, Pipe::V, 1),
            // A wait for a set before the body, and a set for a wait after
            // it: kept.
            wait(Pipe::Mte2, Pipe::S, 0),
            set(Pipe::V, Pipe::S, 3),
        ];
        assert_eq!(
            without_scalar_pairs(syncs),
            vec![
                set(Pipe::Mte3, Pipe::V, 1),
                wait(Pipe::Mte3, Pipe::V, 1),
                wait(Pipe::Mte2, Pipe::S, 0),
                set(Pipe::V, Pipe::S, 3),
            ]
        );
    }

    #[test]
    fn a_scalar_pair_is_a_set_then_a_wait_of_one_id() {
        // A wait for a set before the body, then the body's own pair of
        // the same id, with another id's pair between: both pairs go.
        let syncs = vec![
            wait(Pipe::V, Pipe::S, 0),
            set(Pipe::V, Pipe::S, 0),
            set(Pipe::Mte2, Pipe::S, 0),
            wait(Pipe::Mte2, Pipe::S, 0),
            wait(Pipe::V, Pipe::S, 0),
        ];
        assert_eq!(without_scalar_pairs(syncs), vec![wait(Pipe::V, Pipe::S, 0)]);
    }
}
