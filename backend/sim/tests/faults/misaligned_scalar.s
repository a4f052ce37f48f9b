; A 4-byte scalar load from an odd address.
;@ expect: E0702
.kernel f
.param a f32[64]
.result c f32[64]
.aiv
    s.arg r1, 0
    s.ld.gm.u32 r2, [r1 + 1]
    end
