; An endless loop stopped by the cycle limit.
;@ expect: E0707
;@ cycle_limit: 20000
.kernel f
.result c f32[64]
.aiv
loop:
    s.add r1, r1, 1
    s.jmp loop
