.kernel spin
.param a f32[8]
.result c f32[8]
.block_dim 2
.aiv
top:
    s.jmp top
