//! The syntax tree, with a byte span on every node, and its text form
//! (`--emit ast`).
//!
//! Expressions record their depth, so a tree never grows deeper than the
//! parser's nesting limit (see `parse.rs`) and walking one never exhausts the
//! stack.

use std::fmt::Write;
use tessera_ir::{DType, Span};

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// A parsed file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct File {
    /// Kernels in source order.
    pub kernels: Vec<KernelDef>,
    /// Where the lexer reported an error and went on as if the text were
    /// right (a keyword used as a name): the statement parsed as meant, so
    /// its kernel is still checked.
    pub recovered: Vec<Span>,
}

/// `kernel NAME(PARAMS) -> RESULTS { BODY }`.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelDef {
    /// The name.
    pub name: Ident,
    /// Parameters.
    pub params: Vec<ParamDecl>,
    /// Declared results.
    pub results: Vec<ResultDecl>,
    /// Statements.
    pub body: Vec<Stmt>,
    /// The whole definition.
    pub span: Span,
}

/// `NAME: TYPE`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// The name.
    pub name: Ident,
    /// The type.
    pub ty: TypeExpr,
}

/// A result: `TYPE` or `NAME: TYPE`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultDecl {
    /// The name, if given.
    pub name: Option<Ident>,
    /// The type.
    pub ty: TypeExpr,
}

/// `DTYPE` or `DTYPE[d0, d1, …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    /// Element type.
    pub dtype: DType,
    /// Dims.
    pub dims: Vec<DimExpr>,
    /// The whole type.
    pub span: Span,
}

/// A dim in a type.
#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// A literal extent.
    Int(u64, Span),
    /// A symbolic dim.
    Sym(Ident),
}

impl DimExpr {
    /// Where it is.
    pub fn span(&self) -> Span {
        match self {
            DimExpr::Int(_, s) => *s,
            DimExpr::Sym(i) => i.span,
        }
    }
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let NAME (: TYPE)? = EXPR;`
    Let {
        /// The bound name.
        name: Ident,
        /// The annotation.
        ty: Option<TypeExpr>,
        /// The value.
        value: Expr,
        /// The statement.
        span: Span,
    },
    /// `return EXPR;` or `return (E1, E2, …);`
    Return {
        /// The returned values.
        values: Vec<Expr>,
        /// The statement.
        span: Span,
    },
    /// A statement that did not parse (already reported).
    Error {
        /// From its first token to its `;`.
        span: Span,
        /// The names it may have meant to bind: every identifier in it
        /// (`let y = …`, `let mut y = …`, two statements run into one by a
        /// missing `;`: which name was meant is not known).
        names: Vec<Ident>,
        /// Whether a `return` is in it.
        returns: bool,
    },
}

impl Stmt {
    /// Where it is.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. } | Stmt::Return { span, .. } | Stmt::Error { span, .. } => *span,
        }
    }
}

/// A binary operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `@`
    MatMul,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
        }
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
    /// Nesting depth (a leaf is 1).
    pub depth: u32,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(u64),
    /// A float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A string literal (only meaningful as a named argument's value).
    Str(String),
    /// A dtype name used as an argument.
    DType(DType),
    /// A name.
    Name(String),
    /// `[a, b, …]`.
    List(Vec<Expr>),
    /// `f(args)`.
    Call {
        /// The callee.
        callee: Ident,
        /// Arguments, positional then named.
        args: Vec<Arg>,
    },
    /// `-x`.
    Neg(Box<Expr>),
    /// `a OP b`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Where the operator is.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// An expression that did not parse (already reported).
    Error,
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name =`, if named.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

impl Expr {
    /// A leaf.
    pub fn leaf(kind: ExprKind, span: Span) -> Expr {
        Expr {
            kind,
            span,
            depth: 1,
        }
    }

