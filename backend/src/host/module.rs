//! What the JIT and object files share: the target ISA, and the definition
//! of a kernel's stage functions in a Cranelift module with the math
//! functions they import.

use super::HostError;
use super::elem::{MATH, Math};
use super::lower::{lower_stage, outer_extent};
use super::schedule::Schedule;
use cranelift_codegen::ir::{AbiParam, Function, UserFuncName, types};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use tessera_ir::Kernel;

pub(super) fn codegen(e: impl std::fmt::Display) -> HostError {
    HostError::Codegen(e.to_string())
}

/// This host's ISA with every feature it has, optimising for speed;
/// position-independent code for object files (the JIT wants none).
pub(super) fn isa(pic: bool) -> Result<OwnedTargetIsa, HostError> {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(codegen)?;
    flags
        .set("is_pic", if pic { "true" } else { "false" })
        .map_err(codegen)?;
    cranelift_native::builder()
        .map_err(|m| HostError::Unsupported(format!("this host: {m}")))?
        .finish(settings::Flags::new(flags))
        .map_err(codegen)
}

/// A kernel's stage functions in a module.
pub(super) struct Defined {
    /// Each stage's function and the extent of its outermost axis.
    pub stages: Vec<(FuncId, u64)>,
    /// Their CLIF text.
    pub clif: String,
}

/// Declares the math imports and defines one function per stage of
/// `sched`, named `KERNEL_stageN` with `linkage`, each with the signature
/// `(params, results, work, lo, hi) -> i32`.
pub(super) fn define_stages<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    sched: &Schedule,
    linkage: Linkage,
) -> Result<Defined, HostError> {
    let ptr = module.target_config().pointer_type();
    let fma = module
        .isa()
        .isa_flags()
        .iter()
        .any(|f| f.name == "has_fma" && f.as_bool() == Some(true));
    let mut math_ids: Vec<FuncId> = Vec::new();
    for (name, arity) in MATH {
        let mut sig = module.make_signature();
        sig.params
            .extend((0..arity).map(|_| AbiParam::new(types::F64)));
        sig.returns.push(AbiParam::new(types::F64));
        math_ids.push(
            module
                .declare_function(name, Linkage::Import, &sig)
                .map_err(codegen)?,
        );
    }
    let mut sig = module.make_signature();
    sig.params.extend([AbiParam::new(ptr); 3]);
    sig.params.extend([AbiParam::new(types::I64); 2]);
    sig.returns.push(AbiParam::new(types::I32));
    let mut clif = String::new();
    let mut stages = Vec::new();
    let mut fctx = FunctionBuilderContext::new();
    for (s, stage) in sched.stages.iter().enumerate() {
        let name = format!("{}_stage{s}", kernel.name);
        let id = module
            .declare_function(&name, linkage, &sig)
            .map_err(codegen)?;
        let mut func =
            Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig.clone());
        {
            let mut fb = FunctionBuilder::new(&mut func, &mut fctx);
            let refs: Vec<_> = math_ids
                .iter()
                .map(|&m| module.declare_func_in_func(m, fb.func))
                .collect();
            let math = Math {
                exp: refs[0],
                log: refs[1],
                tanh: refs[2],
                sin: refs[3],
                cos: refs[4],
                erf: refs[5],
                pow: refs[6],
            };
            lower_stage(kernel, sched, s, &mut fb, math, ptr, fma)?;
            fb.finalize(module.target_config());
        }
        clif.push_str(&format!("; {name}\n{}\n", func.display()));
        let mut ctx = module.make_context();
        ctx.func = func;
        module.define_function(id, &mut ctx).map_err(|e| match e {
            cranelift_module::ModuleError::Compilation(c) => {
                HostError::Codegen(format!("{name}: {c:?}"))
            }
            other => codegen(other),
        })?;
        module.clear_context(&mut ctx);
        stages.push((id, outer_extent(kernel, stage)));
    }
    Ok(Defined { stages, clif })
}
