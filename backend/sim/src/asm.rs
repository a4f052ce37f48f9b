//! The assembler: NPU assembly text → [`Program`].
//!
//! Syntax (full reference: `docs/assembly.md`): one instruction or directive
//! per line, `;` or `//` comments, labels `name:` (per section), directives
//! `.kernel`, `.machine`, `.param`, `.result`, `.workspace`, `.equ`, `.launch`
//! (starts a new launch), `.block_dim` and section starts `.aic`, `.aiv`,
//! `.core` (these three belong to the current launch; a file without
//! `.launch` is one launch). Immediates are constant
//! expressions over `.equ` names. Errors are values with a code (E08xx), a byte
//! span, a line and a column; every independent error is reported. The
//! assembler never panics on any input.

use crate::isa::{Dt, Insn, ParseCtx, ParseFail, TABLE, is_label};
use crate::machine::Machine;
use crate::program::{Launch, Program, Section, TensorDecl};
use crate::syntax::{LineIndex, eval_int};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// An assembly error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    /// `E0801`…`E0808` (see `docs/assembly.md`).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Byte range in the source.
    pub span: Range<usize>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error[{}]: {}:{}: {}",
            self.code, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for AsmError {}

/// Assembler options.
#[derive(Clone, Debug, Default)]
pub struct AsmOptions {
    /// Constants that override the file's `.equ` of the same name (like `-D`).
    pub defines: Vec<(String, i64)>,
}

/// Assembles `src` for `machine`.
pub fn assemble(src: &str, machine: &Machine) -> Result<Program, Vec<AsmError>> {
    assemble_with(src, machine, &AsmOptions::default())
}

/// Assembles `src` for `machine` with options.
pub fn assemble_with(
    src: &str,
    machine: &Machine,
    opts: &AsmOptions,
) -> Result<Program, Vec<AsmError>> {
    Assembler::new(src, machine, opts).run()
}

/// Every directive the assembler accepts (all documented in `docs/assembly.md`).
pub const DIRECTIVES: &[&str] = &[
    ".kernel",
    ".machine",
    ".param",
    ".result",
    ".workspace",
    ".equ",
    ".launch",
    ".block_dim",
    ".aic",
    ".aiv",
    ".core",
];

/// Whether `s` is an identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------
// The assembler proper.
// ---------------------------------------------------------------------------

struct Line<'a> {
    /// Byte offset of the line in the source.
    start: usize,
    /// The line without its comment.
    text: &'a str,
}

/// One instruction line: (line index, byte offset of the mnemonic, mnemonic, operands with offsets).
type InsnLine = (usize, usize, String, Vec<(usize, String)>);

#[derive(Default)]
struct SectionBuild {
    kind: Option<crate::isa::CoreKind>,
    labels: HashMap<String, u32>,
    /// (line index, byte offset of the mnemonic, mnemonic, operands with offsets)
    lines: Vec<InsnLine>,
}

/// One launch being assembled.
#[derive(Default)]
struct LaunchBuild {
    /// Its `.block_dim`, if given.
    block_dim: Option<u32>,
    sections: Vec<SectionBuild>,
    /// Started by a `.launch` directive (at this span), not implicitly at the
    /// top of the file.
    started: Option<Range<usize>>,
}

impl LaunchBuild {
    fn is_untouched(&self) -> bool {
        self.block_dim.is_none() && self.sections.is_empty()
    }
}

struct Assembler<'a> {
    src: &'a str,
    machine: &'a Machine,
    opts: &'a AsmOptions,
    errors: Vec<AsmError>,
    consts: HashMap<String, i64>,
    lines: LineIndex,
}

fn split_operands(s: &str, base: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return out;
    }
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push((start, s[start..i].to_string()));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, s[start..].to_string()));
    out.into_iter()
        .map(|(off, t)| {
            let lead = t.len() - t.trim_start().len();
            (base + off + lead, t.trim().to_string())
        })
        .collect()
}

impl<'a> Assembler<'a> {
    fn new(src: &'a str, machine: &'a Machine, opts: &'a AsmOptions) -> Self {
        Assembler {
            src,
            machine,
            opts,
            errors: Vec::new(),
            consts: HashMap::new(),
            lines: LineIndex::new(src),
        }
    }

    fn err(&mut self, code: &'static str, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.lines.line_col(self.src, span.start);
        self.errors.push(AsmError {
            code,
            message: message.into(),
            span,
            line,
            col,
        });
    }

