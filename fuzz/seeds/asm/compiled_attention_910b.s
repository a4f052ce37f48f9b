; tessera bytecode, machine 910b-like (fingerprint 0x5b5a44b9e3ef2bb6)
.kernel attention
.machine 910b-like
.param q f16[2, 64, 32]
.param k f16[2, 64, 32]
.param v f16[2, 64, 32]
.result out0 f16[2, 64, 32]
.workspace 181248

.launch ; 0
.block_dim 16

.aic
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.arg r2, 0
    s.arg r3, 1
    s.sys r4, workspace
    s.mov r5, r0
    sync.set fix, m, 0
    sync.set mte1, mte2, 0
    sync.set mte1, mte2, 1
    sync.set m, mte1, 0
    sync.set mte1, mte2, 2
    sync.set m, mte1, 1
.L12:
    s.br.ge r5, 16, .L112
    s.div r11, r5, 8
    s.rem r13, r5, 8
    s.div r12, r13, 4
    s.rem r13, r13, 4
    s.mul r12, r12, 32
    s.mul r13, r13, 16
    s.li r6, 64
    s.sub r6, r6, r12
    s.min r6, r6, 32
    s.li r7, 64
    s.sub r7, r7, r13
    s.min r7, r7, 16
    s.mul r8, r12, 64
    s.add r8, r8, r2
    s.mul r9, r13, 64
    s.add r9, r9, r3
    s.mul r10, r12, 256
    s.add r10, r10, r4
    s.mul r13, r13, 4
    s.add r10, r10, r13
    s.rem r14, r11, 2
    s.div r11, r11, 2
    s.mul r11, r14, 4096
    s.add r8, r8, r11
    s.mul r11, r14, 4096
    s.add r9, r9, r11
    s.mul r11, r14, 16384
    s.add r10, r10, r11
    s.add r16, r6, 15
    s.shr r16, r16, 4
    s.shl r15, r16, 4
    s.add r17, r7, 15
    s.shr r17, r17, 4
    s.li r18, 1
    s.li r19, 0
    sync.wait fix, m, 0
.L49:
    s.br.ge r19, 32, .L106
    s.li r20, 32
    s.sub r20, r20, r19
    s.min r20, r20, 32
    sync.wait mte1, mte2, 0
    mte2.nd2nz.gm.l1.f16 [0], [r8], r6, r20, 64, 32
    sync.set mte2, mte1, 0
    sync.wait mte1, mte2, 1
    mte2.nd2nz.gm.l1.f16 [4096], [r9], r7, r20, 64, 16
    sync.set mte2, mte1, 1
    s.sub r21, r20, 0
    s.min r21, r21, 32
    s.add r22, r21, 15
    s.shr r22, r22, 4
    sync.wait mte2, mte1, 0
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [0], r16, r22, 1024
    sync.set mte1, mte2, 0
    sync.wait mte2, mte1, 1
    mte1.load.l0b.f16 [0], [4096], r22, r17, 512
    sync.set mte1, m, 0
    sync.set mte1, mte2, 1
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], r6, r21, r7, r18
    sync.set m, mte1, 0
    s.li r18, 0
    s.add r19, r19, 32
    s.add r8, r8, 64
    s.add r9, r9, 64
    sync.wait mte1, mte2, 2
    s.br.ge r19, 32, .L85
    s.li r20, 32
    s.sub r20, r20, r19
    s.min r20, r20, 32
    mte2.nd2nz.gm.l1.f16 [2048], [r8], r6, r20, 64, 32
    mte2.nd2nz.gm.l1.f16 [5120], [r9], r7, r20, 64, 16
.L85:
    sync.set mte2, mte1, 2
    sync.wait mte2, mte1, 2
    s.br.ge r19, 32, .L100
    s.sub r21, r20, 0
    s.min r21, r21, 32
    s.add r22, r21, 15
    s.shr r22, r22, 4
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [2048], [2048], r16, r22, 1024
    mte1.load.l0b.f16 [1024], [5120], r22, r17, 512
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [2048], [1024], r6, r21, r7, r18
    sync.set m, mte1, 1
    s.li r18, 0
