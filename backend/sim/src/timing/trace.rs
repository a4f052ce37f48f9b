//! The timeline: one slice per executed instruction, flag waits and flows, and
//! its Chrome trace-event JSON (Perfetto, chrome://tracing).
//!
//! Tracks: one process per core (`AIC 0`, `AIV 3`, `core 5`), one thread per
//! pipe. Slices are complete events (`ph: "X"`) named by mnemonic with the
//! full assembly text, block and visibility time in `args`; a `sync.wait` that
//! had to wait is a slice named `wait …` covering the wait (one that did not is
//! an ordinary slice); every satisfied event is a flow (`ph: "s"` inside the
//! set's slice, `ph: "f"` inside the wait's). Times are µs at the machine's
//! clock, launch included, printed to 0.1 ns (finer on a clock above 10 GHz,
//! so that a cycle is at least one unit); slices that meet on a track
//! meet exactly in the trace.
//!
//! A program's launches run back to back: the timeline's cycles count from the
//! start of the first launch's kernel (after its launch cost), so the events
//! of launch `i` are shifted by its [`LaunchMark::start`]. A `launches` track
//! (on top) has one slice per launch, from the start of its launch cost to the
//! end of its last block, so the boundaries are visible. Core tracks are named
//! chip-wide (`AIC 3` is the same track in every launch that uses it).

use super::Engine;
use crate::isa::Pipe;
use std::fmt::Write as _;

/// One executed instruction (or a wait).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Global core index.
    pub core: u32,
    /// Pipe.
    pub pipe: Pipe,
    /// Instruction index.
    pub pc: u32,
    /// Block the core was running.
    pub block: u32,
    /// Launch the instruction belongs to.
    pub launch: u32,
    /// Start cycle (from the first launch's kernel start, after its launch cost).
    pub start: u64,
    /// Cycle the pipe was free again.
    pub end: u64,
    /// Cycle the result was visible.
    pub visible: u64,
    /// The assembly text (a wait slice starts with `wait `).
    pub text: String,
}

/// A flow from a set to the wait it released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Id.
    pub id: u64,
    /// Setter (core, pipe, cycle).
    pub from: (u32, Pipe, u64),
    /// Waiter (core, pipe, cycle).
    pub to: (u32, Pipe, u64),
}

/// Where one launch lies on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchMark {
    /// Its logical blocks.
    pub block_dim: u32,
    /// Its waves.
    pub waves: u32,
    /// Cycle, from the program start, at which its launch cost begins (the sum
    /// of the earlier launches' cycles). Its kernel starts `launch_cycles`
    /// later, which in timeline cycles (counted from the first kernel start)
    /// is `start` itself: its events are shifted by `start`.
    pub start: u64,
    /// Its launch cost.
    pub launch_cycles: u64,
    /// Its span (launch cost excluded).
    pub span: u64,
}

/// Everything recorded for the timeline.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Slices, in execution order (launch by launch).
    pub slices: Vec<Slice>,
    /// Flows.
    pub flows: Vec<Flow>,
    /// The launches, in order (filled by the driver).
    pub launches: Vec<LaunchMark>,
}

fn esc(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Engine<'_> {
    /// Records a slice on the timeline, when one is kept: instruction `pc`
    /// of core `c`'s block `block` occupied `pipe` over `[start, end)`, its
    /// result visible at `visible`; `text` is made only then.
    pub(super) fn record(
        &mut self,
        (c, pipe, pc, block): (usize, Pipe, u32, u32),
        [start, end, visible]: [u64; 3],
        text: impl FnOnce(&Self) -> String,
    ) {
        if self.timeline.is_none() {
            return;
        }
        let text = text(self);
        let launch = self.li as u32;
        if let Some(tl) = self.timeline.as_mut() {
            tl.slices.push(Slice {
                core: c as u32,
                pipe,
                pc,
                block,
                launch,
                start,
                end,
                visible,
                text,
            });
        }
    }
}

impl Timeline {
    /// Appends the timeline of one launch whose kernel starts at timeline
    /// cycle `shift`, with its core `i` named `names[i]`; `all_names` holds the
    /// chip-wide names, extended with those not seen yet, and the appended
    /// events' cores index it.
    pub fn append(
        &mut self,
        other: Timeline,
        names: &[String],
        all_names: &mut Vec<String>,
        shift: u64,
    ) {
        let map: Vec<u32> = names
            .iter()
            .map(|n| match all_names.iter().position(|a| a == n) {
                Some(i) => i as u32,
                None => {
                    all_names.push(n.clone());
                    (all_names.len() - 1) as u32
                }
            })
            .collect();
        let core = |c: u32| map.get(c as usize).copied().unwrap_or(c);
        self.slices.extend(other.slices.into_iter().map(|s| Slice {
            core: core(s.core),
            start: s.start + shift,
            end: s.end + shift,
            visible: s.visible + shift,
            ..s
        }));
        // Flow ids restart in every launch: keep them unique.
        let base = self.flows.iter().map(|f| f.id).max().unwrap_or(0);
        self.flows.extend(other.flows.into_iter().map(|f| Flow {
            id: f.id + base,
            from: (core(f.from.0), f.from.1, f.from.2 + shift),
            to: (core(f.to.0), f.to.1, f.to.2 + shift),
        }));
    }

