//! Assembler ↔ disassembler ↔ bytecode round trips, and assembler diagnostics.

use tessera_sim::{Machine, assemble, decode, disassemble, encode, load};

const SAMPLE: &str = r#"
.kernel sample
.equ N, 64
.param a f32[N, N]
.result c f32[N, N]
.block_dim 2
.workspace 1024

.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.sys r3, block_idx
    s.li r4, -5
    s.lif r5, 1.5
    s.add r6, r3, 16
    s.mul r6, r6, r4
    s.fadd r7, r5, r5
    s.ld.ub.u32 r8, [r9 + 4]
    s.st.gm.u64 r8, [r1 - 8]
loop:
    mte2.copy.gm.ub [0], [r1], 1, N*N*4, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.add.f32 [r10 + 32], [0], [256, 1, 16], 64, {r3, r4}
    vec.adds.f32 [0, 2, 16], [0], 1.5, r3, 64
    vec.maxs.f16 [0], [0], -inf, 2, 128
    vec.adds.i32 [0], [0], -7, 2, 64
    vec.cmp.lt.f32 [0, 1, 2], [0], [64], 1, 64
    vec.cvt.f16.f32 [0, 1, 4], [0], 1, 64
    vec.rsum.f32 [512], [0], 4, 64
    vec.brcb.f32 [0], [512], 1
    vec.trans.f16 [0], [512], 2
    sync.barrier v
    sync.set v, mte3, 1
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r2], [0], 4, 100, 256, 100
    xcore.set mte3, 2, 3
    s.br.lt r3, 10, loop
    s.br.ne r3, r4, done
done:
    end

.aic
    mte2.nd2nz.gm.l1.f16 [0], [r1], 100, 70, 140, 112
    mte1.load.l0a.t.f16 [0], [0], 2, 4, 4096
    mte1.load.l0b.f16 [0], [0], 4, 2, 4096
    cube.mmad.f16 [0], [0], [0], 32, 64, 32, 1
    fix.copy.l0c.gm.f16 [r1], [0], 32, 32, 32, 64, 0
    xcore.wait fix, 3
    end
"#;

#[test]
fn assemble_disassemble_assemble_is_identity() {
    let m = Machine::default();
    let p = assemble(SAMPLE, &m).unwrap_or_else(|e| panic!("{e:?}"));
    let bytes = encode(&p);
    let text = disassemble(&p);
    let p2 = assemble(&text, &m).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert_eq!(p, p2);
    assert_eq!(bytes, encode(&p2));
    assert_eq!(decode(&bytes).unwrap(), p);
    assert_eq!(load(&bytes, &m).unwrap(), p);
    insta::assert_snapshot!(text);
}

#[test]
fn docs_list_every_mnemonic_and_machine_key() {
    use tessera_sim::isa::{ARed, AluOp, BRed, BinOp, FOp, RRed, ScaOp, SysReg, TABLE, UnOp};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let asm = std::fs::read_to_string(root.join("assembly.md")).unwrap();
    for d in TABLE {
        assert!(
            asm.contains(d.base),
            "docs/assembly.md does not mention `{}`",
            d.base
        );
    }
    let names: Vec<&str> = AluOp::ALL
        .iter()
        .map(|x| x.name())
        .chain(FOp::ALL.iter().map(|x| x.name()))
        .chain(BinOp::ALL.iter().map(|x| x.name()))
        .chain(ScaOp::ALL.iter().map(|x| x.name()))
        .chain(UnOp::ALL.iter().map(|x| x.name()))
        .chain(RRed::ALL.iter().map(|x| x.name()))
        .chain(BRed::ALL.iter().map(|x| x.name()))
        .chain(ARed::ALL.iter().map(|x| x.name()))
        .chain(SysReg::ALL.iter().map(|x| x.name()))
        .collect();
    for n in names {
        assert!(asm.contains(n), "docs/assembly.md does not mention `{n}`");
    }
    for d in tessera_sim::asm::DIRECTIVES {
        assert!(
            asm.contains(&format!("`{d}")) || asm.contains(&format!("\n{d} ")),
            "docs/assembly.md does not document the directive `{d}`"
        );
        // ... and the assembler knows it (whatever else is wrong with the line).
        let errors = tessera_sim::assemble(&format!("{d}\n"), &Machine::default()).unwrap_err();
        assert!(errors.iter().all(|e| e.code != "E0801"), "{d}: {errors:?}");
    }
    let mdoc = std::fs::read_to_string(root.join("machine.md")).unwrap();
    let toml = Machine::default().to_toml() + &Machine::builtin("910-like").unwrap().to_toml();
    for line in toml.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            let key = key.trim();
            assert!(
                mdoc.contains(key),
                "docs/machine.md does not mention `{key}`"
            );
        }
    }
}

#[test]
fn builtins_round_trip_and_differ() {
    let a = Machine::default();
    let b = Machine::builtin("910-like").unwrap();
    for m in [&a, &b] {
        assert_eq!(&Machine::from_toml(&m.to_toml()).unwrap(), m);
    }
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.name, "910b-like");
}