.L100:
    sync.set mte1, mte2, 2
    s.br.ge r19, 32, .L105
    s.add r19, r19, 32
    s.add r8, r8, 64
    s.add r9, r9, 64
.L105:
    s.jmp .L49
.L106:
    sync.set m, fix, 0
    sync.wait m, fix, 0
    fix.copy.l0c.gm.f32 [r10], [0], r6, r7, r15, 256, 0
    sync.set fix, m, 0
    s.add r5, r5, r1
    s.jmp .L12
.L112:
    end

.launch ; 1
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.sys r3, workspace
    s.add r3, r3, 32768
    vec.dup.f32 [2048], 0.088388346, 4, 64
    s.mov r4, r0
    s.add r6, r1, r1
    sync.set v, mte2, 0
    sync.set mte3, v, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 1
    sync.barrier v
.L13:
    s.br.ge r4, 32, .L84
    s.div r14, r4, 32
    s.rem r13, r4, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    sync.wait mte3, v, 0
    vec.mul.f32 [3072], [0], [2048], 4, 64
    sync.set v, mte3, 0
    sync.set v, mte2, 0
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r12], [3072], r9, r11, 1024, 0
    sync.set mte3, v, 0
    s.add r5, r4, r1
    s.br.ge r5, 32, .L82
    s.div r14, r5, 32
    s.rem r13, r5, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    sync.wait mte3, v, 1
    vec.mul.f32 [4096], [1024], [2048], 4, 64
    sync.set v, mte3, 1
    sync.set v, mte2, 1
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r12], [4096], r9, r11, 1024, 0
    sync.set mte3, v, 1
.L82:
    s.add r4, r4, r6
    s.jmp .L13
.L84:
    end

.launch ; 2
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 32768
    s.sys r3, workspace
    s.add r3, r3, 65536
    s.li r4, 32
    s.sub r4, r4, r0
    s.add r4, r4, r1
    s.sub r4, r4, 1
    s.div r4, r4, r1
    s.mul r5, r4, 1
    s.li r6, 0
    sync.set mte3, v, 0
    sync.set mte3, v, 1
.L15:
    s.br.ge r6, r5, .L108
    s.div r8, r6, 1
    s.rem r9, r6, 1
    s.mul r8, r8, r1
    s.add r8, r8, r0
    s.mul r10, r9, 64
    s.li r12, 64
    s.sub r12, r12, r10
    s.min r12, r12, 64
    vec.dup.f32 [0], -inf, 4, 64
    sync.set v, mte2, 0
    s.mul r16, r8, 4
    s.li r11, 128
    s.sub r11, r11, r16
    s.min r11, r11, 4
    s.mul r13, r16, 256
    s.mul r14, r10, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r15, r12, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r13], r11, r15, 256, 256
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.amax.f32 [2048], [0], 1, 64
    vec.amax.f32 [2304], [256], 1, 64
    vec.amax.f32 [2560], [512], 1, 64
    vec.amax.f32 [2816], [768], 1, 64
    sync.barrier v
    vec.rmax.f32 [3072], [2048], 4, 64
    s.br.ne r9, 0, .L47
    vec.dup.f32 [3104], -inf, 1, 4
.L47:
    sync.barrier v
    vec.max.f32 [3104], [3104], [3072], 1, 4
    sync.barrier v
    s.br.ne r9, 0, .L60
    sync.wait mte3, v, 0
    vec.copy.f32 [3136], [3104], 1, 4
    sync.set v, mte3, 0
    s.mul r13, r8, 16
    s.add r13, r13, r3
    s.mul r15, r11, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [3136], 1, r15, 0, 0
    sync.set mte3, v, 0