    fn lines(&self) -> Vec<Line<'a>> {
        let mut out = Vec::new();
        let mut start = 0;
        for raw in self.src.split_inclusive('\n') {
            let text = raw.trim_end_matches(['\n', '\r']);
            let text = &text[..comment_start(text)];
            out.push(Line { start, text });
            start += raw.len();
        }
        out
    }

    fn run(mut self) -> Result<Program, Vec<AsmError>> {
        let lines = self.lines();
        let mut kernel: Option<String> = None;
        let mut machine_name: Option<(String, Range<usize>)> = None;
        let mut params: Vec<TensorDecl> = Vec::new();
        let mut results: Vec<TensorDecl> = Vec::new();
        let mut workspace: u64 = 0;
        // Where each parameter, each result and the workspace are declared,
        // for the errors of the program's validation.
        let (mut param_spans, mut result_spans) = (Vec::new(), Vec::new());
        let mut workspace_span = 0..0;
        // The text before the first `.launch` is launch 0; a `.launch` starts a
        // new launch, except that the first one of a file that has not yet
        // given a `.block_dim` or a section names launch 0 itself.
        let mut launches: Vec<LaunchBuild> = vec![LaunchBuild::default()];
        let overridden: HashMap<String, i64> = self.opts.defines.iter().cloned().collect();
        self.consts.extend(overridden.clone());

        for (li, line) in lines.iter().enumerate() {
            let mut rest = line.text;
            let mut off = line.start;
            // Labels.
            loop {
                let t = rest.trim_start();
                off += rest.len() - t.len();
                rest = t;
                let word_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                let word = &rest[..word_end];
                let Some(name) = word.strip_suffix(':') else {
                    break;
                };
                let span = off..off + word.len();
                if !is_label(name) {
                    self.err("E0803", span, format!("`{name}` is not a valid label name"));
                } else if let Some(sec) = launches.last_mut().and_then(|l| l.sections.last_mut()) {
                    let idx = sec.lines.len() as u32;
                    if sec.labels.insert(name.to_string(), idx).is_some() {
                        self.err(
                            "E0805",
                            span,
                            format!("label `{name}` is defined twice in this section"),
                        );
                    }
                } else {
                    self.err(
                        "E0807",
                        span,
                        "a label must be inside a section (.aic, .aiv or .core)",
                    );
                }
                rest = &rest[word_end..];
                off += word_end;
            }
            let rest_trim = rest.trim();
            if rest_trim.is_empty() {
                continue;
            }
            let lead = rest.len() - rest.trim_start().len();
            let off = off + lead;
            let word_end = rest_trim
                .find(|c: char| c.is_whitespace())
                .unwrap_or(rest_trim.len());
            let word = &rest_trim[..word_end];
            let args = &rest_trim[word_end..];
            let args_off = off + word_end + (args.len() - args.trim_start().len());
            let args = args.trim();
            let span = off..off + rest_trim.len();
            if let Some(dir) = word.strip_prefix('.') {
                match dir {
                    "kernel" => {
                        if !is_ident(args) {
                            self.err("E0807", span, "`.kernel` takes a kernel name");
                        } else if kernel.is_some() {
                            self.err("E0805", span, "`.kernel` is given twice");
                        } else {
                            kernel = Some(args.to_string());
                        }
                    }
                    "machine" => match parse_machine_name(args) {
                        Some(name) if !name.is_empty() => machine_name = Some((name, span)),
                        _ => self.err(
                            "E0807",
                            span,
                            "`.machine` takes a machine name (quoted, `\"…\"`, if it holds `;`, `//`, `\"` or `\\`)",
                        ),
                    },
                    "param" | "result" => match self.parse_decl(args) {
                        Ok(d) => {
                            // Parameters and results are two namespaces (a
                            // kernel may return a result named like a
                            // parameter); names repeat in neither.
                            let same = if dir == "param" { &params } else { &results };
                            if same.iter().any(|p| p.name == d.name) {
                                self.err(
                                    "E0805",
                                    span,
                                    format!("tensor `{}` is declared twice", d.name),
                                );
                            } else if dir == "param" {
                                if !results.is_empty() {
                                    self.err("E0807", span, "parameters must come before results");
                                }
                                params.push(d);
                                param_spans.push(args_off..args_off + args.len());
                            } else {
                                results.push(d);
                                result_spans.push(args_off..args_off + args.len());
                            }
                        }
                        Err(e) => self.err("E0807", args_off..args_off + args.len(), e),
                    },
                    "launch" => {
                        if !args.is_empty() {
                            self.err("E0807", span.clone(), "`.launch` takes no arguments");
                        }
                        let reuse = launches.len() == 1
                            && launches[0].started.is_none()
                            && launches[0].is_untouched();
                        if reuse {
                            launches[0].started = Some(span);
                        } else if launches.len() >= crate::program::MAX_LAUNCHES {
                            self.err(
                                "E0807",
                                span,
                                format!(
                                    "more than {} launches (the rest of the file is not read)",
                                    crate::program::MAX_LAUNCHES
                                ),
                            );
                            break;
                        } else {
                            launches.push(LaunchBuild {
                                started: Some(span),
                                ..Default::default()
                            });
                        }
                    }
                    "block_dim" => match eval_int(args, &self.consts) {
                        Ok(v) if (1..=i64::from(crate::program::MAX_BLOCK_DIM)).contains(&v) => {
                            if let Some(l) = launches.last_mut() {
                                if l.block_dim.is_some() {
                                    self.err(
                                        "E0805",
                                        span,
                                        "`.block_dim` is given twice for this launch (start the next one with `.launch`)",
                                    );
                                } else {
                                    l.block_dim = Some(v as u32);
                                }
                            }
                        }
                        Ok(v) => self.err(
                            "E0807",
                            span,
                            format!("block_dim must be in 1..=65535, got {v}"),
                        ),
                        Err(e) => self.err("E0803", args_off..args_off + args.len(), e),
                    },
                    "workspace" => match eval_int(args, &self.consts) {
                        Ok(v) if v >= 0 && (v as u64) <= crate::program::MAX_GM_BYTES => {
                            workspace = v as u64;
                            workspace_span = args_off..args_off + args.len();
                        }
                        Ok(v) => self.err(
                            "E0807",
                            span,
                            format!("workspace must be in 0..=2^40 bytes, got {v}"),
                        ),
                        Err(e) => self.err("E0803", args_off..args_off + args.len(), e),
                    },
                    "equ" => {
                        let (name, expr) = match args.split_once(',') {
                            Some((n, e)) => (n.trim(), e),
                            None => ("", ""),
                        };
                        if !is_ident(name) {
                            self.err("E0807", span, "`.equ` is `.equ NAME, EXPR`");
                        } else if overridden.contains_key(name) {
                            // A define from the options wins.
                        } else {
                            match eval_int(expr, &self.consts) {
                                Ok(v) => {
                                    if self.consts.insert(name.to_string(), v).is_some() {
                                        self.err(
                                            "E0805",
                                            span,
                                            format!("constant `{name}` is defined twice"),
                                        );
                                    }
                                }
                                Err(e) => self.err("E0803", args_off..args_off + args.len(), e),
                            }
                        }
                    }
                    "aic" | "aiv" | "core" => {
                        if !args.is_empty() {
                            self.err(
                                "E0807",
                                span.clone(),
                                format!("`.{dir}` takes no arguments"),
                            );
                        }
                        let kind = match dir {
                            "aic" => crate::isa::CoreKind::Aic,
                            "aiv" => crate::isa::CoreKind::Aiv,
                            _ => crate::isa::CoreKind::Core,
                        };
                        if !kind.on(self.machine.organisation) {
                            self.err(
                                "E0806",
                                span,
                                format!(
                                    "section `.{dir}` does not exist on `{}`",
                                    self.machine.name
                                ),
                            );
                        } else if launches
                            .last()
                            .is_some_and(|l| l.sections.iter().any(|s| s.kind == Some(kind)))
                        {
                            let in_launch = if launches.len() > 1 {
                                " in this launch"
                            } else {
                                ""
                            };
                            self.err(
                                "E0805",
                                span,
                                format!("section `.{dir}` appears twice{in_launch}"),
                            );
                        }
                        if let Some(l) = launches.last_mut() {
                            l.sections.push(SectionBuild {
                                kind: Some(kind),
                                ..Default::default()
                            });
                        }
                    }
                    _ => self.err(
                        "E0801",
                        off..off + word.len(),
                        format!("unknown directive `{word}`"),
                    ),
                }
                continue;
            }
            let Some(sec) = launches.last_mut().and_then(|l| l.sections.last_mut()) else {
                self.err(
                    "E0807",
                    span,
                    "an instruction must be inside a section (.aic, .aiv or .core)",
                );
                continue;
            };
            sec.lines
                .push((li, off, word.to_string(), split_operands(args, args_off)));
        }

        if let Some((name, span)) = &machine_name
            && name != &self.machine.name
        {
            let msg = format!(
                "the file is for machine `{name}` but the assembler targets `{}`",
                self.machine.name
            );
            self.err("E0808", span.clone(), msg);
        }
        let Some(kernel) = kernel else {
            self.err("E0807", 0..0, "missing `.kernel NAME`");
            return Err(self.errors);
        };
        let several = launches.len() > 1;
        let mut out_launches = Vec::new();
        let consts = std::mem::take(&mut self.consts);
        for (li, launch) in launches.iter().enumerate() {
            let pre = if several {
                format!("launch {li}: ")
            } else {
                String::new()
            };
            if launch.sections.is_empty() {
                let span = launch.started.clone().unwrap_or(0..0);
                self.err(
                    "E0807",
                    span,
                    format!("{pre}no code section (.aic, .aiv or .core)"),
                );
            }
            let mut out_sections = Vec::new();
            for sec in &launch.sections {
                let Some(kind) = sec.kind else { continue };
                let insns = self.section_insns(sec, kind, &consts, &pre);
                out_sections.push(Section { kind, insns });
            }
            out_launches.push(Launch {
                block_dim: launch.block_dim.unwrap_or(1),
                sections: out_sections,
            });
        }
        if !self.errors.is_empty() {
            self.errors.sort_by_key(|e| (e.span.start, e.span.end));
            return Err(self.errors);
        }
        let program = Program {
            kernel,
            machine: self.machine.name.clone(),
            fingerprint: self.machine.fingerprint(),
            params,
            results,
            workspace,
            launches: out_launches,
        };
        if let Err((at, msg)) = program.validate(self.machine) {
            use crate::program::At;
            let span = match at {
                At::Arg(i) => param_spans.iter().chain(&result_spans).nth(i).cloned(),
                At::Workspace => Some(workspace_span),
                At::Launch(l) => launches.get(l).and_then(|x| x.started.clone()),
                At::Section(l, si) | At::Insn((l, si, _)) => {
                    let sec = launches
                        .get(l)
                        .and_then(|x| x.sections.iter().filter(|s| s.kind.is_some()).nth(si));
                    match at {
                        At::Insn((_, _, i)) => sec
                            .and_then(|s| s.lines.get(i))
                            .map(|(_, off, m, _)| *off..*off + m.len()),
                        _ => None,
                    }
                }
                At::Args | At::Launches => None,
            };
            self.err("E0807", span.unwrap_or(0..0), msg);
            return Err(self.errors);
        }
        Ok(program)
    }

    /// Parses and checks the instructions of one section (`pre` prefixes
    /// messages that carry no span of their own).
    fn section_insns(
        &mut self,
        sec: &SectionBuild,
        kind: crate::isa::CoreKind,
        consts: &HashMap<String, i64>,
        pre: &str,
    ) -> Vec<Insn> {
        let mut insns = Vec::new();
        for (_li, off, mnemonic, ops) in &sec.lines {
            let span = *off..*off + mnemonic.len();
            let mut ctx = ParseCtx {
                consts,
                labels: Some(&sec.labels),
                dt: None,
            };
            match parse_insn(mnemonic, ops, &mut ctx) {
                Ok(insn) => {
                    if let Err(e) = insn.check(self.machine, kind) {
                        self.err(
                            "E0806",
                            span,
                            format!("`{mnemonic}` is not valid here: {e}"),
                        );
                    }
                    insns.push(insn);
                }
                Err((code, sp, msg)) => self.err(code, if sp == (0..0) { span } else { sp }, msg),
            }
        }
        if let Some(last) = sec.lines.last() {
            if !insns.last().is_some_and(Insn::ends_section) && insns.len() == sec.lines.len() {
                let (_, off, m, _) = last;
                self.err(
                    "E0807",
                    *off..*off + m.len(),
                    format!("section .{} must end with `end` or `s.jmp`", kind.name()),
                );
            }
        } else {
            self.err(
                "E0807",
                0..0,
                format!("{pre}section .{} is empty", kind.name()),
            );
        }
        insns
    }

    fn parse_decl(&self, args: &str) -> Result<TensorDecl, String> {
        let (name, ty) = args
            .split_once(char::is_whitespace)
            .ok_or("expected `NAME DTYPE[dims]`")?;
        if !is_ident(name) {
            return Err(format!("`{name}` is not a valid tensor name"));
        }
        let ty = ty.trim();
        let (dt, dims) = match ty.split_once('[') {
            Some((d, rest)) => (
                d.trim(),
                Some(
                    rest.strip_suffix(']')
                        .ok_or("expected `]` after the dims")?,
                ),
            ),
            None => (ty, None),
        };
        let dtype = Dt::from_tensor_name(dt)
            .ok_or_else(|| format!("unknown dtype `{dt}` (f16, bf16, f32, i8, i32, bool)"))?;
        let mut shape = Vec::new();
        if let Some(dims) = dims
            && !dims.trim().is_empty()
        {
            for d in dims.split(',') {
                let v = eval_int(d, &self.consts)?;
                if v <= 0 {
                    return Err(format!("dim {v} is not positive"));
                }
                shape.push(v as u64);
            }
        }
        Ok(TensorDecl {
            name: name.to_string(),
            dtype,
            shape,
        })
    }
}