#[test]
fn every_kernel_file_round_trips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        root.join("../../testsuite/cases/asm"),
        root.join("tests/faults"),
    ] {
        for e in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "s") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let name = src
                .lines()
                .find_map(|l| l.trim().strip_prefix(".machine"))
                .map(str::trim);
            let m = name.map_or_else(Machine::default, |n| Machine::builtin(n).unwrap());
            let p = assemble(&src, &m).unwrap();
            let bytes = encode(&p);
            let again = assemble(&disassemble(&p), &m).unwrap();
            assert_eq!(encode(&again), bytes, "{}", path.display());
            assert_eq!(load(&bytes, &m).unwrap(), p);
            n += 1;
        }
    }
    assert!(n >= 20);
}

#[test]
fn machine_names_with_comment_marks_or_quotes_round_trip() {
    // A machine name may hold anything printable; `.machine` quotes the ones
    // that would read back otherwise (a comment mark, a quote, a backslash,
    // edge spaces) and leaves plain ones bare.
    for (name, written) in [
        ("lab;v2", r#".machine "lab;v2""#),
        ("a//b", r#".machine "a//b""#),
        (r#"q"x\y"#, r#".machine "q\"x\\y""#),
        (" padded ", r#".machine " padded ""#),
        ("Ascend 910B (lab)", ".machine Ascend 910B (lab)"),
    ] {
        let m = Machine {
            name: name.to_string(),
            ..Machine::default()
        };
        let p = assemble(SAMPLE, &m).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.machine, name);
        let text = disassemble(&p);
        assert!(text.lines().any(|l| l == written), "{name:?}:\n{text}");
        let p2 = assemble(&text, &m).unwrap_or_else(|e| panic!("{name:?}: {e:?}\n{text}"));
        assert_eq!(p, p2, "{name:?}");
    }
    // A quoted name ends at its closing quote; text after it is an error.
    let m = Machine::default();
    let bad = SAMPLE.replacen(
        ".kernel sample",
        ".kernel sample\n.machine \"910b-like\" x",
        1,
    );
    let errors = assemble(&bad, &m).unwrap_err();
    assert!(errors.iter().any(|e| e.code == "E0807"), "{errors:?}");
    let quoted = SAMPLE.replacen(
        ".kernel sample",
        ".kernel sample\n.machine \"910b-like\" ; ok",
        1,
    );
    assert!(assemble(&quoted, &m).is_ok());
    // The directive is read the same way before assembling (to pick the machine).
    assert_eq!(
        tessera_sim::asm::machine_directive("; .machine x\n  .machine \"lab;v2\" ; c\n"),
        Some(("lab;v2".to_string(), 15..32))
    );
    assert_eq!(tessera_sim::asm::machine_directive(".machinery x\n"), None);
}

#[test]
fn extreme_immediates_round_trip() {
    // i64's minimum, and NaNs with a sign or a payload: `disasm` prints
    // them (`-9223372036854775808`, `nan(0x…)`) in forms `asm` reads back
    // to the same bits.
    let m = Machine::default();
    let text = "
.kernel k
.aiv
    s.li r1, -9223372036854775807-1
    s.lif r2, -nan
    s.lif r3, nan(0x7fc00001)
    s.lif r4, nan(0xff800001)
    vec.adds.f32 [0], [0], nan(0xffc00000), 1, 64
    end
";
    let p = assemble(text, &m).unwrap_or_else(|e| panic!("{e:?}"));
    let printed = disassemble(&p);
    for want in [
        "s.li r1, -9223372036854775808",
        "s.lif r2, nan(0xffc00000)",
        "s.lif r3, nan(0x7fc00001)",
        "s.lif r4, nan(0xff800001)",
    ] {
        assert!(printed.contains(want), "{want}\n{printed}");
    }
    let again = assemble(&printed, &m).unwrap_or_else(|e| panic!("{e:?}\n{printed}"));
    assert_eq!(encode(&again), encode(&p));
    // 2^63 is a literal only as the operand of a negation; `nan(…)` takes
    // a NaN's bits only.
    for bad in [
        "s.li r1, 9223372036854775808",
        "s.lif r1, nan(0x3f800000)",
        "s.lif r1, nan(1.5)",
    ] {
        let src = format!(".kernel k\n.aiv\n    {bad}\n    end\n");
        let errors = assemble(&src, &m).unwrap_err();
        assert!(
            errors.iter().all(|e| e.code.starts_with("E08")),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn validation_errors_point_at_their_directive() {
    // A declaration the program's validation refuses is reported at the
    // declaration, not at the top of the file.
    let m = Machine::default();
    let src = ".kernel k\n.param a f32[4]\n.param b f32[4294967296, 4294967296]\n.aiv\n    end\n";
    let errors = assemble(src, &m).unwrap_err();
    let big = src.find("b f32").unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.code == "E0807" && e.span.start == big),
        "{errors:?}"
    );
}