    /// An inner node whose depth is one more than its deepest child's.
    pub fn node(kind: ExprKind, span: Span) -> Expr {
        let depth = 1 + kind.children().map(|c| c.depth).max().unwrap_or(0);
        Expr { kind, span, depth }
    }
}

impl ExprKind {
    /// Direct sub-expressions.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            ExprKind::List(items) => Box::new(items.iter()),
            ExprKind::Call { args, .. } => Box::new(args.iter().map(|a| &a.value)),
            ExprKind::Neg(e) => Box::new(std::iter::once(&**e)),
            ExprKind::Binary { lhs, rhs, .. } => Box::new([&**lhs, &**rhs].into_iter()),
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Str(_)
            | ExprKind::DType(_)
            | ExprKind::Name(_)
            | ExprKind::Error => Box::new(std::iter::empty()),
        }
    }
}

impl TypeExpr {
    /// The type as written.
    pub fn text(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d {
                DimExpr::Int(n, _) => n.to_string(),
                DimExpr::Sym(i) => i.name.clone(),
            })
            .collect();
        format!("{}[{}]", self.dtype, dims.join(", "))
    }
}

fn span_text(s: Span) -> String {
    format!("[{}..{}]", s.start, s.end)
}

/// Prints a file as an indented tree, one node per line with its span.
pub fn print_file(file: &File) -> String {
    let mut out = String::new();
    for k in &file.kernels {
        let _ = writeln!(out, "kernel {} {}", k.name.name, span_text(k.span));
        for p in &k.params {
            let _ = writeln!(
                out,
                "  param {}: {} {}",
                p.name.name,
                p.ty.text(),
                span_text(p.name.span)
            );
        }
        for r in &k.results {
            match &r.name {
                Some(n) => {
                    let _ = writeln!(
                        out,
                        "  result {}: {} {}",
                        n.name,
                        r.ty.text(),
                        span_text(r.ty.span)
                    );
                }
                None => {
                    let _ = writeln!(out, "  result {} {}", r.ty.text(), span_text(r.ty.span));
                }
            }
        }
        for s in &k.body {
            match s {
                Stmt::Let {
                    name,
                    ty,
                    value,
                    span,
                } => {
                    let ann = ty
                        .as_ref()
                        .map(|t| format!(": {}", t.text()))
                        .unwrap_or_default();
                    let _ = writeln!(out, "  let {}{ann} {}", name.name, span_text(*span));
                    print_expr(&mut out, value, 2);
                }
                Stmt::Return { values, span } => {
                    let _ = writeln!(out, "  return {}", span_text(*span));
                    for v in values {
                        print_expr(&mut out, v, 2);
                    }
                }
                Stmt::Error { span, .. } => {
                    let _ = writeln!(out, "  <error> {}", span_text(*span));
                }
            }
        }
    }
    out
}

fn print_expr(out: &mut String, e: &Expr, indent: usize) {
    let pad = "  ".repeat(indent);
    let head = match &e.kind {
        ExprKind::Int(n) => format!("int {n}"),
        ExprKind::Float(x) => format!("float {x:?}"),
        ExprKind::Bool(b) => format!("bool {b}"),
        ExprKind::Str(s) => format!("string {s:?}"),
        ExprKind::DType(d) => format!("dtype {d}"),
        ExprKind::Name(n) => format!("name {n}"),
        ExprKind::List(_) => "list".to_string(),
        ExprKind::Call { callee, .. } => format!("call {}", callee.name),
        ExprKind::Neg(_) => "neg".to_string(),
        ExprKind::Binary { op, .. } => format!("binary {}", op.symbol()),
        ExprKind::Error => "<error>".to_string(),
    };
    let _ = writeln!(out, "{pad}{head} {}", span_text(e.span));
    if let ExprKind::Call { args, .. } = &e.kind {
        for a in args {
            if let Some(n) = &a.name {
                let _ = writeln!(out, "{pad}  named {} {}", n.name, span_text(n.span));
                print_expr(out, &a.value, indent + 2);
            } else {
                print_expr(out, &a.value, indent + 1);
            }
        }
    } else {
        for c in e.kind.children() {
            print_expr(out, c, indent + 1);
        }
    }
}