type InsnErr = (&'static str, Range<usize>, String);

/// Base mnemonics → table indices, built once.
fn table_index() -> &'static HashMap<&'static str, Vec<usize>> {
    static INDEX: std::sync::OnceLock<HashMap<&'static str, Vec<usize>>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, d) in TABLE.iter().enumerate() {
            m.entry(d.base).or_default().push(i);
        }
        m
    })
}

fn parse_insn(
    mnemonic: &str,
    ops: &[(usize, String)],
    ctx: &mut ParseCtx,
) -> Result<Insn, InsnErr> {
    let parts: Vec<&str> = mnemonic.split('.').collect();
    let texts: Vec<&str> = ops.iter().map(|(_, t)| t.as_str()).collect();
    let index = table_index();
    let mut best: Option<InsnErr> = None;
    for k in (1..=parts.len()).rev() {
        let base = parts[..k].join(".");
        let Some(entries) = index.get(base.as_str()) else {
            continue;
        };
        for &e in entries {
            match (TABLE[e].parse)(&parts[k..], &texts, ctx) {
                Ok(insn) => return Ok(insn),
                Err(ParseFail::Mnemonic) => {}
                Err(ParseFail::Count(n)) => {
                    let span = ops.first().map_or(0..0, |(o, _)| {
                        *o..ops.last().map_or(*o, |(o2, t)| o2 + t.len())
                    });
                    best.get_or_insert((
                        "E0802",
                        span,
                        format!(
                            "`{mnemonic}` takes {n} operand{}, found {}",
                            if n == 1 { "" } else { "s" },
                            ops.len()
                        ),
                    ));
                }
                Err(ParseFail::Operand(i, msg)) => {
                    let (o, t) = &ops[i];
                    let code = if msg.starts_with("unknown label") {
                        "E0804"
                    } else {
                        "E0803"
                    };
                    best.get_or_insert((
                        code,
                        *o..o + t.len(),
                        format!("operand {} of `{mnemonic}`: {msg}", i + 1),
                    ));
                }
            }
        }
    }
    Err(best.unwrap_or_else(|| ("E0801", 0..0, format!("unknown mnemonic `{mnemonic}`"))))
}

