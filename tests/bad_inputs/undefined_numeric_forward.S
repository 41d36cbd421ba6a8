/* expect-error: line 4: undefined label '1f' */
1:	nop
	jmp 1b
	jmp 1f