    /// Chrome trace-event JSON. `names[i]` names core `i`; `launch` is the
    /// launch cost (timeline cycle 0 is `launch` cycles after the program start).
    pub fn to_chrome_json(&self, names: &[String], clock_ghz: f64, launch: u64) -> String {
        // Times print in microseconds with `digits` decimals: 4 (0.1 ns), or
        // more where a cycle is shorter than that (a clock above 10 GHz), so
        // that a cycle is at least one unit and no slice's duration rounds
        // to 0. They are rounded once per cycle count, and a slice's
        // duration is the difference of its rounded ends: slices that meet
        // on a track meet in the trace too, never overlap by a rounding.
        let digits = trace_digits(clock_ghz);
        let units = 10f64.powi(digits as i32 - 3);
        let scale = 10u64.pow(digits);
        let tick_abs = |c: u64| (c as f64 * units / clock_ghz).round() as u64;
        let tick = |c: u64| tick_abs(c + launch);
        let us = |t: u64| format!("{}.{:0w$}", t / scale, t % scale, w = digits as usize);
        let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
        let mut first = true;
        let mut push = |out: &mut String, s: String| {
            if !first {
                out.push_str(",\n");
            }
            first = false;
            out.push_str(&s);
        };
        let mut used: Vec<(u32, Pipe)> = self.slices.iter().map(|s| (s.core, s.pipe)).collect();
        used.sort();
        used.dedup();
        let mut cores: Vec<u32> = used.iter().map(|u| u.0).collect();
        cores.dedup();
        for &c in &cores {
            let name = names
                .get(c as usize)
                .cloned()
                .unwrap_or_else(|| format!("core {c}"));
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{c},\"tid\":0,\"args\":{{\"name\":{}}}}}",
                    esc(&name)
                ),
            );
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{c},\"tid\":0,\"args\":{{\"sort_index\":{c}}}}}"
                ),
            );
        }
        if !self.launches.is_empty() {
            // The `launches` track: a process after every core, sorted first.
            let pid = names.len().max(cores.last().map_or(0, |&c| c as usize + 1));
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"launches\"}}}}"
                ),
            );
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":-1}}}}"
                ),
            );
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"launches\"}}}}"
                ),
            );
            for (i, l) in self.launches.iter().enumerate() {
                let end = l.start + l.launch_cycles + l.span;
                push(
                    &mut out,
                    format!(
                        "{{\"ph\":\"X\",\"pid\":{pid},\"tid\":0,\"ts\":{},\"dur\":{},\"name\":\"launch {i}\",\"cat\":\"launch\",\"args\":{{\"launch\":{i},\"block_dim\":{},\"waves\":{},\"start_cycle\":{},\"launch_cycles\":{},\"span_cycles\":{},\"end_cycle\":{end}}}}}",
                        us(tick_abs(l.start)),
                        us(tick_abs(end) - tick_abs(l.start)),
                        l.block_dim,
                        l.waves,
                        l.start,
                        l.launch_cycles,
                        l.span
                    ),
                );
            }
        }
        for &(c, p) in &used {
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{c},\"tid\":{},\"args\":{{\"name\":\"{}\"}}}}",
                    p.index(),
                    p.report_name()
                ),
            );
        }
        for s in &self.slices {
            let name = s.text.split(' ').next().unwrap_or("");
            let name = if s.text.starts_with("wait ") {
                format!("wait {}", s.text.split(' ').nth(1).unwrap_or(""))
            } else {
                name.to_string()
            };
            let mut e = String::new();
            let _ = write!(
                e,
                "{{\"ph\":\"X\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{},\"name\":{},\"args\":{{\"insn\":{},\"pc\":{},\"launch\":{},\"block\":{},\"start_cycle\":{},\"end_cycle\":{},\"visible_cycle\":{}}}}}",
                s.core,
                s.pipe.index(),
                us(tick(s.start)),
                us(tick(s.end) - tick(s.start)),
                esc(&name),
                esc(&s.text),
                s.pc,
                s.launch,
                s.block,
                s.start,
                s.end,
                s.visible
            );
            push(&mut out, e);
        }
        for f in &self.flows {
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"s\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{},\"name\":\"flag\",\"cat\":\"flag\"}}",
                    f.id,
                    f.from.0,
                    f.from.1.index(),
                    us(tick(f.from.2))
                ),
            );
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"f\",\"bp\":\"e\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{},\"name\":\"flag\",\"cat\":\"flag\"}}",
                    f.id,
                    f.to.0,
                    f.to.1.index(),
                    us(tick(f.to.2))
                ),
            );
        }
        out.push_str("\n]}\n");
        out
    }
}

/// The decimals of a trace's microseconds at `clock_ghz`: 4 (0.1 ns), or
/// as many as make a cycle at least one unit (`10^(digits − 3) ≥ clock_ghz`).
pub(crate) fn trace_digits(clock_ghz: f64) -> u32 {
    let mut digits = 4;
    while 10f64.powi(digits as i32 - 3) < clock_ghz && digits < 9 {
        digits += 1;
    }
    digits
}
