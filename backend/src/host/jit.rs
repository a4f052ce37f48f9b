//! The Cranelift JIT: one module per kernel, the math functions it links,
//! and the one call into the generated code.

use super::HostError;
use super::elem::{MATH, Math};
use super::lower::{Layout, lower};
use cranelift_codegen::ir::{AbiParam, Function, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use tessera_ir::{Kernel, Tensor};

// The math functions, linked by name: the JIT resolves them to these
// (Rust's f64 methods and `libm::erf`, the reference's own), an object file
// to the C library's.
extern "C" fn m_exp(x: f64) -> f64 {
    x.exp()
}
extern "C" fn m_log(x: f64) -> f64 {
    x.ln()
}
extern "C" fn m_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn m_sin(x: f64) -> f64 {
    x.sin()
}
extern "C" fn m_cos(x: f64) -> f64 {
    x.cos()
}
extern "C" fn m_erf(x: f64) -> f64 {
    libm::erf(x)
}
extern "C" fn m_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

fn symbols() -> [*const u8; 7] {
    [
        m_exp as *const u8,
        m_log as *const u8,
        m_tanh as *const u8,
        m_sin as *const u8,
        m_cos as *const u8,
        m_erf as *const u8,
        m_pow as *const u8,
    ]
}

/// A kernel compiled for the host, ready to run.
pub struct HostKernel {
    // Owns the code `entry` points into.
    _module: JITModule,
    entry: *const u8,
    layout: Layout,
    kernel: Kernel,
    clif: String,
}

fn codegen(e: impl std::fmt::Display) -> HostError {
    HostError::Codegen(e.to_string())
}

impl HostKernel {
    /// Compiles a verified kernel with concrete dims.
    pub fn compile(kernel: &Kernel) -> Result<HostKernel, HostError> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(codegen)?;
        flags.set("is_pic", "false").map_err(codegen)?;
        let isa = cranelift_native::builder()
            .map_err(|m| HostError::Unsupported(format!("this host: {m}")))?
            .finish(settings::Flags::new(flags))
            .map_err(codegen)?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for ((name, _), f) in MATH.iter().zip(symbols()) {
            jb.symbol(*name, f);
        }
        let mut module = JITModule::new(jb);
        let ptr = module.target_config().pointer_type();

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
        sig.returns.push(AbiParam::new(types::I32));
        let id = module
            .declare_function(&kernel.name, Linkage::Export, &sig)
            .map_err(codegen)?;

        let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
        let mut fctx = FunctionBuilderContext::new();
        let layout = {
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
            let layout = lower(kernel, &mut fb, math, ptr)?;
            fb.finalize(module.target_config());
            layout
        };
        let clif = func.display().to_string();
        let mut ctx = module.make_context();
        ctx.func = func;
        module.define_function(id, &mut ctx).map_err(codegen)?;
        module.clear_context(&mut ctx);
        module.finalize_definitions().map_err(codegen)?;
        let entry = module.get_finalized_function(id);
        Ok(HostKernel {
            _module: module,
            entry,
            layout,
            kernel: kernel.clone(),
            clif,
        })
    }

    /// The Cranelift IR of the kernel's function (`--emit clif`).
    pub fn clif(&self) -> &str {
        &self.clif
    }

    /// Runs the kernel on inputs in parameter order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, HostError> {
        let k = &self.kernel;
        if inputs.len() != k.params.len() {
            return Err(HostError::Inputs(format!(
                "`{}` takes {} inputs, {} given",
                k.name,
                k.params.len(),
                inputs.len()
            )));
        }
        let mut ins: Vec<Vec<u8>> = Vec::with_capacity(inputs.len());
        for (p, t) in k.params.iter().zip(inputs) {
            let want = p.ty.shape.as_usize().unwrap_or_default();
            if p.ty.dtype != t.dtype || want != t.shape || t.len() != want.iter().product::<usize>()
            {
                return Err(HostError::Inputs(format!(
                    "input `{}` is {}{:?}, the parameter is {}",
                    p.name, t.dtype, t.shape, p.ty
                )));
            }
            ins.push(t.to_le_bytes());
        }
        let mut outs: Vec<Vec<u8>> = k
            .outputs
            .iter()
            .map(|o| {
                let ty = k.ty(o.value);
                vec![0u8; ty.shape.num_elements().unwrap_or(0) as usize * ty.dtype.size_bytes()]
            })
            .collect();
        let mut work = vec![0u8; self.layout.work_bytes as usize];
        let status = call(self.entry, &ins, &mut outs, &mut work);
        if status != 0 {
            return Err(HostError::DivByZero {
                node: (status - 1) as usize,
            });
        }
        k.outputs
            .iter()
            .zip(&outs)
            .map(|(o, bytes)| {
                let ty = k.ty(o.value);
                let shape = ty.shape.as_usize().unwrap_or_default();
                Tensor::from_le_bytes(ty.dtype, shape, bytes)
                    .map_err(|e| HostError::Codegen(format!("a result's bytes: {e:?}")))
            })
            .collect()
    }
}

/// Calls the generated function on the buffers.
#[allow(unsafe_code)]
fn call(entry: *const u8, ins: &[Vec<u8>], outs: &mut [Vec<u8>], work: &mut [u8]) -> i32 {
    let params: Vec<*const u8> = ins.iter().map(|b| b.as_ptr()).collect();
    let results: Vec<*mut u8> = outs.iter_mut().map(|b| b.as_mut_ptr()).collect();
    type Entry = unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8) -> i32;
    // SAFETY: `entry` is the finalized function `lower` built with this
    // signature, and the module that owns it outlives the call. It reads
    // each parameter buffer and writes each result buffer and the
    // workspace within the sizes of their types, which are the sizes
    // allocated here (checked against the parameters by `run`).
    unsafe {
        let f: Entry = std::mem::transmute::<*const u8, Entry>(entry);
        f(params.as_ptr(), results.as_ptr(), work.as_mut_ptr())
    }
}
