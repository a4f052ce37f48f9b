//! Ahead-of-time host code: a relocatable object with one exported entry
//! point per kernel, and the C header that declares it.
//!
//! The entry point `tessera_KERNEL(inputs…, results…, dims…)` takes a
//! pointer per parameter and per result (packed row-major, as the JIT's
//! buffers) and the value of every symbolic dim the kernel was compiled
//! with, in the order of their names. It checks the dims first and returns
//! `TESSERA_BAD_DIMS` without touching memory when one differs; it takes its
//! workspace from `malloc` and runs the stages in order on one thread. The
//! object needs only libc (`malloc`, `free`) and libm (`exp`, `log`, `tanh`,
//! `sin`, `cos`, `erf`, `pow`).

use super::HostError;
use super::module::{codegen, define_stages, isa};
use super::schedule::schedule;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Function, InstBuilder, StackSlotData, StackSlotKind, UserFuncName, types,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{Linkage, Module, default_libcall_names};
use cranelift_object::{ObjectBuilder, ObjectModule};
use tessera_ir::{DType, Kernel};

/// The entry point's status codes (also in the header).
pub const STATUS: [(&str, i64); 4] = [
    ("TESSERA_OK", 0),
    ("TESSERA_BAD_DIMS", 1),
    ("TESSERA_DIV_BY_ZERO", 2),
    ("TESSERA_NO_MEMORY", 3),
];

/// A kernel compiled ahead of time.
#[derive(Clone, Debug)]
pub struct HostObject {
    /// The relocatable object file's bytes.
    pub object: Vec<u8>,
    /// The C header declaring the entry point.
    pub header: String,
    /// The entry point's symbol.
    pub symbol: String,
}

