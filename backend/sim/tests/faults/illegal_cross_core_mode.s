; Cross-core mode 2 (AIC <-> AIVs) in a kernel without an AIC section.
;@ expect: E0704
.kernel f
.result c f32[64]
.aiv
    xcore.set mte3, 2, 0
    end
