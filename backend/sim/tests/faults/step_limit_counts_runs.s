; A transfer counts a step per GM run: one copy of 255 runs passes a step
; limit of 200, where its instructions alone take a handful.
;@ expect: E0711
;@ step_limit: 200
.kernel f
.param a f32[2048]
.result c f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 255, 32, 0, 0
    end
