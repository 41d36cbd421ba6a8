/* expect-error: line 3: unterminated .rept */
.macro M
	.rept 2
	nop
.endm
	M
.endr
