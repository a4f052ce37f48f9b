; Scalar integer division by zero.
;@ expect: E0700
.kernel f
.result c f32[16]
.aiv
    s.li r1, 7
    s.div r2, r1, zr
    end