.L60:
    s.add r7, r6, 1
    s.br.ge r7, r5, .L106
    s.div r8, r7, 1
    s.rem r9, r7, 1
    s.mul r8, r8, r1
    s.add r8, r8, r0
    s.mul r10, r9, 64
    s.li r12, 64
    s.sub r12, r12, r10
    s.min r12, r12, 64
    vec.dup.f32 [1024], -inf, 4, 64
    sync.set v, mte2, 1
    s.mul r16, r8, 4
    s.li r11, 128
    s.sub r11, r11, r16
    s.min r11, r11, 4
    s.mul r13, r16, 256
    s.mul r14, r10, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r15, r12, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r13], r11, r15, 256, 256
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    vec.amax.f32 [2048], [1024], 1, 64
    vec.amax.f32 [2304], [1280], 1, 64
    vec.amax.f32 [2560], [1536], 1, 64
    vec.amax.f32 [2816], [1792], 1, 64
    sync.barrier v
    vec.rmax.f32 [3072], [2048], 4, 64
    s.br.ne r9, 0, .L93
    vec.dup.f32 [3104], -inf, 1, 4
.L93:
    sync.barrier v
    vec.max.f32 [3104], [3104], [3072], 1, 4
    sync.barrier v
    s.br.ne r9, 0, .L106
    sync.wait mte3, v, 1
    vec.copy.f32 [3168], [3104], 1, 4
    sync.set v, mte3, 1
    s.mul r13, r8, 16
    s.add r13, r13, r3
    s.mul r15, r11, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r13], [3168], 1, r15, 0, 0
    sync.set mte3, v, 1
.L106:
    s.add r6, r6, 2
    s.jmp .L15
.L108:
    end

.launch ; 3
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 32768
    s.sys r3, workspace
    s.add r3, r3, 65536
    s.sys r4, workspace
    s.add r4, r4, 66048
    s.mov r5, r0
    s.add r7, r1, r1
    sync.set v, mte2, 0
    sync.set mte3, v, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 1
.L14:
    s.br.ge r5, 32, .L111
    s.div r15, r5, 32
    s.rem r14, r5, 32
    s.div r8, r14, 1
    s.rem r9, r14, 1
    s.mul r8, r8, 4
    s.mul r9, r9, 64
    s.li r10, 128
    s.sub r10, r10, r8
    s.min r10, r10, 4
    s.li r11, 64
    s.sub r11, r11, r9
    s.min r11, r11, 64
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r12, r11, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r13], r10, r12, 256, 256
    s.mul r13, r8, 4
    s.mul r14, r9, 0
    s.add r13, r13, r14
    s.add r13, r13, r3
    s.mul r12, r10, 4
    mte2.copy.gm.ub [4096], [r13], 1, r12, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.brcb.f32 [4160], [4096], 1
    sync.barrier v
    vec.copy.f32 [2048], [4160, 0, 0], 1, 64
    vec.copy.f32 [2304], [4192, 0, 0], 1, 64
    vec.copy.f32 [2560], [4224, 0, 0], 1, 64
    vec.copy.f32 [2816], [4256, 0, 0], 1, 64
    sync.barrier v
    sync.wait mte3, v, 0
    vec.sub.f32 [4672], [0], [2048], 4, 64
    sync.set v, mte3, 0
    sync.set v, mte2, 0
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r4
    s.mul r12, r11, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [4672], r10, r12, 256, 256
    sync.set mte3, v, 0
    s.add r6, r5, r1
    s.br.ge r6, 32, .L109
    s.div r15, r6, 32
    s.rem r14, r6, 32
    s.div r8, r14, 1
    s.rem r9, r14, 1
    s.mul r8, r8, 4
    s.mul r9, r9, 64
    s.li r10, 128
    s.sub r10, r10, r8
    s.min r10, r10, 4
    s.li r11, 64
    s.sub r11, r11, r9
    s.min r11, r11, 64
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r12, r11, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r13], r10, r12, 256, 256
    s.mul r13, r8, 4
    s.mul r14, r9, 0
    s.add r13, r13, r14
    s.add r13, r13, r3
    s.mul r12, r10, 4
    mte2.copy.gm.ub [4128], [r13], 1, r12, 0, 0
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    vec.brcb.f32 [4416], [4128], 1
    sync.barrier v
    vec.copy.f32 [3072], [4416, 0, 0], 1, 64
    vec.copy.f32 [3328], [4448, 0, 0], 1, 64
    vec.copy.f32 [3584], [4480, 0, 0], 1, 64
    vec.copy.f32 [3840], [4512, 0, 0], 1, 64
    sync.barrier v
    sync.wait mte3, v, 1
    vec.sub.f32 [5696], [1024], [3072], 4, 64
    sync.set v, mte3, 1
    sync.set v, mte2, 1
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r4
    s.mul r12, r11, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r13], [5696], r10, r12, 256, 256
    sync.set mte3, v, 1
