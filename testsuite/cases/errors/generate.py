#!/usr/bin/env python3
"""Writes the error cases that are too large to write by hand (needs only python3).

    python3 testsuite/cases/errors/generate.py

Deterministic: running it again leaves `git status` clean.
"""

import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DEPTH = 300  # the language notes bound nesting at 256 levels (E0012)


def main():
    deep = "(" * DEPTH + "a + 1.0" + ")" * DEPTH
    (HERE / "expression_nested_too_deep.tsr").write_text(
        f"//! An expression nested {DEPTH} parentheses deep (more than 256 levels) is E0012, reported\n"
        "//! once, without exhausting the compiler's stack; the kernel's return is still parsed.\n"
        "//! Written by generate.py.\n"
        "kernel f(a: f32[4]) -> f32[4] {\n"
        f"    let b = {deep}; //~ ERROR E0012\n"
        "    return a;\n"
        "}\n",
        encoding="utf-8",
    )
    deep_neg = "-" * DEPTH + "a"
    (HERE / "unary_nested_too_deep.tsr").write_text(
        f"//! {DEPTH} nested unary minus operators (`- - - … a`) also exceed the 256-level bound.\n"
        "//! Written by generate.py.\n"
        "kernel f(a: f32[4]) -> f32[4] {\n"
        f"    let b = {' '.join(deep_neg[:-1])} a; //~ ERROR E0012\n"
        "    return a;\n"
        "}\n",
        encoding="utf-8",
    )
    terms = " + ".join(["a"] * DEPTH)
    (HERE / "operator_chain_too_long.tsr").write_text(
        f"//! A flat chain of {DEPTH - 1} `+` nests its left side one level per operator: E0012, with a\n"
        "//! note that says so. Written by generate.py.\n"
        "kernel f(a: f32[4]) -> f32[4] {\n"
        f"    let b = {terms}; //~ ERROR E0012\n"
        "    return a;\n"
        "}\n",
        encoding="utf-8",
    )
    # A chain of 66 kernels, each calling the next: inlining stops at 64 nested
    # calls (E0109), reported at the call that goes one level too deep.
    chain = ["//! Kernel calls nest at most 64 deep: a chain of 66 kernels, each calling the next,",
             "//! is E0109 at the call 65 levels down. Written by generate.py."]
    for i in range(65):
        mark = "  //~ ERROR E0109" if i == 64 else ""
        chain.append(f"kernel k{i}(x: f32[4]) -> f32[4] {{ return k{i + 1}(x) + 1.0; }}{mark}")
    chain.append("kernel k65(x: f32[4]) -> f32[4] { return x; }")
    (HERE / "kernel_calls_too_deep.tsr").write_text("\n".join(chain) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
