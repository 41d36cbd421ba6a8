/* expect-error: line 3: undefined label '1b' */
f:
	jmp 1b
1:	ret