.L109:
    s.add r5, r5, r7
    s.jmp .L14
.L111:
    end

.launch ; 4
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 66048
    s.sys r3, workspace
    s.add r3, r3, 98816
    s.mov r4, r0
    s.add r6, r1, r1
    sync.set v, mte2, 0
    sync.set mte3, v, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 1
.L12:
    s.br.ge r4, 32, .L83
    s.div r14, r4, 32
    s.rem r13, r4, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    sync.wait mte3, v, 0
    vec.exp.f32 [2048], [0], 4, 64
    sync.set v, mte3, 0
    sync.set v, mte2, 0
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r12], [2048], r9, r11, 1024, 0
    sync.set mte3, v, 0
    s.add r5, r4, r1
    s.br.ge r5, 32, .L81
    s.div r14, r5, 32
    s.rem r13, r5, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    sync.wait mte3, v, 1
    vec.exp.f32 [3072], [1024], 4, 64
    sync.set v, mte3, 1
    sync.set v, mte2, 1
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r12], [3072], r9, r11, 1024, 0
    sync.set mte3, v, 1
.L81:
    s.add r4, r4, r6
    s.jmp .L12
.L83:
    end

.launch ; 5
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 98816
    s.sys r3, workspace
    s.add r3, r3, 131584
    s.li r4, 32
    s.sub r4, r4, r0
    s.add r4, r4, r1
    s.sub r4, r4, 1
    s.div r4, r4, r1
    s.mul r5, r4, 1
    s.li r6, 0
    sync.set mte3, v, 0
    sync.set mte3, v, 1
.L15:
    s.br.ge r6, r5, .L108
    s.div r8, r6, 1
    s.rem r9, r6, 1
    s.mul r8, r8, r1
    s.add r8, r8, r0
    s.mul r10, r9, 64
    s.li r12, 64
    s.sub r12, r12, r10
    s.min r12, r12, 64
    vec.dup.f32 [0], 0.0, 4, 64
    sync.set v, mte2, 0
    s.mul r16, r8, 4
    s.li r11, 128
    s.sub r11, r11, r16
    s.min r11, r11, 4
    s.mul r13, r16, 256
    s.mul r14, r10, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r15, r12, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r13], r11, r15, 256, 256
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.asum.f32 [2048], [0], 1, 64
    vec.asum.f32 [2304], [256], 1, 64
    vec.asum.f32 [2560], [512], 1, 64
    vec.asum.f32 [2816], [768], 1, 64
    sync.barrier v
    vec.rsum.f32 [3072], [2048], 4, 64
    s.br.ne r9, 0, .L47
    vec.dup.f32 [3104], 0.0, 1, 4
