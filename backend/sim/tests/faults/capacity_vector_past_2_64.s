; A vector write of 256 bytes at UB address 2^64 - 32: the range runs to
; 2^64 + 224, named as such, not saturated.
;@ expect: E0703
.kernel f
.result c f32[64]
.aiv
    vec.dup.f32 [-32], 1.0, 1, 64
    end
