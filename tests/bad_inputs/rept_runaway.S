/* expect-error: line 4: .rept count 4294967296 exceeds the limit of 100000 (raise it with --limit rept=N) */
.globl f
f:
.rept 1 << 32
 int3
.endr
 ret