.L47:
    sync.barrier v
    vec.add.f32 [3104], [3104], [3072], 1, 4
    sync.barrier v
    s.br.ne r9, 0, .L60
    sync.wait mte3, v, 0
    vec.copy.f32 [3136], [3104], 1, 4
    sync.set v, mte3, 0
    s.mul r13, r8, 16
    s.add r13, r13, r3
    s.mul r15, r11, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [3136], 1, r15, 0, 0
    sync.set mte3, v, 0
.L60:
    s.add r7, r6, 1
    s.br.ge r7, r5, .L106
    s.div r8, r7, 1
    s.rem r9, r7, 1
    s.mul r8, r8, r1
    s.add r8, r8, r0
    s.mul r10, r9, 64
    s.li r12, 64
    s.sub r12, r12, r10
    s.min r12, r12, 64
    vec.dup.f32 [1024], 0.0, 4, 64
    sync.set v, mte2, 1
    s.mul r16, r8, 4
    s.li r11, 128
    s.sub r11, r11, r16
    s.min r11, r11, 4
    s.mul r13, r16, 256
    s.mul r14, r10, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r15, r12, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r13], r11, r15, 256, 256
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    vec.asum.f32 [2048], [1024], 1, 64
    vec.asum.f32 [2304], [1280], 1, 64
    vec.asum.f32 [2560], [1536], 1, 64
    vec.asum.f32 [2816], [1792], 1, 64
    sync.barrier v
    vec.rsum.f32 [3072], [2048], 4, 64
    s.br.ne r9, 0, .L93
    vec.dup.f32 [3104], 0.0, 1, 4
.L93:
    sync.barrier v
    vec.add.f32 [3104], [3104], [3072], 1, 4
    sync.barrier v
    s.br.ne r9, 0, .L106
    sync.wait mte3, v, 1
    vec.copy.f32 [3168], [3104], 1, 4
    sync.set v, mte3, 1
    s.mul r13, r8, 16
    s.add r13, r13, r3
    s.mul r15, r11, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r13], [3168], 1, r15, 0, 0
    sync.set mte3, v, 1
.L106:
    s.add r6, r6, 2
    s.jmp .L15
.L108:
    end

.launch ; 6
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 98816
    s.sys r3, workspace
    s.add r3, r3, 131584
    s.sys r4, workspace
    s.add r4, r4, 132096
    s.mov r5, r0
    s.add r7, r1, r1
    sync.set v, mte2, 0
    sync.set mte3, v, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 1
.L14:
    s.br.ge r5, 32, .L111
    s.div r15, r5, 32
    s.rem r14, r5, 32
    s.div r8, r14, 1
    s.rem r9, r14, 1
    s.mul r8, r8, 4
    s.mul r9, r9, 64
    s.li r10, 128
    s.sub r10, r10, r8
    s.min r10, r10, 4
    s.li r11, 64
    s.sub r11, r11, r9
    s.min r11, r11, 64
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r12, r11, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r13], r10, r12, 256, 256
    s.mul r13, r8, 4
    s.mul r14, r9, 0
    s.add r13, r13, r14
    s.add r13, r13, r3
    s.mul r12, r10, 4
    mte2.copy.gm.ub [4096], [r13], 1, r12, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.brcb.f32 [4160], [4096], 1
    sync.barrier v
    vec.copy.f32 [2048], [4160, 0, 0], 1, 64
    vec.copy.f32 [2304], [4192, 0, 0], 1, 64
    vec.copy.f32 [2560], [4224, 0, 0], 1, 64
    vec.copy.f32 [2816], [4256, 0, 0], 1, 64
    sync.barrier v
    sync.wait mte3, v, 0
    vec.div.f32 [4672], [0], [2048], 4, 64
    sync.set v, mte3, 0
    sync.set v, mte2, 0
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r4
    s.mul r12, r11, 4
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [4672], r10, r12, 256, 256
    sync.set mte3, v, 0
    s.add r6, r5, r1
    s.br.ge r6, 32, .L109
    s.div r15, r6, 32
    s.rem r14, r6, 32
    s.div r8, r14, 1
    s.rem r9, r14, 1
    s.mul r8, r8, 4
    s.mul r9, r9, 64
    s.li r10, 128
    s.sub r10, r10, r8
    s.min r10, r10, 4
    s.li r11, 64
    s.sub r11, r11, r9
    s.min r11, r11, 64
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r2
    s.mul r12, r11, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r13], r10, r12, 256, 256
    s.mul r13, r8, 4
    s.mul r14, r9, 0
    s.add r13, r13, r14
    s.add r13, r13, r3
    s.mul r12, r10, 4
    mte2.copy.gm.ub [4128], [r13], 1, r12, 0, 0
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    vec.brcb.f32 [4416], [4128], 1
    sync.barrier v
    vec.copy.f32 [3072], [4416, 0, 0], 1, 64
    vec.copy.f32 [3328], [4448, 0, 0], 1, 64
    vec.copy.f32 [3584], [4480, 0, 0], 1, 64
    vec.copy.f32 [3840], [4512, 0, 0], 1, 64
    sync.barrier v
    sync.wait mte3, v, 1
    vec.div.f32 [5696], [1024], [3072], 4, 64
    sync.set v, mte3, 1
    sync.set v, mte2, 1
    s.mul r13, r8, 256
    s.mul r14, r9, 4
    s.add r13, r13, r14
    s.add r13, r13, r4
    s.mul r12, r11, 4
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r13], [5696], r10, r12, 256, 256
    sync.set mte3, v, 1
