/* expect-error: line 5: too many positional arguments */
.macro ONE a
	push \a
.endm
	ONE %rax %rbx
