/* expect-error: line 3: unterminated .rept */
	nop
	.rept 3
	nop
