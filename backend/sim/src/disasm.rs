//! The disassembler: [`Program`] → assembly text that assembles back to the
//! same program (and so to the same bytecode).
//!
//! Branch targets are printed as generated labels `.L<index>`, defined on the
//! line of the instruction they name. A program with several launches prints
//! a `.launch` line (then its `.block_dim`) before each launch's sections; a
//! single-launch program prints no `.launch`, exactly as before launches
//! existed.

use crate::program::Program;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Disassembles a program.
pub fn disassemble(p: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; tessera bytecode, machine {} (fingerprint {:#018x})",
        p.machine, p.fingerprint
    );
    let _ = writeln!(out, ".kernel {}", p.kernel);
    let _ = writeln!(
        out,
        ".machine {}",
        crate::asm::machine_name_text(&p.machine)
    );
    for t in &p.params {
        let _ = writeln!(out, ".param {} {}", t.name, t.type_text());
    }
    for t in &p.results {
        let _ = writeln!(out, ".result {} {}", t.name, t.type_text());
    }
    let several = p.launches.len() > 1;
    if !several && let Some(l) = p.launches.first() {
        let _ = writeln!(out, ".block_dim {}", l.block_dim);
    }
    let _ = writeln!(out, ".workspace {}", p.workspace);
    for (li, l) in p.launches.iter().enumerate() {
        if several {
            let _ = writeln!(out, "\n.launch ; {li}");
            let _ = writeln!(out, ".block_dim {}", l.block_dim);
        }
        for s in &l.sections {
            let _ = writeln!(out, "\n.{}", s.kind.name());
            let targets: BTreeSet<u32> = s.insns.iter().filter_map(|i| i.target()).collect();
            for (i, insn) in s.insns.iter().enumerate() {
                if targets.contains(&(i as u32)) {
                    let _ = writeln!(out, ".L{i}:");
                }
                let _ = writeln!(out, "    {}", insn.text());
            }
        }
    }
    out
}
