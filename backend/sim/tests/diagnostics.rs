//! Error values of the assembler (E08xx), the bytecode loader (E09xx) and the
//! machine-description loader (E10xx): codes, spans and messages.

use tessera_sim::{Machine, assemble, decode, encode, load};

fn asm_errors(src: &str) -> String {
    let m = Machine::default();
    match assemble(src, &m) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{e} [bytes {}..{}]", e.span.start, e.span.end))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn assembler_reports_every_error_with_a_code_and_span() {
    let src = r#".kernel k
.param a f32[4, N]
.result c f33[4]
.equ X, 1 / 0
.bogus 3
.aiv
    s.frobnicate r1, r2
    s.add r1, r2
    s.add r1, r40, 3
    vec.add.f32 [r1 + 4, 1], [0], [0], 1, 64
    s.br.lt r1, 0, nowhere
    mte1.load.l0a.f16 [0], [0], 1, 1, 32
    sync.set v, v, 0
    sync.wait mte2, v, 9
dup:
dup:
    end
"#;
    insta::assert_snapshot!(asm_errors(src));
}

#[test]
fn assembler_checks_sections_and_machines() {
    insta::assert_snapshot!("no_kernel", asm_errors(".aiv\n    end\n"));
    insta::assert_snapshot!(
        "falls_off_the_end",
        asm_errors(".kernel k\n.aiv\n    s.nop\n")
    );
    insta::assert_snapshot!(
        "wrong_machine",
        asm_errors(".kernel k\n.machine 910-like\n.core\n    end\n")
    );
    insta::assert_snapshot!(
        "coupled_only_path",
        asm_errors(".kernel k\n.aiv\n    mte3.copy.ub.l1 [0], [0], 1, 32, 0, 0\n    end\n")
    );
    // A split machine's vector core has UB only (machine.md: cube and
    // vector cores exchange data through GM): no GM → L1 copy there.
    insta::assert_snapshot!(
        "no_l1_on_a_vector_core",
        asm_errors(
            ".kernel k\n.aiv\n    mte2.copy.gm.l1 [0], [0], 1, 32, 0, 0\n    mte2.nd2nz.gm.l1.f16 [0], [0], 16, 16, 16, 16\n    end\n"
        )
    );
    insta::assert_snapshot!("unsupported_cube_dtype", {
        let m = Machine::builtin("910-like").unwrap();
        let e = assemble(
            ".kernel k\n.core\n    cube.mmad.f32 [0], [0], [0], 16, 8, 16, 1\n    end\n",
            &m,
        )
        .unwrap_err();
        e[0].to_string()
    });
}

fn sample() -> Vec<u8> {
    let m = Machine::default();
    let p = assemble(".kernel k\n.param a f32[8]\n.result c f32[8]\n.aiv\n    s.arg r1, 0\n    s.li r2, 3\n    end\n", &m).unwrap();
    encode(&p)
}

fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    let n = b.len() - 8;
    let sum = tessera_sim::fnv::fnv1a(&b[..n]);
    b[n..].copy_from_slice(&sum.to_le_bytes());
    b
}

