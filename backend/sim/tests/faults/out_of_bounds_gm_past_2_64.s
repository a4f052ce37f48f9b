; A 32-byte GM read at address 2^64 - 1: the range is [2^64 - 1, 2^64 + 31),
; not an empty one.
;@ expect: E0701
.kernel f
.param a f32[64]
.result c f32[64]
.aiv
    s.li r3, -1
    mte2.copy.gm.ub [0], [r3], 1, 32, 0, 0
    end
