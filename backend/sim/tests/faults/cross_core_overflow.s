; A vector core raises a cross-core flag 16 times while the cube core never
; waits: the counter (at most 15 pending) overflows.
;@ expect: E0710
.kernel f
.result c f32[64]
.aic
    s.nop
    end
.aiv
    s.li r1, 0
loop:
    xcore.set s, 2, 5
    s.add r1, r1, 1
    s.br.lt r1, 16, loop
    end