.L109:
    s.add r5, r5, r7
    s.jmp .L14
.L111:
    end

.launch ; 7
.block_dim 32

.aiv
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 132096
    s.sys r3, workspace
    s.add r3, r3, 164864
    s.mov r4, r0
    s.add r6, r1, r1
    sync.set v, mte2, 0
    sync.set mte3, v, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 1
.L12:
    s.br.ge r4, 32, .L83
    s.div r14, r4, 32
    s.rem r13, r4, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [0], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    sync.wait mte3, v, 0
    vec.cvt.f16.f32 [2048, 1, 4], [0], 4, 64
    sync.set v, mte3, 0
    sync.set v, mte2, 0
    s.mul r12, r7, 0
    s.mul r13, r8, 2
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 2
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r12], [2048], r9, r11, 512, 0
    sync.set mte3, v, 0
    s.add r5, r4, r1
    s.br.ge r5, 32, .L81
    s.div r14, r5, 32
    s.rem r13, r5, 32
    s.div r7, r13, 32
    s.rem r8, r13, 32
    s.mul r7, r7, 1
    s.mul r8, r8, 256
    s.li r9, 1
    s.sub r9, r9, r7
    s.min r9, r9, 1
    s.li r10, 8192
    s.sub r10, r10, r8
    s.min r10, r10, 256
    s.mul r12, r7, 0
    s.mul r13, r8, 4
    s.add r12, r12, r13
    s.add r12, r12, r2
    s.mul r11, r10, 4
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [1024], [r12], r9, r11, 0, 1024
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    sync.wait mte3, v, 1
    vec.cvt.f16.f32 [2560, 1, 4], [1024], 4, 64
    sync.set v, mte3, 1
    sync.set v, mte2, 1
    s.mul r12, r7, 0
    s.mul r13, r8, 2
    s.add r12, r12, r13
    s.add r12, r12, r3
    s.mul r11, r10, 2
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r12], [2560], r9, r11, 512, 0
    sync.set mte3, v, 1
.L81:
    s.add r4, r4, r6
    s.jmp .L12
.L83:
    end

.launch ; 8
.block_dim 16

.aic
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.sys r2, workspace
    s.add r2, r2, 164864
    s.arg r3, 2
    s.arg r4, 3
    s.mov r5, r0
    sync.set fix, m, 0
    sync.set mte1, mte2, 0
    sync.set mte1, mte2, 1
    sync.set m, mte1, 0
    sync.set mte1, mte2, 2
    sync.set m, mte1, 1