#[test]
fn loader_rejects_corrupt_files_before_running() {
    let m = Machine::default();
    let good = sample();
    assert!(load(&good, &m).is_ok());
    let mut out = Vec::new();
    let mut show = |what: &str, bytes: &[u8], machine: &Machine| {
        let e = load(bytes, machine).unwrap_err();
        out.push(format!("{what}: {e}"));
    };
    show("empty", &[], &m);
    let mut b = good.clone();
    b[0] = b'X';
    show("magic", &b, &m);
    let mut b = good.clone();
    b[4] = 9;
    show("version", &b, &m);
    let mut b = good.clone();
    let n = b.len();
    b[n - 12] ^= 0xff;
    show("checksum", &b, &m);
    show("truncated", &reseal(good[..good.len() - 12].to_vec()), &m);
    // The last instruction's opcode byte (`end`) replaced by an invalid opcode.
    let mut b = good.clone();
    let n = b.len();
    b[n - 9] = 0xee;
    show("opcode", &reseal(b), &m);
    // `end` replaced by `s.nop`: control would fall off the section.
    let mut b = good.clone();
    let n = b.len();
    b[n - 9] = 0;
    show("no end", &reseal(b), &m);
    show("machine", &good, &Machine::builtin("910-like").unwrap());
    // Names the assembler refuses: a result names an output file
    // (`DIR/NAME.npy`), so a path in it must not load.
    let named = |kernel: &str, param: &str, result: &str| {
        let mut p = tessera_sim::decode(&good).unwrap();
        p.kernel = kernel.into();
        p.params[0].name = param.into();
        p.results[0].name = result.into();
        encode(&p)
    };
    show("result path", &named("k", "a", "../Z"), &m);
    show("empty result name", &named("k", "a", ""), &m);
    show("kernel name", &named("k/x", "a", "c"), &m);
    show("param name", &named("k", "a b", "c"), &m);
    assert!(
        load(&named("k", "c", "c"), &m).is_ok(),
        "a result may share a parameter's name"
    );
    let twice = {
        let mut p = tessera_sim::decode(&good).unwrap();
        p.params.push(p.params[0].clone());
        encode(&p)
    };
    show("parameter named twice", &twice, &m);
    let escaped = {
        let mut p = tessera_sim::decode(&good).unwrap();
        p.machine = "910b-like\n.kernel x".into();
        encode(&p)
    };
    show("machine name", &escaped, &m);
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn machine_descriptions_are_validated_with_the_field_named() {
    let text = Machine::default().to_toml();
    let again = Machine::from_toml(&text).unwrap();
    assert_eq!(again, Machine::default());
    assert_eq!(Machine::builtin_names(), vec!["910b-like", "910-like"]);
    let mut out = Vec::new();
    let mut show = |what: &str, t: String| {
        out.push(format!("{what}: {}", Machine::from_toml(&t).unwrap_err()))
    };
    show(
        "syntax",
        text.replace("clock_ghz = 1.8", "clock_ghz = = 1.8"),
    );
    show(
        "unknown field",
        text.replace("clock_ghz = 1.8", "clock_ghz = 1.8\nclock_mhz = 3"),
    );
    show("missing field", text.replace("clock_ghz = 1.8\n", ""));
    // Nested tables: the field's whole path.
    show(
        "unknown nested field",
        text.replace("ai_cores = 24", "ai_cores = 24\nfoo = 1"),
    );
    // An unknown table is named once, as its header names it.
    show(
        "unknown table",
        text.replace("[launch]", "[launchx]\na = 1\n\n[launch]"),
    );
    show(
        "unknown nested table",
        text.replace("[launch]", "[cores.extra]\nq = 1\n\n[launch]"),
    );
    // A table written as an array of tables: the field is the table.
    show("array of tables", text.replace("[launch]", "[[launch]]"));
    let exp = text.find("[vector.ops.exp]").unwrap();
    let ln = text.find("[vector.ops.ln]").unwrap();
    show("missing table", format!("{}{}", &text[..exp], &text[ln..]));
    show(
        "bad type",
        text.replace("clock_ghz = 1.8", "clock_ghz = \"fast\""),
    );
    show(
        "bad value",
        text.replace("clock_ghz = 1.8", "clock_ghz = -1.0"),
    );
    show(
        "clock below 1 MHz",
        text.replace("clock_ghz = 1.8", "clock_ghz = 5e-324"),
    );
    show("alignment", text.replacen("align = 32", "align = 48", 1));
    show(
        "control character in the name",
        text.replace("name = \"910b-like\"", "name = \"910b\\u0007like\""),
    );
    show(
        "organisation",
        text.replace("organisation = \"split\"", "organisation = \"coupled\""),
    );
    show("event ids", text.replace("event_ids = 8", "event_ids = 0"));
    show(
        "a fixed cost past a million cycles",
        text.replace(
            "l2_hit_fixed_cycles = 50",
            "l2_hit_fixed_cycles = 4294967295",
        ),
    );
    let coupled = Machine::builtin("910-like").unwrap().to_toml();
    show(
        "a cross-core latency on a coupled machine",
        coupled.replace("cross_core_latency = 0", "cross_core_latency = 100"),
    );
    out.push(format!(
        "unknown built-in: {}",
        Machine::load("911-like").unwrap_err()
    ));
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn decode_needs_no_machine_and_disassembles() {
    let p = decode(&sample()).unwrap();
    assert_eq!(p.kernel, "k");
    assert_eq!(p.machine, "910b-like");
}
