; tessera bytecode, machine 910-like (fingerprint 0x4e28d1900e77ef67)
.kernel gemm
.machine 910-like
.param a f16[40, 70]
.param b f16[70, 50]
.result out0 f16[40, 50]
.block_dim 12
.workspace 0

.core
    s.sys r0, block_idx
    s.sys r1, block_dim
    s.arg r2, 0
    s.arg r3, 1
    s.arg r4, 2
    s.mov r5, r0
    sync.set v, m, 0
    sync.set mte3, v, 0
    sync.set mte1, mte2, 0
    sync.set m, mte1, 2
    sync.set m, mte1, 1
    sync.set mte1, mte2, 1
.L12:
    s.br.ge r5, 12, .L166
    s.div r11, r5, 12
    s.rem r13, r5, 12
    s.div r12, r13, 4
    s.rem r13, r13, 4
    s.mul r12, r12, 16
    s.mul r13, r13, 16
    s.li r6, 40
    s.sub r6, r6, r12
    s.min r6, r6, 16
    s.li r7, 50
    s.sub r7, r7, r13
    s.min r7, r7, 16
    s.mul r8, r12, 140
    s.add r8, r8, r2
    s.mul r9, r13, 2
    s.add r9, r9, r3
    s.mul r10, r12, 100
    s.add r10, r10, r4
    s.mul r13, r13, 2
    s.add r10, r10, r13
    s.add r15, r6, 15
    s.shr r15, r15, 4
    s.shl r14, r15, 4
    s.add r16, r7, 15
    s.shr r16, r16, 4
    s.li r17, 1
    s.li r18, 0
    sync.wait v, m, 0
.L41:
    s.br.ge r18, 70, .L150
    s.li r19, 70
    s.sub r19, r19, r18
    s.min r19, r19, 96
    sync.wait mte1, mte2, 0
    mte2.nd2nz.gm.l1.f16 [0], [r8], r6, r19, 140, 16
    sync.set mte2, mte1, 0
    mte2.nd2nz.gm.l1.f16 [6144], [r9], r19, r7, 100, 96
    sync.set mte2, mte1, 1
    s.sub r20, r19, 0
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    sync.wait mte2, mte1, 0
    sync.wait m, mte1, 2
    mte1.load.l0a.f16 [0], [0], r15, r21, 512
    sync.wait mte2, mte1, 1
    mte1.load.l0b.t.f16 [0], [6144], r21, r16, 3072
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], r6, r20, r7, r17
    sync.set m, mte1, 0
    s.li r17, 0
    sync.wait m, mte1, 1
    s.br.le r19, 32, .L76
    s.sub r20, r19, 32
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    mte1.load.l0a.f16 [1024], [1024], r15, r21, 512
    mte1.load.l0b.t.f16 [1024], [7168], r21, r16, 3072
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [1024], [1024], r6, r20, r7, r17
    s.li r17, 0
.L76:
    sync.set m, mte1, 1
    sync.wait m, mte1, 0
    s.br.le r19, 64, .L89
    s.sub r20, r19, 64
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    mte1.load.l0a.f16 [0], [2048], r15, r21, 512
    mte1.load.l0b.t.f16 [0], [8192], r21, r16, 3072
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], r6, r20, r7, r17
    s.li r17, 0
.L89:
    sync.set m, mte1, 0
    sync.set mte1, mte2, 0
    s.add r18, r18, 96
    s.add r8, r8, 192
    s.add r9, r9, 9600
    sync.wait mte1, mte2, 1
    s.br.ge r18, 70, .L101
    s.li r19, 70
    s.sub r19, r19, r18
    s.min r19, r19, 96
    mte2.nd2nz.gm.l1.f16 [3072], [r8], r6, r19, 140, 16
    mte2.nd2nz.gm.l1.f16 [9216], [r9], r19, r7, 100, 96
.L101:
    sync.set mte2, mte1, 2
    sync.wait mte2, mte1, 2
    sync.wait m, mte1, 1
    s.br.ge r18, 70, .L115
    s.sub r20, r19, 0
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    mte1.load.l0a.f16 [1024], [3072], r15, r21, 512
    mte1.load.l0b.t.f16 [1024], [9216], r21, r16, 3072
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [1024], [1024], r6, r20, r7, r17
    s.li r17, 0
.L115:
    sync.set m, mte1, 1
    sync.wait m, mte1, 0
    s.br.ge r18, 70, .L129
    s.br.le r19, 32, .L129
    s.sub r20, r19, 32
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    mte1.load.l0a.f16 [0], [4096], r15, r21, 512
    mte1.load.l0b.t.f16 [0], [10240], r21, r16, 3072
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], r6, r20, r7, r17
    s.li r17, 0
.L129:
    sync.set m, mte1, 2
    sync.wait m, mte1, 1
    s.br.ge r18, 70, .L143
    s.br.le r19, 64, .L143
    s.sub r20, r19, 64
    s.min r20, r20, 32
    s.add r21, r20, 15
    s.shr r21, r21, 4
    mte1.load.l0a.f16 [1024], [5120], r15, r21, 512
    mte1.load.l0b.t.f16 [1024], [11264], r21, r16, 3072
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [1024], [1024], r6, r20, r7, r17
    s.li r17, 0
.L143:
    sync.set m, mte1, 1
    sync.set mte1, mte2, 1
    s.br.ge r18, 70, .L149
    s.add r18, r18, 96
    s.add r8, r8, 192
    s.add r9, r9, 9600
.L149:
    s.jmp .L41
.L150:
    sync.set m, v, 0
    s.sub r11, r7, 0
    s.min r11, r11, 16
    s.mul r12, r14, 0
    sync.wait m, v, 0
    sync.wait mte3, v, 0
    vec.copy.l0c.ub.f16 [0], [r12], r6, r11, r14, 32, 0
    sync.set v, mte3, 0
    sync.set v, m, 0
    s.add r13, r10, 0
    s.mul r11, r11, 2
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [0], r6, r11, 32, 100
    sync.set mte3, v, 0
    s.add r5, r5, r1
    s.jmp .L12
.L166:
    end
