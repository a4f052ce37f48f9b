//! The timeline: one slice per executed instruction, flag waits and flows, and
//! its Chrome trace-event JSON (Perfetto, chrome://tracing).
//!
//! Tracks: one process per core (`AIC 0`, `AIV 3`, `core 5`), one thread per
//! pipe. Slices are complete events (`ph: "X"`) named by mnemonic with the
//! full assembly text, block and visibility time in `args`; a `sync.wait` that
//! had to wait is a slice named `wait …` covering the wait; every satisfied
//! event is a flow (`ph: "s"` at the set, `ph: "f"` at the wait). Times are µs
//! at the machine's clock, launch included.

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
    /// Start cycle (from the kernel start, after launch).
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

/// Everything recorded for the timeline.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Slices, in execution order.
    pub slices: Vec<Slice>,
    /// Flows.
    pub flows: Vec<Flow>,
}

fn esc(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Timeline {
    /// Chrome trace-event JSON. `names[i]` names core `i`.
    pub fn to_chrome_json(&self, names: &[String], clock_ghz: f64, launch: u64) -> String {
        let us = |c: u64| (c + launch) as f64 / (clock_ghz * 1000.0);
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
                "{{\"ph\":\"X\",\"pid\":{},\"tid\":{},\"ts\":{:.4},\"dur\":{:.4},\"name\":{},\"args\":{{\"insn\":{},\"pc\":{},\"block\":{},\"start_cycle\":{},\"end_cycle\":{},\"visible_cycle\":{}}}}}",
                s.core,
                s.pipe.index(),
                us(s.start),
                us(s.end) - us(s.start),
                esc(&name),
                esc(&s.text),
                s.pc,
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
                    "{{\"ph\":\"s\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{:.4},\"name\":\"flag\",\"cat\":\"flag\"}}",
                    f.id,
                    f.from.0,
                    f.from.1.index(),
                    us(f.from.2)
                ),
            );
            push(
                &mut out,
                format!(
                    "{{\"ph\":\"f\",\"bp\":\"e\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{:.4},\"name\":\"flag\",\"cat\":\"flag\"}}",
                    f.id,
                    f.to.0,
                    f.to.1.index(),
                    us(f.to.2)
                ),
            );
        }
        out.push_str("\n]}\n");
        out
    }
}