.L13:
    s.br.ge r5, 16, .L113
    s.div r11, r5, 8
    s.rem r13, r5, 8
    s.div r12, r13, 2
    s.rem r13, r13, 2
    s.mul r12, r12, 16
    s.mul r13, r13, 16
    s.li r6, 64
    s.sub r6, r6, r12
    s.min r6, r6, 16
    s.li r7, 32
    s.sub r7, r7, r13
    s.min r7, r7, 16
    s.mul r8, r12, 128
    s.add r8, r8, r2
    s.mul r9, r13, 2
    s.add r9, r9, r3
    s.mul r10, r12, 64
    s.add r10, r10, r4
    s.mul r13, r13, 2
    s.add r10, r10, r13
    s.rem r14, r11, 2
    s.div r11, r11, 2
    s.mul r11, r14, 8192
    s.add r8, r8, r11
    s.mul r11, r14, 4096
    s.add r9, r9, r11
    s.mul r11, r14, 4096
    s.add r10, r10, r11
    s.add r16, r6, 15
    s.shr r16, r16, 4
    s.shl r15, r16, 4
    s.add r17, r7, 15
    s.shr r17, r17, 4
    s.li r18, 1
    s.li r19, 0
    sync.wait fix, m, 0
.L50:
    s.br.ge r19, 64, .L107
    s.li r20, 64
    s.sub r20, r20, r19
    s.min r20, r20, 64
    sync.wait mte1, mte2, 0
    mte2.nd2nz.gm.l1.f16 [0], [r8], r6, r20, 128, 16
    sync.set mte2, mte1, 0
    sync.wait mte1, mte2, 1
    mte2.nd2nz.gm.l1.f16 [4096], [r9], r20, r7, 64, 64
    sync.set mte2, mte1, 1
    s.sub r21, r20, 0
    s.min r21, r21, 64
    s.add r22, r21, 15
    s.shr r22, r22, 4
    sync.wait mte2, mte1, 0
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [0], r16, r22, 512
    sync.set mte1, mte2, 0
    sync.wait mte2, mte1, 1
    mte1.load.l0b.t.f16 [0], [4096], r22, r17, 2048
    sync.set mte1, m, 0
    sync.set mte1, mte2, 1
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], r6, r21, r7, r18
    sync.set m, mte1, 0
    s.li r18, 0
    s.add r19, r19, 64
    s.add r8, r8, 128
    s.add r9, r9, 4096
    sync.wait mte1, mte2, 2
    s.br.ge r19, 64, .L86
    s.li r20, 64
    s.sub r20, r20, r19
    s.min r20, r20, 64
    mte2.nd2nz.gm.l1.f16 [2048], [r8], r6, r20, 128, 16
    mte2.nd2nz.gm.l1.f16 [6144], [r9], r20, r7, 64, 64
.L86:
    sync.set mte2, mte1, 2
    sync.wait mte2, mte1, 2
    s.br.ge r19, 64, .L101
    s.sub r21, r20, 0
    s.min r21, r21, 64
    s.add r22, r21, 15
    s.shr r22, r22, 4
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [2048], [2048], r16, r22, 512
    mte1.load.l0b.t.f16 [2048], [6144], r22, r17, 2048
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [2048], [2048], r6, r21, r7, r18
    sync.set m, mte1, 1
    s.li r18, 0
.L101:
    sync.set mte1, mte2, 2
    s.br.ge r19, 64, .L106
    s.add r19, r19, 64
    s.add r8, r8, 128
    s.add r9, r9, 4096
.L106:
    s.jmp .L50
.L107:
    sync.set m, fix, 0
    sync.wait m, fix, 0
    fix.copy.l0c.gm.f16 [r10], [0], r6, r7, r15, 64, 0
    sync.set fix, m, 0
    s.add r5, r5, r1
    s.jmp .L13
.L113:
    end