/// Where a line's comment starts (`;` or `//` outside a quoted string), or
/// its length.
fn comment_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b';' if !quoted => return i,
            b'/' if !quoted && bytes.get(i + 1) == Some(&b'/') => return i,
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// A machine name as `.machine` writes it: bare when that reads back the
/// same, else quoted with `\"` and `\\` escaped.
pub(crate) fn machine_name_text(name: &str) -> String {
    let bare = !name.is_empty()
        && name.trim() == name
        && !name.contains(['"', '\\', ';'])
        && !name.contains("//");
    if bare {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The machine a source names in its first `.machine` directive, read as
/// the assembler reads it (quotes, comments), before it is assembled, and
/// the directive's byte range.
pub fn machine_directive(src: &str) -> Option<(String, Range<usize>)> {
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        let at = start;
        start += line.len();
        let text = line.trim_end_matches('\n').trim_end_matches('\r');
        let code = &text[..comment_start(text)];
        let lead = code.len() - code.trim_start().len();
        let code = code.trim();
        let name = code
            .strip_prefix(".machine")
            .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
            .and_then(parse_machine_name)
            .filter(|name| !name.is_empty());
        if let Some(name) = name {
            return Some((name, at + lead..at + lead + code.len()));
        }
    }
    None
}

/// The names the source's `.equ` directives declare (what a define of
/// [`AsmOptions`] can override), in order.
pub fn equ_names(src: &str) -> Vec<&str> {
    src.lines()
        .filter_map(|line| {
            let text = line.trim_end_matches('\r');
            let text = text[..comment_start(text)].trim();
            let rest = text.strip_prefix(".equ")?;
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            let name = rest.split(',').next()?.trim();
            is_ident(name).then_some(name)
        })
        .collect()
}

/// The name of a `.machine` directive: bare text, or a quoted string with
/// `\"` and `\\` escapes and nothing after it.
fn parse_machine_name(args: &str) -> Option<String> {
    let args = args.trim();
    let Some(rest) = args.strip_prefix('"') else {
        return Some(args.to_string());
    };
    let mut name = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?),
            '"' => return chars.as_str().trim().is_empty().then_some(name),
            c => name.push(c),
        }
    }
    None
}