/// Compiles a kernel with concrete dims into an object whose entry point
/// takes `dims` (each symbolic dim's name and compiled value, in the order
/// of the C signature).
pub fn compile_object(kernel: &Kernel, dims: &[(String, u64)]) -> Result<HostObject, HostError> {
    let sched = schedule(kernel)?;
    let mut module = ObjectModule::new(
        ObjectBuilder::new(isa(true)?, kernel.name.as_bytes(), default_libcall_names())
            .map_err(codegen)?,
    );
    let defined = define_stages(&mut module, kernel, &sched, Linkage::Local)?;
    let ptr = module.target_config().pointer_type();

    let mut alloc_sig = module.make_signature();
    alloc_sig.params.push(AbiParam::new(types::I64));
    alloc_sig.returns.push(AbiParam::new(ptr));
    let malloc = module
        .declare_function("malloc", Linkage::Import, &alloc_sig)
        .map_err(codegen)?;
    let mut free_sig = module.make_signature();
    free_sig.params.push(AbiParam::new(ptr));
    let free = module
        .declare_function("free", Linkage::Import, &free_sig)
        .map_err(codegen)?;

    let (np, nr) = (kernel.params.len(), kernel.outputs.len());
    let mut sig = module.make_signature();
    sig.params.extend((0..np + nr).map(|_| AbiParam::new(ptr)));
    sig.params
        .extend(dims.iter().map(|_| AbiParam::new(types::I64)));
    sig.returns.push(AbiParam::new(types::I32));
    let symbol = format!("tessera_{}", kernel.name);
    let id = module
        .declare_function(&symbol, Linkage::Export, &sig)
        .map_err(codegen)?;
    let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut fb = FunctionBuilder::new(&mut func, &mut fctx);
        let stage_refs: Vec<_> = defined
            .stages
            .iter()
            .map(|&(s, n)| (module.declare_func_in_func(s, fb.func), n))
            .collect();
        let malloc = module.declare_func_in_func(malloc, fb.func);
        let free = module.declare_func_in_func(free, fb.func);
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let args = fb.block_params(entry).to_vec();
        let status = |fb: &mut FunctionBuilder<'_>, code: i64| {
            let c = fb.ins().iconst(types::I32, code);
            fb.ins().return_(&[c]);
        };
        // The dims, before anything is read or written.
        let bad = fb.create_block();
        for (i, (_, v)) in dims.iter().enumerate() {
            let next = fb.create_block();
            let differs = fb
                .ins()
                .icmp_imm_s(IntCC::NotEqual, args[np + nr + i], *v as i64);
            fb.ins().brif(differs, bad, &[], next, &[]);
            fb.switch_to_block(next);
        }
        // The pointer tables the stages read.
        let step = ptr.bytes();
        let table = |fb: &mut FunctionBuilder<'_>, ptrs: &[cranelift_codegen::ir::Value]| {
            let slot = fb.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                (ptrs.len().max(1) as u32) * step,
                3,
            ));
            for (i, &p) in ptrs.iter().enumerate() {
                fb.ins().stack_store(ptr, p, slot, (i as u32 * step) as i32);
            }
            fb.ins().stack_addr(ptr, slot, 0)
        };
        let params = table(&mut fb, &args[..np]);
        let results = table(&mut fb, &args[np..np + nr]);
        let work = if sched.work_bytes > 0 {
            let bytes = fb.ins().iconst(types::I64, sched.work_bytes as i64);
            let call = fb.ins().call(malloc, &[bytes]);
            let w = fb.inst_results(call)[0];
            let ok = fb.create_block();
            let none = fb.create_block();
            fb.ins().brif(w, ok, &[], none, &[]);
            fb.switch_to_block(none);
            status(&mut fb, 3);
            fb.switch_to_block(ok);
            Some(w)
        } else {
            None
        };
        let w = work.unwrap_or_else(|| fb.ins().iconst(ptr, 0));
        let failed = fb.create_block();
        for (f, n) in stage_refs {
            let lo = fb.ins().iconst(types::I64, 0);
            let hi = fb.ins().iconst(types::I64, n as i64);
            let call = fb.ins().call(f, &[params, results, w, lo, hi]);
            let st = fb.inst_results(call)[0];
            let next = fb.create_block();
            fb.ins().brif(st, failed, &[], next, &[]);
            fb.switch_to_block(next);
        }
        if let Some(w) = work {
            fb.ins().call(free, &[w]);
        }
        status(&mut fb, 0);
        // A stage's only failure is an integer division by zero.
        fb.switch_to_block(failed);
        if let Some(w) = work {
            fb.ins().call(free, &[w]);
        }
        status(&mut fb, 2);
        fb.switch_to_block(bad);
        status(&mut fb, 1);
        fb.seal_all_blocks();
        fb.finalize(module.target_config());
    }
    let mut ctx = module.make_context();
    ctx.func = func;
    module.define_function(id, &mut ctx).map_err(codegen)?;
    let object = module.finish().emit().map_err(codegen)?;
    Ok(HostObject {
        object,
        header: header(kernel, dims, &symbol),
        symbol,
    })
}

/// Names a parameter of the entry point may not take: C keywords and the
/// types `<stdint.h>` declares, `main`, the macros and objects of the
/// standard headers a caller is likely to include before this one (a
/// parameter `NULL` would be replaced by the macro), and the status codes.
const RESERVED: [&str; 60] = [
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "bool",
    "true",
    "false",
    "_Bool",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
    "intptr_t",
    "uintptr_t",
    "size_t",
    "ptrdiff_t",
    "main",
    "NULL",
    "errno",
    "EOF",
    "stdin",
    "stdout",
    "stderr",
    "assert",
    "offsetof",
    "TESSERA_STATUS_CODES",
];

