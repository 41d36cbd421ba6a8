/* expect-error: line 3: takes 2 operand(s) */
.macro BAD
	mov %rax
.endm
	BAD
