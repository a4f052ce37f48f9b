; A copy that runs past the end of the 192 KiB UB.
;@ expect: E0703
.kernel f
.param a f32[1024]
.result c f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [196608 - 1024], [r1], 1, 2048, 0, 0
    end