/// The entry point's parameter names, in order (the dims', then the
/// parameters' and results'): each kernel name, with `_` appended until it
/// is neither reserved ([`RESERVED`], a status code) nor taken by an
/// earlier one. A result may share a parameter's name, and `N` renamed
/// `N_` may meet a parameter `N_`: each still gets a name of its own.
fn c_names(k: &Kernel, dims: &[(String, u64)]) -> (Vec<String>, Vec<String>) {
    let mut used: Vec<String> = Vec::new();
    let mut unique = |name: &str| {
        let mut n = name.to_string();
        while RESERVED.contains(&n.as_str())
            || STATUS.iter().any(|(s, _)| *s == n)
            || used.contains(&n)
        {
            n.push('_');
        }
        used.push(n.clone());
        n
    };
    let dim_names: Vec<String> = dims.iter().map(|(n, _)| unique(n)).collect();
    let arrays: Vec<String> = k
        .params
        .iter()
        .map(|p| p.name.as_str())
        .chain(k.outputs.iter().map(|o| o.name.as_str()))
        .map(&mut unique)
        .collect();
    (arrays, dim_names)
}

fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F16 | DType::BF16 => "uint16_t",
        DType::I8 => "int8_t",
        DType::I32 => "int32_t",
        DType::Bool => "uint8_t",
    }
}

/// The C header of an entry point.
fn header(k: &Kernel, dims: &[(String, u64)], symbol: &str) -> String {
    let guard = format!("{}_H", symbol.to_uppercase());
    let mut h = format!(
        "/* {symbol}: kernel `{}`, compiled for the host by Tessera {}.\n",
        k.name,
        env!("CARGO_PKG_VERSION")
    );
    h.push_str(&format!(
        " * Link the object with libm: cc main.c {}.o -lm\n *\n",
        k.name
    ));
    if dims.is_empty() {
        h.push_str(" * The kernel has static shapes; it takes no dims.\n");
    } else {
        let d: Vec<String> = dims.iter().map(|(n, v)| format!("{n}={v}")).collect();
        h.push_str(&format!(
            " * Compiled for {}: a call with other values returns TESSERA_BAD_DIMS\n * and reads and writes nothing.\n",
            d.join(", ")
        ));
    }
    h.push_str(concat!(
        " *\n",
        " * Arrays are packed row-major. f16 and bf16 elements are their 16-bit\n",
        " * patterns, bool elements one byte, 0 or 1. The call is single-threaded,\n",
        " * takes its workspace from malloc and returns a TESSERA_* status.\n",
        " */\n"
    ));
    h.push_str(&format!(
        "#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n"
    ));
    h.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    h.push_str("#ifndef TESSERA_STATUS_CODES\n#define TESSERA_STATUS_CODES\n");
    for (name, v) in STATUS {
        h.push_str(&format!("#define {name} {v}\n"));
    }
    h.push_str("#endif\n\n");
    let (arrays, dim_names) = c_names(k, dims);
    let renamed = |name: &str, c: &str| {
        if name == c {
            String::new()
        } else {
            format!(" (parameter `{c}`)")
        }
    };
    let mut params = Vec::new();
    let mut names = arrays.iter();
    for p in &k.params {
        let c = names.next().map_or("", String::as_str);
        h.push_str(&format!(
            "/* in  {}: {}{} */\n",
            p.name,
            p.ty,
            renamed(&p.name, c)
        ));
        params.push(format!("const {} *{c}", c_type(p.ty.dtype)));
    }
    for o in &k.outputs {
        let ty = k.ty(o.value);
        let c = names.next().map_or("", String::as_str);
        h.push_str(&format!(
            "/* out {}: {}{} */\n",
            o.name,
            ty,
            renamed(&o.name, c)
        ));
        params.push(format!("{} *{c}", c_type(ty.dtype)));
    }
    for ((n, _), c) in dims.iter().zip(&dim_names) {
        if n != c {
            h.push_str(&format!("/* dim {n} (parameter `{c}`) */\n"));
        }
        params.push(format!("int64_t {c}"));
    }
    h.push_str(&format!("int32_t {symbol}({});\n\n", params.join(", ")));
    h.push_str("#ifdef __cplusplus\n}\n#endif\n\n");
    h.push_str(&format!("#endif /* {guard} */\n"));
    h
}
