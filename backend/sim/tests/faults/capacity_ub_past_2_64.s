; A scalar store at UB address 2^64 - 4: the fault names the range it asked
; for, [2^64 - 4, 2^64), not a wrapped one.
;@ expect: E0703
.kernel f
.result c f32[64]
.aiv
    s.li r1, -4
    s.st.ub.u32 r1, [r1]
    end
